//! Pushes against a real registry: two CI jobs pushing the same project at
//! once, and `--force`.

mod common;

use std::process::{Command, Stdio};

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
/// every service the digest the registry holds for its tag. (Pushing the
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
    let mut overwritten = Vec::new();
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
            if history.len() > 1 {
                overwritten.push(format!("round {round}: {repo}:{tag}: {history:?}"));
            }
        }
    }
    eprintln!(
        "tags a second run pushed over (same content, another image): {}",
        if overwritten.is_empty() {
            "none".to_string()
        } else {
            overwritten.join("; ")
        }
    );
}
