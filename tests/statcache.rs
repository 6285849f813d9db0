//! The stat cache never yields a wrong tag: every test changes a tree in a
//! way a cache keyed on less than the full stat (or trusted too soon) would
//! miss, and compares the tags with the cache against a run without it.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use common::*;

/// Runs with its own cache directory.
fn tags_with(
    dir: &Path,
    cache: &Path,
    extra: &[&str],
) -> std::collections::BTreeMap<String, String> {
    let mut args = vec!["tags", "--format", "json"];
    args.extend_from_slice(extra);
    let o = Command::new(bin())
        .args(&args)
        .current_dir(dir)
        .env("TAGSMITH_CACHE_DIR", cache)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    by_name(&stdout(&o), "tag")
}

/// The tags a run without any cache computes: the truth.
fn truth(dir: &Path) -> std::collections::BTreeMap<String, String> {
    let none = tempfile::tempdir().unwrap();
    tags_with(dir, none.path(), &["--no-stat-cache"])
}

/// Sets a file's mtime (and atime) to `secs` since the epoch.
fn set_mtime(path: &Path, secs: i64) {
    let ok = Command::new("touch")
        .arg("-d")
        .arg(format!("@{secs}"))
        .arg(path)
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

/// A project whose files are old enough not to be "racy".
fn project() -> (tempfile::TempDir, tempfile::TempDir) {
    let dir = demo();
    let cache = tempfile::tempdir().unwrap();
    for entry in walk(dir.path()) {
        set_mtime(&entry, 1_600_000_000);
    }
    // ctime is now: let it age past the racy window.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    (dir, cache)
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let meta = fs::symlink_metadata(&p).unwrap();
        if meta.is_dir() {
            out.extend(walk(&p));
        } else if meta.is_file() {
            out.push(p);
        }
    }
    out
}

#[test]
fn unchanged_trees_reuse_digests_and_say_the_same() {
    let (dir, cache) = project();
    let d = dir.path();
    let first = tags_with(d, cache.path(), &[]);
    assert_eq!(first, truth(d));
    let files: Vec<_> = fs::read_dir(cache.path()).unwrap().collect();
    assert_eq!(files.len(), 1, "one cache file for the project");
    assert_eq!(tags_with(d, cache.path(), &[]), first);
    // A real change is seen.
    write(&d.join("services/api/config/app.yaml"), "port: 1\n");
    let changed = tags_with(d, cache.path(), &[]);
    assert_eq!(changed, truth(d));
    assert_ne!(changed["api"], first["api"]);
}

#[test]
fn content_changed_with_size_and_mtime_restored() {
    let (dir, cache) = project();
    let d = dir.path();
    let file = d.join("services/api/src/main.py");
    tags_with(d, cache.path(), &[]);
    let before = fs::read(&file).unwrap();
    let mut after = before.clone();
    after[0] ^= 0x20;
    fs::write(&file, &after).unwrap();
    set_mtime(&file, 1_600_000_000);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    assert_eq!(fs::metadata(&file).unwrap().mtime(), 1_600_000_000);
    assert_eq!(tags_with(d, cache.path(), &[]), truth(d));
}

#[test]
fn a_file_replaced_by_another_with_the_same_inode_number() {
    let (dir, cache) = project();
    let d = dir.path();
    let file = d.join("services/api/src/main.py");
    tags_with(d, cache.path(), &[]);
    let old = fs::metadata(&file).unwrap();
    let mut content = fs::read(&file).unwrap();
    content[0] ^= 0x20;
    // Deleting and creating usually hands the new file the freed inode.
    let mut same_inode = false;
    for _ in 0..50 {
        fs::remove_file(&file).unwrap();
        fs::write(&file, &content).unwrap();
        if fs::metadata(&file).unwrap().ino() == old.ino() {
            same_inode = true;
            break;
        }
    }
    set_mtime(&file, 1_600_000_000);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    eprintln!("inode reused: {same_inode}");
    assert_eq!(tags_with(d, cache.path(), &[]), truth(d));
}

#[test]
fn a_write_in_the_same_timestamp_tick_as_the_hash() {
    // Writes within one timestamp tick can leave mtime and ctime equal (a
    // coarse clock or file system): only the racy rule keeps the cache from
    // trusting such a file. Kernels with fine-grained timestamps give the
    // second write another ctime anyway; the rule itself is unit-tested in
    // context::statcache (racy_entries_are_not_trusted).
    let dir = single(None);
    let d = dir.path();
    let cache = tempfile::tempdir().unwrap();
    let file = d.join("ctx/f");
    for round in 0..20 {
        fs::write(&file, format!("a{round:03}")).unwrap();
        let first = tags_with(d, cache.path(), &[]);
        fs::write(&file, format!("b{round:03}")).unwrap();
        let second = tags_with(d, cache.path(), &[]);
        assert_ne!(
            first, second,
            "round {round}: the same-size rewrite is seen"
        );
        assert_eq!(second, truth(d));
    }
}

#[test]
fn a_copied_checkout_in_the_same_place() {
    let (dir, cache) = project();
    let d = dir.path();
    let first = tags_with(d, cache.path(), &[]);
    // The checkout is replaced by a copy (new inodes, mtimes kept), and one
    // file of the copy differs with the same size and mtime.
    let moved = tempfile::tempdir().unwrap();
    let old = moved.path().join("old");
    fs::rename(d, &old).unwrap();
    assert!(
        Command::new("cp")
            .arg("-a")
            .arg(&old)
            .arg(d)
            .status()
            .unwrap()
            .success()
    );
    let file = d.join("services/web/dist/index.html");
    let mut content = fs::read(&file).unwrap();
    content[0] ^= 0x20;
    fs::write(&file, &content).unwrap();
    set_mtime(&file, 1_600_000_000);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let second = tags_with(d, cache.path(), &[]);
    assert_eq!(second, truth(d));
    assert_ne!(second["web"], first["web"]);
}

#[test]
fn foreign_corrupt_and_truncated_caches_are_ignored() {
    let (dir, cache) = project();
    let d = dir.path();
    tags_with(d, cache.path(), &[]);
    let file = fs::read_dir(cache.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let good = fs::read(&file).unwrap();
    // A different version's cache, a flipped byte, a cut file, garbage.
    let mut other_version = good.clone();
    other_version[18] = b'9';
    let mut flipped = good.clone();
    let n = flipped.len() / 2;
    flipped[n] ^= 1;
    for bad in [
        other_version,
        flipped,
        good[..good.len() / 2].to_vec(),
        b"junk".to_vec(),
    ] {
        // Content changes that only a fresh hash sees: same size, same mtime.
        let f = d.join("services/api/src/main.py");
        let mut content = fs::read(&f).unwrap();
        content[1] ^= 0x01;
        fs::write(&f, &content).unwrap();
        set_mtime(&f, 1_600_000_000);
        fs::write(&file, &bad).unwrap();
        assert_eq!(tags_with(d, cache.path(), &[]), truth(d));
    }
}

#[test]
fn the_cache_can_be_turned_off_and_follows_the_files() {
    let (dir, cache) = project();
    let d = dir.path();
    tags_with(d, cache.path(), &["--no-stat-cache"]);
    assert_eq!(
        fs::read_dir(cache.path()).unwrap().count(),
        0,
        "--no-stat-cache writes nothing"
    );
    let config = d.join("tagsmith.yaml");
    let text = fs::read_to_string(&config).unwrap();
    fs::write(&config, format!("stat_cache: false\n{text}")).unwrap();
    tags_with(d, cache.path(), &[]);
    assert_eq!(
        fs::read_dir(cache.path()).unwrap().count(),
        0,
        "stat_cache: false writes nothing"
    );
    fs::write(&config, &text).unwrap();

    // Its size follows the files hashed.
    for i in 0..300 {
        write(&d.join(format!("services/api/src/gen/f{i}.py")), "x = 1\n");
    }
    tags_with(d, cache.path(), &[]);
    let file = fs::read_dir(cache.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let big = fs::metadata(&file).unwrap().len();
    fs::remove_dir_all(d.join("services/api/src/gen")).unwrap();
    tags_with(d, cache.path(), &[]);
    let small = fs::metadata(&file).unwrap().len();
    assert!(
        small * 3 < big,
        "{small} after deleting 300 files, {big} before"
    );
}
