//! `tagsmith tags`: output formats and the hashing invariants, on real files.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, SystemTime};

use common::*;

#[test]
fn text_format_lists_every_service_sorted() {
    let demo = demo();
    let out = ok(demo.path(), &["tags"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4);
    let names: Vec<&str> = lines
        .iter()
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    assert_eq!(names, ["api", "base", "web", "worker"]);
    for line in &lines {
        let (name, image) = line.split_once('\t').unwrap();
        let tag = image.rsplit(':').next().unwrap();
        assert_eq!(tag.len(), 32);
        assert!(
            tag.chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        );
        let repo = if name == "web" { "frontend/web" } else { name };
        assert_eq!(image, format!("registry.example.com/demo/{repo}:{tag}"));
    }
}

#[test]
fn json_env_and_github_formats_agree() {
    let demo = demo();
    let json: serde_json::Value =
        serde_json::from_str(&ok(demo.path(), &["tags", "--format", "json"])).unwrap();
    assert_eq!(json["version"], 1);
    let services = json["services"].as_array().unwrap();
    let api = services.iter().find(|s| s["name"] == "api").unwrap();
    assert_eq!(api["depends_on"], serde_json::json!(["base"]));
    let api_tag = api["tag"].as_str().unwrap();
    assert_eq!(
        api["image"],
        format!("registry.example.com/demo/api:{api_tag}")
    );

    let env = ok(demo.path(), &["tags", "--format", "env"]);
    assert!(
        env.lines()
            .any(|l| l == format!("TAGSMITH_TAG_API={api_tag}")),
        "{env}"
    );
    assert_eq!(env.lines().count(), 4);

    let out_file = demo.path().join("gh-output");
    fs::write(&out_file, "earlier=1\n").unwrap();
    let o = std::process::Command::new(bin())
        .args(["tags", "--format", "github"])
        .current_dir(demo.path())
        .env("GITHUB_OUTPUT", &out_file)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let written = fs::read_to_string(&out_file).unwrap();
    assert!(
        written.starts_with("earlier=1\n"),
        "appends, never truncates"
    );
    assert!(
        written.contains(&format!("api-tag={api_tag}\n")),
        "{written}"
    );

    let err = fails(demo.path(), &["tags", "--format", "github"]);
    assert!(err.contains("GITHUB_OUTPUT"), "{err}");
}

#[test]
fn naming_services_restricts_output_and_hashing() {
    let demo = demo();
    let all = tags(demo.path());
    let out = ok(demo.path(), &["tags", "api"]);
    assert_eq!(
        out,
        format!("api\tregistry.example.com/demo/api:{}\n", all["api"])
    );
    // web's context is not hashed when only api is asked for: a FIFO there
    // breaks `tags` but not `tags api`.
    let fifo = demo.path().join("services/web/dist/pipe");
    mkfifo(&fifo);
    ok(demo.path(), &["tags", "api"]);
    let err = fails(demo.path(), &["tags"]);
    assert!(
        err.contains("dist/pipe") && err.contains("named pipe"),
        "{err}"
    );
}

#[test]
fn same_tags_from_any_location_mtime_and_permission_bits() {
    let a = demo();
    let b = tempfile::tempdir().unwrap();
    let nested = b.path().join("some/deeper/checkout");
    copy_tree(&fixture("demo"), &nested);
    let reference = tags(a.path());
    assert_eq!(
        tags(&nested),
        reference,
        "checkout location changed the tags"
    );

    // Different mtimes and atimes everywhere, and other group/other bits.
    let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    for entry in walk(&nested) {
        let meta = fs::symlink_metadata(&entry).unwrap();
        if meta.is_file() {
            let f = fs::File::options().write(true).open(&entry).unwrap();
            f.set_times(fs::FileTimes::new().set_modified(old).set_accessed(old))
                .unwrap();
            let mode = meta.permissions().mode();
            // Keep the owner's bits (the executable bit is an input); flip the rest.
            let flipped = (mode & 0o700) | (!mode & 0o077);
            fs::set_permissions(&entry, fs::Permissions::from_mode(flipped)).unwrap();
        } else if meta.is_dir() {
            fs::set_permissions(&entry, fs::Permissions::from_mode(0o700)).unwrap();
        }
    }
    assert_eq!(
        tags(&nested),
        reference,
        "mtime or group/other bits changed the tags"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if fs::symlink_metadata(&p).unwrap().is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

#[test]
fn creation_order_does_not_matter() {
    let names = ["b.txt", "a.txt", "z/1", "z/0", "m/n/o", "c"];
    let make = |order: &[&str]| {
        let dir = single(None);
        for n in order {
            write(&dir.path().join("ctx").join(n), n);
        }
        dir
    };
    let forward = make(&names);
    let mut reversed = names;
    reversed.reverse();
    let backward = make(&reversed);
    assert_eq!(tags(forward.path()), tags(backward.path()));
}

/// Applies `change` to a fresh demo and returns the services whose tag changed.
fn retagged(change: impl FnOnce(&std::path::Path)) -> Vec<String> {
    let demo = demo();
    let before = tags(demo.path());
    change(demo.path());
    changed(&before, &tags(demo.path()))
}

#[test]
fn a_leaf_change_retags_only_that_service() {
    assert_eq!(
        retagged(|d| write(&d.join("services/api/src/main.py"), "print('v2')\n")),
        ["api"]
    );
}

#[test]
fn a_base_change_retags_everything_built_on_it() {
    let changed = retagged(|d| {
        let f = d.join("images/base/Dockerfile");
        let text = fs::read_to_string(&f).unwrap();
        fs::write(&f, text + "LABEL x=y\n").unwrap();
    });
    assert_eq!(changed, ["api", "base", "web"]);
}

#[test]
fn excluded_files_do_not_change_tags() {
    assert!(retagged(|d| write(&d.join("services/api/debug.log"), "more log\n")).is_empty());
    assert!(
        retagged(|d| write(&d.join("services/api/tests/test_main.py"), "changed\n")).is_empty()
    );
    assert!(retagged(|d| write(&d.join("services/web/src/app.js"), "changed\n")).is_empty());
    assert!(retagged(|d| write(&d.join("images/base/README.md"), "changed\n")).is_empty());
    assert!(
        retagged(|d| write(
            &d.join("docs/notes.md"),
            "outside every context that sends it\n"
        ))
        .is_empty()
    );
}

#[test]
fn every_real_change_retags() {
    let api = |change: &dyn Fn(&std::path::Path)| -> bool {
        retagged(|d| change(d)).contains(&"api".to_string())
    };
    let ctx = |d: &std::path::Path| d.join("services/api");
    assert!(
        api(&|d| write(&ctx(d).join("config/app.yaml"), "port: 9090\n")),
        "content"
    );
    assert!(
        api(&|d| fs::rename(
            ctx(d).join("config/app.yaml"),
            ctx(d).join("config/app.yml")
        )
        .unwrap()),
        "rename"
    );
    assert!(
        api(&|d| fs::set_permissions(
            ctx(d).join("config/app.yaml"),
            fs::Permissions::from_mode(0o755)
        )
        .unwrap()),
        "exec bit"
    );
    assert!(
        api(&|d| fs::create_dir(ctx(d).join("empty")).unwrap()),
        "empty dir added"
    );
    assert!(
        !api(&|d| fs::remove_dir_all(ctx(d).join("src/__pycache__")).unwrap()),
        "excluded dir removed"
    );
    assert!(
        api(&|d| write(&ctx(d).join("new.txt"), "")),
        "empty file added"
    );
    assert!(
        api(&|d| fs::remove_file(ctx(d).join("config/app.yaml")).unwrap()),
        "file removed"
    );
    assert!(
        api(&|d| std::os::unix::fs::symlink("src/main.py", ctx(d).join("link")).unwrap()),
        "symlink added"
    );
    assert!(
        api(&|d| edit_config(d, "APP_ENV: production", "APP_ENV: staging")),
        "arg value"
    );
    assert!(
        api(&|d| edit_config(
            d,
            "APP_ENV: production",
            "APP_ENV: production\n      EXTRA: \"1\""
        )),
        "arg added"
    );
    assert!(
        api(&|d| edit_config(d, "target: runtime", "target: debug")),
        "target"
    );
    assert!(
        api(&|d| edit_config(
            d,
            "target: runtime",
            "target: runtime\n    platform: linux/arm64"
        )),
        "platform"
    );
    assert!(
        api(&|d| edit_config(d, "registry.example.com/demo", "registry.example.com/other")),
        "dependency reference"
    );
}

fn edit_config(dir: &std::path::Path, from: &str, to: &str) {
    let path = dir.join("tagsmith.yaml");
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{from:?} not in config");
    fs::write(&path, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn symlink_targets_and_empty_dirs_are_inputs() {
    let dir = single(None);
    let ctx = dir.path().join("ctx");
    std::os::unix::fs::symlink("a", ctx.join("link")).unwrap();
    fs::create_dir(ctx.join("empty")).unwrap();
    let first = tags(dir.path());
    fs::remove_file(ctx.join("link")).unwrap();
    std::os::unix::fs::symlink("b", ctx.join("link")).unwrap();
    let second = tags(dir.path());
    assert_ne!(first, second, "symlink target");
    fs::remove_dir(ctx.join("empty")).unwrap();
    assert_ne!(tags(dir.path()), second, "empty dir removed");
    // A dangling link is fine: it is never followed.
    let v: serde_json::Value =
        serde_json::from_str(&ok(dir.path(), &["explain", "app", "--json"])).unwrap();
    let link = v["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["path"] == "link")
        .unwrap();
    assert_eq!(link["type"], "symlink");
    assert_eq!(link["target"], "b");
}

#[test]
fn a_dockerfile_outside_the_context_is_an_input() {
    assert_eq!(
        retagged(|d| write(&d.join("build/web.Dockerfile"), "FROM scratch\n")),
        ["web"]
    );
}

#[test]
fn a_dependency_tag_change_retags_dependents_only() {
    let changed = retagged(|d| write(&d.join("images/base/etc/motd"), "new motd\n"));
    assert_eq!(changed, ["api", "base", "web"]);
    let changed = retagged(|d| write(&d.join("services/worker/worker.yaml"), "queue: other\n"));
    assert_eq!(changed, ["worker"]);
}

#[test]
fn tag_length_is_configurable() {
    let demo = demo();
    let full = tags(demo.path());
    edit_config(
        demo.path(),
        "registry: registry.example.com/demo",
        "registry: registry.example.com/demo\ntag_length: 12",
    );
    let short = tags(demo.path());
    assert!(short.values().all(|t| t.len() == 12));
    // base has no dependencies, so its short tag is a prefix of the long one.
    assert!(full["base"].starts_with(&short["base"]));
}

#[test]
fn the_demo_tags_are_pinned() {
    // These change only when the hash specification changes on purpose
    // (docs/hashing.md, a new scheme string): update them then, and only then.
    let demo = demo();
    let t = tags(demo.path());
    assert_eq!(t["api"], "cd06c0ef74cb220e785feb384477554b");
    assert_eq!(t["base"], "cebe3781a5c3bf00823c29238caac7ba");
    assert_eq!(t["web"], "ffc235ab0ebd2d241a601f2e7cd1b531");
    assert_eq!(t["worker"], "13ade5ec2a5837610d6146a908a9a813");
}
