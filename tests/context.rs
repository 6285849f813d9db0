//! What goes into a context, on real trees: Docker's `.dockerignore`
//! semantics including its directory pruning, the files Docker always
//! sends, Dockerfile-specific ignore files and special files.

mod common;

use std::fs;

use common::*;

fn tree(dockerignore: &str, files: &[&str]) -> tempfile::TempDir {
    let dir = single(Some(dockerignore));
    for f in files {
        write(&dir.path().join("ctx").join(f), f);
    }
    dir
}

#[test]
fn exception_under_an_excluded_directory_is_sent() {
    // Checked against the docker CLI: `dir` + `!dir/keep` sends dir/keep.
    let dir = tree("dir\n!dir/keep\n", &["dir/keep", "dir/drop", "top"]);
    assert_eq!(
        inputs(dir.path(), "app"),
        [".dockerignore", "Dockerfile", "dir", "dir/keep", "top"]
    );
}

#[test]
fn exceptions_not_spelled_under_the_directory_do_not_rescue_it() {
    // Checked against the docker CLI: `!**/keep` and `!d*/keep` send nothing under dir.
    for rules in ["dir\n!**/keep\n", "dir\n!d*/keep\n"] {
        let dir = tree(rules, &["dir/keep", "dir/drop", "top"]);
        assert_eq!(
            inputs(dir.path(), "app"),
            [".dockerignore", "Dockerfile", "top"],
            "{rules:?}"
        );
    }
}

#[test]
fn star_with_exception_for_a_directory() {
    let dir = tree(
        "*\n!src\n",
        &["src/a.rs", "src/deep/b.rs", "target/x", "README"],
    );
    assert_eq!(
        inputs(dir.path(), "app"),
        [
            ".dockerignore",
            "Dockerfile",
            "src",
            "src/a.rs",
            "src/deep",
            "src/deep/b.rs"
        ]
    );
}

#[test]
fn patterns_are_anchored_at_the_root() {
    let dir = tree("foo\n*.log\n", &["foo/x", "a/foo", "b.log", "c/d.log"]);
    assert_eq!(
        inputs(dir.path(), "app"),
        [".dockerignore", "Dockerfile", "a", "a/foo", "c", "c/d.log"]
    );
    let dir = tree("**/*.log\n", &["b.log", "c/d.log", "c/e.txt"]);
    assert_eq!(
        inputs(dir.path(), "app"),
        [".dockerignore", "Dockerfile", "c", "c/e.txt"]
    );
}

#[test]
fn dockerfile_and_dockerignore_are_always_sent() {
    let dir = tree("*\n", &["other"]);
    assert_eq!(inputs(dir.path(), "app"), [".dockerignore", "Dockerfile"]);
    let dir = tree("Dockerfile\n.dockerignore\n", &["other"]);
    assert_eq!(
        inputs(dir.path(), "app"),
        [".dockerignore", "Dockerfile", "other"]
    );
}

#[test]
fn dockerfile_in_an_excluded_directory_is_still_sent() {
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("tagsmith.yaml"),
        "registry: r.example/t\nservices:\n  app:\n    context: ctx\n    dockerfile: build/app.Dockerfile\n",
    );
    write(
        &dir.path().join("ctx/build/app.Dockerfile"),
        "FROM scratch\n",
    );
    write(&dir.path().join("ctx/build/other"), "x");
    write(&dir.path().join("ctx/.dockerignore"), "build\n");
    assert_eq!(
        inputs(dir.path(), "app"),
        [".dockerignore", "build", "build/app.Dockerfile"]
    );
}

#[test]
fn dockerfile_specific_ignore_file_replaces_the_context_one() {
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("tagsmith.yaml"),
        "registry: r.example/t\nservices:\n  app:\n    context: ctx\n    dockerfile: app.Dockerfile\n",
    );
    write(&dir.path().join("ctx/app.Dockerfile"), "FROM scratch\n");
    write(&dir.path().join("ctx/app.Dockerfile.dockerignore"), "a\n");
    write(&dir.path().join("ctx/.dockerignore"), "b\n");
    write(&dir.path().join("ctx/a"), "a");
    write(&dir.path().join("ctx/b"), "b");
    let got = inputs(dir.path(), "app");
    assert_eq!(
        got,
        [
            ".dockerignore",
            "app.Dockerfile",
            "app.Dockerfile.dockerignore",
            "b"
        ]
    );
    let v: serde_json::Value =
        serde_json::from_str(&ok(dir.path(), &["explain", "app", "--json"])).unwrap();
    assert_eq!(v["ignore_file"], "app.Dockerfile.dockerignore");
}

#[test]
fn bom_comments_and_crlf_in_the_ignore_file() {
    let dir = tree(
        "\u{feff}# comment\r\nsecret\r\n  *.tmp  \r\n",
        &["secret", "# comment", "x.tmp", "keep"],
    );
    assert_eq!(
        inputs(dir.path(), "app"),
        ["# comment", ".dockerignore", "Dockerfile", "keep"]
    );
}

#[test]
fn a_socket_in_the_context_is_an_error_naming_it() {
    let dir = single(None);
    let sock = dir.path().join("ctx/agent.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let err = fails(dir.path(), &["tags"]);
    assert!(
        err.contains("agent.sock") && err.contains("socket") && err.contains(".dockerignore"),
        "{err}"
    );
    // The fix the message suggests works.
    write(&dir.path().join("ctx/.dockerignore"), "agent.sock\n");
    ok(dir.path(), &["tags"]);
}

#[test]
fn names_that_are_not_utf8_are_errors_only_when_selected() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let dir = single(Some("*.bin\nfifo\n"));
    let ctx = dir.path().join("ctx");
    write(&ctx.join("app.py"), "x");
    fs::write(ctx.join(OsStr::from_bytes(b"bad\xff.bin")), "x").unwrap();
    mkfifo(&ctx.join("fifo"));
    // Excluded (matched with the bad byte replaced): no error, not an input.
    let before = inputs(dir.path(), "app");
    assert_eq!(before, [".dockerignore", "Dockerfile", "app.py"]);
    // Selected: one clear error naming the file.
    fs::write(ctx.join(OsStr::from_bytes(b"bad\xff.txt")), "x").unwrap();
    let err = fails(dir.path(), &["tags"]);
    assert!(
        err.contains("ctx/bad") && err.contains("not valid UTF-8"),
        "{err}"
    );
}

#[test]
fn an_ignore_file_that_is_not_utf8_is_read_lossily() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        &d.join("tagsmith.yaml"),
        "registry: r.example/t\nservices:\n  app:\n    context: ctx\n",
    );
    write(&d.join("ctx/Dockerfile"), "FROM scratch\n");
    fs::write(d.join("ctx/.dockerignore"), b"# caf\xe9\n*.log\n").unwrap();
    write(&d.join("ctx/a.log"), "x");
    write(&d.join("ctx/b.txt"), "x");
    assert_eq!(inputs(d, "app"), [".dockerignore", "Dockerfile", "b.txt"]);
}
