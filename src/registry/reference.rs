//! Image references: a repository in a registry (`host[:port]/path`), with a
//! tag and/or a digest; the repository-name grammar; and the build-arg names
//! through which a Dockerfile names an in-repo base image.

use std::fmt;

/// A repository in a registry, e.g. `registry.example.com/team/api`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Repository {
    host: String,
    path: String,
}

/// A repository with a tag, a digest or both.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ImageRef {
    pub repository: Repository,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

/// Docker Hub as references name it, and where its API answers.
pub const DOCKER_HUB: &str = "docker.io";

impl Repository {
    /// `prefix` is a registry prefix as the config gives it (`host[/path]`,
    /// validated by [`registry_prefix_problem`]); `name` the path below it.
    pub fn under(prefix: &str, name: &str) -> Repository {
        let (host, base) = prefix.split_once('/').unwrap_or((prefix, ""));
        let path = if base.is_empty() {
            name.to_string()
        } else {
            format!("{base}/{name}")
        };
        Repository {
            host: host.to_string(),
            path,
        }
    }

    /// The registry host (with port), as the docker CLI's config keys it.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The repository path inside the registry (`team/api`).
    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn with_tag(&self, tag: &str) -> ImageRef {
        ImageRef {
            repository: self.clone(),
            tag: Some(tag.to_string()),
            digest: None,
        }
    }
}

impl fmt::Display for Repository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.host, self.path)
    }
}

impl ImageRef {
    /// Parses a reference the way the docker CLI normalises it: a first
    /// component without `.` or `:` that is not `localhost` is a Docker Hub
    /// path (`python:3.12` is `docker.io/library/python:3.12`).
    pub fn parse(text: &str) -> Result<ImageRef, String> {
        let (rest, digest) = match text.split_once('@') {
            Some((r, d)) => {
                if !is_digest(d) {
                    return Err(format!(
                        "\"{text}\": digest \"{d}\" is not of the form sha256:<64 hex>"
                    ));
                }
                (r, Some(d.to_string()))
            }
            None => (text, None),
        };
        // A tag follows the last `:` that comes after the last `/`.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (
                &rest[..last_slash + i],
                Some(rest[last_slash + i + 1..].to_string()),
            ),
            None => (rest, None),
        };
        if let Some(t) = &tag
            && !is_tag(t)
        {
            return Err(format!(
                "\"{text}\": tag \"{t}\" is not valid ([A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})"
            ));
        }
        let (host, path) = match name.split_once('/') {
            Some((first, rest))
                if first.contains(['.', ':'])
                    || first == "localhost"
                    || first.contains(char::is_uppercase) =>
            {
                (first.to_string(), rest.to_string())
            }
            _ => (DOCKER_HUB.to_string(), name.to_string()),
        };
        let path = if host == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        if path.is_empty() || !path.split('/').all(is_component) {
            return Err(format!(
                "\"{text}\" is not a valid image reference (lowercase path components separated by /)"
            ));
        }
        Ok(ImageRef {
            repository: Repository { host, path },
            tag,
            digest,
        })
    }

    /// With neither tag nor digest, Docker means `:latest`.
    pub fn tag_or_latest(&self) -> &str {
        self.tag.as_deref().unwrap_or("latest")
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// `sha256:` and 64 lowercase hex digits.
pub fn is_digest(s: &str) -> bool {
    s.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

fn is_tag(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(c))
}

/// One path component of an image repository name (distribution's grammar):
/// lowercase letters and digits, separated by `.`, `_`, `__` or dashes.
pub fn is_component(s: &str) -> bool {
    let bytes = s.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &s[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-')) {
            return false;
        }
    }
    true
}

/// A valid component close to `s`, for "e.g." hints.
pub fn suggest_component(s: &str) -> String {
    let mut out = String::new();
    for c in s.trim().chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

/// Why a registry prefix from the config is unusable, if it is.
pub fn registry_prefix_problem(registry: &str) -> Option<String> {
    if registry.is_empty() {
        return Some("registry must not be empty (e.g. registry.example.com/team)".into());
    }
    if registry.contains("://") {
        return Some(format!(
            "registry \"{registry}\" must be a host and path without a scheme (e.g. registry.example.com/team)"
        ));
    }
    let mut parts = registry.split('/');
    let host = parts.next().unwrap_or_default();
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c));
    if !host_ok || !parts.all(is_component) {
        return Some(format!(
            "registry \"{registry}\" is not a valid image reference prefix (host[:port]/path, lowercase path)"
        ));
    }
    None
}

/// `jvm-base` → `JVM_BASE`: the stem of the build args that carry an
/// in-repo base image, and of `TAGSMITH_TAG_<NAME>`.
pub fn env_name(service: &str) -> String {
    service
        .chars()
        .map(|c| match c {
            '-' | '.' => '_',
            c => c.to_ascii_uppercase(),
        })
        .collect()
}

/// The build arg that carries `service`'s full image reference.
pub fn image_arg(service: &str) -> String {
    format!("{}_IMAGE", env_name(service))
}

/// The build arg that carries `service`'s tag.
pub fn tag_arg(service: &str) -> String {
    format!("{}_TAG", env_name(service))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_components() {
        for ok in ["a", "api", "jvm-base", "a.b", "a_b", "a__b", "a--b", "v2"] {
            assert!(is_component(ok), "{ok}");
        }
        for bad in [
            "", "Api", "a b", "-a", "a-", "a..b", "a___b", "a/b", "_a", "a.-b",
        ] {
            assert!(!is_component(bad), "{bad}");
        }
    }

    #[test]
    fn build_arg_names() {
        assert_eq!(env_name("jvm-base"), "JVM_BASE");
        assert_eq!(env_name("a.b_c"), "A_B_C");
        assert_eq!(image_arg("jvm-base"), "JVM_BASE_IMAGE");
        assert_eq!(tag_arg("web"), "WEB_TAG");
    }

    #[test]
    fn registry_prefixes() {
        assert!(registry_prefix_problem("registry.example.com/team").is_none());
        assert!(registry_prefix_problem("127.0.0.1:5000").is_none());
        assert!(registry_prefix_problem("https://x").is_some());
        assert!(registry_prefix_problem("host/Team").is_some());
    }

    #[test]
    fn repositories_under_a_prefix() {
        let r = Repository::under("registry.example.com/team", "api");
        assert_eq!(r.host(), "registry.example.com");
        assert_eq!(r.path(), "team/api");
        assert_eq!(r.to_string(), "registry.example.com/team/api");
        let r = Repository::under("127.0.0.1:5000", "demo/api");
        assert_eq!((r.host(), r.path()), ("127.0.0.1:5000", "demo/api"));
        assert_eq!(r.with_tag("abc").to_string(), "127.0.0.1:5000/demo/api:abc");
    }

    #[test]
    fn references_normalise_like_the_docker_cli() {
        let p = |s| ImageRef::parse(s).unwrap().to_string();
        assert_eq!(p("python:3.12"), "docker.io/library/python:3.12");
        assert_eq!(p("bitnami/redis"), "docker.io/bitnami/redis");
        assert_eq!(p("localhost/x:1"), "localhost/x:1");
        assert_eq!(p("127.0.0.1:5000/lib/base:1"), "127.0.0.1:5000/lib/base:1");
        assert_eq!(p("host:5000/a"), "host:5000/a");
        let d = format!("sha256:{}", "a".repeat(64));
        let r = ImageRef::parse(&format!("ghcr.io/o/i:1@{d}")).unwrap();
        assert_eq!(r.repository.host(), "ghcr.io");
        assert_eq!(r.tag.as_deref(), Some("1"));
        assert_eq!(r.digest.as_deref(), Some(d.as_str()));
        assert!(ImageRef::parse("Python:3").is_err());
        assert!(ImageRef::parse("a@sha256:12").is_err());
        assert!(ImageRef::parse("a:b:c").is_err());
        assert_eq!(ImageRef::parse("alpine").unwrap().tag_or_latest(), "latest");
    }
}
