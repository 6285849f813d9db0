//! The registry side: whether a tag exists and its digest (a manifest HEAD,
//! never a pull), manifests and indexes, tag lists, deletions and image
//! creation dates, through [`client`] with the docker CLI's credentials.
//! Failures keep their HTTP status ([`RegistryError`]).

pub mod client;
pub mod credentials;
pub mod reference;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

pub use client::{DEFAULT_DEADLINE, is_insecure};
pub use credentials::{Credentials, Keyring};
pub use reference::{ImageRef, Repository};

use crate::error::{Error, RegistryError, Result};
use client::{Call, Client};

/// Every manifest type a registry may hold for a tag.
const MANIFEST_TYPES: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

pub struct Registry {
    client: Client,
    keyring: Keyring,
}

/// A manifest or index as the registry holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub digest: String,
    pub media_type: String,
    /// For an index: each platform's manifest.
    pub platforms: Vec<Platform>,
    /// For an image manifest: its config blob's digest.
    pub config: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// `linux/amd64`, `linux/arm64/v8`.
    pub platform: String,
    pub digest: String,
}

impl Manifest {
    pub fn is_index(&self) -> bool {
        self.media_type.contains("index") || self.media_type.contains("manifest.list")
    }
}

impl Registry {
    /// A client for `keyring`'s hosts (and any other, read when needed);
    /// `insecure` as in the config; each call retried until `deadline`.
    pub fn new(keyring: Keyring, insecure: &[String], deadline: Duration) -> Registry {
        let client = Client::new(insecure, deadline);
        for (host, c) in keyring.iter() {
            client.set_credentials(host, c.clone());
        }
        Registry { client, keyring }
    }

    /// A client for the registries of `hosts`, with their credentials read
    /// from the docker config now (a failing helper is an error here).
    pub fn for_hosts<'a>(
        hosts: impl IntoIterator<Item = &'a str>,
        insecure: &[String],
        deadline: Duration,
    ) -> Result<Registry> {
        Ok(Registry::new(
            Keyring::for_hosts(hosts)?,
            insecure,
            deadline,
        ))
    }

    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// The manifest digest of `image`, or `None` if the tag does not exist.
    pub async fn digest(&self, image: &ImageRef) -> Result<Option<String>> {
        let call = call(Method::HEAD, image, "pull", format!("checking {image}"));
        let answer = self.send(&call).await?;
        match answer.status {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => match header(&answer, "docker-content-digest") {
                Some(d) => Ok(Some(d)),
                // Without the header, the digest of the manifest itself.
                None => Ok(self.manifest(image).await?.map(|m| m.digest)),
            },
            _ => Err(self.failure(&call, &answer)),
        }
    }

    /// The manifest (or index) `image` names, or `None` if there is none.
    pub async fn manifest(&self, image: &ImageRef) -> Result<Option<Manifest>> {
        let call = call(Method::GET, image, "pull", format!("reading {image}"));
        let answer = self.send(&call).await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !answer.status.is_success() {
            return Err(self.failure(&call, &answer));
        }
        let digest = format!("sha256:{}", hex(&Sha256::digest(&answer.body)));
        if let Some(d) = &image.digest
            && *d != digest
        {
            return Err(Error::user(format!(
                "registry {}: {image} arrived with digest {digest}",
                image.repository.host()
            )));
        }
        #[derive(Deserialize)]
        struct Doc {
            #[serde(rename = "mediaType")]
            media_type: Option<String>,
            #[serde(default)]
            manifests: Vec<Entry>,
            config: Option<Descriptor>,
        }
        #[derive(Deserialize)]
        struct Entry {
            digest: String,
            platform: Option<PlatformDoc>,
        }
        #[derive(Deserialize)]
        struct Descriptor {
            digest: String,
        }
        #[derive(Deserialize)]
        struct PlatformDoc {
            os: String,
            architecture: String,
            variant: Option<String>,
        }
        let doc: Doc = serde_json::from_slice(&answer.body).map_err(|e| {
            Error::user(format!(
                "registry {}: {image} is not a manifest: {e}",
                image.repository.host()
            ))
        })?;
        let media_type = header(&answer, "content-type")
            .filter(|t| t.contains("manifest") || t.contains("index"))
            .or(doc.media_type)
            .unwrap_or_default();
        Ok(Some(Manifest {
            digest,
            media_type,
            platforms: doc
                .manifests
                .into_iter()
                .filter_map(|m| {
                    let p = m.platform?;
                    let mut platform = format!("{}/{}", p.os, p.architecture);
                    if let Some(v) = p.variant {
                        platform = format!("{platform}/{v}");
                    }
                    Some(Platform {
                        platform,
                        digest: m.digest,
                    })
                })
                .collect(),
            config: doc.config.map(|c| c.digest),
        }))
    }

    /// Every tag of `repository`, following the registry's pages.
    pub async fn tags(&self, repository: &Repository) -> Result<Vec<String>> {
        let mut tags = Vec::new();
        let mut path = format!("/v2/{}/tags/list?n=1000", repository.path());
        loop {
            let call = Call {
                method: Method::GET,
                host: repository.host(),
                path: path.clone(),
                scope: format!("repository:{}:pull", repository.path()),
                accept: None,
                what: format!("listing the tags of {repository}"),
            };
            let answer = self.send(&call).await?;
            if answer.status == StatusCode::NOT_FOUND {
                return Ok(tags);
            }
            if !answer.status.is_success() {
                return Err(self.failure(&call, &answer));
            }
            #[derive(Deserialize)]
            struct Page {
                tags: Option<Vec<String>>,
            }
            let page: Page = serde_json::from_slice(&answer.body).map_err(|e| {
                Error::user(format!(
                    "registry {}: a tag list that is not JSON: {e}",
                    repository.host()
                ))
            })?;
            tags.extend(page.tags.unwrap_or_default());
            // `Link: </v2/…?last=x&n=1000>; rel="next"`, possibly relative.
            match header(&answer, "link").and_then(|l| {
                l.split_once('<')
                    .and_then(|(_, r)| r.split_once('>'))
                    .map(|(u, _)| u.to_string())
            }) {
                Some(next) => {
                    path = match next.find("/v2/") {
                        Some(i) => next[i..].to_string(),
                        None => return Ok(tags),
                    }
                }
                None => return Ok(tags),
            }
        }
    }

    /// Deletes the manifest `digest` from `repository` (and so every tag on it).
    pub async fn delete(&self, repository: &Repository, digest: &str) -> Result<()> {
        let call = Call {
            method: Method::DELETE,
            host: repository.host(),
            path: format!("/v2/{}/manifests/{digest}", repository.path()),
            scope: format!("repository:{}:pull,push,delete", repository.path()),
            accept: None,
            what: format!("deleting {repository}@{digest}"),
        };
        let answer = self.send(&call).await?;
        match answer.status {
            s if s.is_success() => Ok(()),
            StatusCode::NOT_FOUND => Ok(()),
            s if s == StatusCode::METHOD_NOT_ALLOWED
                || (s == StatusCode::BAD_REQUEST
                    && answer.body.windows(11).any(|w| w == b"UNSUPPORTED")) =>
            {
                Err(Error::Registry(RegistryError {
                    host: repository.host().to_string(),
                    status: Some(answer.status.as_u16()),
                    message: format!(
                        "registry {} does not allow deleting images (HTTP {}); enable deletion (distribution: storage.delete.enabled: true)",
                        repository.host(),
                        answer.status.as_u16()
                    ),
                    tls: false,
                }))
            }
            _ => Err(self.failure(&call, &answer)),
        }
    }

    /// When the image `manifest` describes was created (its config's
    /// `created`, RFC 3339), if it says.
    pub async fn created(
        &self,
        repository: &Repository,
        manifest: &Manifest,
    ) -> Result<Option<String>> {
        let Some(config) = &manifest.config else {
            return Ok(None);
        };
        let call = Call {
            method: Method::GET,
            host: repository.host(),
            path: format!("/v2/{}/blobs/{config}", repository.path()),
            scope: format!("repository:{}:pull", repository.path()),
            accept: None,
            what: format!("reading the config of {repository}@{}", manifest.digest),
        };
        let answer = self.send(&call).await?;
        if !answer.status.is_success() {
            return Err(self.failure(&call, &answer));
        }
        #[derive(Deserialize)]
        struct Config {
            created: Option<String>,
        }
        Ok(serde_json::from_slice::<Config>(&answer.body)
            .ok()
            .and_then(|c| c.created))
    }

    async fn send(&self, call: &Call<'_>) -> Result<client::Answer> {
        let answer = self.client.send(call).await.map_err(|e| {
            if e.is_auth() {
                self.auth_error(call.host, e.status)
            } else {
                Error::Registry(e)
            }
        })?;
        if matches!(
            answer.status,
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
        ) {
            return Err(self.auth_error(call.host, Some(answer.status.as_u16())));
        }
        Ok(answer)
    }

    fn failure(&self, call: &Call<'_>, answer: &client::Answer) -> Error {
        Error::Registry(RegistryError {
            host: call.host.to_string(),
            status: Some(answer.status.as_u16()),
            message: format!(
                "registry {}: {} failed: {}",
                call.host, call.what, answer.status
            ),
            tls: false,
        })
    }

    /// The error for a registry that refused the credentials (or wants some).
    pub fn auth_error(&self, host: &str, status: Option<u16>) -> Error {
        let what = match self.client.credentials(host) {
            Ok(Credentials::Anonymous) => "needs credentials and none are configured",
            _ => "refused the configured credentials",
        };
        Error::Registry(RegistryError {
            host: host.to_string(),
            status: status.or(Some(401)),
            message: format!(
                "registry {host} {what}: run `docker login {host}` (tagsmith reads $DOCKER_CONFIG/config.json or ~/.docker/config.json)"
            ),
            tls: false,
        })
    }
}

fn call<'a>(method: Method, image: &'a ImageRef, action: &str, what: String) -> Call<'a> {
    let reference = image
        .digest
        .clone()
        .unwrap_or_else(|| image.tag_or_latest().to_string());
    Call {
        method,
        host: image.repository.host(),
        path: format!("/v2/{}/manifests/{reference}", image.repository.path()),
        scope: format!("repository:{}:{action}", image.repository.path()),
        accept: Some(MANIFEST_TYPES),
        what,
    }
}

fn header(answer: &client::Answer, name: &str) -> Option<String> {
    answer
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_string())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
