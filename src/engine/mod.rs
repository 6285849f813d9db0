//! The Docker engine, through the Engine API (`bollard` over our own
//! [`transport`]): found like the docker CLI finds it ([`endpoint`]), with
//! the API version negotiated so that older engines (20.10, API 1.41) work,
//! and told apart from Podman's Docker-compatible service.
//!
//! Builders sit behind [`Builder`]: each gets a [`BuildSpec`] (made from the
//! hashed entries) and reports output lines through a [`Log`].

pub mod buildkit;
pub mod classic;
pub mod endpoint;
pub mod tarball;
pub mod transport;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use bollard::Docker;
use bollard::query_parameters::PushImageOptionsBuilder;
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::context::Entry;
use crate::error::{Error, Result};
use crate::registry::{Credentials, ImageRef};
use endpoint::Endpoint;
use transport::{Connector, Dialer};

pub struct Engine {
    docker: Docker,
    dialer: Arc<Dialer>,
    pub endpoint: Endpoint,
    pub kind: Kind,
    /// The negotiated Engine API version (`1.41`).
    pub api_version: String,
}

/// Which engine answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Docker,
    /// Podman's Docker-compatible service (no BuildKit).
    Podman,
}

/// What to build; the context is made from `entries`.
pub struct BuildSpec {
    pub context: PathBuf,
    pub entries: Vec<Entry>,
    pub dockerfile: Dockerfile,
    pub image: ImageRef,
    pub args: HashMap<String, String>,
    pub labels: HashMap<String, String>,
    pub target: Option<String>,
    pub platform: Option<String>,
    pub pull: bool,
    pub no_cache: bool,
    /// Images whose layers may serve as cache.
    pub cache_from: Vec<ImageRef>,
    /// Whether the image carries its own cache metadata (BuildKit's inline cache).
    pub inline_cache: bool,
    /// Registry credentials by host, for base images the engine pulls.
    pub auth: HashMap<String, bollard::auth::DockerCredentials>,
}

/// The Dockerfile the builder reads.
pub struct Dockerfile {
    /// Its path in the context when the builder reads the context's own
    /// file; `None` when it is sent apart (outside the context, or rewritten).
    pub in_context: Option<String>,
    pub bytes: Vec<u8>,
}

/// Where a builder sends each line of build output.
pub type Log<'a> = &'a (dyn Fn(&str) + Send + Sync);

/// A way to build an image in the engine's image store.
pub trait Builder: Send + Sync {
    /// Builds `spec`; a failed build is `Err` with the builder's message.
    fn build<'a>(&'a self, spec: BuildSpec, log: Log<'a>) -> BoxFuture<'a, Result<()>>;
}

impl Engine {
    /// Connects to the engine the environment names (see [`endpoint`]).
    pub async fn connect() -> Result<Engine> {
        let endpoint = endpoint::resolve(&endpoint::Env::from_process())?;
        Engine::connect_to(endpoint).await
    }

    pub async fn connect_to(endpoint: Endpoint) -> Result<Engine> {
        let dialer = Arc::new(Dialer::new(&endpoint)?);
        let connector = Connector(dialer.clone());
        let api = Client::builder(TokioExecutor::new()).build(connector.clone());
        let transport = move |req: bollard::BollardRequest| {
            let api = api.clone();
            async move { api.request(req).await.map_err(bollard::errors::Error::from) }
        };
        let docker = Docker::connect_with_custom_transport(
            transport,
            Some("http://docker"),
            120,
            bollard::API_DEFAULT_VERSION,
        )
        .map_err(|e| Error::internal(format!("engine client: {e}")))?;
        let http: Client<Connector, Full<Bytes>> =
            Client::builder(TokioExecutor::new()).build(connector);
        // For ssh, what ssh said (and how it ended) is the cause to show.
        let unreachable = async |cause: String| {
            let ssh = dialer.ssh_failure().await;
            let hint = hint(&cause, &endpoint, ssh.as_ref());
            Error::user(format!(
                "cannot reach the Docker engine at {endpoint}: {}{hint}",
                ssh.map(|s| s.message).unwrap_or(cause)
            ))
        };
        let ping = match http
            .request(
                hyper::Request::get("http://docker/_ping")
                    .body(Full::default())
                    .expect("a valid request"),
            )
            .await
        {
            Ok(ping) => ping,
            Err(e) => return Err(unreachable(crate::error::chain(&e)).await),
        };
        let headers = ping.headers();
        let kind = if headers.contains_key("libpod-api-version") {
            Kind::Podman
        } else {
            Kind::Docker
        };
        if !ping.status().is_success() {
            return Err(unreachable(format!("the ping answered {}", ping.status())).await);
        }
        let docker = match docker.negotiate_version().await {
            Ok(docker) => docker,
            Err(e) => return Err(unreachable(crate::error::chain(&e)).await),
        };
        let api_version = docker.client_version().to_string();
        Ok(Engine {
            docker,
            dialer,
            endpoint,
            kind,
            api_version,
        })
    }

    /// The engine's classic builder.
    pub fn classic(&self) -> classic::Classic {
        classic::Classic::new(self.docker.clone())
    }

    /// The engine's BuildKit, serving `secrets` to the builds.
    pub fn buildkit(&self, secrets: crate::secrets::Secrets) -> buildkit::BuildKit {
        buildkit::BuildKit::new(self.dialer.clone(), self.api_version.clone(), secrets)
    }

    /// Whether the engine offers BuildKit: Docker does (an embedded BuildKit
    /// since 18.09); Podman's service does not.
    pub fn offers_buildkit(&self) -> bool {
        self.kind == Kind::Docker
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

    /// Tags the local image `image` also as `tag` (same repository).
    pub async fn tag(&self, image: &ImageRef, tag: &str) -> Result<()> {
        let options = bollard::query_parameters::TagImageOptionsBuilder::default()
            .repo(&image.repository.to_string())
            .tag(tag)
            .build();
        self.docker
            .tag_image(&image.to_string(), Some(options))
            .await
            .map_err(|e| Error::user(format!("tagging {image} as {tag}: {}", engine_message(&e))))
    }

    /// Pulls `image` into the engine.
    pub async fn pull(&self, image: &ImageRef, creds: &Credentials) -> Result<()> {
        let options = bollard::query_parameters::CreateImageOptionsBuilder::default()
            .from_image(&image.repository.to_string())
            .tag(image.tag_or_latest())
            .build();
        let mut stream = self.docker.create_image(
            Some(options),
            None,
            Some(creds.docker(image.repository.host())),
        );
        while let Some(item) = stream.next().await {
            let message = match item {
                Ok(info) => match info.error_detail.and_then(|d| d.message) {
                    Some(m) => m,
                    None => continue,
                },
                Err(e) => engine_message(&e),
            };
            return Err(Error::user(format!("pulling {image}: {message}")));
        }
        Ok(())
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

/// What to try when an engine cannot be reached, judged from the cause.
/// `ssh`: how the `ssh` process failed, if it did (its message says why).
fn hint(cause: &str, endpoint: &Endpoint, ssh: Option<&transport::SshFailure>) -> String {
    use endpoint::Address;
    if let Address::Ssh {
        user,
        host,
        port,
        socket,
    } = &endpoint.address
    {
        let command = transport::ssh_args(user.as_deref(), host, *port, socket.as_deref())
            .iter()
            .map(|a| match a.contains(' ') {
                true => format!("'{a}'"),
                false => a.clone(),
            })
            .collect::<Vec<_>>()
            .join(" ");
        return match ssh {
            Some(s) if s.connection => format!(
                " (tagsmith ran `ssh {command}`: it must connect and log in without a prompt)"
            ),
            Some(_) => format!(
                " (tagsmith ran `ssh {command}`: the host needs Docker 18.09 or later, \
                 and access to its engine)"
            ),
            None => format!(
                " (the host did not answer with the Engine API: \
                 check that `ssh {command}` works)"
            ),
        };
    }
    let tls = matches!(&endpoint.address, Address::Tcp { tls: Some(_), .. });
    let text = if cause.contains("InvalidContentType") || cause.contains("corrupt message") {
        " (the engine does not speak TLS on this port: unset DOCKER_TLS_VERIFY, or use its TLS port)"
    } else if !tls
        && (cause.contains("invalid HTTP version")
            || cause.contains("connection closed before message completed"))
        && matches!(&endpoint.address, Address::Tcp { .. })
    {
        " (the engine may expect TLS: set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH)"
    } else if cause.contains("UnknownIssuer") || cause.contains("invalid peer certificate") {
        " (the engine's certificate is not signed by the CA in DOCKER_CERT_PATH/ca.pem)"
    } else if cause.contains("alert")
        && (cause.contains("Certificate") || cause.contains("UnknownCA"))
    {
        " (the engine refused the client certificate: check cert.pem and key.pem in DOCKER_CERT_PATH)"
    } else if matches!(&endpoint.address, Address::Unix(_)) {
        " (is dockerd running? set DOCKER_HOST or DOCKER_CONTEXT to use another engine)"
    } else {
        ""
    };
    text.to_string()
}

pub(crate) fn engine_message(e: &bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message.clone(),
        bollard::errors::Error::DockerStreamError { error } => error.clone(),
        other => other.to_string(),
    }
}
