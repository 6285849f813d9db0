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
