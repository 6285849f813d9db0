//! `explain` (every input of a tag, and the diff against an earlier record)
//! and `graph`.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use common::*;

#[test]
fn explain_json_lists_every_input() {
    let demo = demo();
    let v: serde_json::Value =
        serde_json::from_str(&ok(demo.path(), &["explain", "api", "--json"])).unwrap();
    assert_eq!(v["version"], 1);
    assert_eq!(v["service"], "api");
    assert_eq!(v["tag"], tags(demo.path())["api"]);
    assert_eq!(v["target"], "runtime");
    assert_eq!(v["platform"], serde_json::Value::Null);
    assert_eq!(v["args"], serde_json::json!({"APP_ENV": "production"}));
    assert_eq!(v["dockerfile"]["path"], "Dockerfile");
    assert_eq!(v["depends_on"][0]["name"], "base");
    assert_eq!(v["depends_on"][0]["tag"], tags(demo.path())["base"]);
    let inputs = v["inputs"].as_array().unwrap();
    let main = inputs.iter().find(|i| i["path"] == "src/main.py").unwrap();
    assert_eq!(main["type"], "file");
    assert_eq!(main["executable"], true);
    let content = fs::read(demo.path().join("services/api/src/main.py")).unwrap();
    assert_eq!(main["blake3"], blake3::hash(&content).to_hex().as_str());
    let src = inputs.iter().find(|i| i["path"] == "src").unwrap();
    assert_eq!(src["type"], "dir");
    assert_eq!(src["blake3"], serde_json::Value::Null);
    assert!(
        !inputs.iter().any(|i| i["path"] == "debug.log"),
        "excluded files are not inputs"
    );

    let web: serde_json::Value =
        serde_json::from_str(&ok(demo.path(), &["explain", "web", "--json"])).unwrap();
    assert_eq!(web["dockerfile"]["path"], "../../build/web.Dockerfile");
}

#[test]
fn explain_text_shows_the_same_inputs() {
    let demo = demo();
    let text = ok(demo.path(), &["explain", "api"]);
    assert!(text.contains("target      runtime"), "{text}");
    assert!(text.contains("APP_ENV=production"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.contains(" x ") && l.ends_with("src/main.py")),
        "{text}"
    );
}

#[test]
fn against_says_exactly_what_changed() {
    let demo = demo();
    let d = demo.path();
    let before = d.join("before.json");
    fs::write(&before, ok(d, &["explain", "api", "--json"])).unwrap();

    let same = ok(
        d,
        &["explain", "api", "--against", before.to_str().unwrap()],
    );
    assert!(same.starts_with("api: tag unchanged"), "{same}");
    assert_eq!(same.lines().count(), 1, "{same}");

    write(&d.join("services/api/config/app.yaml"), "port: 1\n");
    write(&d.join("services/api/new.txt"), "new\n");
    fs::remove_file(d.join("services/api/tests/fixtures/user.json")).unwrap();
    fs::set_permissions(
        d.join("services/api/src/main.py"),
        fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    write(&d.join("images/base/etc/motd"), "changed base\n");
    let cfg = fs::read_to_string(d.join("tagsmith.yaml")).unwrap();
    fs::write(
        d.join("tagsmith.yaml"),
        cfg.replace("APP_ENV: production", "APP_ENV: staging"),
    )
    .unwrap();

    let diff = ok(
        d,
        &["explain", "api", "--against", before.to_str().unwrap()],
    );
    let lines: Vec<&str> = diff.lines().map(str::trim).collect();
    assert!(
        lines[0].starts_with("api: tag ") && lines[0].contains(" -> "),
        "{diff}"
    );
    for expected in [
        "arg APP_ENV: \"production\" -> \"staging\"",
        "changed  config/app.yaml (content)",
        "added    new.txt (file)",
        "removed  tests/fixtures/user.json (file)",
        "changed  src/main.py (no longer executable)",
    ] {
        assert!(lines.contains(&expected), "missing {expected:?} in\n{diff}");
    }
    assert!(
        lines.iter().any(|l| l.starts_with("dependency base: tag")),
        "{diff}"
    );
    assert_eq!(lines.len(), 7, "only what differs:\n{diff}");
}

#[test]
fn against_a_bad_file_is_a_located_error() {
    let demo = demo();
    write(
        &demo.path().join("old.json"),
        "{\n  \"version\": 1,\n  oops\n}\n",
    );
    let err = fails(demo.path(), &["explain", "api", "--against", "old.json"]);
    assert!(err.contains("old.json:3:"), "{err}");
}

#[test]
fn graph_in_build_order() {
    let demo = demo();
    let text = ok(demo.path(), &["graph"]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "base");
    assert!(
        lines.contains(&"worker"),
        "worker has no dependencies: {text}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("api") && l.ends_with("<- base")),
        "{text}"
    );
    assert_eq!(lines.len(), 4);
    let dot = ok(demo.path(), &["graph", "--dot"]);
    assert!(dot.starts_with("digraph tagsmith {"), "{dot}");
    assert!(dot.contains("\"api\" -> \"base\";"), "{dot}");
    assert!(dot.trim_end().ends_with('}'));
}

/// `explain --path` lines for `paths`, run in `dir`.
fn why(dir: &std::path::Path, service: &str, paths: &[&str]) -> Vec<String> {
    let mut args = vec!["explain", service];
    for p in paths {
        args.extend(["--path", p]);
    }
    ok(dir, &args).lines().map(String::from).collect()
}

#[test]
fn explain_path_names_the_rule_that_decided() {
    let dir = single(Some(
        "# noise\n*.log\n!keep.log\ncache\n!cache/keep\nsecrets\n!**/secrets-ok\nsub\n!sub/dir/keep\nsub/dir\n",
    ));
    let d = dir.path();
    let ctx = d.join("ctx");
    for f in [
        "app.py",
        "debug.log",
        "keep.log",
        "cache/keep",
        "cache/drop",
        "secrets/secrets-ok",
        "sub/dir/keep",
        "sub/dir/other",
    ] {
        write(&ctx.join(f), f);
    }
    let lines = why(
        d,
        "app",
        &[
            "ctx/app.py",
            "ctx/debug.log",
            "keep.log",
            "ctx/cache/drop",
            "ctx/cache/keep",
            "ctx/cache",
            "ctx/secrets/secrets-ok",
            "ctx/sub/dir/keep",
            "ctx/sub/dir/other",
            "ctx/Dockerfile",
            "ctx/.dockerignore",
            "tagsmith.yaml",
        ],
    );
    let ign = "ctx/.dockerignore";
    assert_eq!(
        lines,
        [
            "ctx/app.py: included".to_string(),
            format!("ctx/debug.log: excluded by {ign}:2 (*.log)"),
            format!("keep.log: re-included by {ign}:3 (!keep.log)"),
            format!("ctx/cache/drop: excluded by {ign}:4 (cache)"),
            format!("ctx/cache/keep: re-included by {ign}:5 (!cache/keep)"),
            format!(
                "ctx/cache: included: it holds re-included entries, though excluded by {ign}:4 (cache)"
            ),
            // `**/secrets-ok` names no path below `secrets/`: Docker never walks it.
            format!(
                "ctx/secrets/secrets-ok: excluded: directory secrets/ is excluded by {ign}:6 (secrets)"
            ),
            // Docker's parent-results rule: `sub/dir` was skipped when sub/dir
            // was decided (it was already excluded by `sub`), so `sub` decides.
            format!("ctx/sub/dir/keep: re-included by {ign}:9 (!sub/dir/keep)"),
            format!("ctx/sub/dir/other: excluded by {ign}:8 (sub)"),
            "ctx/Dockerfile: always sent".to_string(),
            "ctx/.dockerignore: always sent".to_string(),
            "tagsmith.yaml: not in the context".to_string(),
        ]
    );
    // Every answer agrees with the entries that are hashed.
    let inputs = inputs(d, "app");
    for (path, included) in [
        ("app.py", true),
        ("debug.log", false),
        ("keep.log", true),
        ("cache/drop", false),
        ("cache/keep", true),
        ("cache", true),
        ("secrets/secrets-ok", false),
        ("sub/dir/keep", true),
        ("sub/dir/other", false),
    ] {
        assert_eq!(inputs.iter().any(|i| i == path), included, "{path}");
    }

    let v: serde_json::Value = serde_json::from_str(&ok(
        d,
        &[
            "explain",
            "app",
            "--json",
            "--path",
            "ctx/debug.log",
            "--path",
            "ctx/app.py",
        ],
    ))
    .unwrap();
    assert_eq!(v["version"], 1);
    assert_eq!(
        v["paths"][0],
        serde_json::json!({"path": "ctx/debug.log", "included": false,
            "reason": format!("excluded by {ign}:2 (*.log)"),
            "file": ign, "line": 2, "pattern": "*.log"})
    );
    assert_eq!(
        v["paths"][1],
        serde_json::json!({"path": "ctx/app.py", "included": true, "reason": "included",
            "file": null, "line": null, "pattern": null})
    );
}

#[test]
fn explain_path_reads_the_dockerfile_specific_ignore_file() {
    let demo = demo();
    let d = demo.path();
    // worker's context is the repository root; build/worker.Dockerfile.dockerignore applies.
    let lines = why(
        d,
        "worker",
        &[
            "scripts/healthcheck.sh",
            "services/api/config/app.yaml",
            "missing.txt",
        ],
    );
    let ign = "build/worker.Dockerfile.dockerignore";
    assert_eq!(
        lines,
        [
            format!("scripts/healthcheck.sh: re-included by {ign}:3 (!scripts/healthcheck.sh)"),
            // services/ is walked for `!services/worker`; services/api/ is pruned.
            format!(
                "services/api/config/app.yaml: excluded: directory services/api/ is excluded by {ign}:1 (*)"
            ),
            format!(
                "missing.txt: not in the context: no such file or directory (if there were one: excluded by {ign}:1 (*))"
            ),
        ]
    );
    // From a subdirectory, a path relative to it.
    let lines = why(&d.join("services"), "api", &["api/debug.log"]);
    assert_eq!(
        lines,
        ["api/debug.log: excluded by api/.dockerignore:2 (*.log)"]
    );
}
