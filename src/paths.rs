//! Path helpers: Go's `filepath.Clean` (Docker's rules are written in terms
//! of it), `/`-separated relative paths, and paths as messages show them.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Go's `filepath.Clean` for `/`-separated paths.
pub fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            p => parts.push(p),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// The `/`-separated path of `to` relative to the directory `from`.
pub fn relative(from: &Path, to: &Path) -> String {
    let from: Vec<_> = from.components().collect();
    let to: Vec<_> = to.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = vec!["..".into(); from.len() - common];
    parts.extend(
        to[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    parts.join("/")
}

/// `root/base/spec`, cleaned, if it stays inside `root` (`spec` relative).
pub fn inside(root: &Path, base: &Path, spec: &str) -> Option<PathBuf> {
    if Path::new(spec).is_absolute() {
        return None;
    }
    let base = base.to_string_lossy();
    let joined = if base.is_empty() {
        clean(spec)
    } else {
        clean(&format!("{base}/{spec}"))
    };
    if joined == ".." || joined.starts_with("../") || joined.starts_with('/') {
        return None;
    }
    Some(if joined == "." {
        root.to_path_buf()
    } else {
        root.join(joined)
    })
}

/// An absolute, cleaned form of `path` (relative to the working directory).
pub fn absolute(path: &Path) -> std::io::Result<PathBuf> {
    let path = if path.as_os_str().is_empty() {
        Path::new(".")
    } else {
        path
    };
    std::path::absolute(path).map(|p| PathBuf::from(clean(&p.to_string_lossy())))
}

fn working_dir() -> Option<&'static Path> {
    static CWD: OnceLock<Option<PathBuf>> = OnceLock::new();
    CWD.get_or_init(|| std::env::current_dir().ok()).as_deref()
}

/// A path as messages show it: relative to the working directory when it
/// lies below it, else as it is.
pub struct Shown<'a>(pub &'a Path);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rel = working_dir()
            .filter(|_| self.0.is_absolute())
            .and_then(|cwd| self.0.strip_prefix(cwd).ok())
            .filter(|rel| !rel.as_os_str().is_empty());
        rel.unwrap_or(self.0).display().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        assert_eq!(
            relative(Path::new("/r/a"), Path::new("/r/a/Dockerfile")),
            "Dockerfile"
        );
        assert_eq!(
            relative(Path::new("/r/a/b"), Path::new("/r/x/Dockerfile")),
            "../../x/Dockerfile"
        );
    }

    #[test]
    fn cleaning_like_go() {
        for (input, want) in [
            ("a/./b/../c", "a/c"),
            ("/../a", "/a"),
            ("../a/..", ".."),
            ("", "."),
            ("a//b/", "a/b"),
        ] {
            assert_eq!(clean(input), want, "{input}");
        }
    }

    #[test]
    fn paths_stay_inside_the_root() {
        let root = Path::new("/r");
        assert_eq!(
            inside(root, Path::new("svc"), "../x/Dockerfile"),
            Some(PathBuf::from("/r/x/Dockerfile"))
        );
        assert_eq!(inside(root, Path::new("svc"), "../../x"), None);
        assert_eq!(inside(root, Path::new(""), "/etc"), None);
        assert_eq!(inside(root, Path::new(""), "."), Some(root.to_path_buf()));
    }

    #[test]
    fn shown_relative_to_the_working_directory() {
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(Shown(&cwd.join("a/b")).to_string(), "a/b");
        assert_eq!(Shown(Path::new("/elsewhere/x")).to_string(), "/elsewhere/x");
        assert_eq!(Shown(Path::new("rel/x")).to_string(), "rel/x");
    }
}
