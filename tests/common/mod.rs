//! Helpers shared by the integration tests: real files in temp dirs, the real binary.
#![allow(dead_code)]

pub mod engines;
pub mod faults;
pub mod infra;
pub mod pki;
pub mod tools;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_tagsmith")
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// Copies a directory tree, keeping executable bits and symlinks.
pub fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    let mut names: Vec<_> = fs::read_dir(from)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    for name in names {
        let (src, dst) = (from.join(&name), to.join(&name));
        let meta = fs::symlink_metadata(&src).unwrap();
        if meta.file_type().is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&src).unwrap(), &dst).unwrap();
        } else if meta.is_dir() {
            copy_tree(&src, &dst);
        } else {
            fs::copy(&src, &dst).unwrap();
            fs::set_permissions(&dst, fs::Permissions::from_mode(meta.permissions().mode()))
                .unwrap();
        }
    }
}

/// A fresh copy of the bundled demo in a temp dir.
pub fn demo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&fixture("demo"), dir.path());
    dir
}

/// The stat caches of a test run: a temp dir, not the user's cache.
pub fn cache_dir() -> PathBuf {
    std::env::temp_dir().join(format!("tagsmith-test-cache-{}", std::process::id()))
}

pub fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .current_dir(dir)
        .env_remove("GITHUB_OUTPUT")
        .env("TAGSMITH_CACHE_DIR", cache_dir())
        .output()
        .unwrap()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

/// Runs and expects success; returns stdout.
pub fn ok(dir: &Path, args: &[&str]) -> String {
    let o = run(dir, args);
    assert!(
        o.status.success(),
        "tagsmith {args:?} failed: {}",
        stderr(&o)
    );
    stdout(&o)
}

/// Runs and expects a user error: exit 1, nothing on stdout, one message on stderr.
pub fn fails(dir: &Path, args: &[&str]) -> String {
    let o = run(dir, args);
    assert_eq!(
        o.status.code(),
        Some(1),
        "tagsmith {args:?}: stdout {:?} stderr {:?}",
        stdout(&o),
        stderr(&o)
    );
    assert!(
        o.stdout.is_empty(),
        "partial output on stdout: {:?}",
        stdout(&o)
    );
    let err = stderr(&o);
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "expected one message, got {err:?}"
    );
    err
}

/// `name -> tag` from `tags --format json`.
pub fn tags(dir: &Path) -> std::collections::BTreeMap<String, String> {
    by_name(&ok(dir, &["tags", "--format", "json"]), "tag")
}

/// `name -> <field>` from a `{"services": [...]}` document (tags, build reports).
pub fn by_name(json: &str, field: &str) -> std::collections::BTreeMap<String, String> {
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    v["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s[field].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The services whose tags differ between two runs.
pub fn changed(
    a: &std::collections::BTreeMap<String, String>,
    b: &std::collections::BTreeMap<String, String>,
) -> Vec<String> {
    a.iter()
        .filter(|(k, v)| b.get(*k) != Some(v))
        .map(|(k, _)| k.clone())
        .collect()
}

pub fn write(path: &Path, content: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

/// The `explain --json` input paths of a service.
pub fn inputs(dir: &Path, service: &str) -> Vec<String> {
    let v: serde_json::Value =
        serde_json::from_str(&ok(dir, &["explain", service, "--json"])).unwrap();
    v["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["path"].as_str().unwrap().to_string())
        .collect()
}

/// Makes a named pipe: a file type no build context may hold.
pub fn mkfifo(path: &Path) {
    assert!(Command::new("mkfifo").arg(path).status().unwrap().success());
}

/// A minimal single-service project whose context is `ctx/`.
pub fn single(dockerignore: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("tagsmith.yaml"),
        "registry: r.example/t\nservices:\n  app:\n    context: ctx\n",
    );
    write(
        &dir.path().join("ctx/Dockerfile"),
        "FROM scratch\nCOPY . /ctx\n",
    );
    if let Some(text) = dockerignore {
        write(&dir.path().join("ctx/.dockerignore"), text);
    }
    dir
}
