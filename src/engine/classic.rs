//! The engine's classic builder: the context goes up as a tar in the body of
//! `POST /build`, made as it is sent from the hashed entries.

use bollard::Docker;
use bollard::query_parameters::BuildImageOptionsBuilder;
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::future::BoxFuture;

use super::{BuildSpec, Builder, Log, engine_message, tarball};
use crate::error::{Error, Result};

pub struct Classic {
    docker: Docker,
}

impl Classic {
    pub fn new(docker: Docker) -> Classic {
        Classic { docker }
    }

    async fn run(&self, spec: BuildSpec, log: Log<'_>) -> Result<()> {
        let image = spec.image.to_string();
        let dockerfile = match &spec.dockerfile.in_context {
            Some(path) => path.clone(),
            None => tarball::outside_dockerfile_name(&spec.dockerfile.bytes),
        };
        let cache_from: Vec<String> = spec.cache_from.iter().map(ToString::to_string).collect();
        let mut options = BuildImageOptionsBuilder::default()
            .dockerfile(&dockerfile)
            .cachefrom(&cache_from)
            .t(&image)
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
            dockerfile,
            ..
        } = spec;
        let writer = tokio::task::spawn_blocking(move || {
            let out = ChannelWriter::new(tx.clone());
            let outside = dockerfile
                .in_context
                .is_none()
                .then_some(dockerfile.bytes.as_slice());
            let result = tarball::write(&context, &entries, outside, out);
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
}

impl Builder for Classic {
    fn build<'a>(&'a self, spec: BuildSpec, log: Log<'a>) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.run(spec, log))
    }
}

const CHUNK: usize = 256 * 1024;

/// Sends the tar to the engine in chunks as it is written.
pub(crate) struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<std::result::Result<Bytes, std::io::Error>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    pub(crate) fn new(
        tx: tokio::sync::mpsc::Sender<std::result::Result<Bytes, std::io::Error>>,
    ) -> Self {
        ChannelWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
        }
    }
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
