//! The canonical encoding of a service's inputs and its BLAKE3 digest.
//! `docs/hashing.md` is the specification; keep the two in step and bump
//! [`SCHEME`] on any change to the encoding.

use std::collections::BTreeMap;

use crate::context::{Entry, Kind};

/// Versions the encoding: a new scheme re-tags everything, on purpose.
pub const SCHEME: &str = "tagsmith/v1";

/// A dependency as it enters the hash.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dep {
    pub name: String,
    /// `<registry>/<repository>`, without the tag.
    pub repository: String,
    pub tag: String,
}

/// Everything a tag is a function of.
pub struct Inputs<'a> {
    /// The Dockerfile's path relative to the context (`/`-separated).
    pub dockerfile_path: &'a str,
    pub dockerfile: &'a [u8],
    pub target: Option<&'a str>,
    pub platform: Option<&'a str>,
    pub args: &'a BTreeMap<String, String>,
    /// Sorted by name.
    pub deps: &'a [Dep],
    /// Sorted by path.
    pub entries: &'a [Entry],
    /// Locked external base images `(reference, digest)`, sorted by
    /// reference; empty without a lock file (and then not encoded at all).
    pub bases: &'a [(&'a str, &'a str)],
}

/// Streams the encoding into a hasher; no buffer of the whole message.
struct Encoder(blake3::Hasher);

impl Encoder {
    fn count(&mut self, n: usize) {
        self.0.update(&(n as u64).to_le_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.count(b.len());
        self.0.update(b);
    }
    fn opt(&mut self, s: Option<&str>) {
        match s {
            None => {
                self.0.update(&[0]);
            }
            Some(s) => {
                self.0.update(&[1]);
                self.bytes(s.as_bytes());
            }
        }
    }
}

pub fn kind_code(kind: Kind) -> u8 {
    match kind {
        Kind::File => 1,
        Kind::Dir => 2,
        Kind::Symlink => 3,
    }
}

pub fn digest(inputs: &Inputs) -> blake3::Hash {
    debug_assert!(inputs.entries.windows(2).all(|w| w[0].path < w[1].path));
    debug_assert!(inputs.deps.windows(2).all(|w| w[0].name < w[1].name));
    let mut e = Encoder(blake3::Hasher::new());
    e.bytes(SCHEME.as_bytes());
    e.bytes(inputs.dockerfile_path.as_bytes());
    e.bytes(inputs.dockerfile);
    e.opt(inputs.target);
    e.opt(inputs.platform);
    e.count(inputs.args.len());
    for (name, value) in inputs.args {
        e.bytes(name.as_bytes());
        e.bytes(value.as_bytes());
    }
    e.count(inputs.deps.len());
    for dep in inputs.deps {
        e.bytes(dep.name.as_bytes());
        e.bytes(dep.repository.as_bytes());
        e.bytes(dep.tag.as_bytes());
    }
    e.count(inputs.entries.len());
    for entry in inputs.entries {
        e.bytes(entry.path.as_bytes());
        e.0.update(&[kind_code(entry.kind), entry.executable as u8]);
        if let Some(d) = &entry.digest {
            e.0.update(d);
        }
    }
    // Only locked bases are encoded, so a project without a lock file (or a
    // service without external bases) keeps the tags it always had.
    if !inputs.bases.is_empty() {
        e.count(inputs.bases.len());
        for (reference, digest) in inputs.bases {
            e.bytes(reference.as_bytes());
            e.bytes(digest.as_bytes());
        }
    }
    e.0.finalize()
}

/// The tag: the first `len` lowercase hex characters of the digest.
pub fn tag(digest: &blake3::Hash, len: usize) -> String {
    digest.to_hex()[..len].to_string()
}

#[cfg(test)]
mod tests;
