//! Registry credentials from the docker CLI's config (`auths`, `credHelpers`,
//! `credsStore`). Secrets stay inside [`Credentials`]: `Debug` redacts them
//! and nothing here formats them.

use std::collections::BTreeMap;
use std::fmt;

use crate::error::{Error, Result};

/// Credentials for one registry host.
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
    /// Looks `host` up in `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`.
    /// No config, or no entry for the host, means anonymous.
    pub fn for_host(host: &str) -> Result<Credentials> {
        use docker_credential::{CredentialRetrievalError as E, DockerCredential};
        // The docker CLI keys Docker Hub by its old index address.
        let key = match host {
            "docker.io" | "index.docker.io" | "registry-1.docker.io" => {
                "https://index.docker.io/v1/"
            }
            h => h,
        };
        match docker_credential::get_credential(key) {
            Ok(DockerCredential::UsernamePassword(username, password)) => {
                Ok(Credentials::Basic { username, password })
            }
            Ok(DockerCredential::IdentityToken(token)) => Ok(Credentials::IdentityToken(token)),
            Err(E::ConfigNotFound | E::ConfigReadError | E::NoCredentialConfigured) => {
                Ok(Credentials::Anonymous)
            }
            // The helper's own output may hold secrets: name the helper only.
            Err(E::HelperFailure { .. } | E::HelperCommunicationError) => {
                Err(helper_error(key, host, "failed"))
            }
            Err(E::MalformedHelperResponse) => Err(helper_error(
                key,
                host,
                "answered with something other than {\"Username\", \"Secret\"}",
            )),
            Err(other) => Err(Error::user(format!(
                "reading docker credentials for {host}: {other}"
            ))),
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

/// The credentials of every registry host a run talks to, read once.
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    by_host: BTreeMap<String, Credentials>,
}

impl Keyring {
    pub fn for_hosts<'a>(hosts: impl IntoIterator<Item = &'a str>) -> Result<Keyring> {
        let mut by_host = BTreeMap::new();
        for host in hosts {
            if !by_host.contains_key(host) {
                by_host.insert(host.to_string(), Credentials::for_host(host)?);
            }
        }
        Ok(Keyring { by_host })
    }

    /// A host's credentials; anonymous for a host that was not looked up.
    pub fn get(&self, host: &str) -> &Credentials {
        static ANONYMOUS: Credentials = Credentials::Anonymous;
        self.by_host.get(host).unwrap_or(&ANONYMOUS)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Credentials)> {
        self.by_host.iter().map(|(h, c)| (h.as_str(), c))
    }

    /// Every host's credentials in the engine's form (the `X-Registry-Config`
    /// of a build, which pulls base images and cache).
    pub fn docker(&self) -> std::collections::HashMap<String, bollard::auth::DockerCredentials> {
        self.iter()
            .map(|(h, c)| (h.to_string(), c.docker(h)))
            .collect()
    }
}

/// "the docker credential helper "docker-credential-NAME" failed for HOST": the
/// helper is named from the config (the crate does not say which one it ran,
/// and a helper that exits before reading its input is a communication error).
fn helper_error(key: &str, host: &str, what: &str) -> Error {
    let helper = match configured_helper(key) {
        Some(name) => format!("the docker credential helper \"docker-credential-{name}\""),
        None => "the docker credential helper".to_string(),
    };
    Error::user(format!(
        "{helper} {what} for {host}; check `docker login {host}`"
    ))
}

/// The helper the docker CLI's config names for `key`: `credHelpers`, else `credsStore`.
fn configured_helper(key: &str) -> Option<String> {
    let dir = std::env::var_os("DOCKER_CONFIG")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".docker")))?;
    let text = std::fs::read(dir.join("config.json")).ok()?;
    let config: serde_json::Value = serde_json::from_slice(&text).ok()?;
    config
        .get("credHelpers")
        .and_then(|h| h.get(key))
        .or_else(|| config.get("credsStore"))
        .and_then(|v| v.as_str())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_print() {
        let c = Credentials::Basic {
            username: "u".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
        assert!(!format!("{:?}", Credentials::IdentityToken("tok-123".into())).contains("tok-123"));
        let k = Keyring {
            by_host: BTreeMap::from([("h".to_string(), c)]),
        };
        assert!(!format!("{k:?}").contains("hunter2"));
    }
}
