//! Hostile and broken input through the real binary: YAML made to exhaust
//! the parser, trees made to confuse the walk, credentials that must never
//! be shown. Each case is handled correctly, or is one clear message with
//! exit code 1: never a panic, never a wrong tag. Where a tree is handled,
//! its tag is checked against one computed here from docs/hashing.md.

mod common;

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;

// ---------------------------------------------------------------------------
// The tag by the spec, for a context without an ignore file
// ---------------------------------------------------------------------------

fn frame(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// An entry as the spec encodes it: path, type, executable, digest.
type SpecEntry = (Vec<u8>, u8, u8, Option<[u8; 32]>);

/// Every entry below `dir`, by std::fs.
fn entries(dir: &Path, prefix: &[u8], out: &mut Vec<SpecEntry>) {
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let mut path = prefix.to_vec();
        if !path.is_empty() {
            path.push(b'/');
        }
        path.extend_from_slice(e.file_name().as_bytes());
        let meta = fs::symlink_metadata(e.path()).unwrap();
        if meta.file_type().is_symlink() {
            let target = fs::read_link(e.path()).unwrap();
            let digest = *blake3::hash(target.as_os_str().as_bytes()).as_bytes();
            out.push((path, 3, 0, Some(digest)));
        } else if meta.is_dir() {
            out.push((path.clone(), 2, 0, None));
            entries(&e.path(), &path, out);
        } else {
            let digest = *blake3::hash(&fs::read(e.path()).unwrap()).as_bytes();
            let exec = u8::from(meta.permissions().mode() & 0o100 != 0);
            out.push((path, 1, exec, Some(digest)));
        }
    }
}

/// docs/hashing.md section 4 for a service with context `ctx`, its
/// `Dockerfile` inside, no args, target, platform or dependencies.
fn spec_tag(ctx: &Path) -> String {
    let mut list = Vec::new();
    entries(ctx, b"", &mut list);
    list.sort();
    let mut m = Vec::new();
    frame(&mut m, b"tagsmith/v1");
    frame(&mut m, b"Dockerfile");
    frame(&mut m, &fs::read(ctx.join("Dockerfile")).unwrap());
    m.extend_from_slice(&[0, 0]);
    m.extend_from_slice(&0u64.to_le_bytes());
    m.extend_from_slice(&0u64.to_le_bytes());
    m.extend_from_slice(&(list.len() as u64).to_le_bytes());
    for (path, kind, exec, digest) in &list {
        frame(&mut m, path);
        m.push(*kind);
        m.push(*exec);
        if let Some(d) = digest {
            m.extend_from_slice(d);
        }
    }
    blake3::hash(&m).to_hex()[..32].to_string()
}

/// The tag `tagsmith tags` prints for the single service `app`.
fn app_tag(dir: &Path) -> String {
    tags(dir)["app"].clone()
}

fn is_root() -> bool {
    fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
}

/// Runs tagsmith as an unprivileged user (root reads anything), with the
/// tree made readable for it first.
fn run_unprivileged(dir: &Path, args: &[&str]) -> Output {
    let mut cmd = if is_root() {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", bin()]);
        c
    } else {
        Command::new(bin())
    };
    cmd.args(args).current_dir(dir).output().unwrap()
}

/// Directories 0755 and files 0644 (0755 if executable), all the way down,
/// and every parent directory searchable.
fn open_up(path: &Path) {
    let meta = fs::symlink_metadata(path).unwrap();
    if meta.is_dir() {
        fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
        for e in fs::read_dir(path).unwrap() {
            open_up(&e.unwrap().path());
        }
    } else if meta.is_file() {
        let exec = meta.permissions().mode() & 0o100 != 0;
        let mode = if exec { 0o755 } else { 0o644 };
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }
}

/// Exit 1, nothing on stdout, one line on stderr that names `what`; never a panic.
fn one_clear_error(o: &Output, what: &str) -> String {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "stderr: {err}");
    assert!(o.stdout.is_empty(), "stdout: {}", stdout(o));
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains(what), "{what:?} not in {err}");
    err
}

// ---------------------------------------------------------------------------
// Config and lock file
// ---------------------------------------------------------------------------

const HEAD: &str = "registry: r.example/t\nservices:\n";

/// Runs `tagsmith graph` (config only, no hashing) on `config` under a
/// 256 MiB data limit, and returns the output and the time it took.
fn graph_with(dir: &Path, config: &str) -> (Output, Duration) {
    fs::write(dir.join("tagsmith.yaml"), config).unwrap();
    let start = Instant::now();
    let o = Command::new("sh")
        .args(["-c", "ulimit -d 262144 && exec \"$0\" graph", bin()])
        .current_dir(dir)
        .output()
        .unwrap();
    (o, start.elapsed())
}

/// Fails quickly: the bound is generous for a debug build on a busy machine;
/// the README gives the release build's times.
const QUICK: Duration = Duration::from_secs(5);

fn assert_refused(dir: &Path, config: &str, what: &str) -> Duration {
    let (o, took) = graph_with(dir, config);
    let err = one_clear_error(&o, what);
    assert!(err.contains("tagsmith.yaml:"), "{err}");
    assert!(took < QUICK, "took {took:?}: {err}");
    took
}

#[test]
fn yaml_alias_bombs_are_refused_quickly_in_bounded_memory() {
    let dir = single(None);
    let d = dir.path();
    // Merge keys nested nine wide and twenty deep: 9^20 values if expanded.
    let mut nested = format!("{HEAD}  s0:\n    context: ctx\n    args: &m0 {{A: lol, B: lol}}\n");
    for i in 1..20 {
        let refs = vec![format!("*m{}", i - 1); 9].join(", ");
        nested.push_str(&format!(
            "  s{i}:\n    context: ctx\n    args: &m{i}\n      <<: [{refs}]\n"
        ));
    }
    assert_refused(
        d,
        &nested,
        "refused: more than 10000 values held by anchors",
    );
    // One large anchored mapping aliased by thousands of services.
    let keys: Vec<String> = (0..4000).map(|i| format!("K{i}: v")).collect();
    let mut wide = format!(
        "{HEAD}  s0:\n    context: ctx\n    args: &d {{{}}}\n",
        keys.join(", ")
    );
    for i in 1..3000 {
        wide.push_str(&format!(
            "  s{i}:\n    context: ctx\n    args: {{<<: *d}}\n"
        ));
    }
    assert_refused(
        d,
        &wide,
        "refused: more than 50000 values expanded from aliases",
    );
    // The classic billion laughs, where a list of strings is expected.
    let mut levels = vec![format!("&a0 [{}]", ["lol"; 9].join(", "))];
    for i in 1..10 {
        levels.push(format!(
            "&a{i} [{}]",
            vec![format!("*a{}", i - 1); 9].join(", ")
        ));
    }
    let laughs = format!(
        "registry: r.example/t\ninsecure_registries: [{}]\nservices:\n  app:\n    context: ctx\n",
        levels.join(", ")
    );
    let took = assert_refused(d, &laughs, "expected a string");
    eprintln!("billion laughs: {took:?}");
}

#[test]
fn merge_keys_used_as_intended_are_not_mistaken_for_a_bomb() {
    // 300 services sharing one anchored mapping: 300 aliases for 1 anchor.
    let dir = single(None);
    let mut config = format!("{HEAD}  app: &svc\n    context: ctx\n");
    for i in 0..300 {
        config.push_str(&format!(
            "  s{i}:\n    <<: *svc\n    args: {{N: \"{i}\"}}\n"
        ));
    }
    let (o, _) = graph_with(dir.path(), &config);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).lines().count(), 301);
}

#[test]
fn deeply_nested_documents_are_refused_quickly() {
    let dir = single(None);
    let d = dir.path();
    let flow = format!(
        "{HEAD}  app:\n    context: ctx\n    args: {}{}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    assert_refused(d, &flow, "tagsmith.yaml:5:11: expected a mapping");
    let mut block = format!("{HEAD}  app:\n    context: ctx\n    args:\n");
    for level in 0..2000 {
        block.push_str(&format!("{}k:\n", "  ".repeat(level + 3)));
    }
    assert_refused(d, &block, "tagsmith.yaml:7:");
    let mut items = format!("{HEAD}  app:\n    context: ctx\n    depends_on:\n");
    for level in 0..2000 {
        items.push_str(&format!("{}- \n", "  ".repeat(level + 3)));
    }
    assert_refused(d, &items, "tagsmith.yaml:");
}

#[test]
fn a_ten_megabyte_config_is_one_clear_error_at_once() {
    let dir = single(None);
    let d = dir.path();
    let mut services = String::from(HEAD);
    let mut i = 0;
    while services.len() < 10_000_000 {
        services.push_str(&format!("  s{i}:\n    context: ctx\n"));
        i += 1;
    }
    let value = format!(
        "{HEAD}  app:\n    context: ctx\n    args:\n      BIG: \"{}\"\n",
        "x".repeat(10_000_000)
    );
    let comment = format!(
        "# {}\n{HEAD}  app:\n    context: ctx\n",
        "c".repeat(10_000_000)
    );
    for config in [services, value, comment] {
        let (o, took) = graph_with(d, &config);
        let err = one_clear_error(&o, "tagsmith.yaml: the file is 9.5 MiB");
        assert!(err.contains("at most 4 MiB"), "{err}");
        assert!(took < Duration::from_secs(1), "took {took:?}");
    }
    // Just under the limit: handled.
    let comment = format!(
        "# {}\n{HEAD}  app:\n    context: ctx\n",
        "c".repeat(4_000_000)
    );
    let (o, took) = graph_with(d, &comment);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(took < QUICK, "took {took:?}");
}

#[test]
fn duplicate_keys_are_errors_at_the_second_one() {
    let dir = single(None);
    let d = dir.path();
    for (config, at) in [
        (
            "registry: r.example/t\nregistry: r.example/u\nservices:\n  app:\n    context: ctx\n",
            "tagsmith.yaml:2:1: duplicate key \"registry\"",
        ),
        (
            "registry: r.example/t\nservices:\n  app:\n    context: ctx\n  app:\n    context: ctx\n",
            "tagsmith.yaml:5:3: duplicate key \"app\"",
        ),
        (
            "registry: r.example/t\nservices:\n  app:\n    context: ctx\n    args:\n      A: 1\n      A: 2\n",
            "tagsmith.yaml:7:7: duplicate key \"A\"",
        ),
        (
            "registry: r.example/t\nservices:\n  app:\n    context: ctx\n    context: ctx\n",
            "tagsmith.yaml:5:5: duplicate key \"context\"",
        ),
    ] {
        let (o, _) = graph_with(d, config);
        let err = one_clear_error(&o, at);
        assert!(err.contains("may appear only once"), "{err}");
        assert!(!err.contains("Options"), "the parser's own advice: {err}");
    }
}

#[test]
fn the_lock_file_has_the_same_limits() {
    let dir = single(None);
    let d = dir.path();
    let lock = d.join("tagsmith.lock");
    let digest = format!("sha256:{}", "a".repeat(64));
    fs::write(
        &lock,
        format!(
            "version: 1\nimages:\n  \"docker.io/library/a:1\":\n    digest: {digest}\n  \"docker.io/library/a:1\":\n    digest: {digest}\n"
        ),
    )
    .unwrap();
    one_clear_error(
        &run(d, &["tags"]),
        "tagsmith.lock:5:3: duplicate key \"docker.io/library/a:1\"",
    );
    fs::write(&lock, format!("# {}\nversion: 1\n", "x".repeat(10_000_000))).unwrap();
    one_clear_error(&run(d, &["tags"]), "tagsmith.lock: the file is 9.5 MiB");
    let mut nested = String::from("version: 1\nimages:\n");
    nested.push_str(&format!(
        "  \"docker.io/library/a:0\": &m0\n    digest: {digest}\n    platforms: {{linux/amd64: {digest}}}\n"
    ));
    for i in 1..20 {
        let refs = vec![format!("*m{}", i - 1); 9].join(", ");
        nested.push_str(&format!(
            "  \"docker.io/library/a:{i}\": &m{i}\n    <<: [{refs}]\n"
        ));
    }
    fs::write(&lock, nested).unwrap();
    let start = Instant::now();
    one_clear_error(&run(d, &["tags"]), "refused: more than");
    assert!(start.elapsed() < QUICK);
}

// ---------------------------------------------------------------------------
// Trees
// ---------------------------------------------------------------------------

#[test]
fn the_spec_oracle_agrees_on_a_plain_tree() {
    // The oracle itself: a plain tree with a file, an executable, a
    // directory and a symlink.
    let dir = single(None);
    let ctx = dir.path().join("ctx");
    write(&ctx.join("src/main.c"), "int main;\n");
    write(&ctx.join("run.sh"), "#!/bin/sh\n");
    fs::set_permissions(ctx.join("run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    symlink("src/main.c", ctx.join("link")).unwrap();
    assert_eq!(app_tag(dir.path()), spec_tag(&ctx));
}

#[test]
fn a_hundred_thousand_files_in_one_directory() {
    let dir = single(None);
    let ctx = dir.path().join("ctx");
    let many = ctx.join("many");
    fs::create_dir(&many).unwrap();
    for i in 0..100_000 {
        fs::write(many.join(format!("f{i:06}")), i.to_string()).unwrap();
    }
    let start = Instant::now();
    let tag = app_tag(dir.path());
    eprintln!("100,000 files: {:?}", start.elapsed());
    assert_eq!(tag, spec_tag(&ctx));
    // One byte in one file of the hundred thousand changes the tag.
    fs::write(many.join("f054321"), "x").unwrap();
    let changed = app_tag(dir.path());
    assert_ne!(changed, tag);
    assert_eq!(changed, spec_tag(&ctx));
}

#[test]
fn two_hundred_levels_deep() {
    let dir = single(None);
    let ctx = dir.path().join("ctx");
    let mut deep = ctx.clone();
    for _ in 0..200 {
        deep.push("d");
    }
    write(&deep.join("leaf"), "bottom\n");
    assert_eq!(app_tag(dir.path()), spec_tag(&ctx));

    // Longer names: the path below the context passes PATH_MAX (4096).
    let dir = single(None);
    let name = "n".repeat(40);
    // The shell's `cd` stops at PATH_MAX; perl's chdir goes on.
    let status = Command::new("perl")
        .arg("-e")
        .arg(format!(
            "chdir 'ctx' or die; for (1..200) {{ mkdir '{name}' or die; chdir '{name}' or die }} open(F, '>leaf') or die; print F 'bottom'"
        ))
        .current_dir(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    let o = run(dir.path(), &["tags"]);
    one_clear_error(&o, "File name too long");
}

#[test]
fn symlink_loops_are_entries_never_followed() {
    let dir = single(None);
    let ctx = dir.path().join("ctx");
    symlink("self", ctx.join("self")).unwrap();
    symlink(".", ctx.join("here")).unwrap();
    symlink("..", ctx.join("up")).unwrap();
    symlink("b", ctx.join("a")).unwrap();
    symlink("a", ctx.join("b")).unwrap();
    fs::create_dir(ctx.join("sub")).unwrap();
    symlink("../sub", ctx.join("sub/loop")).unwrap();
    let tag = app_tag(dir.path());
    assert_eq!(tag, spec_tag(&ctx));
    assert_eq!(
        inputs(dir.path(), "app"),
        [
            "Dockerfile",
            "a",
            "b",
            "here",
            "self",
            "sub",
            "sub/loop",
            "up"
        ]
    );

    // A context or a Dockerfile that is itself a loop: one clear error.
    let dir = single(None);
    symlink("loop", dir.path().join("loop")).unwrap();
    fs::write(
        dir.path().join("tagsmith.yaml"),
        "registry: r.example/t\nservices:\n  app:\n    context: loop\n",
    )
    .unwrap();
    one_clear_error(
        &run(dir.path(), &["tags"]),
        "tagsmith.yaml:4:14: context \"loop\" of service \"app\" is a symbolic link that leads nowhere",
    );
    let dir = single(None);
    fs::remove_file(dir.path().join("ctx/Dockerfile")).unwrap();
    symlink("Dockerfile", dir.path().join("ctx/Dockerfile")).unwrap();
    one_clear_error(
        &run(dir.path(), &["tags"]),
        "Dockerfile \"ctx/Dockerfile\" of service \"app\" is a symbolic link that leads nowhere",
    );
}

/// Rewrites `file` over and over, alternating between `a` and `b`, until stopped.
fn keep_rewriting(
    file: &Path,
    a: Vec<u8>,
    b: Vec<u8>,
    truncate: bool,
) -> (Arc<AtomicBool>, std::thread::JoinHandle<()>) {
    let stop = Arc::new(AtomicBool::new(false));
    let (flag, file) = (stop.clone(), file.to_path_buf());
    let handle = std::thread::spawn(move || {
        use std::io::{Seek, Write};
        let mut f = fs::OpenOptions::new().write(true).open(&file).unwrap();
        let mut i = 0;
        while !flag.load(Ordering::Relaxed) {
            let content = if i % 2 == 0 { &a } else { &b };
            if truncate {
                f.set_len(0).unwrap();
            }
            f.seek(std::io::SeekFrom::Start(0)).unwrap();
            for chunk in content.chunks(1 << 20) {
                f.write_all(chunk).unwrap();
            }
            i += 1;
        }
    });
    (stop, handle)
}

/// The writer's step: one write of this many bytes.
const CHUNK: usize = 1 << 20;

/// The tags of `contents` as the content of `file` in `ctx`, by the spec.
fn tags_of(ctx: &Path, file: &Path, contents: impl Iterator<Item = Vec<u8>>) -> Vec<String> {
    contents
        .map(|c| {
            fs::write(file, c).unwrap();
            spec_tag(ctx)
        })
        .collect()
}

/// Runs `tags` six times while `file` is rewritten without pause, and
/// checks each outcome: a tag of one of `states`, or one clear error.
fn run_while_rewritten(
    dir: &Path,
    file: &Path,
    writes: (Vec<u8>, Vec<u8>, bool),
    states: &[String],
) -> Vec<&'static str> {
    let (stop, writer) = keep_rewriting(file, writes.0, writes.1, writes.2);
    let mut outcomes = Vec::new();
    for _ in 0..6 {
        let o = run(dir, &["tags", "--format", "json"]);
        match o.status.code() {
            Some(0) => {
                let tag = by_name(&stdout(&o), "tag")["app"].clone();
                assert!(states.contains(&tag), "a tag of no state the file was in");
                outcomes.push("tag");
            }
            _ => {
                one_clear_error(&o, "big.bin: the file changed while it was being hashed");
                outcomes.push("error");
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    outcomes
}

#[test]
fn a_file_that_changes_while_it_is_hashed() {
    let dir = single(None);
    let ctx = dir.path().join("ctx");
    let big = ctx.join("big.bin");
    let n = 8;
    let (a, b) = (vec![b'a'; n * CHUNK], vec![b'b'; n * CHUNK]);
    // Rewritten in place, 1 MiB at a time, from all `a` to all `b` and back:
    // the file holds k MiB of the new letter, then the old one.
    let mixed = |new: u8, old: u8, k: usize| {
        let mut c = vec![new; k * CHUNK];
        c.extend(vec![old; (n - k) * CHUNK]);
        c
    };
    let mut states = tags_of(&ctx, &big, (0..=n).map(|k| mixed(b'b', b'a', k)));
    states.extend(tags_of(&ctx, &big, (0..=n).map(|k| mixed(b'a', b'b', k))));
    fs::write(&big, &a).unwrap();
    let outcomes = run_while_rewritten(dir.path(), &big, (a.clone(), b, false), &states);
    eprintln!("rewritten in place: {outcomes:?}");

    // Truncated and written again (a mapped file that shrinks would kill the
    // process with SIGBUS): the file holds k MiB of `a`.
    let states = tags_of(&ctx, &big, (0..=n).map(|k| vec![b'a'; k * CHUNK]));
    fs::write(&big, &a).unwrap();
    let outcomes = run_while_rewritten(dir.path(), &big, (a.clone(), a, true), &states);
    eprintln!("truncated and rewritten: {outcomes:?}");
}

#[test]
fn an_unreadable_directory_is_one_clear_error() {
    let dir = single(None);
    let ctx = dir.path().join("ctx");
    write(&ctx.join("locked/secret.txt"), "x\n");
    write(&ctx.join("open/file.txt"), "y\n");
    open_up(dir.path());
    fs::set_permissions(ctx.join("locked"), fs::Permissions::from_mode(0o000)).unwrap();
    let o = run_unprivileged(dir.path(), &["tags"]);
    one_clear_error(&o, "ctx/locked: permission denied");
    // Excluded, it is never read, as Docker never reads it.
    write(&ctx.join(".dockerignore"), "locked\n");
    open_up(&ctx.join(".dockerignore"));
    let o = run_unprivileged(dir.path(), &["tags"]);
    assert!(o.status.success(), "{}", stderr(&o));
    fs::set_permissions(ctx.join("locked"), fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn a_directory_that_becomes_unreadable_during_the_walk() {
    let dir = single(None);
    let ctx = dir.path().join("ctx");
    for d in 0..40 {
        for f in 0..50 {
            write(&ctx.join(format!("d{d:02}/f{f:02}")), &format!("{d} {f}\n"));
        }
    }
    open_up(dir.path());
    let full = spec_tag(&ctx);
    // Another process takes read and search permission from the directories
    // and gives it back, over and over, while tagsmith walks.
    let stop = Arc::new(AtomicBool::new(false));
    let (flag, root) = (stop.clone(), ctx.clone());
    let flipper = std::thread::spawn(move || {
        let mut i = 0usize;
        while !flag.load(Ordering::Relaxed) {
            let d = root.join(format!("d{:02}", (i * 7) % 40));
            fs::set_permissions(&d, fs::Permissions::from_mode(0o000)).unwrap();
            std::thread::sleep(Duration::from_micros(300));
            fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).unwrap();
            std::thread::sleep(Duration::from_micros(100));
            i += 1;
        }
        for d in 0..40 {
            let d = root.join(format!("d{d:02}"));
            fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).unwrap();
        }
    });
    let mut outcomes = Vec::new();
    for _ in 0..12 {
        let o = run_unprivileged(dir.path(), &["tags", "--format", "json"]);
        match o.status.code() {
            Some(0) => {
                let tag = by_name(&stdout(&o), "tag")["app"].clone();
                assert_eq!(tag, full, "a tag of part of the tree");
                outcomes.push("tag");
            }
            _ => {
                one_clear_error(&o, "permission denied");
                outcomes.push("error");
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    flipper.join().unwrap();
    eprintln!("permissions flipped during the walk: {outcomes:?}");
    assert!(
        outcomes.contains(&"error"),
        "the walk never met a closed directory"
    );
}

#[test]
fn names_with_newlines_are_entries_like_any_other() {
    let dir = single(None);
    let ctx = dir.path().join("ctx");
    write(&ctx.join("two\nlines"), "a\n");
    write(&ctx.join("dir\nname/file\r\n"), "b\n");
    write(&ctx.join("tab\there"), "c\n");
    let tag = app_tag(dir.path());
    assert_eq!(tag, spec_tag(&ctx));
    fs::write(ctx.join("two\nlines"), "changed\n").unwrap();
    assert_ne!(app_tag(dir.path()), tag);
}

#[test]
fn names_that_are_not_utf8_are_an_error_unless_excluded() {
    let dir = single(None);
    let ctx = dir.path().join("ctx");
    let bad = ctx.join(std::ffi::OsStr::from_bytes(b"caf\xe9.bin"));
    fs::write(&bad, "latin-1\n").unwrap();
    one_clear_error(&run(dir.path(), &["tags"]), "not valid UTF-8");
    // Excluded (matched with the bad byte as U+FFFD), it is not read.
    write(&ctx.join(".dockerignore"), "*.bin\n");
    let tag = app_tag(dir.path());
    fs::remove_file(&bad).unwrap();
    assert_eq!(app_tag(dir.path()), tag, "the excluded name is no input");
    // A symlink whose target is not UTF-8.
    fs::remove_file(ctx.join(".dockerignore")).unwrap();
    symlink(std::ffi::OsStr::from_bytes(b"\xff\xfe"), ctx.join("link")).unwrap();
    one_clear_error(
        &run(dir.path(), &["tags"]),
        "symlink target is not valid UTF-8",
    );
}

#[test]
fn a_dockerfile_name_that_docker_reads_as_a_bad_pattern() {
    let dir = single(Some("*\n"));
    fs::rename(
        dir.path().join("ctx/Dockerfile"),
        dir.path().join("ctx/Docker[file"),
    )
    .unwrap();
    fs::write(
        dir.path().join("tagsmith.yaml"),
        "registry: r.example/t\nservices:\n  app:\n    context: ctx\n    dockerfile: \"Docker[file\"\n",
    )
    .unwrap();
    one_clear_error(&run(dir.path(), &["tags"]), "\"!Docker[file\"");
}

// ---------------------------------------------------------------------------
// Credentials and secrets
// ---------------------------------------------------------------------------

const PASSWORD: &str = "pw-Zq8rT-never-shown";
const TOKEN: &str = "tok-Kx3vB-never-shown";
const SECRET: &str = "sec-Wm5nY-never-shown";
const HELPER_SECRET: &str = "helper-Jd2pQ-never-shown";

/// A registry on loopback that asks for a token, hands one out for the
/// basic credentials, then refuses the token, echoing in every header and
/// body it can what it was sent (so that a client printing the server's
/// words would print the credentials).
fn echoing_registry() -> (u16, Arc<AtomicBool>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    std::thread::spawn(move || {
        while !flag.load(Ordering::Relaxed) {
            let mut s = match listener.accept() {
                Ok((s, _)) => s,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                }
                Err(_) => return,
            };
            s.set_nonblocking(false).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let mut req = Vec::new();
            let mut buf = [0; 4096];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let req = String::from_utf8_lossy(&req).into_owned();
            let head = req.starts_with("HEAD ");
            let path = req.split_whitespace().nth(1).unwrap_or("/").to_string();
            let auth = req
                .lines()
                .find(|l| l.to_ascii_lowercase().starts_with("authorization:"))
                .unwrap_or("")
                .to_string();
            let echo = format!("you sent {auth} {}", auth.replace(' ', "_"));
            let (status, headers, body) = if path.starts_with("/token") {
                (
                    "200 OK",
                    String::new(),
                    format!("{{\"token\":\"{TOKEN}\",\"access_token\":\"{TOKEN}\"}}"),
                )
            } else {
                let challenge = format!(
                    "WWW-Authenticate: Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"echo\",scope=\"repository:t/app:pull\",error=\"denied\",error_description=\"{echo}\"\r\n"
                );
                let status = if auth.is_empty() {
                    "401 Unauthorized"
                } else {
                    "403 Forbidden"
                };
                (
                    status,
                    format!("{challenge}X-Echo: {echo}\r\n"),
                    format!(
                        "{{\"errors\":[{{\"code\":\"DENIED\",\"message\":\"{echo}\",\"detail\":\"{}\"}}]}}",
                        req.replace('\\', "/")
                            .replace('"', "'")
                            .replace("\r\n", " | ")
                    ),
                )
            };
            let mut out = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nDocker-Distribution-Api-Version: registry/2.0\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            if !head {
                out.push_str(&body);
            }
            let _ = s.write_all(out.as_bytes());
        }
    });
    (port, stop)
}

fn base64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Neither the credentials nor the secrets, in any form, in `text`.
fn assert_nothing_secret(what: &str, text: &str) {
    for secret in [
        PASSWORD.to_string(),
        TOKEN.to_string(),
        SECRET.to_string(),
        HELPER_SECRET.to_string(),
        base64(&format!("user:{PASSWORD}")),
        base64(SECRET),
    ] {
        assert!(!text.contains(&secret), "{what} shows {secret}:\n{text}");
    }
    assert!(!text.contains("panicked"), "{what}: {text}");
}

#[test]
fn no_credential_or_secret_in_any_output() {
    let (port, stop) = echoing_registry();
    let registry = format!("127.0.0.1:{port}");
    let dir = single(None);
    let d = dir.path();
    fs::write(
        d.join("tagsmith.yaml"),
        format!(
            "registry: {registry}/t\nretry_deadline_seconds: 1\nsecrets:\n  tok: {{env: TAGSMITH_HOSTILE_SECRET}}\n  file: {{file: secret.txt}}\nservices:\n  app:\n    context: ctx\n    args: {{A: \"1\"}}\n"
        ),
    )
    .unwrap();
    fs::write(d.join("secret.txt"), SECRET).unwrap();
    write(
        &d.join("ctx/Dockerfile"),
        &format!(
            "FROM {registry}/base:1\nRUN --mount=type=secret,id=tok true\nRUN --mount=type=secret,id=file true\n"
        ),
    );
    write(&d.join("k8s/app.yaml"), "image: << pinned \"app\" >>\n");
    // The docker CLI's config: basic credentials for the registry, and a
    // credential helper for another host that fails printing its secret.
    let docker = tempfile::tempdir().unwrap();
    fs::write(
        docker.path().join("config.json"),
        format!(
            "{{\"auths\":{{\"{registry}\":{{\"auth\":\"{}\"}}}},\"credHelpers\":{{\"127.0.0.2:5000\":\"hostile\"}}}}",
            base64(&format!("user:{PASSWORD}"))
        ),
    )
    .unwrap();
    let helpers = tempfile::tempdir().unwrap();
    let helper = helpers.path().join("docker-credential-hostile");
    fs::write(
        &helper,
        format!("#!/bin/sh\necho '{{\"Secret\":\"{HELPER_SECRET}\"}}'\necho '{HELPER_SECRET}' >&2\nexit 1\n"),
    )
    .unwrap();
    fs::set_permissions(&helper, fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        helpers.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let report = d.join("report.json");
    let report_arg = report.to_str().unwrap();
    let run_with = |args: &[&str], env: &[(&str, String)]| {
        let mut cmd = Command::new(bin());
        cmd.args(args)
            .current_dir(d)
            .env("DOCKER_CONFIG", docker.path())
            .env("PATH", &path)
            .env("TAGSMITH_HOSTILE_SECRET", SECRET)
            .env("RUST_LOG", "trace")
            .env("RUST_BACKTRACE", "full")
            .env_remove("GITHUB_OUTPUT");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let secret_arg = "id=extra,env=TAGSMITH_HOSTILE_SECRET".to_string();
    let mut runs: Vec<(String, Output)> = Vec::new();
    for (args, env) in [
        (vec!["tags"], vec![]),
        (vec!["explain", "app", "--json"], vec![]),
        (
            vec!["build", "--push", "--dry-run", "--secret", &secret_arg],
            vec![],
        ),
        (
            vec![
                "build",
                "--push",
                "--report",
                report_arg,
                "--secret",
                &secret_arg,
            ],
            vec![],
        ),
        (vec!["render", "k8s"], vec![]),
        (vec!["lock"], vec![]),
        // Credentials in an engine address or a proxy address.
        (
            vec!["build", "--report", report_arg],
            vec![("DOCKER_HOST", format!("tcp://user:{PASSWORD}@127.0.0.1:9"))],
        ),
        (
            vec!["build"],
            vec![("DOCKER_HOST", format!("ssh://user:{PASSWORD}@127.0.0.1:9"))],
        ),
        (
            vec!["build", "--push", "--dry-run"],
            vec![
                ("HTTP_PROXY", format!("http://user:{PASSWORD}@127.0.0.1:9")),
                ("HTTPS_PROXY", format!("http://user:{PASSWORD}@127.0.0.1:9")),
                ("ALL_PROXY", format!("http://user:{PASSWORD}@127.0.0.1:9")),
                ("NO_PROXY", String::new()),
            ],
        ),
    ] {
        let o = run_with(&args, &env);
        let env: Vec<&str> = env.iter().map(|e| e.0).collect();
        runs.push((format!("{args:?} {env:?}"), o));
    }
    // A registry whose credential helper fails, printing its secret: the
    // error names the helper, not what it printed.
    let config = fs::read_to_string(d.join("tagsmith.yaml")).unwrap();
    fs::write(
        d.join("tagsmith.yaml"),
        config.replace(&format!("{registry}/t"), "127.0.0.2:5000/t"),
    )
    .unwrap();
    let o = run_with(&["build", "--push", "--dry-run"], &[]);
    runs.push(("a failing credential helper".into(), o));
    stop.store(true, Ordering::Relaxed);
    for (what, o) in &runs {
        let (out, err) = (stdout(o), stderr(o));
        eprintln!("{what}: exit {:?}\n{err}", o.status.code());
        assert_nothing_secret(what, &out);
        assert_nothing_secret(what, &err);
    }
    if let Ok(text) = fs::read_to_string(&report) {
        assert_nothing_secret("the report", &text);
    }
    // The registry's refusal was reached and reported (render needs no engine).
    let refused = &runs[4].1;
    assert_eq!(refused.status.code(), Some(1));
    assert!(stderr(refused).contains(&registry), "{}", stderr(refused));
    let helper = stderr(&runs.last().unwrap().1);
    assert!(
        helper.contains("the docker credential helper \"docker-credential-hostile\" failed"),
        "{helper}"
    );
    let engine = stderr(&runs[6].1) + &stderr(&runs[7].1);
    assert!(engine.contains("tcp://user:***@127.0.0.1:9"), "{engine}");
    assert!(engine.contains("ssh://user:***@127.0.0.1:9"), "{engine}");
}

// ---------------------------------------------------------------------------
// Dockerfiles and templates
// ---------------------------------------------------------------------------

#[test]
fn a_dockerfile_nesting_substitutions_50000_deep_is_one_clear_error() {
    let dir = single(None);
    let n = 50_000;
    write(
        &dir.path().join("ctx/Dockerfile"),
        &format!("ARG A\nFROM {}x{}\n", "${A:-".repeat(n), "}".repeat(n)),
    );
    let start = Instant::now();
    one_clear_error(
        &run(dir.path(), &["tags"]),
        "ctx/Dockerfile:2:1: variable substitutions nested more than 64 deep",
    );
    assert!(start.elapsed() < QUICK, "{:?}", start.elapsed());
}

#[test]
fn a_template_with_200000_actions_renders_in_linear_time() {
    let dir = single(None);
    let tag = app_tag(dir.path());
    // On many lines, and all on one line.
    for (sep, name) in [("\n", "lines.yaml"), (" ", "one-line.yaml")] {
        let text = vec!["x: << tag \"app\" >>"; 200_000].join(sep);
        write(&dir.path().join("k8s").join(name), &text);
        let start = Instant::now();
        let out = ok(dir.path(), &["render", &format!("k8s/{name}")]);
        let took = start.elapsed();
        eprintln!("{name}: 200,000 actions rendered in {took:?}");
        assert_eq!(out.matches(&tag).count(), 200_000);
        assert!(took < QUICK, "{took:?}");
    }
    // 20,000 unknown functions: every one reported with its place.
    let text = vec!["x: << tga \"app\" >>"; 20_000].join(" ");
    write(&dir.path().join("k8s/bad.yaml"), &text);
    let start = Instant::now();
    let o = run(dir.path(), &["render", "k8s/bad.yaml"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert_eq!(err.matches("unknown function \"tga\"").count(), 20_000);
    assert!(
        err.contains("k8s/bad.yaml:1:379985: unknown function \"tga\""),
        "{}",
        &err[err.len().saturating_sub(300)..]
    );
    assert!(start.elapsed() < QUICK, "{:?}", start.elapsed());
}
