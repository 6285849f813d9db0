//! The Docker engine, through the Engine API (`bollard`): found like the
//! docker CLI finds it (`DOCKER_HOST`, TLS via `DOCKER_TLS_VERIFY` and
//! `DOCKER_CERT_PATH`, else the default socket), with the API version
//! negotiated so that older engines (20.10, API 1.41) work.
//!
//! Builders sit behind [`Builder`]: each gets a [`BuildSpec`] (made from the
//! hashed entries) and reports output lines through a [`Log`].

pub mod classic;
pub mod tarball;

use std::collections::HashMap;
use std::path::PathBuf;

use bollard::Docker;
use bollard::query_parameters::PushImageOptionsBuilder;
use futures_util::StreamExt;
use futures_util::future::BoxFuture;

use crate::context::Entry;
use crate::error::{Error, Result};
use crate::registry::{Credentials, ImageRef};

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
    pub image: ImageRef,
    pub args: HashMap<String, String>,
    pub labels: HashMap<String, String>,
    pub target: Option<String>,
    pub platform: Option<String>,
    pub pull: bool,
    pub no_cache: bool,
    /// Registry credentials by host, for base images the engine pulls.
    pub auth: HashMap<String, bollard::auth::DockerCredentials>,
}

/// Where a builder sends each line of build output.
pub type Log<'a> = &'a (dyn Fn(&str) + Send + Sync);

/// A way to build an image in the engine's image store.
pub trait Builder: Send + Sync {
    /// Builds `spec`; a failed build is `Err` with the builder's message.
    fn build<'a>(&'a self, spec: BuildSpec, log: Log<'a>) -> BoxFuture<'a, Result<()>>;
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

    /// The engine's classic builder.
    pub fn classic(&self) -> classic::Classic {
        classic::Classic::new(self.docker.clone())
    }

    /// Whether the engine has `image`.
    pub async fn has_image(&self, image: &ImageRef) -> Result<bool> {
        match self.docker.inspect_image(&image.to_string()).await {
            Ok(_) => Ok(true),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(false),
            Err(e) => Err(Error::user(format!("asking the engine for {image}: {e}"))),
        }
    }

    /// Pushes `image` with `creds`.
    pub async fn push(
        &self,
        image: &ImageRef,
        creds: &Credentials,
        log: Log<'_>,
    ) -> Result<(), PushError> {
        let tag = image.tag_or_latest();
        let repository = image.repository.to_string();
        let options = PushImageOptionsBuilder::default().tag(tag).build();
        let mut stream = self.docker.push_image(
            &repository,
            Some(options),
            Some(creds.docker(image.repository.host())),
        );
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(status) = info.status.as_deref()
                        && (info.progress_detail.is_none() || status.starts_with(tag))
                    {
                        log(status);
                    }
                    if let Some(msg) = info.error_detail.and_then(|d| d.message) {
                        return Err(PushError::classify(msg));
                    }
                }
                Err(e) => return Err(PushError::classify(engine_message(&e))),
            }
        }
        Ok(())
    }
}

/// Why a push failed.
#[derive(Debug)]
pub enum PushError {
    /// The registry refused the credentials (the engine's stream reports
    /// the registry's 401/403 as an `unauthorized`/`denied` error code).
    Auth(String),
    Other(String),
}

impl PushError {
    /// The engine passes on the registry's error code (distribution's
    /// `UNAUTHORIZED`, `DENIED`) in lower case before the first `:`.
    fn classify(msg: String) -> PushError {
        match msg.split_once(':').map(|(code, _)| code.trim()) {
            Some("unauthorized" | "denied") => PushError::Auth(msg),
            _ => PushError::Other(msg),
        }
    }
}

pub(crate) fn engine_message(e: &bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message.clone(),
        bollard::errors::Error::DockerStreamError { error } => error.clone(),
        other => other.to_string(),
    }
}
