//! `tagsmith.lock`: the digests of the external base images the Dockerfiles
//! name, so that a base the publisher re-points does not silently change
//! what a tag means. Written by `tagsmith lock`, read by every command;
//! its text depends on nothing but its content (no dates, sorted keys).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::error::{Error, Result};
use crate::registry::reference::{ImageRef, is_digest};

pub const FILE_NAME: &str = "tagsmith.lock";

/// One locked image: its digest (an index's, for a multi-platform image)
/// and, for an index, the digest of each platform the services build for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Locked {
    pub digest: String,
    pub platforms: BTreeMap<String, String>,
}

impl Locked {
    /// The digest that is an input of a service's tag: its platform's
    /// when the lock has one, else the image's own.
    pub fn for_platform(&self, platform: Option<&str>) -> &str {
        platform
            .and_then(|p| self.platforms.get(p))
            .unwrap_or(&self.digest)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Lock {
    /// The file, as shown in messages.
    pub path: PathBuf,
    /// By normalised reference (`docker.io/library/python:3.12`).
    pub images: BTreeMap<String, Locked>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLock {
    version: Spanned<u64>,
    #[serde(default, deserialize_with = "super::config::ordered_map")]
    images: Vec<(Spanned<String>, RawLocked)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLocked {
    digest: Spanned<String>,
    #[serde(default)]
    platforms: BTreeMap<String, Spanned<String>>,
}

impl Lock {
    /// The lock beside the config (in `tree`), if there is one.
    pub fn load(root: &Path, tree: &crate::tree::Tree) -> Result<Option<Lock>> {
        let path = root.join(FILE_NAME);
        let text = match tree.read(&path) {
            Ok(bytes) => {
                String::from_utf8(bytes).map_err(|_| Error::file(&path, "not valid UTF-8"))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&path, e)),
        };
        Lock::parse(&path, &text).map(Some)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Lock> {
        let raw: RawLock =
            serde_saphyr::from_str(text).map_err(|e| super::config::yaml_error(path, &e))?;
        let at =
            |l: &serde_saphyr::Location, msg: String| Error::at(path, l.line(), l.column(), msg);
        if raw.version.value != 1 {
            return Err(at(
                &raw.version.referenced,
                format!(
                    "lock file version {} is not known (this tagsmith writes version 1); regenerate it with `tagsmith lock`",
                    raw.version.value
                ),
            ));
        }
        let mut images = BTreeMap::new();
        for (reference, locked) in raw.images {
            let parsed = ImageRef::parse(&reference.value).map_err(|e| {
                at(
                    &reference.referenced,
                    format!("not an image reference: {e}"),
                )
            })?;
            if parsed.to_string() != reference.value
                || parsed.digest.is_some()
                || parsed.tag.is_none()
            {
                return Err(at(
                    &reference.referenced,
                    format!(
                        "\"{}\" is not a normalised reference with a tag (expected \"{}\")",
                        reference.value,
                        ImageRef {
                            digest: None,
                            tag: Some(parsed.tag_or_latest().to_string()),
                            ..parsed.clone()
                        }
                    ),
                ));
            }
            let check = |d: &Spanned<String>| {
                if is_digest(&d.value) {
                    Ok(d.value.clone())
                } else {
                    Err(at(
                        &d.referenced,
                        format!(
                            "\"{}\" is not a digest (sha256: and 64 lowercase hex digits)",
                            d.value
                        ),
                    ))
                }
            };
            let digest = check(&locked.digest)?;
            let platforms = locked
                .platforms
                .iter()
                .map(|(p, d)| Ok((p.clone(), check(d)?)))
                .collect::<Result<_>>()?;
            images.insert(reference.value, Locked { digest, platforms });
        }
        Ok(Lock {
            path: path.to_path_buf(),
            images,
        })
    }

    /// The file's text: the same content always gives the same bytes.
    pub fn render(&self) -> String {
        let mut s = String::from(
            "# Generated by `tagsmith lock`: the digests of the external base images\n\
             # the Dockerfiles name. Commit it; `tagsmith lock --update` moves it on.\n\
             version: 1\n",
        );
        if self.images.is_empty() {
            s.push_str("images: {}\n");
            return s;
        }
        s.push_str("images:\n");
        for (reference, locked) in &self.images {
            s.push_str(&format!(
                "  \"{reference}\":\n    digest: {}\n",
                locked.digest
            ));
            if !locked.platforms.is_empty() {
                s.push_str("    platforms:\n");
                for (p, d) in &locked.platforms {
                    s.push_str(&format!("      {p}: {d}\n"));
                }
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    #[test]
    fn renders_and_parses_back() {
        let mut lock = Lock {
            path: PathBuf::from("/r/tagsmith.lock"),
            images: BTreeMap::new(),
        };
        lock.images.insert(
            "docker.io/library/python:3.12".into(),
            Locked {
                digest: d('a'),
                platforms: BTreeMap::from([
                    ("linux/arm64".into(), d('c')),
                    ("linux/amd64".into(), d('b')),
                ]),
            },
        );
        lock.images.insert(
            "127.0.0.1:5000/lib/base:1".into(),
            Locked {
                digest: d('e'),
                platforms: BTreeMap::new(),
            },
        );
        let text = lock.render();
        assert_eq!(
            text,
            format!(
                "# Generated by `tagsmith lock`: the digests of the external base images\n# the Dockerfiles name. Commit it; `tagsmith lock --update` moves it on.\nversion: 1\nimages:\n  \"127.0.0.1:5000/lib/base:1\":\n    digest: {}\n  \"docker.io/library/python:3.12\":\n    digest: {}\n    platforms:\n      linux/amd64: {}\n      linux/arm64: {}\n",
                d('e'),
                d('a'),
                d('b'),
                d('c')
            )
        );
        assert_eq!(Lock::parse(&lock.path, &text).unwrap(), lock);
        assert_eq!(
            lock.images["docker.io/library/python:3.12"].for_platform(Some("linux/arm64")),
            d('c')
        );
        assert_eq!(
            lock.images["docker.io/library/python:3.12"].for_platform(None),
            d('a')
        );
    }

    #[test]
    fn bad_files_are_located_errors() {
        let p = Path::new("/r/tagsmith.lock");
        let err = |text: &str| Lock::parse(p, text).unwrap_err().to_string();
        assert!(
            err("version: 1\nimages:\n  \"docker.io/library/a:1\":\n    digest: sha256:12\n")
                .starts_with("/r/tagsmith.lock:4:13: \"sha256:12\" is not a digest")
        );
        assert!(err("version: 2\n").starts_with("/r/tagsmith.lock:1:10: lock file version 2"));
        assert!(
            err("version: 1\nimages:\n  \"python:3\":\n    digest: x\n")
                .contains("expected \"docker.io/library/python:3\"")
        );
        assert!(err("version: 1\nimages: [\n").starts_with("/r/tagsmith.lock:"));
        assert!(err("version: 1\nextra: 1\n").contains("unknown key \"extra\""));
    }
}
