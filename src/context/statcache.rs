//! The stat cache: a file's BLAKE3 from an earlier run, reused while the
//! file's (device, inode, size, mtime, ctime, mode) are all unchanged, so
//! an unchanged tree is checked at the cost of a `stat` per file.
//!
//! Never trusted into a wrong tag:
//! * `ctime` cannot be set by users: content restored with `touch -d`, or a
//!   file replaced by another that got the same inode number, changes it;
//! * a file whose mtime or ctime is within [`RACY`] of the moment it was
//!   hashed may have changed again in the same timestamp tick (git's "racy
//!   clean" case): it is hashed again next time;
//! * the file carries a magic, this build's version and a checksum; a file
//!   that is foreign, truncated, corrupt or half written is ignored.
//!
//! It lives in the per-user cache directory (`$TAGSMITH_CACHE_DIR`, else
//! `$XDG_CACHE_HOME/tagsmith`, else `~/.cache/tagsmith`), one file per
//! project root, never inside a build context; it is replaced atomically.
//! Entries are kept per context walked, so its size follows the files hashed.

use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::Digest;

const MAGIC: &[u8; 16] = b"tagsmith-statc\0\x01";
/// A file changed this close to its hashing may change again unseen.
pub const RACY: Duration = Duration::from_secs(2);

/// What identifies a file's state, as `stat` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub mode: u32,
}

impl Stamp {
    pub fn of(meta: &std::fs::Metadata) -> Stamp {
        Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
            ctime_ns: meta.ctime() * 1_000_000_000 + meta.ctime_nsec(),
            mode: meta.mode(),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Record {
    stamp: Stamp,
    digest: Digest,
    /// When the file was hashed (ns since the epoch).
    hashed_at: i64,
}

impl Record {
    /// Whether the digest can stand for a file stamped `now`.
    fn valid_for(&self, stamp: &Stamp) -> bool {
        let racy = RACY.as_nanos() as i64;
        self.stamp == *stamp
            && stamp.mtime_ns < self.hashed_at - racy
            && stamp.ctime_ns < self.hashed_at - racy
    }
}

/// A project's stat cache, shared by the walks of one run.
pub struct StatCache {
    file: PathBuf,
    /// By path (its bytes: cheaper to hash than a `Path`'s components).
    old: HashMap<Box<[u8]>, Record>,
    new: Mutex<HashMap<Box<[u8]>, Record>>,
    /// Context roots walked this run: their old entries are replaced.
    walked: Mutex<Vec<PathBuf>>,
}

/// Where caches live.
pub fn cache_dir() -> Option<PathBuf> {
    let var = |n| {
        std::env::var_os(n)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("TAGSMITH_CACHE_DIR")
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("tagsmith")))
        .or_else(|| var("HOME").map(|h| h.join(".cache").join("tagsmith")))
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

impl StatCache {
    /// The cache of the project at `root`, as the last run left it (empty
    /// when there is none or it cannot be trusted).
    pub fn open(dir: &Path, root: &Path) -> StatCache {
        let key = blake3::hash(root.as_os_str().as_encoded_bytes()).to_hex();
        let file = dir.join(format!("stat-{}.bin", &key[..24]));
        let old = std::fs::read(&file)
            .ok()
            .and_then(|bytes| decode(&bytes))
            .unwrap_or_default();
        StatCache {
            file,
            old,
            new: Mutex::default(),
            walked: Mutex::default(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.file
    }

    /// The remembered digest of `path` and when it was hashed, if `stamp`
    /// says the file is unchanged since.
    pub fn get(&self, path: &Path, stamp: &Stamp) -> Option<(Digest, i64)> {
        let key = path.as_os_str().as_encoded_bytes();
        let record = self.old.get(key)?;
        record.valid_for(stamp).then(|| {
            self.new.lock().unwrap().insert(key.into(), *record);
            (record.digest, record.hashed_at)
        })
    }

    /// Remembers a digest computed now.
    pub fn put(&self, path: &Path, stamp: Stamp, digest: Digest, hashed_at: i64) {
        self.new.lock().unwrap().insert(
            path.as_os_str().as_encoded_bytes().into(),
            Record {
                stamp,
                digest,
                hashed_at,
            },
        );
    }

    /// The time to record as a hash's moment: taken before the read starts.
    pub fn clock() -> i64 {
        now_ns()
    }

    /// A context root about to be walked.
    pub fn walking(&self, root: &Path) {
        self.walked.lock().unwrap().push(root.to_path_buf());
    }

    /// Writes the cache: this run's entries, and the old ones of contexts
    /// not walked this run. Failing to write only costs speed next time.
    pub fn save(self) {
        let walked: std::collections::HashSet<PathBuf> =
            self.walked.into_inner().unwrap().into_iter().collect();
        let mut all = self.new.into_inner().unwrap();
        for (key, record) in self.old {
            let path = Path::new(std::ffi::OsStr::from_bytes(&key));
            if !path.ancestors().any(|a| walked.contains(a)) {
                all.entry(key).or_insert(record);
            }
        }
        let bytes = encode(&all);
        let Some(dir) = self.file.parent() else {
            return;
        };
        if std::fs::create_dir_all(dir).is_err() {
            return;
        }
        let tmp = dir.join(format!(
            ".{}.{}.tmp",
            self.file
                .file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default(),
            std::process::id()
        ));
        if std::fs::write(&tmp, &bytes)
            .and_then(|_| std::fs::rename(&tmp, &self.file))
            .is_err()
        {
            let _ = std::fs::remove_file(&tmp);
        }
    }
}

fn version() -> &'static [u8] {
    concat!(env!("CARGO_PKG_VERSION"), "/", "tagsmith/v1").as_bytes()
}

/// `MAGIC | u16 len | version | records… | BLAKE3 of everything before`.
fn encode(records: &HashMap<Box<[u8]>, Record>) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + records.len() * 120);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(version().len() as u16).to_le_bytes());
    out.extend_from_slice(version());
    for (p, r) in records {
        out.extend_from_slice(&(p.len() as u32).to_le_bytes());
        out.extend_from_slice(p);
        for v in [r.stamp.dev, r.stamp.ino, r.stamp.size] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for v in [r.stamp.mtime_ns, r.stamp.ctime_ns, r.hashed_at] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&r.stamp.mode.to_le_bytes());
        out.extend_from_slice(&r.digest);
    }
    let sum = blake3::hash(&out);
    out.extend_from_slice(sum.as_bytes());
    out
}

fn decode(bytes: &[u8]) -> Option<HashMap<Box<[u8]>, Record>> {
    let (body, sum) = bytes.split_at(bytes.len().checked_sub(32)?);
    if blake3::hash(body).as_bytes() != sum {
        return None;
    }
    let mut r = Reader(body);
    if r.take(MAGIC.len())? != MAGIC {
        return None;
    }
    let len = u16::from_le_bytes(r.take(2)?.try_into().ok()?) as usize;
    if r.take(len)? != version() {
        return None;
    }
    let mut out = HashMap::new();
    while !r.0.is_empty() {
        let n = r.u32()? as usize;
        let path: Box<[u8]> = r.take(n)?.into();
        let stamp = Stamp {
            dev: r.u64()?,
            ino: r.u64()?,
            size: r.u64()?,
            mtime_ns: r.u64()? as i64,
            ctime_ns: r.u64()? as i64,
            mode: 0,
        };
        let hashed_at = r.u64()? as i64;
        let mode = r.u32()?;
        let digest: Digest = r.take(32)?.try_into().ok()?;
        out.insert(
            path,
            Record {
                stamp: Stamp { mode, ..stamp },
                digest,
                hashed_at,
            },
        );
    }
    Some(out)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(mtime_ns: i64) -> Stamp {
        Stamp {
            dev: 1,
            ino: 2,
            size: 3,
            mtime_ns,
            ctime_ns: mtime_ns,
            mode: 0o100644,
        }
    }

    #[test]
    fn round_trip_and_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let root = Path::new("/project");
        let cache = StatCache::open(dir.path(), root);
        let at = now_ns();
        let old = at - 10_000_000_000;
        cache.walking(Path::new("/project/ctx"));
        cache.put(Path::new("/project/ctx/a"), stamp(old), [7; 32], at);
        let file = cache.path().to_path_buf();
        cache.save();
        let again = StatCache::open(dir.path(), root);
        assert_eq!(
            again.get(Path::new("/project/ctx/a"), &stamp(old)),
            Some(([7; 32], at))
        );
        assert_eq!(
            again.get(Path::new("/project/ctx/a"), &stamp(old + 1)),
            None,
            "another mtime"
        );

        // Truncated, flipped or foreign: ignored, never trusted.
        let bytes = std::fs::read(&file).unwrap();
        for bad in [
            bytes[..bytes.len() - 1].to_vec(),
            {
                let mut b = bytes.clone();
                b[40] ^= 1;
                b
            },
            {
                let mut b = bytes.clone();
                b[16 + 2] = b'9';
                let n = b.len() - 32;
                let sum = blake3::hash(&b[..n]);
                b[n..].copy_from_slice(sum.as_bytes());
                b
            },
        ] {
            std::fs::write(&file, bad).unwrap();
            let c = StatCache::open(dir.path(), root);
            assert_eq!(c.get(Path::new("/project/ctx/a"), &stamp(old)), None);
        }
    }

    #[test]
    fn racy_entries_are_not_trusted() {
        let at = now_ns();
        let r = Record {
            stamp: stamp(at - 1),
            digest: [0; 32],
            hashed_at: at,
        };
        assert!(
            !r.valid_for(&stamp(at - 1)),
            "modified in the same tick as hashed"
        );
        let r = Record {
            stamp: stamp(at - 5_000_000_000),
            ..r
        };
        assert!(r.valid_for(&stamp(at - 5_000_000_000)));
    }

    #[test]
    fn entries_of_contexts_not_walked_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let root = Path::new("/p");
        let at = now_ns();
        let old = at - 10_000_000_000;
        let c = StatCache::open(dir.path(), root);
        c.walking(Path::new("/p/a"));
        c.walking(Path::new("/p/b"));
        c.put(Path::new("/p/a/x"), stamp(old), [1; 32], at);
        c.put(Path::new("/p/b/y"), stamp(old), [2; 32], at);
        c.save();
        // Walk only a; its file is gone.
        let c = StatCache::open(dir.path(), root);
        c.walking(Path::new("/p/a"));
        c.save();
        let c = StatCache::open(dir.path(), root);
        assert_eq!(
            c.get(Path::new("/p/a/x"), &stamp(old)),
            None,
            "dropped with its context"
        );
        assert_eq!(c.get(Path::new("/p/b/y"), &stamp(old)), Some(([2; 32], at)));
    }
}
