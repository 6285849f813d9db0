//! `plan` against a real registry: which services a CI run must build, in
//! waves, in every output format, parsed back; then the waves built one
//! after another as CI runners would, until nothing is missing.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use common::infra::{self, Registry};
use common::tools::{Built, images};
use common::*;

/// The demo plus `edge`, built on `api`: a chain base → api → edge.
fn chain_on_registry() -> (Registry, tempfile::TempDir) {
    let reg = Registry::start(false);
    let demo = demo();
    let d = demo.path();
    infra::use_registry(d, &format!("{}/demo", reg.host()));
    let config = std::fs::read_to_string(d.join("tagsmith.yaml")).unwrap();
    std::fs::write(
        d.join("tagsmith.yaml"),
        config + "  edge:\n    context: services/edge\n",
    )
    .unwrap();
    write(
        &d.join("services/edge/Dockerfile"),
        "ARG API_IMAGE\nFROM ${API_IMAGE}\nCOPY edge.conf /etc/edge.conf\n",
    );
    write(&d.join("services/edge/edge.conf"), "listen 443\n");
    (reg, demo)
}

/// Runs tagsmith with an anonymous docker config and, if given, `$GITHUB_OUTPUT`.
fn tagsmith(d: &Path, cfg: &Path, github_output: Option<&Path>, args: &[&str]) -> String {
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .current_dir(d)
        .env("DOCKER_CONFIG", cfg)
        .env_remove("GITHUB_OUTPUT");
    if let Some(file) = github_output {
        cmd.env("GITHUB_OUTPUT", file);
    }
    let o = cmd.output().unwrap();
    assert!(
        o.status.success(),
        "tagsmith {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// The three formats of one plan, each parsed back.
struct Plan {
    text: Vec<Vec<String>>,
    json: serde_json::Value,
    github: BTreeMap<String, String>,
}

impl Plan {
    fn waves(&self) -> Vec<Vec<String>> {
        serde_json::from_value(self.json["waves"].clone()).unwrap()
    }

    /// `name -> (wave, needs)` from the JSON services.
    fn services(&self) -> BTreeMap<String, (u64, Vec<String>)> {
        self.json["services"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["name"].as_str().unwrap().to_string(),
                    (
                        s["wave"].as_u64().unwrap(),
                        serde_json::from_value(s["needs"].clone()).unwrap(),
                    ),
                )
            })
            .collect()
    }
}

fn plan(d: &Path, cfg: &Path, services: &[&str]) -> Plan {
    let with = |extra: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = vec!["plan".into()];
        args.extend(services.iter().map(|s| s.to_string()));
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let run = |args: Vec<String>, out: Option<&Path>| {
        tagsmith(
            d,
            cfg,
            out,
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        )
    };

    // text: `wave <i>: <names>`, or one line saying there is nothing to build.
    let text_out = run(with(&[]), None);
    let text: Vec<Vec<String>> = if text_out == "nothing to build: every tag is in the registry\n" {
        Vec::new()
    } else {
        text_out
            .lines()
            .enumerate()
            .map(|(i, line)| {
                let rest = line
                    .strip_prefix(&format!("wave {i}: "))
                    .unwrap_or_else(|| panic!("line {i} of {text_out:?}"));
                rest.split(' ').map(String::from).collect()
            })
            .collect()
    };

    let json: serde_json::Value =
        serde_json::from_str(&run(with(&["--format", "json"]), None)).unwrap();
    assert_eq!(json["version"], 1);

    // github: appended to $GITHUB_OUTPUT after what is there; nothing on stdout.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("github_output");
    std::fs::write(&file, "earlier=step\n").unwrap();
    let stdout = run(with(&["--format", "github"]), Some(&file));
    assert_eq!(stdout, "", "github format prints nothing");
    let written = std::fs::read_to_string(&file).unwrap();
    assert!(written.starts_with("earlier=step\n"), "appended: {written}");
    let github: BTreeMap<String, String> = written
        .lines()
        .skip(1)
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect();

    let plan = Plan { text, json, github };
    // The formats agree.
    let waves = plan.waves();
    assert_eq!(plan.text, waves, "text and json");
    assert_eq!(plan.github["waves"], waves.len().to_string());
    assert_eq!(plan.github["any"], (!waves.is_empty()).to_string());
    for i in 0..waves.len().max(5) {
        let listed: Vec<String> = serde_json::from_str(&plan.github[&format!("wave{i}")]).unwrap();
        assert_eq!(listed, waves.get(i).cloned().unwrap_or_default(), "wave{i}");
    }
    assert_eq!(
        plan.github.len(),
        2 + waves.len().max(5),
        "waves=, wave0.. and any= only: {:?}",
        plan.github
    );
    for (i, wave) in waves.iter().enumerate() {
        for name in wave {
            assert_eq!(plan.services()[name].0, i as u64, "{name}'s wave");
        }
    }
    plan
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn waves_of_missing_services_in_every_format() {
    if !infra::available("waves_of_missing_services_in_every_format") {
        return;
    }
    let (reg, demo) = chain_on_registry();
    let d = demo.path();
    let cfg = infra::docker_config(None);
    let _built = Built::new(images(d));
    let all = by_name(&ok(d, &["tags", "--format", "json"]), "image");

    // An empty registry: everything, in dependency order.
    let p = plan(d, cfg.path(), &[]);
    assert_eq!(
        p.waves(),
        vec![
            names(&["base", "worker"]),
            names(&["api", "web"]),
            names(&["edge"])
        ]
    );
    let services = p.services();
    assert_eq!(services["api"], (1, names(&["base"])));
    assert_eq!(services["edge"], (2, names(&["api"])));
    assert_eq!(services["worker"], (0, vec![]));
    for s in p.json["services"].as_array().unwrap() {
        let name = s["name"].as_str().unwrap();
        assert_eq!(s["image"].as_str().unwrap(), all[name]);
        assert!(all[name].ends_with(&format!(":{}", s["tag"].as_str().unwrap())));
    }

    // base and worker are pushed: a present dependency does not count, so
    // api (on base) is in wave 0 and edge (on api) in wave 1.
    tagsmith(
        d,
        cfg.path(),
        None,
        &["build", "--push", "--quiet", "base", "worker"],
    );
    assert_eq!(reg.tags("demo/base", false).len(), 1);
    let p = plan(d, cfg.path(), &[]);
    assert_eq!(p.waves(), vec![names(&["api", "web"]), names(&["edge"])]);
    assert_eq!(p.services()["api"], (0, vec![]));
    assert_eq!(p.services()["edge"], (1, names(&["api"])));
    assert_eq!(p.github["wave2"], "[]");
    assert_eq!(p.github["wave4"], "[]");

    // Naming services plans them and their missing dependencies only.
    let p = plan(d, cfg.path(), &["edge"]);
    assert_eq!(p.waves(), vec![names(&["api"]), names(&["edge"])]);
    let p = plan(d, cfg.path(), &["worker"]);
    assert!(p.waves().is_empty());
    assert_eq!(p.github["any"], "false");
    assert_eq!(p.github["waves"], "0");
    assert_eq!(p.github["wave0"], "[]");

    // CI: one runner per service of each wave, waves in order; each finds
    // the earlier waves' images in the registry. Then nothing is missing.
    let waves = plan(d, cfg.path(), &[]).waves();
    assert_eq!(waves, vec![names(&["api", "web"]), names(&["edge"])]);
    for wave in waves {
        for service in wave {
            let report = d.join(format!("report-{service}.json"));
            tagsmith(
                d,
                cfg.path(),
                None,
                &[
                    "build",
                    "--push",
                    "--quiet",
                    "--report",
                    report.to_str().unwrap(),
                    &service,
                ],
            );
            assert_eq!(infra::statuses(&report)[&service], "pushed", "{service}");
        }
    }
    let p = plan(d, cfg.path(), &[]);
    assert!(p.waves().is_empty(), "{:?}", p.waves());
    assert!(p.text.is_empty());
    for (name, image) in &all {
        let (repo, tag) = image.rsplit_once(':').unwrap();
        let path = repo.split_once('/').unwrap().1;
        assert_eq!(reg.tags(path, false), [tag.to_string()], "{name}");
    }
}

#[test]
fn github_format_needs_github_output() {
    let demo = demo();
    let err = fails(demo.path(), &["plan", "--format", "github"]);
    assert!(err.contains("GITHUB_OUTPUT"), "{err}");
}

#[test]
fn an_unknown_service_is_named() {
    let demo = demo();
    let err = fails(demo.path(), &["plan", "apj"]);
    assert!(err.contains("unknown service \"apj\""), "{err}");
    assert!(err.contains("did you mean \"api\""), "{err}");
}

#[test]
fn build_dry_run_json_parses_back() {
    if !infra::available("build_dry_run_json_parses_back") {
        return;
    }
    let (reg, demo) = chain_on_registry();
    let d = demo.path();
    let cfg = infra::docker_config(None);
    let _built = Built::new(images(d));
    tagsmith(d, cfg.path(), None, &["build", "--push", "--quiet", "base"]);
    let all = by_name(&ok(d, &["tags", "--format", "json"]), "image");

    let out = tagsmith(
        d,
        cfg.path(),
        None,
        &["build", "--push", "--dry-run", "--format", "json"],
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["version"], 1);
    let steps = v["services"].as_array().unwrap();
    // In build order, dependencies first.
    let order: Vec<&str> = steps.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(order, ["base", "api", "edge", "web", "worker"]);
    for s in steps {
        let name = s["name"].as_str().unwrap();
        assert_eq!(s["image"].as_str().unwrap(), all[name]);
        assert!(all[name].ends_with(&format!(":{}", s["tag"].as_str().unwrap())));
        if name == "base" {
            assert_eq!(s["action"], "up-to-date");
            assert!(s["reason"].is_null());
        } else {
            assert_eq!(s["action"], "build", "{name}");
            assert_eq!(s["reason"], "not in registry", "{name}");
        }
    }
    // Agrees with the text form, and pushes nothing.
    let text = tagsmith(d, cfg.path(), None, &["build", "--push", "--dry-run"]);
    assert_eq!(text.lines().count(), steps.len());
    assert!(reg.tags("demo/api", false).is_empty());
    assert!(!d.join("report.json").exists());

    // Without --push, presence is the local engine's.
    let out = tagsmith(
        d,
        cfg.path(),
        None,
        &["build", "--dry-run", "--format", "json", "worker"],
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["services"][0]["action"], "build");
    assert_eq!(v["services"][0]["reason"], "not in the local engine");
}

#[test]
fn build_format_json_needs_dry_run() {
    let demo = demo();
    let o = run(demo.path(), &["build", "--format", "json"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--dry-run"), "{}", stderr(&o));
}

#[test]
fn a_registry_that_cannot_be_asked_gives_no_plan() {
    // A port that nothing listens on: every check is refused, retried until
    // the deadline, and then the run fails without a partial plan.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let demo = demo();
    let d = demo.path();
    infra::use_registry(d, &format!("127.0.0.1:{port}/demo"));
    let config = std::fs::read_to_string(d.join("tagsmith.yaml")).unwrap();
    std::fs::write(
        d.join("tagsmith.yaml"),
        format!("retry_deadline_seconds: 1\n{config}"),
    )
    .unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let output = scratch.path().join("github_output");
    for format in ["text", "json", "github"] {
        let o = Command::new(bin())
            .args(["plan", "--format", format])
            .current_dir(d)
            .env("DOCKER_CONFIG", scratch.path())
            .env("GITHUB_OUTPUT", &output)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{format}");
        assert!(o.stdout.is_empty(), "{format}: {}", stdout(&o));
        let err = stderr(&o);
        assert!(
            err.trim_end().ends_with(
                "problems, no plan: the registry could not be asked about every service"
            ),
            "{err}"
        );
        for service in ["api", "base", "web", "worker"] {
            assert!(err.contains(&format!("{service}: registry")), "{err}");
        }
    }
    assert!(!output.exists(), "nothing appended to $GITHUB_OUTPUT");
}

#[test]
fn more_than_five_waves_are_all_written_for_github() {
    if !infra::available("more_than_five_waves_are_all_written_for_github") {
        return;
    }
    // s0 ← s1 ← … ← s6, all missing: seven waves of one service each.
    let reg = Registry::start(false);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut config = format!("registry: {}/chain\nservices:\n", reg.host());
    for i in 0..7 {
        config.push_str(&format!("  s{i}:\n    context: s{i}\n"));
        let from = if i == 0 {
            "FROM scratch\n".to_string()
        } else {
            format!("ARG S{}_IMAGE\nFROM ${{S{}_IMAGE}}\n", i - 1, i - 1)
        };
        write(&d.join(format!("s{i}/Dockerfile")), &from);
    }
    write(&d.join("tagsmith.yaml"), &config);
    let cfg = infra::docker_config(None);
    let p = plan(d, cfg.path(), &[]);
    assert_eq!(p.waves().len(), 7);
    assert_eq!(p.github["waves"], "7");
    assert_eq!(p.github["wave6"], "[\"s6\"]");
    assert_eq!(p.services()["s6"], (6, names(&["s5"])));
}
