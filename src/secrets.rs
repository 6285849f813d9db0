//! Build secrets: where each comes from (an environment variable or a file,
//! from tagsmith.yaml or `--secret`), and their values, which exist only in
//! memory. A secret is never an input of a tag; its value never reaches
//! output: `Debug` hides it and [`Secrets::scrub`] masks it in build logs
//! and errors.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use crate::error::{Error, Result};

/// BuildKit receives a secret in one gRPC message of at most 4 MiB.
pub const MAX_SIZE: usize = 4_000_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Env(String),
    File(PathBuf),
}

/// A secret's id and where its value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub id: String,
    pub source: Source,
}

impl Spec {
    /// Parses buildx's syntax: `id=ID,env=VAR` or `id=ID,src=PATH` (also
    /// `source=`, and an optional `type=env|file`).
    pub fn parse(text: &str) -> Result<Spec> {
        let bad = |why: String| {
            Error::user(format!(
                "--secret {text}: {why} (expected id=ID,env=VAR or id=ID,src=PATH)"
            ))
        };
        let (mut id, mut env, mut src, mut kind) = (None, None, None, None);
        for part in text.split(',') {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| bad(format!("\"{part}\" is not key=value")))?;
            match key.trim() {
                "id" => id = Some(value.to_string()),
                "env" => env = Some(value.to_string()),
                "src" | "source" => src = Some(value.to_string()),
                "type" => kind = Some(value.to_string()),
                other => return Err(bad(format!("unknown key \"{other}\""))),
            }
        }
        let id = id
            .filter(|i| !i.is_empty())
            .ok_or_else(|| bad("no id".into()))?;
        let source = match (kind.as_deref(), env, src) {
            (None | Some("env"), Some(var), None) => Source::Env(var),
            (None | Some("file"), None, Some(path)) => Source::File(PathBuf::from(path)),
            (Some("env"), None, Some(var)) => Source::Env(var),
            (Some(k), _, _) if k != "env" && k != "file" => {
                return Err(bad(format!("type \"{k}\" is neither env nor file")));
            }
            (_, Some(_), Some(_)) => return Err(bad("give env= or src=, not both".into())),
            _ => return Err(bad("no env= or src=".into())),
        };
        Ok(Spec { id, source })
    }
}

/// Secret values by id.
#[derive(Clone, Default)]
pub struct Secrets(BTreeMap<String, Vec<u8>>);

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

impl Secrets {
    /// Reads every secret; a missing variable or file is an error naming the
    /// secret and where it was looked for, before anything is built.
    pub fn resolve(specs: &[Spec]) -> Result<Secrets> {
        let mut values = BTreeMap::new();
        for spec in specs {
            let value = match &spec.source {
                Source::Env(var) => std::env::var_os(var)
                    .ok_or_else(|| {
                        Error::user(format!(
                            "secret \"{}\": the environment variable {var} is not set",
                            spec.id
                        ))
                    })?
                    .into_encoded_bytes(),
                Source::File(path) => std::fs::read(path).map_err(|e| Error::io(path, e))?,
            };
            if value.len() > MAX_SIZE {
                return Err(Error::user(format!(
                    "secret \"{}\" is {} bytes; BuildKit takes at most {MAX_SIZE}",
                    spec.id,
                    value.len()
                )));
            }
            values.insert(spec.id.clone(), value);
        }
        Ok(Secrets(values))
    }

    pub fn get(&self, id: &str) -> Option<&[u8]> {
        self.0.get(id).map(Vec::as_slice)
    }

    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// `text` with every secret value (of 4 bytes or more, and each of its
    /// lines) replaced by `****`.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for value in self.0.values() {
            let value = String::from_utf8_lossy(value);
            for needle in std::iter::once(value.trim()).chain(value.lines().map(str::trim)) {
                if needle.len() >= 4 && out.contains(needle) {
                    out = out.replace(needle, "****");
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buildx_syntax() {
        assert_eq!(
            Spec::parse("id=npm,env=NPM_TOKEN").unwrap(),
            Spec {
                id: "npm".into(),
                source: Source::Env("NPM_TOKEN".into())
            }
        );
        assert_eq!(
            Spec::parse("type=file,id=pip,src=/run/pip.conf").unwrap(),
            Spec {
                id: "pip".into(),
                source: Source::File("/run/pip.conf".into())
            }
        );
        assert_eq!(
            Spec::parse("id=a,source=f").unwrap().source,
            Source::File("f".into())
        );
        for bad in [
            "env=X",
            "id=a",
            "id=a,env=X,src=f",
            "id=a,color=red",
            "id=a,type=ssh,src=f",
            "nonsense",
        ] {
            let err = Spec::parse(bad).unwrap_err().to_string();
            assert!(err.starts_with(&format!("--secret {bad}:")), "{err}");
        }
    }

    #[test]
    fn values_are_read_hidden_and_scrubbed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s");
        std::fs::write(&file, "file-secret-value\n").unwrap();
        let secrets = Secrets::resolve(&[Spec {
            id: "f".into(),
            source: Source::File(file),
        }])
        .unwrap();
        assert_eq!(secrets.get("f"), Some(&b"file-secret-value\n"[..]));
        assert!(!format!("{secrets:?}").contains("file-secret-value"));
        assert_eq!(secrets.scrub("got file-secret-value here"), "got **** here");
        let err = Secrets::resolve(&[Spec {
            id: "e".into(),
            source: Source::Env("TAGSMITH_TEST_UNSET_VARIABLE".into()),
        }])
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("TAGSMITH_TEST_UNSET_VARIABLE is not set")
        );
    }
}
