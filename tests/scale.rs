//! Many services: 1,000 services on a random DAG, whose contexts share
//! files (hard links, and a context nested in another): every shared file
//! is read once per run; tags, graph and render work on all of them; an
//! unchanged rerun reads nothing, through the stat cache.

mod common;

use std::fs;
use std::path::Path;

use common::*;
use tagsmith::project::Project;

/// A deterministic pseudo-random sequence (xorshift), so the DAG is the
/// same in every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// `services` services; each has 3 own files and hard links to 5 of 40
/// shared files; every 50th service's context also holds another's.
fn monorepo(dir: &Path, services: usize) -> usize {
    let mut rng = Rng(0x5eed);
    let shared = dir.join("shared");
    fs::create_dir_all(&shared).unwrap();
    for i in 0..40 {
        fs::write(
            shared.join(format!("lib{i}.py")),
            format!("# shared {i}\n{}\n", "x".repeat(i * 100)),
        )
        .unwrap();
    }
    let mut config = String::from("registry: r.example/scale\nservices:\n");
    let mut files = 40;
    for s in 0..services {
        let ctx = dir.join(format!("svc/s{s:04}"));
        fs::create_dir_all(&ctx).unwrap();
        let deps: Vec<String> = if s > 0 {
            (0..rng.next(3))
                .map(|_| format!("s{:04}", rng.next(s as u64)))
                .collect()
        } else {
            Vec::new()
        };
        let mut dockerfile = String::new();
        for d in &deps {
            let arg = format!("{}_IMAGE", d.to_uppercase());
            dockerfile.push_str(&format!("ARG {arg}\nFROM ${{{arg}}} AS {d}\n"));
        }
        dockerfile.push_str("FROM scratch\nCOPY . /app\n");
        fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
        for f in 0..3 {
            fs::write(ctx.join(format!("own{f}.txt")), format!("{s}/{f}\n")).unwrap();
            files += 1;
        }
        fs::create_dir_all(ctx.join("lib")).unwrap();
        for _ in 0..5 {
            let i = rng.next(40);
            let _ = fs::hard_link(
                shared.join(format!("lib{i}.py")),
                ctx.join(format!("lib/lib{i}.py")),
            );
        }
        files += 1; // the Dockerfile
        config.push_str(&format!("  s{s:04}:\n    context: svc/s{s:04}\n"));
    }
    // A context that holds other services' contexts (their files again).
    config.push_str("  all:\n    context: svc\n    dockerfile: ../all.Dockerfile\n");
    fs::write(dir.join("all.Dockerfile"), "FROM scratch\nCOPY . /\n").unwrap();
    fs::write(dir.join("tagsmith.yaml"), config).unwrap();
    files
}

#[test]
fn a_thousand_services_read_each_file_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let distinct = monorepo(d, 1000);
    let mut project = Project::open(Some(Path::new("tagsmith.yaml")), d).unwrap();
    project.config.stat_cache = false;
    let order = project.select(&[]).unwrap();
    assert_eq!(order.len(), 1001);
    let (hashed, stats) = project.hash_with_stats(&order).unwrap();
    assert_eq!(hashed.len(), 1001);
    assert_eq!(
        stats.files_read, distinct,
        "each distinct file (shared ones, and those `all` holds again) is read once"
    );
    // The DAG is real: dependents are hashed after, and on, their bases.
    let with_deps = hashed.values().filter(|h| !h.deps.is_empty()).count();
    assert!(with_deps > 500, "{with_deps} services have dependencies");

    // The commands work on all of them.
    let tags = by_name(&ok(d, &["tags", "--format", "json"]), "tag");
    assert_eq!(tags.len(), 1001);
    assert_eq!(ok(d, &["graph"]).lines().count(), 1001);
    write(
        &d.join("t/all.yaml"),
        &(0..1000)
            .map(|s| format!("s{s:04}: << image \"s{s:04}\" >>\n"))
            .collect::<String>(),
    );
    let rendered = ok(d, &["render", "t"]);
    assert_eq!(rendered.lines().count(), 1000);
    assert!(rendered.contains(&format!("s0999: r.example/scale/s0999:{}", tags["s0999"])));
}

#[test]
fn an_unchanged_tree_is_not_read_again() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let distinct = monorepo(d, 100);
    // Old enough files: not "racy".
    for entry in walk(d) {
        let ok = std::process::Command::new("touch")
            .args(["-d", "@1600000000"])
            .arg(&entry)
            .status()
            .unwrap();
        assert!(ok.success());
    }
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let cache = tempfile::tempdir().unwrap();
    // SAFETY-free: this test binary runs its tests in threads, but only
    // this one reads the variable.
    unsafe { std::env::set_var("TAGSMITH_CACHE_DIR", cache.path()) };
    let project = Project::open(Some(Path::new("tagsmith.yaml")), d).unwrap();
    let order = project.select(&[]).unwrap();
    let (first, stats) = project.hash_with_stats(&order).unwrap();
    assert_eq!((stats.files_read, stats.from_stat_cache), (distinct, 0));
    let project = Project::open(Some(Path::new("tagsmith.yaml")), d).unwrap();
    let (second, stats) = project.hash_with_stats(&order).unwrap();
    assert_eq!((stats.files_read, stats.from_stat_cache), (0, distinct));
    let tags = |h: &std::collections::BTreeMap<String, tagsmith::project::Hashed>| -> Vec<String> {
        h.values().map(|x| x.tag.clone()).collect()
    };
    assert_eq!(tags(&first), tags(&second));
    // One change: one file read.
    fs::write(d.join("svc/s0042/own0.txt"), "changed\n").unwrap();
    let project = Project::open(Some(Path::new("tagsmith.yaml")), d).unwrap();
    let (_, stats) = project.hash_with_stats(&order).unwrap();
    assert_eq!(stats.files_read, 1);
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
