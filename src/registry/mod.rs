//! The registry side: whether a tag exists and its digest, by a manifest
//! HEAD request through `oci-client` (never a pull), with the docker CLI's
//! credentials. Failures keep their HTTP status ([`RegistryError`]).

pub mod credentials;
pub mod reference;

use std::time::Duration;

use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, client::ClientConfig, client::ClientProtocol};

pub use credentials::{Credentials, Keyring};
pub use reference::{ImageRef, Repository};

use crate::error::{Error, RegistryError, Result};

/// Plain HTTP only for loopback registries and those listed as insecure.
pub fn is_insecure(host: &str, insecure: &[String]) -> bool {
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    };
    matches!(name, "localhost" | "127.0.0.1" | "[::1]")
        || insecure.iter().any(|h| h == host || h == name)
}

pub struct Registry {
    client: Client,
    keyring: Keyring,
}

/// How many times a transient failure (5xx, timeout, reset) is retried.
const RETRIES: u32 = 4;

impl Registry {
    /// A client for `keyring`'s hosts; `insecure` as in the config.
    pub fn new(keyring: Keyring, insecure: &[String]) -> Registry {
        let plain: Vec<String> = keyring
            .iter()
            .map(|(h, _)| h)
            .filter(|h| is_insecure(h, insecure))
            .map(str::to_string)
            .collect();
        let client = Client::new(ClientConfig {
            protocol: ClientProtocol::HttpsExcept(plain),
            read_timeout: Some(Duration::from_secs(30)),
            connect_timeout: Some(Duration::from_secs(10)),
            ..Default::default()
        });
        Registry { client, keyring }
    }

    /// A client for the registries of `hosts`, with their credentials read
    /// from the docker config.
    pub fn for_hosts<'a>(
        hosts: impl IntoIterator<Item = &'a str>,
        insecure: &[String],
    ) -> Result<Registry> {
        Ok(Registry::new(Keyring::for_hosts(hosts)?, insecure))
    }

    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// The manifest digest of `image`, or `None` if the tag does not exist.
    /// Transient failures are retried with backoff.
    pub async fn digest(&self, image: &ImageRef) -> Result<Option<String>> {
        let text = image.to_string();
        let host = image.repository.host();
        let reference: Reference = text
            .parse()
            .map_err(|e| Error::user(format!("{text}: not a valid image reference: {e}")))?;
        let auth = oci_auth(self.keyring.get(host));
        let mut delay = Duration::from_millis(250);
        for attempt in 0..=RETRIES {
            let e = match self.client.fetch_manifest_digest(&reference, &auth).await {
                Ok(digest) => return Ok(Some(digest)),
                Err(e) => e,
            };
            let (failure, status) = classify(&e);
            match failure {
                Failure::Absent => return Ok(None),
                Failure::Auth => return Err(self.auth_error(host, status)),
                Failure::Transient if attempt < RETRIES => {
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                failure => {
                    let tries = match failure {
                        Failure::Transient => format!(" after {} attempts", RETRIES + 1),
                        _ => String::new(),
                    };
                    return Err(Error::Registry(RegistryError {
                        host: host.to_string(),
                        status,
                        message: format!(
                            "registry {host}: checking {text} failed{tries}: {}",
                            redact(&e)
                        ),
                    }));
                }
            }
        }
        unreachable!("the last attempt returns")
    }

    /// The error for a registry that refused the credentials (or wants some).
    pub fn auth_error(&self, host: &str, status: Option<u16>) -> Error {
        let what = match self.keyring.get(host) {
            Credentials::Anonymous => "needs credentials and none are configured",
            _ => "refused the configured credentials",
        };
        Error::Registry(RegistryError {
            host: host.to_string(),
            status: status.or(Some(401)),
            message: format!(
                "registry {host} {what}: run `docker login {host}` (tagsmith reads $DOCKER_CONFIG/config.json or ~/.docker/config.json)"
            ),
        })
    }
}

fn oci_auth(c: &Credentials) -> RegistryAuth {
    match c {
        Credentials::Anonymous => RegistryAuth::Anonymous,
        Credentials::Basic { username, password } => {
            RegistryAuth::Basic(username.clone(), password.clone())
        }
        Credentials::IdentityToken(t) => RegistryAuth::Bearer(t.clone()),
    }
}

enum Failure {
    Absent,
    Auth,
    Transient,
    Other,
}

/// What a failure means, and its HTTP status where the library kept one.
fn classify(e: &OciDistributionError) -> (Failure, Option<u16>) {
    use OciDistributionError as E;
    match e {
        E::ImageManifestNotFoundError(_) => (Failure::Absent, Some(404)),
        E::RegistryError { envelope, .. } => {
            let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
            if codes
                .iter()
                .any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied))
            {
                (Failure::Auth, Some(401))
            } else if codes
                .iter()
                .any(|c| matches!(c, OciErrorCode::ManifestUnknown | OciErrorCode::NameUnknown))
            {
                (Failure::Absent, Some(404))
            } else {
                (Failure::Other, None)
            }
        }
        E::UnauthorizedError { .. } | E::AuthenticationFailure(_) => (Failure::Auth, Some(401)),
        E::ServerError { code: 404, .. } => (Failure::Absent, Some(404)),
        E::ServerError {
            code: code @ (401 | 403),
            ..
        } => (Failure::Auth, Some(*code)),
        E::ServerError { code, .. } if *code >= 500 || *code == 429 => {
            (Failure::Transient, Some(*code))
        }
        E::ServerError { code, .. } => (Failure::Other, Some(*code)),
        E::RequestError(r) if r.is_timeout() || r.is_connect() || r.is_request() => {
            (Failure::Transient, None)
        }
        _ => (Failure::Other, None),
    }
}

/// Error text from a library with its causes ("connection refused"), and
/// anything that looks like a URL with credentials cut.
pub fn redact(e: &(dyn std::error::Error + 'static)) -> String {
    crate::error::chain(e)
        .split_whitespace()
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
}
