//! Where the engine is, found the way the docker CLI finds it:
//! `DOCKER_HOST` (with `DOCKER_TLS_VERIFY`, `DOCKER_TLS`, `DOCKER_CERT_PATH`),
//! else the docker context named by `DOCKER_CONTEXT`, else `currentContext`
//! in the docker config, else the default socket.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// The source of an endpoint named by the `DOCKER_HOST` variable.
const DOCKER_HOST: &str = "DOCKER_HOST";

/// How to reach an engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    Unix(PathBuf),
    Tcp {
        host: String,
        port: u16,
        tls: Option<Tls>,
    },
    /// `ssh://[user@]host[:port][/socket]`: `docker system dial-stdio` run
    /// through the `ssh` program, as the docker CLI does.
    Ssh {
        user: Option<String>,
        host: String,
        port: Option<u16>,
        /// The engine's socket on the remote host, if not its default.
        socket: Option<String>,
    },
}

/// TLS settings for a `tcp://` engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    /// The only CA trusted when given (as the docker CLI does); else the
    /// system's roots.
    pub ca: Option<PathBuf>,
    /// Client certificate and key, when both exist.
    pub identity: Option<(PathBuf, PathBuf)>,
    /// Whether the server's certificate is verified.
    pub verify: bool,
    /// The directory the files were looked for in (`DOCKER_CERT_PATH`, the
    /// config directory, or a context's TLS directory), for messages.
    pub dir: Option<PathBuf>,
}

/// An engine address and where it came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub address: Address,
    /// `DOCKER_HOST`, `docker context "x"`, or the default socket.
    pub source: String,
    /// The address as written (`tcp://host:2376`).
    pub host: String,
}

impl Endpoint {
    /// Whether `DOCKER_HOST` named it (so TLS settings come from
    /// `DOCKER_TLS_VERIFY`, `DOCKER_TLS` and `DOCKER_CERT_PATH`).
    pub fn from_docker_host(&self) -> bool {
        self.source == DOCKER_HOST
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.host, self.source)
    }
}

/// The environment the endpoint is resolved from (a seam for tests).
#[derive(Debug, Clone, Default)]
pub struct Env {
    pub docker_host: Option<String>,
    pub docker_context: Option<String>,
    pub tls_verify: Option<String>,
    pub tls: Option<String>,
    pub cert_path: Option<PathBuf>,
    /// `$DOCKER_CONFIG`, else `~/.docker`.
    pub config_dir: PathBuf,
}

impl Env {
    pub fn from_process() -> Env {
        let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
        let config_dir = var("DOCKER_CONFIG").map(PathBuf::from).unwrap_or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_default()
                .join(".docker")
        });
        Env {
            docker_host: var("DOCKER_HOST"),
            docker_context: var("DOCKER_CONTEXT"),
            tls_verify: var("DOCKER_TLS_VERIFY"),
            tls: var("DOCKER_TLS"),
            cert_path: var("DOCKER_CERT_PATH").map(PathBuf::from),
            config_dir,
        }
    }
}

/// Resolves the engine endpoint in the docker CLI's order of precedence.
pub fn resolve(env: &Env) -> Result<Endpoint> {
    if let Some(host) = &env.docker_host {
        let tls = env_tls(env);
        return Ok(Endpoint {
            address: parse_host(host, tls)?,
            source: DOCKER_HOST.into(),
            host: host.clone(),
        });
    }
    let context = match &env.docker_context {
        Some(name) => Some((name.clone(), "DOCKER_CONTEXT".to_string())),
        None => current_context(&env.config_dir)?.map(|n| {
            let config = env.config_dir.join("config.json");
            (
                n,
                format!("currentContext in {}", crate::paths::Shown(&config)),
            )
        }),
    };
    match context {
        Some((name, origin)) if name != "default" => {
            context_endpoint(&env.config_dir, &name, &origin)
        }
        _ => Ok(Endpoint {
            address: Address::Unix(PathBuf::from(DEFAULT_SOCKET)),
            source: "the default socket".into(),
            host: format!("unix://{DEFAULT_SOCKET}"),
        }),
    }
}

/// TLS from the environment: `DOCKER_TLS_VERIFY` (any value) verifies,
/// `DOCKER_TLS` alone encrypts without verifying.
fn env_tls(env: &Env) -> Option<Tls> {
    let verify = env.tls_verify.is_some();
    if !verify && env.tls.is_none() {
        return None;
    }
    let dir = env
        .cert_path
        .clone()
        .unwrap_or_else(|| env.config_dir.clone());
    Some(tls_files(&dir, verify))
}

fn tls_files(dir: &Path, verify: bool) -> Tls {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    Tls {
        ca: Some(dir.join("ca.pem")).filter(|p| p.exists() || verify),
        identity: (cert.exists() && key.exists()).then_some((cert, key)),
        verify,
        dir: Some(dir.to_path_buf()),
    }
}

/// `host` with the password of a `scheme://user:password@…` address
/// masked, for messages.
fn without_password(host: &str) -> String {
    let Some((scheme, rest)) = host.split_once("://") else {
        return host.to_string();
    };
    let end = rest.find('/').unwrap_or(rest.len());
    match rest[..end].rsplit_once('@') {
        Some((userinfo, hostport)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{hostport}{}", &rest[end..])
        }
        _ => host.to_string(),
    }
}

/// Parses a `DOCKER_HOST` value (`unix://`, `tcp://`, `ssh://`).
pub fn parse_host(host: &str, tls: Option<Tls>) -> Result<Address> {
    let host = host.trim();
    let shown = without_password(host);
    let bad = |why: &str| {
        Error::user(format!(
            "engine address \"{shown}\": {why} (expected unix:///path, tcp://host:port or ssh://[user@]host[:port])"
        ))
    };
    let (scheme, rest) = host.split_once("://").unwrap_or(("tcp", host));
    match scheme {
        "unix" => {
            let path = if rest.is_empty() {
                DEFAULT_SOCKET
            } else {
                rest
            };
            Ok(Address::Unix(PathBuf::from(path)))
        }
        "tcp" | "http" | "https" => {
            let authority = rest.split('/').next().unwrap_or_default();
            if authority.contains('@') {
                return Err(bad("a user or password in a tcp address is not supported"));
            }
            let (name, port) = split_port(authority).map_err(|e| bad(&e))?;
            let name = if name.is_empty() { "localhost" } else { name };
            let tls = match (scheme, tls) {
                ("https", None) => Some(Tls {
                    ca: None,
                    identity: None,
                    verify: true,
                    dir: None,
                }),
                (_, tls) => tls,
            };
            Ok(Address::Tcp {
                host: name.to_string(),
                port: port.unwrap_or(2375),
                tls,
            })
        }
        "ssh" => {
            let (authority, path) = match rest.find('/') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, ""),
            };
            if rest.contains(['?', '#']) {
                return Err(bad("query parameters and fragments are not allowed"));
            }
            let (user, hostport) = match authority.rsplit_once('@') {
                Some((u, h)) => {
                    if u.contains(':') {
                        return Err(bad("a password in the address is not supported"));
                    }
                    (Some(u.to_string()), h)
                }
                None => (None, authority),
            };
            let (name, port) = split_port(hostport).map_err(|e| bad(&e))?;
            if name.is_empty() {
                return Err(bad("the host name is empty"));
            }
            Ok(Address::Ssh {
                user,
                host: name.to_string(),
                port,
                socket: (!path.is_empty() && path != "/").then(|| path.to_string()),
            })
        }
        other => Err(bad(&format!("the scheme \"{other}\" is not supported"))),
    }
}

fn split_port(authority: &str) -> std::result::Result<(&str, Option<u16>), String> {
    // `[::1]:2375` keeps its brackets out of the name.
    if let Some(rest) = authority.strip_prefix('[') {
        let (name, after) = rest
            .split_once(']')
            .ok_or_else(|| "unclosed [ in the host".to_string())?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(parse_port(p)?),
            None => None,
        };
        return Ok((name, port));
    }
    match authority.rsplit_once(':') {
        Some((name, port)) => Ok((name, Some(parse_port(port)?))),
        None => Ok((authority, None)),
    }
}

fn parse_port(p: &str) -> std::result::Result<u16, String> {
    p.parse()
        .map_err(|_| format!("\"{p}\" is not a port number"))
}

#[derive(Deserialize)]
struct ConfigFile {
    #[serde(rename = "currentContext", default)]
    current_context: Option<String>,
}

/// `currentContext` from `<config dir>/config.json`, if set.
fn current_context(config_dir: &Path) -> Result<Option<String>> {
    let path = config_dir.join("config.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(&path, e)),
    };
    let config: ConfigFile = serde_json::from_str(&text)
        .map_err(|e| Error::at(&path, e.line() as u64, e.column() as u64, e))?;
    Ok(config.current_context.filter(|c| !c.is_empty()))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ContextMeta {
    #[serde(default)]
    endpoints: std::collections::BTreeMap<String, ContextEndpoint>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ContextEndpoint {
    #[serde(default)]
    host: Option<String>,
    #[serde(rename = "SkipTLSVerify", default)]
    skip_tls_verify: bool,
}

/// The docker endpoint of the named context: `contexts/meta/<sha256(name)>/meta.json`,
/// with TLS material under `contexts/tls/<sha256(name)>/docker/`. `origin`
/// says where the name came from (`DOCKER_CONTEXT`, `currentContext in …`).
fn context_endpoint(config_dir: &Path, name: &str, origin: &str) -> Result<Endpoint> {
    let digest = hex(&Sha256::digest(name.as_bytes()));
    let contexts = config_dir.join("contexts");
    let meta_path = contexts.join("meta").join(&digest).join("meta.json");
    let text = std::fs::read_to_string(&meta_path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::user(format!(
                "docker context \"{name}\" not found (no {}; the name comes from {origin}); list contexts with `docker context ls`",
                crate::paths::Shown(&meta_path)
            ))
        } else {
            Error::io(&meta_path, e)
        }
    })?;
    let meta: ContextMeta = serde_json::from_str(&text)
        .map_err(|e| Error::at(&meta_path, e.line() as u64, e.column() as u64, e))?;
    let endpoint = meta.endpoints.get("docker").ok_or_else(|| {
        Error::file(
            &meta_path,
            format!("docker context \"{name}\" has no docker endpoint"),
        )
    })?;
    let host = endpoint
        .host
        .clone()
        .unwrap_or_else(|| format!("unix://{DEFAULT_SOCKET}"));
    let tls_dir = contexts.join("tls").join(&digest).join("docker");
    let tls = (tls_dir.is_dir() || endpoint.skip_tls_verify).then(|| {
        let mut tls = tls_files(&tls_dir, !endpoint.skip_tls_verify);
        tls.ca = tls.ca.filter(|p| p.exists());
        tls
    });
    Ok(Endpoint {
        address: parse_host(&host, tls)?,
        source: format!("docker context \"{name}\" from {origin}"),
        host,
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(dir: &Path) -> Env {
        Env {
            config_dir: dir.to_path_buf(),
            ..Env::default()
        }
    }

    fn write_context(dir: &Path, name: &str, host: &str, tls: bool) {
        let digest = hex(&Sha256::digest(name.as_bytes()));
        let meta = dir.join("contexts/meta").join(&digest);
        std::fs::create_dir_all(&meta).unwrap();
        std::fs::write(
            meta.join("meta.json"),
            format!(r#"{{"Name":"{name}","Metadata":{{}},"Endpoints":{{"docker":{{"Host":"{host}","SkipTLSVerify":false}}}}}}"#),
        )
        .unwrap();
        if tls {
            let t = dir.join("contexts/tls").join(&digest).join("docker");
            std::fs::create_dir_all(&t).unwrap();
            for f in ["ca.pem", "cert.pem", "key.pem"] {
                std::fs::write(t.join(f), "x").unwrap();
            }
        }
    }

    #[test]
    fn host_forms() {
        assert_eq!(
            parse_host("unix:///tmp/x.sock", None).unwrap(),
            Address::Unix("/tmp/x.sock".into())
        );
        assert_eq!(
            parse_host("tcp://10.0.0.1", None).unwrap(),
            Address::Tcp {
                host: "10.0.0.1".into(),
                port: 2375,
                tls: None
            }
        );
        assert_eq!(
            parse_host("127.0.0.1:2376", None).unwrap(),
            Address::Tcp {
                host: "127.0.0.1".into(),
                port: 2376,
                tls: None
            }
        );
        assert_eq!(
            parse_host("ssh://me@build.example:2222/run/docker.sock", None).unwrap(),
            Address::Ssh {
                user: Some("me".into()),
                host: "build.example".into(),
                port: Some(2222),
                socket: Some("/run/docker.sock".into())
            }
        );
        assert_eq!(
            parse_host("ssh://host", None).unwrap(),
            Address::Ssh {
                user: None,
                host: "host".into(),
                port: None,
                socket: None
            }
        );
        for bad in [
            "ftp://x",
            "tcp://h:port",
            "ssh://u:pw@h",
            "ssh://",
            "ssh://h?x=1",
        ] {
            assert!(parse_host(bad, None).is_err(), "{bad}");
        }
    }

    #[test]
    fn docker_host_wins_then_docker_context_then_current_context() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write_context(d, "remote", "tcp://10.1.1.1:2376", true);
        write_context(d, "other", "unix:///tmp/other.sock", false);
        std::fs::write(d.join("config.json"), r#"{"currentContext":"other"}"#).unwrap();

        let e = resolve(&env(d)).unwrap();
        assert_eq!(e.address, Address::Unix("/tmp/other.sock".into()));
        assert_eq!(
            e.source,
            format!(
                "docker context \"other\" from currentContext in {}",
                d.join("config.json").display()
            )
        );

        let mut with_context = env(d);
        with_context.docker_context = Some("remote".into());
        let e = resolve(&with_context).unwrap();
        let Address::Tcp {
            host,
            port,
            tls: Some(tls),
        } = e.address
        else {
            panic!("{e:?}")
        };
        assert_eq!((host.as_str(), port), ("10.1.1.1", 2376));
        assert!(tls.verify && tls.ca.is_some() && tls.identity.is_some());

        let mut with_host = with_context.clone();
        with_host.docker_host = Some("unix:///tmp/h.sock".into());
        assert_eq!(
            resolve(&with_host).unwrap().address,
            Address::Unix("/tmp/h.sock".into())
        );

        let mut missing = env(d);
        missing.docker_context = Some("nope".into());
        let err = resolve(&missing).unwrap_err().to_string();
        assert!(err.contains("docker context \"nope\" not found"), "{err}");

        let mut default = env(d);
        default.docker_context = Some("default".into());
        assert_eq!(
            resolve(&default).unwrap().address,
            Address::Unix(DEFAULT_SOCKET.into())
        );
    }

    #[test]
    fn tls_from_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for f in ["ca.pem", "cert.pem", "key.pem"] {
            std::fs::write(d.join(f), "x").unwrap();
        }
        let mut e = env(Path::new("/nonexistent"));
        e.docker_host = Some("tcp://127.0.0.1:2376".into());
        e.tls_verify = Some("1".into());
        e.cert_path = Some(d.to_path_buf());
        let Address::Tcp { tls: Some(tls), .. } = resolve(&e).unwrap().address else {
            panic!()
        };
        assert_eq!(tls.ca, Some(d.join("ca.pem")));
        assert_eq!(tls.identity, Some((d.join("cert.pem"), d.join("key.pem"))));
        assert!(tls.verify);
        e.tls_verify = None;
        let Address::Tcp { tls, .. } = resolve(&e).unwrap().address else {
            panic!()
        };
        assert_eq!(tls, None);
        e.tls = Some("1".into());
        let Address::Tcp { tls: Some(tls), .. } = resolve(&e).unwrap().address else {
            panic!()
        };
        assert!(!tls.verify);
    }
}
