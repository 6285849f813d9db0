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
pub mod verified;

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
        // One message: where the engine was looked for, what went wrong (for
        // ssh, what ssh said), and what to try.
        let unreachable = async |cause: String, failure: transport::Failure| {
            let ssh = dialer.ssh_failure().await;
            let hint = hint(failure, &endpoint, ssh.as_ref());
            Error::user(format!(
                "cannot reach the Docker engine at {endpoint}: {}{hint}",
                ssh.map(|s| s.message).unwrap_or(cause)
            ))
        };
        let ping = hyper::Request::get("/_ping")
            .header("Host", "docker")
            .body(Full::<Bytes>::default())
            .expect("a valid request");
        let ping = match transport::request(&dialer, ping).await {
            Ok(ping) => ping,
            Err(e) => {
                let failure = transport::Failure::of(&*e);
                return Err(unreachable(transport::root_cause(&*e), failure).await);
            }
        };
        let kind = if ping.headers().contains_key("libpod-api-version") {
            Kind::Podman
        } else {
            Kind::Docker
        };
        if !ping.status().is_success() {
            let status = ping.status();
            // The body says why: Go's TLS ports answer plain HTTP with a sentence.
            let said = transport::first_line(ping.into_body()).await;
            let failure = if status == hyper::StatusCode::BAD_REQUEST {
                transport::Failure::BadRequest
            } else {
                transport::Failure::Other
            };
            let said = if said.is_empty() {
                String::new()
            } else {
                format!(": {said}")
            };
            return Err(unreachable(format!("the ping answered {status}{said}"), failure).await);
        }
        let docker = match docker.negotiate_version().await {
            Ok(docker) => docker,
            Err(e) => {
                let failure = transport::Failure::of(&e);
                return Err(unreachable(crate::error::chain(&e), failure).await);
            }
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

    /// Pushes `image` with `creds`; returns the manifest digest the engine
    /// reports having pushed (its `<tag>: digest: sha256:… size: N` line).
    /// The engine waits for a registry that stops answering as long as the
    /// connection lives: when no push sharing `idle` has reported anything
    /// for its limit, this one is given up (dropping the stream cancels it
    /// in the engine) as a transient failure.
    pub async fn push(
        &self,
        image: &ImageRef,
        creds: &Credentials,
        idle: &Idle,
        log: Log<'_>,
    ) -> Result<Option<String>, PushError> {
        let tag = image.tag_or_latest();
        let mut pushed = None;
        let repository = image.repository.to_string();
        let options = PushImageOptionsBuilder::default().tag(tag).build();
        let mut stream = self.docker.push_image(
            &repository,
            Some(options),
            Some(creds.docker(image.repository.host())),
        );
        loop {
            let next = match tokio::time::timeout(idle.limit, stream.next()).await {
                Ok(next) => next,
                // Quiet, but another push made progress: this one may be
                // queued behind it in the engine ("Waiting").
                Err(_) if idle.last.lock().unwrap().elapsed() < idle.limit => continue,
                Err(_) => {
                    return Err(PushError::Transient(format!(
                        "no progress for {}s: the registry stopped answering",
                        idle.limit.as_secs_f64()
                    )));
                }
            };
            let Some(item) = next else { break };
            *idle.last.lock().unwrap() = std::time::Instant::now();
            match item {
                Ok(info) => {
                    if let Some(status) = info.status.as_deref()
                        && (info.progress_detail.is_none() || status.starts_with(tag))
                    {
                        log(status);
                        if let Some(rest) = status.strip_prefix(&format!("{tag}: digest: ")) {
                            pushed = rest.split_whitespace().next().map(str::to_string);
                        }
                    }
                    if let Some(msg) = info.error_detail.and_then(|d| d.message) {
                        return Err(PushError::classify(msg));
                    }
                }
                Err(e) => return Err(PushError::classify(engine_message(&e))),
            }
        }
        Ok(pushed)
    }
}

/// How long the pushes of a run may all be silent before the one waiting
/// counts as stalled: the engine uploads a few layers at a time, and a push
/// queued behind the others reports nothing meanwhile.
pub struct Idle {
    pub limit: std::time::Duration,
    /// When any push sharing this last reported something.
    last: std::sync::Mutex<std::time::Instant>,
}

impl Idle {
    pub fn new(limit: std::time::Duration) -> Idle {
        Idle {
            limit,
            last: std::sync::Mutex::new(std::time::Instant::now()),
        }
    }
}

/// Why a push failed.
#[derive(Debug)]
pub enum PushError {
    /// The registry refused the credentials (the engine's stream reports
    /// the registry's 401/403 as an `unauthorized`/`denied` error code).
    Auth(String),
    /// Worth another try: the registry or the network failed on the way
    /// (a 5xx or 429 the engine passes on, a reset, a timeout, a cut stream).
    Transient(String),
    Other(String),
}

impl PushError {
    /// The engine passes on the registry's error code (distribution's
    /// `UNAUTHORIZED`, `DENIED`) in lower case before the first `:`.
    fn classify(msg: String) -> PushError {
        if let Some("unauthorized" | "denied") = msg.split_once(':').map(|(code, _)| code.trim()) {
            return PushError::Auth(msg);
        }
        // The engine reports the registry's and the network's failures as
        // text only; these are the ones a retry can cure.
        let transient = [
            "500 Internal Server Error",
            "502 Bad Gateway",
            "503 Service Unavailable",
            "504 Gateway Timeout",
            "429 Too Many Requests",
            "toomanyrequests",
            "connection reset",
            "broken pipe",
            "unexpected EOF",
            "i/o timeout",
            "TLS handshake timeout",
            "connection refused",
            "EOF",
        ];
        if transient.iter().any(|t| msg.contains(t)) {
            PushError::Transient(msg)
        } else {
            PushError::Other(msg)
        }
    }
}

/// What to try when an engine cannot be reached, judged from the failure
/// and the address (naming the files and variables to fix), or nothing.
/// `ssh`: how the `ssh` process failed, if it did (its message says why).
fn hint(
    failure: transport::Failure,
    endpoint: &Endpoint,
    ssh: Option<&transport::SshFailure>,
) -> String {
    use endpoint::Address;
    use transport::Failure as F;
    let from_env = endpoint.from_docker_host();
    let shown = |p: &std::path::Path| crate::paths::Shown(p).to_string();
    let text = match &endpoint.address {
        Address::Tcp { tls: Some(tls), .. } => {
            let files = match (&tls.dir, from_env) {
                (Some(dir), true) => format!("{} (DOCKER_CERT_PATH)", shown(dir)),
                (Some(dir), false) => format!("the context's TLS directory {}", shown(dir)),
                (None, _) => {
                    "the directory DOCKER_CERT_PATH names (with DOCKER_TLS_VERIFY=1)".to_string()
                }
            };
            match failure {
                F::NotTls if from_env => "the engine does not speak TLS on this port: \
                    unset DOCKER_TLS_VERIFY and DOCKER_TLS, or use its TLS port"
                    .to_string(),
                F::NotTls => format!(
                    "the engine does not speak TLS on this port, but the context has TLS \
                     settings ({files}): use the engine's TLS port"
                ),
                F::UnknownIssuer => match &tls.ca {
                    Some(ca) => format!(
                        "the engine's certificate is not signed by the CA in {}",
                        shown(ca)
                    ),
                    None => format!(
                        "the engine's certificate is not signed by a CA this system trusts: \
                         put the engine's CA certificate as ca.pem in {files}"
                    ),
                },
                F::WrongName => "the engine's certificate does not name this host: \
                    use a host name or IP address that it names"
                    .to_string(),
                F::Expired => "the engine's certificate has expired or is not valid yet: \
                    check its dates and this machine's clock"
                    .to_string(),
                F::ClientRefused | F::Closed => {
                    let maybe = if failure == F::Closed {
                        "may have "
                    } else {
                        ""
                    };
                    match &tls.identity {
                        None => format!(
                            "the engine {maybe}refused to talk without a client certificate: \
                             put cert.pem and key.pem in {files}"
                        ),
                        Some((cert, _)) => format!(
                            "the engine {maybe}refused the client certificate {}: \
                             it must be signed by a CA the engine trusts",
                            shown(cert)
                        ),
                    }
                }
                _ => String::new(),
            }
        }
        Address::Tcp { tls: None, .. } => match failure {
            F::BadRequest | F::Closed | F::NotHttp if from_env => {
                "the engine may expect TLS on this port: set DOCKER_TLS_VERIFY=1 and \
                 DOCKER_CERT_PATH to the directory holding ca.pem, cert.pem and key.pem"
                    .to_string()
            }
            F::BadRequest | F::Closed | F::NotHttp => {
                "the engine may expect TLS on this port: give the context the engine's CA \
                 and a client certificate (docker context update --docker \
                 \"host=…,ca=…,cert=…,key=…\")"
                    .to_string()
            }
            _ => String::new(),
        },
        Address::Ssh {
            user,
            host,
            port,
            socket,
        } => {
            let command = transport::ssh_args(user.as_deref(), host, *port, socket.as_deref())
                .iter()
                .map(|a| match a.contains(' ') {
                    true => format!("'{a}'"),
                    false => a.clone(),
                })
                .collect::<Vec<_>>()
                .join(" ");
            match ssh {
                Some(s) if s.connection => format!(
                    "tagsmith ran `ssh {command}`: it must connect and log in without a prompt"
                ),
                Some(_) => format!(
                    "tagsmith ran `ssh {command}`: the host needs Docker 18.09 or later, \
                     and access to its engine"
                ),
                None => format!(
                    "the host did not answer with the Engine API: \
                     check that `ssh {command}` works"
                ),
            }
        }
        Address::Unix(_) => match failure {
            F::PermissionDenied => "no permission to use the socket: \
                run as a member of its group (usually docker) or as root"
                .to_string(),
            _ => "is dockerd running? set DOCKER_HOST or DOCKER_CONTEXT to use another engine"
                .to_string(),
        },
    };
    if text.is_empty() {
        text
    } else {
        format!(" ({text})")
    }
}

pub(crate) fn engine_message(e: &bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message.clone(),
        bollard::errors::Error::DockerStreamError { error } => error.clone(),
        other => other.to_string(),
    }
}
