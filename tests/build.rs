//! `build` against a real Docker engine and a real registry: the acceptance
//! scenario from the issue, failures and blocking, the exact context the
//! builder receives, credentials, and `render` with digests.

mod common;

use std::fs;

use common::infra::{self, Registry};
use common::*;

/// A fresh registry and a copy of the demo that pushes to it.
fn demo_on_registry(auth: bool) -> (Registry, tempfile::TempDir) {
    let reg = Registry::start(auth);
    let demo = demo();
    infra::use_registry(demo.path(), &format!("{}/demo", reg.host()));
    (reg, demo)
}

fn status_line(out: &str, name: &str) -> String {
    out.lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn acceptance_scenario() {
    if !infra::available("acceptance_scenario") {
        return;
    }
    let (reg, demo) = demo_on_registry(false);
    let d = demo.path();
    let cfg = infra::docker_config(None);
    let report = d.join("report.json");
    let build = |extra: &[&str]| {
        let mut args = vec![
            "build",
            "--push",
            "--quiet",
            "--report",
            report.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let o = infra::tagsmith(d, cfg.path(), &args);
        assert!(o.status.success(), "build failed: {}", stderr(&o));
        infra::statuses(&report)
    };
    let all = |status: &str| -> std::collections::BTreeMap<String, String> {
        ["api", "base", "web", "worker"]
            .iter()
            .map(|n| (n.to_string(), status.to_string()))
            .collect()
    };

    // 1. Everything is built and pushed; the registry lists every tag.
    assert_eq!(build(&[]), all("pushed"));
    let first = tags(d);
    for (name, repo) in [
        ("api", "demo/api"),
        ("base", "demo/base"),
        ("web", "demo/frontend/web"),
        ("worker", "demo/worker"),
    ] {
        assert_eq!(
            reg.tags(repo, false),
            [first[name].clone()],
            "{repo} in the registry"
        );
    }
    let v: serde_json::Value = serde_json::from_str(&fs::read_to_string(&report).unwrap()).unwrap();
    for s in v["services"].as_array().unwrap() {
        let digest = s["digest"].as_str().unwrap();
        assert!(
            digest.starts_with("sha256:") && digest.len() == 71,
            "{digest}"
        );
        let (code, _) = reg
            .get(
                &format!(
                    "/v2/{}/manifests/{digest}",
                    s["image"]
                        .as_str()
                        .unwrap()
                        .split_once('/')
                        .unwrap()
                        .1
                        .rsplit_once(':')
                        .unwrap()
                        .0
                ),
                false,
            )
            .unwrap();
        assert_eq!(code, 200, "the reported digest exists");
    }

    // The cache tag points at each repository's latest pushed image.
    assert_eq!(
        reg.digest("demo/api", "buildcache", false),
        reg.digest("demo/api", &first["api"], false)
    );

    // 2. No change: every service is up to date, nothing is built.
    assert_eq!(build(&[]), all("up-to-date"));

    // 3. One file of a leaf service: exactly that service.
    write(&d.join("services/api/config/app.yaml"), "port: 9999\n");
    let mut want = all("up-to-date");
    want.insert("api".into(), "pushed".into());
    assert_eq!(build(&[]), want);

    // 4. The base's Dockerfile: the base and every service built on it, nothing else.
    let df = d.join("images/base/Dockerfile");
    fs::write(&df, fs::read_to_string(&df).unwrap() + "ENV CHANGED=1\n").unwrap();
    let mut want = all("pushed");
    want.insert("worker".into(), "up-to-date".into());
    assert_eq!(build(&[]), want);

    // 5. A file excluded by .dockerignore: nothing.
    write(&d.join("services/api/debug.log"), "noise\n");
    assert_eq!(build(&[]), all("up-to-date"));

    // --dry-run reports the plan and does nothing.
    write(&d.join("services/web/dist/index.html"), "<p>new</p>\n");
    let o = infra::tagsmith(d, cfg.path(), &["build", "--push", "--dry-run"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        status_line(&out, "web").ends_with("build (not in registry)"),
        "{out}"
    );
    assert!(status_line(&out, "api").ends_with("up-to-date"), "{out}");
    assert_eq!(
        reg.tags("demo/frontend/web", false).len(),
        2,
        "dry run pushed nothing"
    );
    assert!(
        !reg.tags("demo/frontend/web", false)
            .contains(&tags(d)["web"])
    );
}

#[test]
fn a_failed_build_blocks_its_dependents_only() {
    if !infra::available("a_failed_build_blocks_its_dependents_only") {
        return;
    }
    let (reg, demo) = demo_on_registry(false);
    let d = demo.path();
    write(
        &d.join("images/base/Dockerfile"),
        "FROM scratch\nCOPY does-not-exist /x\n",
    );
    let cfg = infra::docker_config(None);
    let report = d.join("report.json");
    let o = infra::tagsmith(
        d,
        cfg.path(),
        &["build", "--push", "--report", report.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("base | ") && err.contains("does-not-exist"),
        "the engine's error is shown: {err}"
    );
    assert!(err.contains("1 failed, 2 blocked"), "{err}");
    let statuses = infra::statuses(&report);
    assert_eq!(statuses["base"], "failed");
    assert_eq!(statuses["api"], "blocked");
    assert_eq!(statuses["web"], "blocked");
    assert_eq!(statuses["worker"], "pushed", "independent builds go on");
    assert_eq!(reg.tags("demo/worker", false).len(), 1);
    assert!(reg.tags("demo/api", false).is_empty());
    assert!(
        stdout(&o).contains("blocked"),
        "the summary is printed: {}",
        stdout(&o)
    );
}

#[test]
fn the_image_holds_exactly_the_hashed_entries() {
    if !infra::available("the_image_holds_exactly_the_hashed_entries") {
        return;
    }
    let dir = single(Some("*.log\ncache\n!cache/keep\nsecrets\n!**/secrets-ok\n"));
    let d = dir.path();
    let ctx = d.join("ctx");
    for f in [
        "app.py",
        "debug.log",
        "cache/keep",
        "cache/drop",
        "secrets/key",
        "lib/deep/mod.py",
    ] {
        write(&ctx.join(f), f);
    }
    fs::create_dir(ctx.join("empty")).unwrap();
    std::os::unix::fs::symlink("app.py", ctx.join("link")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(ctx.join("app.py"), fs::Permissions::from_mode(0o700)).unwrap();
    let name = format!("tagsmith-test-export-{}", std::process::id());
    infra::use_registry(d, &format!("localhost/{name}"));
    let cfg = infra::docker_config(None);
    let o = infra::tagsmith(d, cfg.path(), &["build", "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));

    let image = format!("localhost/{name}/app:{}", tags(d)["app"]);
    let container = String::from_utf8(
        std::process::Command::new("docker")
            .args(["create", &image, "/none"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let container = container.trim();
    let export = std::process::Command::new("docker")
        .args(["export", container])
        .output()
        .unwrap();
    std::process::Command::new("docker")
        .args(["rm", container])
        .output()
        .unwrap();
    let mut archive = tar::Archive::new(export.stdout.as_slice());
    let mut got: Vec<(String, bool)> = Vec::new();
    for e in archive.entries().unwrap() {
        let e = e.unwrap();
        let path = e
            .path()
            .unwrap()
            .to_string_lossy()
            .trim_end_matches('/')
            .to_string();
        if let Some(rel) = path.strip_prefix("ctx/") {
            let exec = e.header().entry_type().is_file() && e.header().mode().unwrap() & 0o100 != 0;
            got.push((rel.to_string(), exec));
        }
    }
    got.sort();
    let v: serde_json::Value = serde_json::from_str(&ok(d, &["explain", "app", "--json"])).unwrap();
    let want: Vec<(String, bool)> = v["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["path"].as_str().unwrap().to_string(),
                i["executable"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got, want,
        "the image's /ctx is exactly the hashed entry list"
    );
    assert!(want.iter().any(|(p, _)| p == "cache/keep"));
    assert!(!want.iter().any(|(p, _)| p.starts_with("secrets")));
    assert!(want.contains(&("app.py".to_string(), true)));

    // Without --push, presence is checked in the local engine.
    let o = infra::tagsmith(d, cfg.path(), &["build", "--quiet"]);
    assert!(stdout(&o).contains("up-to-date"), "{}", stdout(&o));
    std::process::Command::new("docker")
        .args(["rmi", "--no-prune", &image])
        .output()
        .unwrap();
}

#[test]
fn build_args_carry_dependency_references() {
    if !infra::available("build_args_carry_dependency_references") {
        return;
    }
    let demo = demo();
    let d = demo.path();
    let name = format!("tagsmith-test-args-{}", std::process::id());
    infra::use_registry(d, &format!("localhost/{name}"));
    // A service that copies a file out of the base and records the args it got.
    // (The classic builder does not expand args in `COPY --from=`, so a stage is used.)
    write(
        &d.join("services/probe/Dockerfile"),
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE} AS base\nFROM scratch\nARG BASE_IMAGE\nARG BASE_TAG\nCOPY --from=base /etc/motd /motd\nLABEL probe.image=${BASE_IMAGE} probe.tag=${BASE_TAG}\n",
    );
    let cfg_path = d.join("tagsmith.yaml");
    fs::write(
        &cfg_path,
        fs::read_to_string(&cfg_path).unwrap() + "  probe:\n    context: services/probe\n",
    )
    .unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&ok(d, &["tags", "--format", "json", "probe"])).unwrap();
    assert_eq!(
        json["services"][0]["depends_on"],
        serde_json::json!(["base"]),
        "FROM ${{BASE_IMAGE}} infers the dependency"
    );
    let cfg = infra::docker_config(None);
    let o = infra::tagsmith(d, cfg.path(), &["build", "--quiet", "probe"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        status_line(&out, "base").contains("built") && status_line(&out, "probe").contains("built"),
        "{out}"
    );
    assert!(
        !out.contains("api"),
        "only the named service and its dependencies: {out}"
    );
    let image = format!("localhost/{name}/probe:{}", tags(d)["probe"]);
    let labels = std::process::Command::new("docker")
        .args(["inspect", "--format", "{{json .Config.Labels}}", &image])
        .output()
        .unwrap();
    let labels: serde_json::Value = serde_json::from_slice(&labels.stdout).unwrap();
    assert_eq!(labels["dev.tagsmith.tag"], tags(d)["probe"]);
    assert_eq!(
        labels["probe.tag"],
        tags(d)["base"],
        "BASE_TAG carries the base's tag"
    );
    assert_eq!(
        labels["probe.image"],
        format!("localhost/{name}/base:{}", tags(d)["base"]),
        "BASE_IMAGE its reference"
    );
    for img in [image, format!("localhost/{name}/base:{}", tags(d)["base"])] {
        std::process::Command::new("docker")
            .args(["rmi", "--no-prune", &img])
            .output()
            .unwrap();
    }
}

#[test]
fn credentials_come_from_the_docker_config_and_never_leak() {
    if !infra::available("credentials_come_from_the_docker_config_and_never_leak") {
        return;
    }
    let (reg, demo) = demo_on_registry(true);
    let d = demo.path();
    let report = d.join("report.json");

    // No credentials: one clear message naming the registry and `docker login`.
    let anonymous = infra::docker_config(None);
    let o = infra::tagsmith(d, anonymous.path(), &["build", "--push", "worker"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains(&reg.host()) && err.contains("docker login"),
        "{err}"
    );

    // With credentials in config.json, the HEAD check and the push both work.
    let authed = infra::docker_config(Some(&reg.host()));
    let o = infra::tagsmith(
        d,
        authed.path(),
        &["build", "--push", "--report", report.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(reg.tags("demo/worker", true), [tags(d)["worker"].clone()]);
    let o2 = infra::tagsmith(d, authed.path(), &["build", "--push"]);
    assert!(
        stdout(&o2)
            .lines()
            .skip(1)
            .all(|l| l.contains("up-to-date")),
        "{}",
        stdout(&o2)
    );
    for text in [
        stdout(&o),
        stderr(&o),
        stdout(&o2),
        stderr(&o2),
        fs::read_to_string(&report).unwrap(),
    ] {
        assert!(!text.contains(infra::PASSWORD), "the password leaked");
        assert!(
            !text.contains(&infra::base64(&format!(
                "{}:{}",
                infra::USER,
                infra::PASSWORD
            ))),
            "the auth string leaked"
        );
    }

    // A wrong password: the registry is named, the password is not printed.
    let wrong = tempfile::tempdir().unwrap();
    fs::write(
        wrong.path().join("config.json"),
        format!(
            "{{\"auths\":{{\"{}\":{{\"auth\":\"{}\"}}}}}}",
            reg.host(),
            infra::base64("tagsmith:wrong-secret-123")
        ),
    )
    .unwrap();
    let o = infra::tagsmith(d, wrong.path(), &["build", "--push", "--dry-run"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("refused the configured credentials") && err.contains("docker login"),
        "{err}"
    );
    assert!(!err.contains("wrong-secret-123"));
}

#[test]
fn render_fills_digests_from_the_registry_or_a_report() {
    if !infra::available("render_fills_digests_from_the_registry_or_a_report") {
        return;
    }
    let (reg, demo) = demo_on_registry(false);
    let d = demo.path();
    write(
        &d.join("t/pinned.yaml"),
        "image: << pinned \"worker\" >>\ndigest: << digest \"worker\" >>\n",
    );
    let cfg = infra::docker_config(None);

    // Not pushed yet: a clear error per action.
    let o = infra::tagsmith(d, cfg.path(), &["render", "t"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("t/pinned.yaml:1:8:") && stderr(&o).contains("build --push"),
        "{}",
        stderr(&o)
    );

    let report = d.join("report.json");
    let o = infra::tagsmith(
        d,
        cfg.path(),
        &[
            "build",
            "--push",
            "--quiet",
            "worker",
            "--report",
            report.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&fs::read_to_string(&report).unwrap()).unwrap();
    let digest = v["services"][0]["digest"].as_str().unwrap().to_string();
    let tag = &tags(d)["worker"];
    let want = format!(
        "image: {}/demo/worker:{tag}@{digest}\ndigest: {digest}\n",
        reg.host()
    );

    let o = infra::tagsmith(d, cfg.path(), &["render", "t"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), want, "from the registry");
    drop(reg);
    let o = infra::tagsmith(
        d,
        cfg.path(),
        &["render", "t", "--report", report.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), want, "offline, from the report");
}

#[test]
fn an_unreachable_engine_is_one_clear_error() {
    let demo = demo();
    let cfg = infra::docker_config(None);
    let o = std::process::Command::new(bin())
        .args(["build", "--quiet"])
        .current_dir(demo.path())
        .env("DOCKER_CONFIG", cfg.path())
        .env("DOCKER_HOST", "tcp://127.0.0.1:1")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty());
    let err = stderr(&o);
    assert!(
        err.contains("cannot reach the Docker engine at tcp://127.0.0.1:1")
            && err.contains("DOCKER_HOST"),
        "{err}"
    );
}

/// The context tagsmith selects equals what the docker CLI sends, for ignore
/// files whose Docker semantics differ from the obvious reading. The CLI's
/// classic builder is used so that the image shows exactly the context.
#[test]
fn context_selection_matches_the_docker_cli() {
    if !infra::available("context_selection_matches_the_docker_cli") {
        return;
    }
    let cases = [
        "dir\n!dir/keep\n",
        "dir\n!**/keep\n",
        "dir\n!d*/keep\n",
        "*\n!sub\n",
        "**/keep\n",
        "sub/**\n!sub/dir\n",
        "*.txt\n!important.txt\n",
        "# comment\n./top\n/sub/other.txt\n",
        "[a-d]*\n",
        "**/*\n!**/*.md\n",
        "sub\n!sub/dir/keep\nsub/dir\n",
        "  notes.txt  \n! bin\nbin\n",
    ];
    for (i, rules) in cases.iter().enumerate() {
        let dir = single(Some(rules));
        let ctx = dir.path().join("ctx");
        for f in [
            "dir/keep",
            "dir/drop",
            "top",
            "sub/dir/keep",
            "sub/other.txt",
            "important.txt",
            "notes.txt",
            "a.md",
            "docs/b.md",
            "bin/tool",
        ] {
            write(&ctx.join(f), f);
        }
        fs::create_dir(ctx.join("empty")).unwrap();
        std::os::unix::fs::symlink("top", ctx.join("link")).unwrap();

        let image = format!("tagsmith-test-cli-{}-{i}", std::process::id());
        let o = std::process::Command::new("docker")
            .args(["build", "-q", "--no-cache", "-t", &image, "."])
            .current_dir(&ctx)
            .env("DOCKER_BUILDKIT", "0")
            .output()
            .unwrap();
        assert!(o.status.success(), "docker build: {}", stderr(&o));
        let container = String::from_utf8(
            std::process::Command::new("docker")
                .args(["create", &image, "/x"])
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap();
        let export = std::process::Command::new("docker")
            .args(["export", container.trim()])
            .output()
            .unwrap();
        std::process::Command::new("docker")
            .args(["rm", container.trim()])
            .output()
            .unwrap();
        std::process::Command::new("docker")
            .args(["rmi", "--no-prune", &image])
            .output()
            .unwrap();
        let mut docker: Vec<String> = tar::Archive::new(export.stdout.as_slice())
            .entries()
            .unwrap()
            .map(|e| {
                e.unwrap()
                    .path()
                    .unwrap()
                    .to_string_lossy()
                    .trim_end_matches('/')
                    .to_string()
            })
            .filter_map(|p| p.strip_prefix("ctx/").map(str::to_string))
            .collect();
        // The engine itself drops the Dockerfile and .dockerignore when the
        // patterns exclude them; tagsmith hashes them always (Docker sends them).
        let special = |p: &String| p != "Dockerfile" && p != ".dockerignore";
        docker.retain(special);
        docker.sort();
        let mut ours = inputs(dir.path(), "app");
        ours.retain(special);
        assert_eq!(ours, docker, "rules {rules:?}");
    }
}

#[test]
fn an_unreachable_registry_is_retried_then_reported() {
    if !infra::available("an_unreachable_registry_is_retried_then_reported") {
        return;
    }
    // A port that nothing listens on: every attempt is refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let demo = demo();
    infra::use_registry(demo.path(), &format!("127.0.0.1:{port}/demo"));
    let config = demo.path().join("tagsmith.yaml");
    let text = fs::read_to_string(&config).unwrap();
    fs::write(&config, format!("retry_deadline_seconds: 4\n{text}")).unwrap();
    let cfg = infra::docker_config(None);
    let start = std::time::Instant::now();
    let o = infra::tagsmith(
        demo.path(),
        cfg.path(),
        &["build", "--push", "--dry-run", "worker"],
    );
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.contains("unknown (the check failed)"),
        "reported for the service: {out}"
    );
    let err = stderr(&o);
    assert!(err.contains("tagsmith: worker: registry"), "{err}");
    assert!(
        err.contains(&format!("registry 127.0.0.1:{port}: checking"))
            && err.contains(" attempts: ")
            && err.contains("Connection refused"),
        "{err}"
    );
    let took = start.elapsed();
    assert!(
        took >= std::time::Duration::from_secs(2) && took < std::time::Duration::from_secs(10),
        "backoff until the deadline, then reported: {took:?}"
    );
}

#[test]
fn credential_helpers_are_used() {
    if !infra::available("credential_helpers_are_used") {
        return;
    }
    let (reg, demo) = demo_on_registry(true);
    let d = demo.path();
    // A credential helper speaking the docker-credential protocol: `get`
    // reads the server on stdin and answers with JSON.
    let bin_dir = tempfile::tempdir().unwrap();
    let helper = bin_dir.path().join("docker-credential-tagsmithtest");
    fs::write(
        &helper,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread server\nprintf '{{\"ServerURL\":\"%s\",\"Username\":\"{}\",\"Secret\":\"{}\"}}' \"$server\"\n",
            infra::USER,
            infra::PASSWORD
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&helper, fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.path().display(),
        std::env::var("PATH").unwrap()
    );
    for config in [
        "{\"credsStore\": \"tagsmithtest\"}".to_string(),
        format!(
            "{{\"credHelpers\": {{\"{}\": \"tagsmithtest\"}}}}",
            reg.host()
        ),
    ] {
        let cfg = tempfile::tempdir().unwrap();
        fs::write(cfg.path().join("config.json"), &config).unwrap();
        let o = std::process::Command::new(bin())
            .args(["build", "--push", "--quiet", "worker"])
            .current_dir(d)
            .env("DOCKER_CONFIG", cfg.path())
            .env("PATH", &path)
            .output()
            .unwrap();
        assert!(o.status.success(), "{config}: {}", stderr(&o));
        assert!(!stdout(&o).contains(infra::PASSWORD) && !stderr(&o).contains(infra::PASSWORD));
    }
    assert_eq!(reg.tags("demo/worker", true), [tags(d)["worker"].clone()]);
}
