//! Tags of any commit from git (`--rev`), equal to a checkout's, and
//! `cleanup` keeping what history and deployments need.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::infra::{self, Registry};
use common::*;

fn git(dir: &Path, args: &[&str]) -> String {
    let o = Command::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "-c",
            "init.defaultBranch=main",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

fn commit(dir: &Path, message: &str) -> String {
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "--allow-empty", "-m", message]);
    git(dir, &["rev-parse", "HEAD"])
}

/// A repository whose history adds, deletes, renames, changes modes and
/// symlinks, edits an ignore file and changes a base image.
fn repository() -> (tempfile::TempDir, Vec<String>) {
    let repo = demo();
    let d = repo.path();
    git(d, &["init", "-q"]);
    let mut commits = vec![commit(d, "demo")];
    type Step = Box<dyn Fn(&Path)>;
    let steps: Vec<(&str, Step)> = vec![
        (
            "add",
            Box::new(|d| write(&d.join("services/api/src/new.py"), "new = 1\n")),
        ),
        (
            "delete",
            Box::new(|d| fs::remove_file(d.join("services/api/src/new.py")).unwrap()),
        ),
        (
            "rename",
            Box::new(|d| {
                fs::rename(
                    d.join("services/api/config/app.yaml"),
                    d.join("services/api/config/main.yaml"),
                )
                .unwrap()
            }),
        ),
        (
            "mode",
            Box::new(|d| {
                use std::os::unix::fs::PermissionsExt;
                fs::set_permissions(
                    d.join("services/api/config/main.yaml"),
                    fs::Permissions::from_mode(0o755),
                )
                .unwrap()
            }),
        ),
        (
            "symlink",
            Box::new(|d| {
                std::os::unix::fs::symlink("main.yaml", d.join("services/api/config/link.yaml"))
                    .unwrap()
            }),
        ),
        (
            "symlink target",
            Box::new(|d| {
                fs::remove_file(d.join("services/api/config/link.yaml")).unwrap();
                std::os::unix::fs::symlink("../src", d.join("services/api/config/link.yaml"))
                    .unwrap()
            }),
        ),
        (
            "ignore edit",
            Box::new(|d| {
                let p = d.join("services/api/.dockerignore");
                fs::write(&p, fs::read_to_string(&p).unwrap() + "config/link.yaml\n").unwrap()
            }),
        ),
        (
            "ignored file",
            Box::new(|d| write(&d.join("services/api/trace.log"), "noise\n")),
        ),
        (
            "base image",
            Box::new(|d| {
                let p = d.join("images/base/Dockerfile");
                fs::write(&p, fs::read_to_string(&p).unwrap() + "ENV BASE_VERSION=2\n").unwrap()
            }),
        ),
        (
            "outside dockerfile",
            Box::new(|d| {
                let p = d.join("build/web.Dockerfile");
                fs::write(&p, fs::read_to_string(&p).unwrap() + "# edited\n").unwrap()
            }),
        ),
        (
            "outside ignore file",
            // Docker reads <Dockerfile>.dockerignore in place of the
            // context's: the context's tree is unchanged, its selection not.
            Box::new(|d| write(&d.join("build/web.Dockerfile.dockerignore"), "src\n")),
        ),
        (
            "outside ignore edit",
            Box::new(|d| {
                write(
                    &d.join("build/web.Dockerfile.dockerignore"),
                    "src\ndist/index.html\n",
                )
            }),
        ),
    ];
    for (message, step) in steps {
        step(d);
        commits.push(commit(d, message));
    }
    (repo, commits)
}

#[test]
fn tags_at_every_commit_equal_a_checkouts() {
    let (repo, commits) = repository();
    let d = repo.path();
    let status = git(d, &["status", "--porcelain"]);
    let mut seen = std::collections::BTreeSet::new();
    for (i, c) in commits.iter().enumerate() {
        let from_git = by_name(&ok(d, &["tags", "--format", "json", "--rev", c]), "tag");
        let checkout = tempfile::tempdir().unwrap();
        let wt = checkout.path().join("wt");
        git(
            d,
            &["worktree", "add", "-q", "--detach", wt.to_str().unwrap(), c],
        );
        let from_checkout = tags(&wt);
        git(d, &["worktree", "remove", "--force", wt.to_str().unwrap()]);
        assert_eq!(from_git, from_checkout, "commit {i} ({c})");
        seen.insert(from_git["api"].clone());
    }
    assert!(seen.len() >= 8, "the history changes api's tag: {seen:?}");
    assert_eq!(
        git(d, &["status", "--porcelain"]),
        status,
        "the working tree and index are untouched"
    );
    // graph and explain read the commit too.
    let first = &commits[0];
    assert!(ok(d, &["graph", "--rev", first]).contains("api"));
    let explained = ok(d, &["explain", "api", "--rev", first]);
    assert!(explained.contains("config/app.yaml"), "{explained}");
    // explain --against a revision names what changed since.
    let diff = ok(d, &["explain", "api", "--against", &commits[3]]);
    assert!(
        diff.contains("config/app.yaml") || diff.contains("config/main.yaml"),
        "{diff}"
    );
}

#[test]
fn an_explicit_config_from_the_working_tree_is_resolved_in_the_commit() {
    let (repo, commits) = repository();
    let d = repo.path();
    // A config not committed yet, naming only worker.
    write(
        &d.join("other.yaml"),
        "registry: r.example/t\nservices:\n  worker:\n    context: .\n    dockerfile: build/worker.Dockerfile\n",
    );
    let at_first = ok(
        d,
        &[
            "--config",
            "other.yaml",
            "tags",
            "--rev",
            &commits[0],
            "--format",
            "json",
        ],
    );
    let now = ok(d, &["--config", "other.yaml", "tags", "--format", "json"]);
    assert_eq!(by_name(&at_first, "tag").len(), 1);
    // worker's files did not change in the history: same tag.
    assert_eq!(by_name(&at_first, "tag"), by_name(&now, "tag"));
}

#[test]
fn submodules_and_lfs_pointers_in_a_context_are_errors() {
    let (repo, _) = repository();
    let d = repo.path();
    write(
        &d.join("services/api/model.bin"),
        "version https://git-lfs.github.com/spec/v1\noid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 12345\n",
    );
    let c = commit(d, "lfs pointer");
    let err = fails(d, &["tags", "--rev", &c]);
    assert!(
        err.contains("services/api/model.bin") && err.contains("Git LFS pointer"),
        "{err}"
    );
    fs::remove_file(d.join("services/api/model.bin")).unwrap();
    git(d, &["add", "-A"]);
    // A gitlink (submodule) entry, made with plumbing.
    let sub = git(d, &["rev-parse", "HEAD"]);
    git(
        d,
        &[
            "update-index",
            "--add",
            "--cacheinfo",
            &format!("160000,{sub},services/api/vendor"),
        ],
    );
    git(d, &["commit", "-q", "-m", "submodule"]);
    let c = git(d, &["rev-parse", "HEAD"]);
    let err = fails(d, &["tags", "--rev", &c]);
    assert!(
        err.contains("services/api/vendor") && err.contains("submodule"),
        "{err}"
    );
    // Unknown revisions are one clear error.
    let err = fails(d, &["tags", "--rev", "no-such-branch"]);
    assert!(err.contains("--rev no-such-branch"), "{err}");
}

/// 12 commits, each changing api; every commit's images pushed.
#[test]
fn one_process_over_the_history_equals_each_commits_own_run() {
    // cleanup walks many commits in one process, reusing the walk of a
    // context whose tree and ignore rules did not change: each commit's
    // tags must still be exactly what `tags --rev` computes alone.
    let (repo, commits) = repository();
    let d = repo.path();
    let head = tagsmith::tree::Commit::open(d, "HEAD").unwrap();
    let ids = head.history("HEAD", commits.len()).unwrap();
    assert_eq!(ids.len(), commits.len());
    let mut web = std::collections::BTreeSet::new();
    for id in ids {
        let hex = id.to_string();
        let project =
            tagsmith::project::Project::at_commit(None, d, head.sibling(id).unwrap()).unwrap();
        let order = project.select(&[]).unwrap();
        let shared: std::collections::BTreeMap<String, String> = project
            .hash(&order)
            .unwrap()
            .into_iter()
            .map(|(name, h)| (name, h.tag))
            .collect();
        let alone = by_name(&ok(d, &["tags", "--format", "json", "--rev", &hex]), "tag");
        assert_eq!(shared, alone, "commit {hex}");
        web.insert(shared["web"].clone());
    }
    assert!(
        web.len() >= 3,
        "the outside ignore file changes web's tag: {web:?}"
    );
}

#[test]
fn digests_kept_between_runs_that_are_corrupt_or_cut_short_are_ignored() {
    // `--rev` keeps blob digests and service digests in the cache
    // directory; a damaged file must cost speed only, never a wrong tag.
    let (repo, commits) = repository();
    let d = repo.path();
    let cache = tempfile::tempdir().unwrap();
    let tags_in = |cache: &Path, c: &String| {
        let o = Command::new(bin())
            .args(["tags", "--format", "json", "--rev", c])
            .current_dir(d)
            .env("TAGSMITH_CACHE_DIR", cache)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        by_name(&stdout(&o), "tag")
    };
    let tags_at = |c: &String| tags_in(cache.path(), c);
    let first: Vec<_> = commits.iter().map(tags_at).collect();
    let kept: Vec<_> = fs::read_dir(cache.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.starts_with("blobs-") || name.starts_with("digests-")
        })
        .collect();
    assert_eq!(kept.len(), 2, "{kept:?}");
    for (i, file) in kept.iter().enumerate() {
        let mut bytes = fs::read(file).unwrap();
        if i == 0 {
            let n = bytes.len();
            bytes[n / 2] ^= 0xff;
        } else {
            bytes.truncate(bytes.len() / 2);
        }
        fs::write(file, bytes).unwrap();
    }
    let again: Vec<_> = commits.iter().map(tags_at).collect();
    assert_eq!(first, again);
    // Against a repository's own runs without any kept file.
    let fresh = tempfile::tempdir().unwrap();
    assert_eq!(
        tags_in(fresh.path(), commits.last().unwrap()),
        *first.last().unwrap()
    );
}

fn pushed_history(
    reg: &Registry,
) -> (
    tempfile::TempDir,
    Vec<std::collections::BTreeMap<String, String>>,
) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        &d.join("tagsmith.yaml"),
        &format!(
            "registry: {}/h\nservices:\n  api:\n    context: api\n  worker:\n    context: worker\n",
            reg.host()
        ),
    );
    write(&d.join("api/Dockerfile"), "FROM scratch\nCOPY v /v\n");
    write(&d.join("worker/Dockerfile"), "FROM scratch\nCOPY w /w\n");
    write(&d.join("worker/w"), "w\n");
    git(d, &["init", "-q"]);
    let cfg = infra::docker_config(None);
    let mut all = Vec::new();
    for i in 0..12 {
        write(&d.join("api/v"), &format!("{i}\n"));
        commit(d, &format!("api {i}"));
        let o = infra::tagsmith(d, cfg.path(), &["build", "--push", "--quiet"]);
        assert!(o.status.success(), "{}", stderr(&o));
        all.push(tags(d));
    }
    (dir, all)
}

fn cleanup(d: &Path, args: &[&str]) -> std::process::Output {
    let cfg = infra::docker_config(None);
    let mut all = vec!["cleanup"];
    all.extend_from_slice(args);
    infra::tagsmith(d, cfg.path(), &all)
}

#[test]
fn cleanup_keeps_what_history_and_deployments_need() {
    if !infra::available("cleanup_keeps_what_history_and_deployments_need") {
        return;
    }
    let reg = Registry::start_with(false, true);
    let (dir, history) = pushed_history(&reg);
    let d = dir.path();
    let api_tags = |i: usize| history[i]["api"].clone();
    assert_eq!(reg.tags("h/api", false).len(), 12);
    // Deployments: one old tag listed in a file; a foreign tag; an old
    // content tag whose image is also under the foreign tag.
    let host = reg.host();
    write(
        &d.join("running.txt"),
        &format!("{host}/h/api:{}\n", api_tags(1)),
    );
    let shared = api_tags(2);
    let (media_type, body) = reg.manifest("h/api", &shared);
    assert_eq!(
        reg.put_manifest("h/api", "latest", &media_type, &body).0,
        201
    );

    // Young images are kept by default (7 days).
    let o = cleanup(
        d,
        &["--keep-last", "3", "--keep-file", "running.txt", "--yes"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        reg.tags("h/api", false).len(),
        13,
        "nothing is old enough: {}",
        stdout(&o)
    );

    // Without a terminal, nothing is deleted without --yes.
    let o = cleanup(d, &["--keep-last", "3", "--min-age-days", "0"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("only with --yes"), "{}", stderr(&o));

    // --dry-run lists, deletes nothing.
    let before = reg.all_tags("h/api", false);
    let report = d.join("cleanup.json");
    let o = cleanup(
        d,
        &[
            "--keep-last",
            "3",
            "--min-age-days",
            "0",
            "--keep-file",
            "running.txt",
            "--dry-run",
            "--report",
            report.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(reg.all_tags("h/api", false), before);
    let planned: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&report).unwrap()).unwrap();
    let mut planned: Vec<String> = planned["deleted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tag"].as_str().unwrap().to_string())
        .collect();
    planned.sort();

    let o = cleanup(
        d,
        &[
            "--keep-last",
            "3",
            "--min-age-days",
            "0",
            "--keep-file",
            "running.txt",
            "--yes",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let mut left = reg.all_tags("h/api", false);
    left.sort();
    let mut want: Vec<String> = vec![
        api_tags(9),
        api_tags(10),
        api_tags(11),
        api_tags(1),
        shared.clone(),
        "latest".into(),
        "buildcache".into(),
    ];
    want.sort();
    assert_eq!(left, want, "{}", stdout(&o));
    let mut deleted: Vec<String> = [0, 3, 4, 5, 6, 7, 8].iter().map(|i| api_tags(*i)).collect();
    deleted.sort();
    assert_eq!(
        planned, deleted,
        "the dry run listed exactly what was deleted"
    );
    assert_eq!(
        reg.tags("h/worker", false),
        [history[11]["worker"].clone()],
        "worker's one tag is kept"
    );
    let out = stdout(&o);
    assert!(
        out.contains(&format!(
            "kept  {host}/h/api:{shared} (its image is also the kept tag latest)"
        )),
        "{out}"
    );
    assert!(
        out.contains("(not a tagsmith content tag)") && out.contains("(the cache tag)"),
        "{out}"
    );

    // A second run deletes nothing more.
    let o = cleanup(
        d,
        &[
            "--keep-last",
            "3",
            "--min-age-days",
            "0",
            "--keep-file",
            "running.txt",
            "--yes",
        ],
    );
    assert!(o.status.success());
    assert!(stdout(&o).contains("deleted 0 tag(s)"), "{}", stdout(&o));
}

#[test]
fn a_registry_without_deletion_is_one_clear_error_and_loses_nothing() {
    if !infra::available("a_registry_without_deletion_is_one_clear_error_and_loses_nothing") {
        return;
    }
    let reg = Registry::start(false);
    let (dir, _) = pushed_history(&reg);
    let before = reg.all_tags("h/api", false);
    let o = cleanup(
        dir.path(),
        &["--keep-last", "1", "--min-age-days", "0", "--yes"],
    );
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("does not allow deleting images"), "{err}");
    assert_eq!(reg.all_tags("h/api", false), before);
}

/// The recent history of a real multi-service repository: set
/// TAGSMITH_REAL_REPO to a clone (e.g. GoogleCloudPlatform/microservices-demo)
/// and run with `--ignored`. Its services are every `src/*/Dockerfile`;
/// the tagsmith.yaml is written by the test, not committed.
#[test]
#[ignore]
fn a_real_repositorys_recent_history_matches_its_checkouts() {
    let Some(repo) = std::env::var_os("TAGSMITH_REAL_REPO") else {
        eprintln!("SKIPPED: set TAGSMITH_REAL_REPO to a clone of a multi-service repository");
        return;
    };
    let commits: usize = std::env::var("TAGSMITH_REAL_COMMITS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(30);
    let clone = tempfile::tempdir().unwrap();
    let d = clone.path().join("repo");
    // Only src/ is checked out: mirrors may lack large files elsewhere.
    let o = Command::new("git")
        .args(["clone", "-q", "--no-checkout"])
        .arg(&repo)
        .arg(&d)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let history: Vec<String> = git(
        &d,
        &[
            "log",
            "--first-parent",
            &format!("-{commits}"),
            "--format=%H",
        ],
    )
    .lines()
    .map(String::from)
    .collect();
    // Services: the Dockerfiles every one of these commits has.
    let oldest = history.last().unwrap();
    let mut services = Vec::new();
    for path in git(&d, &["ls-tree", "-r", "--name-only", oldest, "src"]).lines() {
        if let Some(dir) = path.strip_suffix("/Dockerfile") {
            let name = dir.rsplit('/').next().unwrap().to_lowercase();
            if git(&d, &["ls-tree", "HEAD", dir]).is_empty() {
                continue;
            }
            services.push(format!("  {name}:\n    context: {dir}\n"));
        }
    }
    assert!(services.len() >= 5, "{services:?}");
    let config = format!("registry: r.example/real\nservices:\n{}", services.concat());
    write(&d.join("tagsmith-test.yaml"), &config);
    let mut distinct = std::collections::BTreeSet::new();
    let start = std::time::Instant::now();
    for c in &history {
        let from_git = by_name(
            &ok(
                &d,
                &[
                    "--config",
                    "tagsmith-test.yaml",
                    "tags",
                    "--format",
                    "json",
                    "--rev",
                    c,
                ],
            ),
            "tag",
        );
        let wt = clone.path().join("wt");
        git(
            &d,
            &[
                "worktree",
                "add",
                "-q",
                "--detach",
                "--no-checkout",
                wt.to_str().unwrap(),
                c,
            ],
        );
        git(&wt, &["sparse-checkout", "set", "--no-cone", "/src/"]);
        git(&wt, &["checkout", "-q"]);
        write(&wt.join("tagsmith-test.yaml"), &config);
        let from_checkout = by_name(
            &ok(
                &wt,
                &["--config", "tagsmith-test.yaml", "tags", "--format", "json"],
            ),
            "tag",
        );
        fs::remove_dir_all(&wt).unwrap();
        git(&d, &["worktree", "prune"]);
        assert_eq!(from_git, from_checkout, "commit {c}");
        distinct.extend(from_git.values().cloned());
    }
    eprintln!(
        "{} commits x {} services: equal; {} distinct tags; {:.1}s",
        history.len(),
        services.len(),
        distinct.len(),
        start.elapsed().as_secs_f64()
    );
}
