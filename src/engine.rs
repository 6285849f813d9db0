//! The Docker engine, through the Engine API (`bollard`): found like the
//! docker CLI finds it (`DOCKER_HOST`, TLS via `DOCKER_TLS_VERIFY` and
//! `DOCKER_CERT_PATH`, else the default socket), with the API version
//! negotiated so that older engines (20.10, API 1.41) work.

use std::collections::HashMap;
use std::path::PathBuf;

use bollard::Docker;
use bollard::query_parameters::{BuildImageOptionsBuilder, PushImageOptionsBuilder};
use bytes::Bytes;
use futures_util::StreamExt;

use crate::context::Entry;
use crate::error::{Error, Result};

pub struct Engine {
    docker: Docker,
}

/// What to build; the context tar is made from `entries`.
pub struct BuildSpec {
    pub context: PathBuf,
    pub entries: Vec<Entry>,
    /// The Dockerfile's path in the tar.
    pub dockerfile: String,
    /// The Dockerfile's bytes when it lies outside the context.
    pub outside_dockerfile: Option<Vec<u8>>,
    /// `<registry>/<repository>:<tag>`.
    pub image: String,
    pub args: HashMap<String, String>,
    pub labels: HashMap<String, String>,
    pub target: Option<String>,
    pub platform: Option<String>,
    pub pull: bool,
    pub no_cache: bool,
    /// Registry credentials by host, for base images the engine pulls.
    pub auth: HashMap<String, bollard::auth::DockerCredentials>,
}

impl Engine {
    pub async fn connect() -> Result<Engine> {
        let host =
            std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
        let unreachable = |e: &dyn std::fmt::Display| {
            Error::user(format!(
                "cannot reach the Docker engine at {host}: {e} (is dockerd running? set DOCKER_HOST to use another engine)"
            ))
        };
        let docker = Docker::connect_with_defaults().map_err(|e| unreachable(&e))?;
        let docker = docker
            .negotiate_version()
            .await
            .map_err(|e| unreachable(&e))?;
        docker.ping().await.map_err(|e| unreachable(&e))?;
        Ok(Engine { docker })
    }

    /// Whether the engine has `image` (`repo:tag`).
    pub async fn has_image(&self, image: &str) -> Result<bool> {
        match self.docker.inspect_image(image).await {
            Ok(_) => Ok(true),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(false),
            Err(e) => Err(Error::user(format!("asking the engine for {image}: {e}"))),
        }
    }

    /// Builds `spec`, calling `log` with each line of output. A failed build
    /// is `Err` with the engine's message.
    pub async fn build(&self, spec: BuildSpec, log: &mut (dyn FnMut(&str) + Send)) -> Result<()> {
        let mut options = BuildImageOptionsBuilder::default()
            .dockerfile(&spec.dockerfile)
            .t(&spec.image)
            .rm(true)
            .forcerm(true)
            .nocache(spec.no_cache)
            .buildargs(&spec.args)
            .labels(&spec.labels);
        if let Some(target) = &spec.target {
            options = options.target(target);
        }
        if let Some(platform) = &spec.platform {
            options = options.platform(platform);
        }
        if spec.pull {
            options = options.pull("1");
        }
        let (tx, rx) = tokio::sync::mpsc::channel::<std::result::Result<Bytes, std::io::Error>>(8);
        let BuildSpec {
            context,
            entries,
            outside_dockerfile,
            ..
        } = spec;
        let writer = tokio::task::spawn_blocking(move || {
            let out = ChannelWriter {
                tx: tx.clone(),
                buf: Vec::with_capacity(CHUNK),
            };
            let result =
                crate::tarball::write(&context, &entries, outside_dockerfile.as_deref(), out);
            if let Err(e) = &result {
                let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
            }
            result
        });
        let body = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        let mut stream = self.docker.build_image(
            options.build(),
            Some(spec.auth),
            Some(bollard::body_try_stream(body)),
        );
        let mut failure = None;
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(text) = info.stream.as_deref().or(info.status.as_deref()) {
                        for line in text.lines().filter(|l| !l.trim().is_empty()) {
                            log(line);
                        }
                    }
                    if let Some(detail) = info.error_detail.and_then(|d| d.message) {
                        failure = Some(detail);
                    }
                }
                Err(e) => {
                    failure.get_or_insert_with(|| engine_message(&e));
                    break;
                }
            }
        }
        // A context error (e.g. a file changed after hashing) explains a broken upload best.
        writer
            .await
            .map_err(|e| Error::internal(format!("context writer: {e}")))??;
        match failure {
            Some(msg) => Err(Error::user(msg)),
            None => Ok(()),
        }
    }

    /// Pushes `repository:tag` with `creds`.
    pub async fn push(
        &self,
        repository: &str,
        tag: &str,
        creds: bollard::auth::DockerCredentials,
        log: &mut (dyn FnMut(&str) + Send),
    ) -> Result<()> {
        let options = PushImageOptionsBuilder::default().tag(tag).build();
        let mut stream = self
            .docker
            .push_image(repository, Some(options), Some(creds));
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(status) = info.status.as_deref()
                        && (info.progress_detail.is_none() || status.starts_with(tag))
                    {
                        log(status);
                    }
                    if let Some(msg) = info.error_detail.and_then(|d| d.message) {
                        return Err(Error::user(msg));
                    }
                }
                Err(e) => return Err(Error::user(engine_message(&e))),
            }
        }
        Ok(())
    }
}

fn engine_message(e: &bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message.clone(),
        bollard::errors::Error::DockerStreamError { error } => error.clone(),
        other => other.to_string(),
    }
}

const CHUNK: usize = 256 * 1024;

/// Sends the tar to the engine in chunks as it is written.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<std::result::Result<Bytes, std::io::Error>>,
    buf: Vec<u8>,
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
            self.tx.blocking_send(Ok(chunk)).map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::BrokenPipe,
                    "the engine stopped reading the context",
                )
            })?;
        }
        Ok(())
    }
}
