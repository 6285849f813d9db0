//! The registry side: credentials from the docker CLI's config, and whether a
//! tag exists, by a manifest HEAD request through `oci-client` (never a pull).
//! Secrets stay inside [`Credentials`]; nothing here formats them.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, client::ClientConfig, client::ClientProtocol};

use crate::error::{Error, Result};

/// Credentials for one registry host. `Debug` never shows them.
#[derive(Clone, Default)]
pub enum Credentials {
    #[default]
    Anonymous,
    Basic {
        username: String,
        password: String,
    },
    IdentityToken(String),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Credentials::Anonymous => "Anonymous",
            Credentials::Basic { .. } => "Basic(<redacted>)",
            Credentials::IdentityToken(_) => "IdentityToken(<redacted>)",
        })
    }
}

impl Credentials {
    /// Looks `host` up in `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`:
    /// `auths`, `credHelpers`, `credsStore`. No config means anonymous.
    pub fn for_host(host: &str) -> Result<Credentials> {
        use docker_credential::{CredentialRetrievalError as E, DockerCredential};
        match docker_credential::get_credential(host) {
            Ok(DockerCredential::UsernamePassword(username, password)) => {
                Ok(Credentials::Basic { username, password })
            }
            Ok(DockerCredential::IdentityToken(token)) => Ok(Credentials::IdentityToken(token)),
            Err(E::ConfigNotFound | E::ConfigReadError | E::NoCredentialConfigured) => {
                Ok(Credentials::Anonymous)
            }
            // The helper's own output may hold secrets: name the helper only.
            Err(E::HelperFailure { helper, .. }) => Err(Error::user(format!(
                "the docker credential helper \"docker-credential-{helper}\" failed for {host}; check `docker login {host}`"
            ))),
            Err(other) => Err(Error::user(format!(
                "reading docker credentials for {host}: {other}"
            ))),
        }
    }

    fn oci(&self) -> RegistryAuth {
        match self {
            Credentials::Anonymous => RegistryAuth::Anonymous,
            Credentials::Basic { username, password } => {
                RegistryAuth::Basic(username.clone(), password.clone())
            }
            Credentials::IdentityToken(t) => RegistryAuth::Bearer(t.clone()),
        }
    }

    /// The engine's form, for pushes and for pulls during builds.
    pub fn docker(&self, host: &str) -> bollard::auth::DockerCredentials {
        let mut c = bollard::auth::DockerCredentials {
            serveraddress: Some(host.to_string()),
            ..Default::default()
        };
        match self {
            Credentials::Anonymous => {}
            Credentials::Basic { username, password } => {
                c.username = Some(username.clone());
                c.password = Some(password.clone());
            }
            Credentials::IdentityToken(t) => c.identitytoken = Some(t.clone()),
        }
        c
    }
}

/// The registry host of an image reference: the part before the first `/`.
pub fn host(image: &str) -> &str {
    image.split('/').next().unwrap_or(image)
}

/// Plain HTTP only for loopback registries and those listed as insecure.
pub fn is_insecure(host: &str, insecure: &[String]) -> bool {
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    };
    matches!(name, "localhost" | "127.0.0.1" | "[::1]")
        || insecure.iter().any(|h| h == host || h == name)
}

/// Why a tag could not be checked: the credentials (which concerns every
/// image on that registry), or something about this one image.
#[derive(Debug)]
pub enum CheckError {
    Auth(Error),
    Failed(Error),
}

impl From<CheckError> for Error {
    fn from(e: CheckError) -> Error {
        match e {
            CheckError::Auth(e) | CheckError::Failed(e) => e,
        }
    }
}

pub struct Registry {
    client: Client,
}

/// How many times a transient failure (5xx, timeout, reset) is retried.
const RETRIES: u32 = 4;

impl Registry {
    pub fn new(hosts: &[&str], insecure: &[String]) -> Registry {
        let plain: Vec<String> = hosts
            .iter()
            .filter(|h| is_insecure(h, insecure))
            .map(|h| h.to_string())
            .collect();
        let client = Client::new(ClientConfig {
            protocol: ClientProtocol::HttpsExcept(plain),
            read_timeout: Some(Duration::from_secs(30)),
            connect_timeout: Some(Duration::from_secs(10)),
            ..Default::default()
        });
        Registry { client }
    }

    /// The manifest digest of `image` (`host/repo:tag`), or `None` if the tag
    /// does not exist. Transient failures are retried with backoff.
    pub async fn digest(
        &self,
        image: &str,
        creds: &Credentials,
    ) -> Result<Option<String>, CheckError> {
        let reference: Reference = image.parse().map_err(|e| {
            CheckError::Failed(Error::user(format!(
                "{image}: not a valid image reference: {e}"
            )))
        })?;
        let host = host(image);
        let mut delay = Duration::from_millis(250);
        for attempt in 0..=RETRIES {
            match self
                .client
                .fetch_manifest_digest(&reference, &creds.oci())
                .await
            {
                Ok(digest) => return Ok(Some(digest)),
                Err(e) => match classify(&e) {
                    Failure::Absent => return Ok(None),
                    Failure::Auth => return Err(CheckError::Auth(auth_error(host, creds))),
                    Failure::Transient if attempt < RETRIES => {
                        tokio::time::sleep(delay).await;
                        delay *= 2;
                    }
                    failure => {
                        let tries = match failure {
                            Failure::Transient => format!(" after {} attempts", RETRIES + 1),
                            _ => String::new(),
                        };
                        return Err(CheckError::Failed(Error::user(format!(
                            "registry {host}: checking {image} failed{tries}: {}",
                            redact(&e)
                        ))));
                    }
                },
            }
        }
        unreachable!("the last attempt returns")
    }
}

/// The registry digests of `images` (`name -> image reference`), looked up
/// concurrently; `None` where the tag is not in the registry.
pub fn digests(
    images: &BTreeMap<String, String>,
    insecure: &[String],
) -> Result<BTreeMap<String, Option<String>>> {
    let hosts: Vec<&str> = images.values().map(|i| host(i)).collect();
    let registry = Registry::new(&hosts, insecure);
    let mut creds = BTreeMap::new();
    for h in &hosts {
        creds.insert(h.to_string(), Credentials::for_host(h)?);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::internal(format!("starting the async runtime: {e}")))?;
    runtime.block_on(async {
        let lookups = images.iter().map(|(name, image)| {
            let (registry, creds) = (&registry, &creds);
            async move {
                Ok::<_, Error>((
                    name.clone(),
                    registry.digest(image, &creds[host(image)]).await?,
                ))
            }
        });
        futures_util::future::join_all(lookups)
            .await
            .into_iter()
            .collect()
    })
}

enum Failure {
    Absent,
    Auth,
    Transient,
    Other,
}

fn classify(e: &OciDistributionError) -> Failure {
    use OciDistributionError as E;
    match e {
        E::ImageManifestNotFoundError(_) => Failure::Absent,
        E::RegistryError { envelope, .. } => {
            let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
            if codes
                .iter()
                .any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied))
            {
                Failure::Auth
            } else if codes
                .iter()
                .any(|c| matches!(c, OciErrorCode::ManifestUnknown | OciErrorCode::NameUnknown))
            {
                Failure::Absent
            } else {
                Failure::Other
            }
        }
        E::UnauthorizedError { .. } | E::AuthenticationFailure(_) => Failure::Auth,
        E::ServerError { code: 404, .. } => Failure::Absent,
        E::ServerError {
            code: 401 | 403, ..
        } => Failure::Auth,
        E::ServerError { code, .. } if *code >= 500 || *code == 429 => Failure::Transient,
        E::RequestError(r) if r.is_timeout() || r.is_connect() || r.is_request() => {
            Failure::Transient
        }
        _ => Failure::Other,
    }
}

pub fn auth_error(host: &str, creds: &Credentials) -> Error {
    let what = match creds {
        Credentials::Anonymous => "needs credentials and none are configured",
        _ => "refused the configured credentials",
    };
    Error::user(format!(
        "registry {host} {what}: run `docker login {host}` (tagsmith reads $DOCKER_CONFIG/config.json or ~/.docker/config.json)"
    ))
}

/// Error text from a library with its causes ("connection refused"), and
/// anything that looks like a URL with credentials cut.
fn redact(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    text.split_whitespace()
        .map(|w| {
            if w.contains('@') && w.contains(':') && w.contains("//") {
                "<url>"
            } else {
                w
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_for_loopback_and_listed_hosts() {
        assert!(is_insecure("127.0.0.1:5000", &[]));
        assert!(is_insecure("localhost:5000", &[]));
        assert!(is_insecure("localhost", &[]));
        assert!(!is_insecure("registry.example.com", &[]));
        assert!(!is_insecure("127.0.0.1.nip.io:5000", &[]));
        assert!(is_insecure(
            "reg.internal:5000",
            &["reg.internal:5000".into()]
        ));
        assert!(is_insecure("reg.internal:5000", &["reg.internal".into()]));
    }

    #[test]
    fn credentials_never_print() {
        let c = Credentials::Basic {
            username: "u".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
        assert!(!format!("{:?}", Credentials::IdentityToken("tok-123".into())).contains("tok-123"));
    }

    #[test]
    fn hosts() {
        assert_eq!(host("127.0.0.1:5000/demo/api:abc"), "127.0.0.1:5000");
        assert_eq!(
            host("registry.example.com/team/api:x"),
            "registry.example.com"
        );
    }
}
