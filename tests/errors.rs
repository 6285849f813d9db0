//! Every bad input: one clear message naming the file (and line:column),
//! exit code 1, nothing on stdout.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use common::*;

/// A project with `config` as tagsmith.yaml and the demo's directories.
fn project(config: &str) -> tempfile::TempDir {
    let dir = demo();
    fs::write(dir.path().join("tagsmith.yaml"), config).unwrap();
    dir
}

const HEADER: &str = "registry: r.example/t\nservices:\n";

#[test]
fn malformed_yaml() {
    let dir = project(&format!("{HEADER}  base:\n    context: [images/base\n"));
    let err = fails(dir.path(), &["tags"]);
    assert!(err.contains("tagsmith.yaml:4:"), "{err}");
}

#[test]
fn unknown_key_with_suggestion() {
    let dir = project(&format!("{HEADER}  base:\n    contxt: images/base\n"));
    let err = fails(dir.path(), &["tags"]);
    assert!(err.contains("tagsmith.yaml:4:5:"), "{err}");
    assert!(
        err.contains("unknown key \"contxt\" (did you mean \"context\"?)"),
        "{err}"
    );
    let dir = project("registy: r.example/t\nservices: {}\n");
    let err = fails(dir.path(), &["tags"]);
    assert!(
        err.contains("tagsmith.yaml:1:1:") && err.contains("did you mean \"registry\""),
        "{err}"
    );
}

#[test]
fn wrong_types() {
    let dir = project(
        "registry: r.example/t\ntag_length: long\nservices:\n  base:\n    context: images/base\n",
    );
    let err = fails(dir.path(), &["tags"]);
    assert!(err.contains("tagsmith.yaml:2:13:"), "{err}");
    let dir = project(
        "registry: r.example/t\ntag_length: 8\nservices:\n  base:\n    context: images/base\n",
    );
    let err = fails(dir.path(), &["tags"]);
    assert!(
        err.contains("tagsmith.yaml:2:13:") && err.contains("between 12 and 64"),
        "{err}"
    );
    let dir = project(&format!(
        "{HEADER}  base:\n    context: images/base\n    depends_on: base\n"
    ));
    let err = fails(dir.path(), &["tags"]);
    assert!(err.contains("tagsmith.yaml:5:"), "{err}");
}

#[test]
fn bad_service_names() {
    for (name, hint) in [
        ("Api", "\"api\""),
        ("my api", "\"my-api\""),
        ("-x", "\"x\""),
    ] {
        let dir = project(&format!(
            "{HEADER}  \"{name}\":\n    context: images/base\n"
        ));
        let err = fails(dir.path(), &["tags"]);
        assert!(err.contains("tagsmith.yaml:3:3:"), "{err}");
        assert!(
            err.contains("not a valid image repository name") && err.contains(hint),
            "{err}"
        );
    }
}

#[test]
fn missing_context_or_dockerfile() {
    let dir = project(&format!("{HEADER}  base:\n    context: images/nope\n"));
    let err = fails(dir.path(), &["tags"]);
    assert!(
        err.contains("tagsmith.yaml:4:14:") && err.contains("does not exist"),
        "{err}"
    );
    let dir = project(&format!(
        "{HEADER}  base:\n    context: images/base\n    dockerfile: Containerfile\n"
    ));
    let err = fails(dir.path(), &["tags"]);
    assert!(
        err.contains("tagsmith.yaml:5:17:") && err.contains("images/base/Containerfile"),
        "{err}"
    );
}

#[test]
fn paths_outside_the_repository() {
    let dir = project(&format!(
        "{HEADER}  base:\n    context: images/base\n    dockerfile: ../../../Dockerfile\n"
    ));
    let err = fails(dir.path(), &["tags"]);
    assert!(
        err.contains("tagsmith.yaml:5:17:") && err.contains("outside the repository"),
        "{err}"
    );
    let dir = project(&format!("{HEADER}  base:\n    context: ..\n"));
    let err = fails(dir.path(), &["tags"]);
    assert!(
        err.contains("tagsmith.yaml:4:14:") && err.contains("outside the repository"),
        "{err}"
    );
}

#[test]
fn unreadable_file() {
    let dir = demo();
    let f = dir.path().join("services/api/config/app.yaml");
    fs::set_permissions(&f, fs::Permissions::from_mode(0o000)).unwrap();
    let mut cmd = std::process::Command::new(bin());
    // root reads anything: drop to an unprivileged user for this run.
    if is_root() {
        open_up(dir.path());
        fs::set_permissions(&f, fs::Permissions::from_mode(0o000)).unwrap();
        cmd = std::process::Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", bin()]);
    }
    let o = cmd.arg("tags").current_dir(dir.path()).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
    let err = stderr(&o);
    assert!(
        err.contains("config/app.yaml") && err.contains("permission denied"),
        "{err}"
    );
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

/// Makes a tree readable by everyone (directories 0755, files 0644/0755).
fn open_up(path: &std::path::Path) {
    let meta = fs::symlink_metadata(path).unwrap();
    if meta.is_dir() {
        fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
        for e in fs::read_dir(path).unwrap() {
            open_up(&e.unwrap().path());
        }
    } else if meta.is_file() {
        let exec = meta.permissions().mode() & 0o100 != 0;
        fs::set_permissions(
            path,
            fs::Permissions::from_mode(if exec { 0o755 } else { 0o644 }),
        )
        .unwrap();
    }
}

#[test]
fn malformed_ignore_pattern() {
    let dir = demo();
    write(
        &dir.path().join("services/api/.dockerignore"),
        "*.log\n[abc\n",
    );
    let err = fails(dir.path(), &["tags"]);
    assert!(
        err.contains("services/api/.dockerignore:2:") && err.contains("[abc"),
        "{err}"
    );
    write(&dir.path().join("services/api/.dockerignore"), "!\n");
    let err = fails(dir.path(), &["tags"]);
    assert!(err.contains(".dockerignore:1:"), "{err}");
}

#[test]
fn dependency_cycle_prints_the_cycle() {
    let dir = project(&format!(
        "{HEADER}  a:\n    context: images/base\n    depends_on: [b]\n  b:\n    context: services/api\n    depends_on: [a]\n"
    ));
    let err = fails(dir.path(), &["tags"]);
    assert!(
        err.contains("tagsmith.yaml") && err.contains("a -> b -> a"),
        "{err}"
    );
}

#[test]
fn inferred_cycle_through_dockerfiles() {
    let dir = demo();
    write(
        &dir.path().join("images/base/Dockerfile"),
        "ARG API_IMAGE\nFROM ${API_IMAGE}\n",
    );
    let err = fails(dir.path(), &["tags"]);
    assert!(err.contains("api -> base -> api"), "{err}");
}

#[test]
fn unknown_dependency_with_suggestion() {
    let dir = project(&format!(
        "{HEADER}  base:\n    context: images/base\n  api:\n    context: services/api\n    depends_on: [bsae]\n"
    ));
    let err = fails(dir.path(), &["tags"]);
    assert!(
        err.contains("tagsmith.yaml:7:18:") && err.contains("did you mean \"base\""),
        "{err}"
    );
}

#[test]
fn unknown_service_on_the_command_line() {
    let dir = demo();
    let err = fails(dir.path(), &["tags", "apj"]);
    assert!(
        err.contains("unknown service \"apj\" (did you mean \"api\"?)"),
        "{err}"
    );
    let err = fails(dir.path(), &["explain", "wbe"]);
    assert!(err.contains("did you mean \"web\""), "{err}");
}

#[test]
fn dockerfile_syntax_error_names_the_line() {
    let dir = demo();
    write(
        &dir.path().join("services/api/Dockerfile"),
        "# comment\nFROM ${BASE_IMAGE\n",
    );
    let err = fails(dir.path(), &["tags"]);
    assert!(err.contains("services/api/Dockerfile:2:"), "{err}");
}

#[test]
fn missing_config() {
    let dir = tempfile::tempdir().unwrap();
    let err = fails(dir.path(), &["tags"]);
    assert!(
        err.contains("tagsmith.yaml") && err.contains("--config"),
        "{err}"
    );
    let err = fails(dir.path(), &["--config", "nope.yaml", "tags"]);
    assert!(err.contains("nope.yaml"), "{err}");
}

#[test]
fn config_is_found_from_a_subdirectory() {
    let dir = demo();
    let from_root = ok(dir.path(), &["tags"]);
    assert_eq!(
        ok(&dir.path().join("services/api/src"), &["tags"]),
        from_root
    );
}

#[test]
fn colliding_build_arg_names() {
    let dir = project(&format!(
        "{HEADER}  a-b:\n    context: images/base\n  a.b:\n    context: images/base\n"
    ));
    let err = fails(dir.path(), &["tags"]);
    assert!(err.contains("A_B_IMAGE"), "{err}");
}
