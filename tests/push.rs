//! Pushes against a real registry: two CI jobs pushing the same project at
//! once, and `--force`.

mod common;

use std::process::{Command, Stdio};

use common::faults::{self, Fault, FaultProxy, Rule};
use common::infra::{self, Registry};
use common::*;

const REPOS: [(&str, &str); 4] = [
    ("base", "demo/base"),
    ("api", "demo/api"),
    ("web", "demo/frontend/web"),
    ("worker", "demo/worker"),
];

/// Two `build --push` of the same project started at once (two CI jobs),
/// three times over (each round changes a file of three services): both
/// exit 0, the registry keeps one tag per repository, and both reports give
/// every service the digest the registry holds for its tag, the only one
/// the tag ever had (one engine builds both runs' images alike). (Pushing the
/// same layers at once, the registry sometimes answers a manifest PUT with
/// MANIFEST_BLOB_UNKNOWN or a 500 while the other push commits a blob: 3 of
/// 90 runs failed so before such pushes were retried.)
#[test]
fn two_runs_at_once_both_succeed_and_agree() {
    if !infra::available("two_runs_at_once_both_succeed_and_agree") {
        return;
    }
    let reg = Registry::start(false);
    let _images = infra::ImagesOf(reg.host());
    let demo = demo();
    let d = demo.path();
    infra::use_registry(d, &format!("{}/demo", reg.host()));
    let cfg = infra::docker_config(None);
    let mut statuses = Vec::new();
    for round in 0..3 {
        for file in [
            "images/base/etc/motd",
            "services/worker/worker.yaml",
            "services/web/dist/index.html",
        ] {
            write(&d.join(file), &format!("round {round}\n"));
        }
        let tags = tags(d);
        let start = |name: &str| {
            Command::new(bin())
                .args(["build", "--push", "--quiet", "--report"])
                .arg(d.join(name))
                .current_dir(d)
                .env("DOCKER_CONFIG", cfg.path())
                .env("TAGSMITH_CACHE_DIR", cache_dir())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (a, b) = (start("a.json"), start("b.json"));
        for (job, child) in [("a", a), ("b", b)] {
            let o = child.wait_with_output().unwrap();
            assert!(
                o.status.success(),
                "round {round}, job {job}: {}\n{}",
                stdout(&o),
                stderr(&o)
            );
        }
        let reports: Vec<_> = ["a.json", "b.json"]
            .iter()
            .map(|f| std::fs::read_to_string(d.join(f)).unwrap())
            .collect();
        for (name, repo) in REPOS {
            let tag = &tags[name];
            let stored = reg.stored(repo, tag);
            assert!(stored.is_some(), "round {round}: {repo}:{tag} is there");
            for (job, report) in ["a", "b"].iter().zip(&reports) {
                assert_eq!(
                    by_name(report, "digest").get(name),
                    stored.as_ref(),
                    "round {round}, job {job}: {name}'s digest is the registry's"
                );
                let status = &by_name(report, "status")[name];
                assert!(
                    status == "pushed" || status == "up-to-date",
                    "round {round}, job {job}: {name} {status}"
                );
            }
            assert_eq!(
                reg.tags(repo, false).len(),
                round + 1,
                "round {round}: one tag more in {repo}"
            );
            let history = reg.tag_history(repo, tag);
            assert_eq!(
                history,
                [stored.clone().unwrap()],
                "round {round}: {repo}:{tag} only ever had one manifest"
            );
            let pushed = reports
                .iter()
                .filter(|r| by_name(r, "status")[name] == "pushed")
                .count();
            statuses.push(pushed);
        }
    }
    eprintln!(
        "services reported pushed by both runs (the same manifest, pushed twice): {} of {}",
        statuses.iter().filter(|&&n| n == 2).count(),
        statuses.len()
    );
}

/// Pushes another image under `image`'s tag straight to the registry
/// (not through the proxy), as another CI job would: its digest.
fn push_another(reg: &Registry, repo: &str, tag: &str) -> String {
    let other = format!("{}/{repo}:{tag}", reg.host());
    let ok = |args: &[&str]| {
        let o = Command::new("docker").args(args).output().unwrap();
        assert!(o.status.success(), "docker {args:?}: {}", stderr(&o));
    };
    ok(&["tag", infra::busybox(), &other]);
    ok(&["push", &other]);
    ok(&["rmi", "--no-prune", &other]);
    reg.stored(repo, tag).unwrap()
}

/// Waits until the proxy holds a delayed request to `path`.
fn wait_for_delay(proxy: &FaultProxy, mark: usize, path: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !proxy
        .since(mark)
        .iter()
        .any(|e| e.fault.as_deref() == Some("delay") && e.path.contains(path))
    {
        assert!(std::time::Instant::now() < deadline, "no delayed {path}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Another run pushes the tag while this one builds (between its plan and
/// its push): this run does not push over it and reports the tag
/// up-to-date with the registry's digest. Another run pushes right after
/// this one (before its confirmation): `pushed` is not claimed, the
/// registry's digest is reported.
#[test]
fn a_tag_another_run_pushes_meanwhile_is_left_alone_and_reported() {
    if !faults::available("a_tag_another_run_pushes_meanwhile_is_left_alone_and_reported") {
        return;
    }
    let reg = Registry::start(false);
    let proxy = FaultProxy::start(&reg.host());
    let _images = infra::ImagesOf(proxy.host());
    let _direct = infra::ImagesOf(reg.host());
    let demo = demo();
    let d = demo.path();
    infra::use_registry(d, &format!("{}/demo", proxy.host()));
    let cfg = infra::docker_config(None);
    let report = d.join("report.json");

    for (case, skip) in [("before the push", 1), ("after the push", 2)] {
        write(
            &d.join("services/worker/worker.yaml"),
            &format!("case: {case}\n"),
        );
        let tag = tags(d)["worker"].clone();
        let path = format!("/v2/demo/worker/manifests/{tag}");
        // tagsmith's HEADs of the tag: the plan's, the one before the push,
        // the confirmation after it. One of them waits while another run pushes.
        proxy.rules(&[Rule::new("HEAD", format!("^{path}$"), Fault::Delay(2.0))
            .skip(skip)
            .times(1)]);
        let mark = proxy.mark();
        let child = Command::new(bin())
            .args(["build", "--push", "--report"])
            .arg(&report)
            .arg("worker")
            .current_dir(d)
            .env("DOCKER_CONFIG", cfg.path())
            .env("TAGSMITH_CACHE_DIR", cache_dir())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_for_delay(&proxy, mark, &path);
        let theirs = push_another(&reg, "demo/worker", &tag);
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success(), "{case}: {}", stderr(&o));
        let log = proxy.since(mark);
        let puts = log
            .iter()
            .filter(|e| e.method == "PUT" && e.path == path)
            .count();
        assert_eq!(infra::statuses(&report)["worker"], "up-to-date", "{case}");
        assert_eq!(
            by_name(&std::fs::read_to_string(&report).unwrap(), "digest")["worker"],
            theirs,
            "{case}: the registry's digest"
        );
        match case {
            "before the push" => {
                assert_eq!(puts, 0, "not pushed over: {}", faults::show(&log));
                assert_eq!(reg.tag_history("demo/worker", &tag), [theirs.as_str()]);
                assert!(stderr(&o).contains("another run"), "{}", stderr(&o));
            }
            _ => {
                assert_eq!(puts, 1, "{}", faults::show(&log));
                assert!(
                    stderr(&o).contains("another run pushed this tag at the same time"),
                    "{}",
                    stderr(&o)
                );
            }
        }
    }
}

/// `--force` builds and pushes even when the tag is present (README): the
/// check right before the push (for tags another run pushed meanwhile)
/// must not turn it into "up-to-date".
#[test]
fn force_pushes_even_when_the_tag_is_present() {
    if !infra::available("force_pushes_even_when_the_tag_is_present") {
        return;
    }
    let reg = Registry::start(false);
    let _images = infra::ImagesOf(reg.host());
    let demo = demo();
    let d = demo.path();
    infra::use_registry(d, &format!("{}/demo", reg.host()));
    let cfg = infra::docker_config(None);
    let report = d.join("report.json");
    let build = |extra: &[&str]| {
        let mut args = vec!["build", "--push", "--quiet", "--report"];
        args.push(report.to_str().unwrap());
        args.extend_from_slice(extra);
        let o = infra::tagsmith(d, cfg.path(), &args);
        assert!(o.status.success(), "{extra:?}: {}", stderr(&o));
        infra::statuses(&report)["worker"].clone()
    };
    assert_eq!(build(&["worker"]), "pushed");
    assert_eq!(build(&["worker"]), "up-to-date");
    assert_eq!(build(&["--force", "--no-cache", "worker"]), "pushed");
    let tag = tags(d)["worker"].clone();
    let digest = by_name(&std::fs::read_to_string(&report).unwrap(), "digest")["worker"].clone();
    assert_eq!(reg.stored("demo/worker", &tag), Some(digest));
}
