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
//! * the file carries a magic and this build's version, its index a
//!   checksum and each block its own: a foreign, truncated, corrupt or half
//!   written file, or block, is ignored.
//!
//! It lives in the per-user cache directory (`$TAGSMITH_CACHE_DIR`, else
//! `$XDG_CACHE_HOME/tagsmith`, else `~/.cache/tagsmith`), one file per
//! project root, never inside a build context; it is replaced atomically.
//!
//! Memory follows the contexts being walked, not the project: the file is
//! one block of records per context walk, sorted by path, read when that
//! context is walked; a walk's new records are written out as soon as it
//! ends, and the blocks of contexts not walked this run are copied over
//! unread. So its size follows the files hashed, and a run holds at most
//! the blocks of the contexts it is walking at once.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::Digest;

const MAGIC: &[u8; 16] = b"tagsmith-statc\0\x02";
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

/// A record's bytes after its key: dev, ino, size, mtime, ctime, hashed_at
/// (8 each), mode (4), digest (32).
const RECORD: usize = 6 * 8 + 4 + 32;

impl Record {
    /// Whether the digest can stand for a file stamped `now`.
    fn valid_for(&self, stamp: &Stamp) -> bool {
        let racy = RACY.as_nanos() as i64;
        self.stamp == *stamp
            && stamp.mtime_ns < self.hashed_at - racy
            && stamp.ctime_ns < self.hashed_at - racy
    }

    /// `u16 key length | key | the record`.
    fn encode(&self, key: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(&(key.len() as u16).to_le_bytes());
        out.extend_from_slice(key);
        let s = &self.stamp;
        for v in [s.dev, s.ino, s.size] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for v in [s.mtime_ns, s.ctime_ns, self.hashed_at] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&s.mode.to_le_bytes());
        out.extend_from_slice(&self.digest);
    }

    fn decode(b: &[u8]) -> Record {
        let u64_at = |i: usize| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap());
        Record {
            stamp: Stamp {
                dev: u64_at(0),
                ino: u64_at(1),
                size: u64_at(2),
                mtime_ns: u64_at(3) as i64,
                ctime_ns: u64_at(4) as i64,
                mode: u32::from_le_bytes(b[48..52].try_into().unwrap()),
            },
            hashed_at: u64_at(5) as i64,
            digest: b[52..84].try_into().unwrap(),
        }
    }
}

/// Encoded records and where each starts: sorted by key when read from a
/// file, in arrival order while a walk adds to them.
#[derive(Default)]
struct Records {
    bytes: Vec<u8>,
    starts: Vec<u32>,
}

impl Records {
    /// A block as stored, when it is well formed and sorted.
    fn parse(bytes: Vec<u8>) -> Option<Records> {
        let mut starts = Vec::new();
        let mut at = 0usize;
        while at < bytes.len() {
            let n = u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?) as usize;
            if bytes.len() < at + 2 + n + RECORD {
                return None;
            }
            starts.push(u32::try_from(at).ok()?);
            at += 2 + n + RECORD;
        }
        let records = Records { bytes, starts };
        let sorted = records
            .starts
            .windows(2)
            .all(|w| records.key(w[0]) < records.key(w[1]));
        sorted.then_some(records)
    }

    fn key(&self, start: u32) -> &[u8] {
        let at = start as usize;
        let n = u16::from_le_bytes([self.bytes[at], self.bytes[at + 1]]) as usize;
        &self.bytes[at + 2..at + 2 + n]
    }

    fn record(&self, start: u32) -> Record {
        let at = start as usize + 2 + self.key(start).len();
        Record::decode(&self.bytes[at..at + RECORD])
    }

    fn find(&self, key: &[u8]) -> Option<Record> {
        let i = self
            .starts
            .binary_search_by(|&s| self.key(s).cmp(key))
            .ok()?;
        Some(self.record(self.starts[i]))
    }

    fn push(&mut self, key: &[u8], record: &Record) {
        // Keys are paths inside a context; longer ones cannot be looked up
        // again and are simply not remembered.
        if key.len() > u16::MAX as usize || self.bytes.len() > u32::MAX as usize / 2 {
            return;
        }
        self.starts.push(self.bytes.len() as u32);
        record.encode(key, &mut self.bytes);
    }

    /// Whether these records, sorted, are byte for byte the block `old`.
    fn equals(&mut self, old: &Records) -> bool {
        let mut at = 0;
        for rec in self.sorted() {
            if old.bytes.get(at..at + rec.len()) != Some(rec) {
                return false;
            }
            at += rec.len();
        }
        at == old.bytes.len()
    }

    /// The records sorted by key, the last of equal keys kept.
    fn sorted(&mut self) -> impl Iterator<Item = &[u8]> {
        let mut starts = std::mem::take(&mut self.starts);
        // Stable: of equal keys, the one pushed last comes last.
        starts.sort_by(|&a, &b| self.key(a).cmp(self.key(b)));
        let mut kept: Vec<u32> = Vec::with_capacity(starts.len());
        for s in starts {
            match kept.last_mut() {
                Some(last) if self.key(*last) == self.key(s) => *last = s,
                _ => kept.push(s),
            }
        }
        self.starts = kept;
        self.starts.iter().map(|&s| {
            let at = s as usize;
            let n = u16::from_le_bytes([self.bytes[at], self.bytes[at + 1]]) as usize;
            &self.bytes[at..at + 2 + n + RECORD]
        })
    }
}

/// Where a block lies in a cache file.
#[derive(Debug, Clone)]
struct BlockRef {
    /// The context root whose walk wrote it.
    root: PathBuf,
    offset: u64,
    len: u64,
    sum: [u8; 32],
}

/// The previous run's file: its index, blocks read on demand.
struct Old {
    file: File,
    blocks: Vec<BlockRef>,
}

/// The file this run writes: blocks appended as walks end.
struct Out {
    tmp: PathBuf,
    w: BufWriter<File>,
    pos: u64,
    blocks: Vec<BlockRef>,
    /// A write failed: the file is not used.
    broken: bool,
}

/// A project's stat cache, shared by the walks of one run.
pub struct StatCache {
    file: PathBuf,
    old: Option<Old>,
    out: Mutex<Option<Out>>,
    /// Context roots walked this run: their old blocks are replaced.
    walked: Mutex<HashSet<PathBuf>>,
    /// Roots whose walk found exactly the records of their old block: that
    /// block is kept as it is.
    same: Mutex<HashSet<PathBuf>>,
}

/// One context walk's view: the old records of its root, and the new ones
/// it learns, keyed by the path relative to the root.
pub struct Context<'a> {
    cache: &'a StatCache,
    root: PathBuf,
    old: Vec<Records>,
    new: Mutex<Records>,
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

fn version() -> &'static [u8] {
    concat!(env!("CARGO_PKG_VERSION"), "/", "tagsmith/v1").as_bytes()
}

/// `MAGIC | u16 len | version`.
fn header() -> Vec<u8> {
    let mut h = MAGIC.to_vec();
    h.extend_from_slice(&(version().len() as u16).to_le_bytes());
    h.extend_from_slice(version());
    h
}

/// `u32 count | (u32 len | root | u64 offset | u64 len | sum)…`
fn encode_index(blocks: &[BlockRef]) -> Vec<u8> {
    let mut out = (blocks.len() as u32).to_le_bytes().to_vec();
    for b in blocks {
        let root = b.root.as_os_str().as_encoded_bytes();
        out.extend_from_slice(&(root.len() as u32).to_le_bytes());
        out.extend_from_slice(root);
        out.extend_from_slice(&b.offset.to_le_bytes());
        out.extend_from_slice(&b.len.to_le_bytes());
        out.extend_from_slice(&b.sum);
    }
    out
}

fn decode_index(mut b: &[u8]) -> Option<Vec<BlockRef>> {
    let mut take = |n: usize| -> Option<&[u8]> {
        let (a, rest) = b.split_at_checked(n)?;
        b = rest;
        Some(a)
    };
    let count = u32::from_le_bytes(take(4)?.try_into().ok()?);
    let mut blocks = Vec::new();
    for _ in 0..count {
        let n = u32::from_le_bytes(take(4)?.try_into().ok()?) as usize;
        let root = PathBuf::from(std::ffi::OsStr::from_bytes(take(n)?));
        blocks.push(BlockRef {
            root,
            offset: u64::from_le_bytes(take(8)?.try_into().ok()?),
            len: u64::from_le_bytes(take(8)?.try_into().ok()?),
            sum: take(32)?.try_into().ok()?,
        });
    }
    Some(blocks)
}

/// The trailer: `u64 index offset | u64 index length | BLAKE3 of the header
/// and the index`.
const TRAILER: u64 = 8 + 8 + 32;

/// The previous run's index, when the file is this version's and whole.
fn read_old(path: &Path) -> Option<Old> {
    let mut file = File::open(path).ok()?;
    let size = file.metadata().ok()?.len();
    let head = header();
    if size < head.len() as u64 + TRAILER {
        return None;
    }
    let mut trailer = [0u8; TRAILER as usize];
    file.read_exact_at(&mut trailer, size - TRAILER).ok()?;
    let index_at = u64::from_le_bytes(trailer[..8].try_into().ok()?);
    let index_len = u64::from_le_bytes(trailer[8..16].try_into().ok()?);
    if index_at.checked_add(index_len)? != size - TRAILER || index_at < head.len() as u64 {
        return None;
    }
    let mut found = vec![0u8; head.len()];
    file.read_exact(&mut found).ok()?;
    let mut index = vec![0u8; usize::try_from(index_len).ok()?];
    file.seek(SeekFrom::Start(index_at)).ok()?;
    file.read_exact(&mut index).ok()?;
    let mut sum = blake3::Hasher::new();
    sum.update(&found);
    sum.update(&index);
    if found != head || sum.finalize().as_bytes() != &trailer[16..] {
        return None;
    }
    let blocks = decode_index(&index)?;
    let inside = |b: &BlockRef| {
        b.offset >= head.len() as u64 && b.offset.checked_add(b.len).is_some_and(|e| e <= index_at)
    };
    blocks.iter().all(inside).then_some(Old { file, blocks })
}

impl StatCache {
    /// The cache of the project at `root`, as the last run left it (empty
    /// when there is none or it cannot be trusted).
    pub fn open(dir: &Path, root: &Path) -> StatCache {
        let key = blake3::hash(root.as_os_str().as_encoded_bytes()).to_hex();
        let file = dir.join(format!("stat-{}.bin", &key[..24]));
        StatCache {
            old: read_old(&file),
            file,
            out: Mutex::default(),
            walked: Mutex::default(),
            same: Mutex::default(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.file
    }

    /// The time to record as a hash's moment: taken before the read starts.
    pub fn clock() -> i64 {
        now_ns()
    }

    /// The view of one walk of the context at `root`, with the records the
    /// last run kept for it (blocks that fail their checksum are ignored).
    pub fn context(&self, root: &Path) -> Context<'_> {
        self.walked.lock().unwrap().insert(root.to_path_buf());
        let old = self
            .old
            .iter()
            .flat_map(|o| o.blocks.iter().map(move |b| (o, b)))
            .filter(|(_, b)| b.root == root)
            .filter_map(|(o, b)| {
                let mut bytes = vec![0u8; usize::try_from(b.len).ok()?];
                o.file.read_exact_at(&mut bytes, b.offset).ok()?;
                if blake3::hash(&bytes).as_bytes() != &b.sum {
                    return None;
                }
                Records::parse(bytes)
            })
            .collect();
        Context {
            cache: self,
            root: root.to_path_buf(),
            old,
            new: Mutex::default(),
        }
    }

    /// Appends one walk's records as a block.
    fn append(&self, root: &Path, records: &mut Records) {
        if records.starts.is_empty() {
            return;
        }
        let mut out = self.out.lock().unwrap();
        let Some(out) = self.writer(&mut out) else {
            return;
        };
        let mut sum = blake3::Hasher::new();
        let mut len = 0u64;
        for rec in records.sorted() {
            sum.update(rec);
            len += rec.len() as u64;
            if out.w.write_all(rec).is_err() {
                out.broken = true;
                return;
            }
        }
        out.blocks.push(BlockRef {
            root: root.to_path_buf(),
            offset: out.pos,
            len,
            sum: *sum.finalize().as_bytes(),
        });
        out.pos += len;
    }

    /// The temporary file this run writes, created with its header on first use.
    fn writer<'o>(&self, out: &'o mut Option<Out>) -> Option<&'o mut Out> {
        if out.is_none() {
            let dir = self.file.parent()?;
            std::fs::create_dir_all(dir).ok()?;
            let tmp = dir.join(format!(
                ".{}.{}.tmp",
                self.file.file_name()?.to_string_lossy(),
                std::process::id()
            ));
            let mut w = BufWriter::new(File::create(&tmp).ok()?);
            let head = header();
            let ok = w.write_all(&head).is_ok();
            *out = Some(Out {
                tmp,
                w,
                pos: head.len() as u64,
                blocks: Vec::new(),
                broken: !ok,
            });
        }
        out.as_mut().filter(|o| !o.broken)
    }

    /// Writes the cache: this run's blocks, and the old blocks of contexts
    /// not walked this run, copied unread. Failing to write only costs
    /// speed next time.
    ///
    /// A run that found every walked context as the file has it writes
    /// nothing. No fsync: a file cut short by a crash fails its checksums
    /// and is ignored, which costs one slower run.
    pub fn save(self) {
        let walked = std::mem::take(&mut *self.walked.lock().unwrap());
        let same = std::mem::take(&mut *self.same.lock().unwrap());
        if walked.is_empty() {
            return;
        }
        let mut slot = self.out.lock().unwrap().take();
        if slot.is_none() && self.old.is_some() && walked.is_subset(&same) {
            return;
        }
        let Some(out) = self.writer(&mut slot) else {
            return;
        };
        let ok = self.finish(out, &walked, &same).is_ok();
        let tmp = out.tmp.clone();
        drop(slot);
        if !(ok && std::fs::rename(&tmp, &self.file).is_ok()) {
            let _ = std::fs::remove_file(&tmp);
        }
    }

    fn finish(
        &self,
        out: &mut Out,
        walked: &HashSet<PathBuf>,
        same: &HashSet<PathBuf>,
    ) -> std::io::Result<()> {
        if out.broken {
            return Err(std::io::Error::other("an earlier write failed"));
        }
        if let Some(old) = &self.old {
            let written: HashSet<PathBuf> = out.blocks.iter().map(|b| b.root.clone()).collect();
            let keep = |b: &&BlockRef| {
                !walked.contains(&b.root) || (same.contains(&b.root) && !written.contains(&b.root))
            };
            out.w.flush()?;
            let mut from = &old.file;
            for b in old.blocks.iter().filter(keep) {
                // File to file: std uses copy_file_range, no copy through us.
                from.seek(SeekFrom::Start(b.offset))?;
                let copied = std::io::copy(&mut from.take(b.len), out.w.get_mut())?;
                if copied != b.len {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                out.blocks.push(BlockRef {
                    offset: out.pos,
                    ..b.clone()
                });
                out.pos += b.len;
            }
        }
        let index = encode_index(&out.blocks);
        let mut sum = blake3::Hasher::new();
        sum.update(&header());
        sum.update(&index);
        out.w.write_all(&index)?;
        out.w.write_all(&out.pos.to_le_bytes())?;
        out.w.write_all(&(index.len() as u64).to_le_bytes())?;
        out.w.write_all(sum.finalize().as_bytes())?;
        out.w.flush()
    }
}

impl Drop for StatCache {
    /// A run that ends without [`StatCache::save`] leaves no temporary file.
    fn drop(&mut self) {
        if let Some(out) = self.out.get_mut().unwrap().take() {
            drop(out.w);
            let _ = std::fs::remove_file(&out.tmp);
        }
    }
}

impl Context<'_> {
    fn key<'p>(&self, path: &'p Path) -> Option<&'p [u8]> {
        // Walked paths are the root joined with a relative path: a byte
        // prefix check, much cheaper than comparing components, per file.
        let root = self.root.as_os_str().as_encoded_bytes();
        let bytes = path.as_os_str().as_encoded_bytes();
        match bytes.strip_prefix(root) {
            Some([b'/', rest @ ..]) if !root.ends_with(b"/") => Some(rest),
            Some(rest) if root.ends_with(b"/") => Some(rest),
            _ => path
                .strip_prefix(&self.root)
                .ok()
                .map(|p| p.as_os_str().as_encoded_bytes()),
        }
    }

    /// The remembered digest of `path` and when it was hashed, if `stamp`
    /// says the file is unchanged since.
    pub fn get(&self, path: &Path, stamp: &Stamp) -> Option<(Digest, i64)> {
        let key = self.key(path)?;
        let record = self.old.iter().rev().find_map(|r| r.find(key))?;
        record.valid_for(stamp).then(|| {
            self.new.lock().unwrap().push(key, &record);
            (record.digest, record.hashed_at)
        })
    }

    /// Remembers a digest computed (or learnt from another path) now.
    pub fn put(&self, path: &Path, stamp: Stamp, digest: Digest, hashed_at: i64) {
        if let Some(key) = self.key(path) {
            let record = Record {
                stamp,
                digest,
                hashed_at,
            };
            self.new.lock().unwrap().push(key, &record);
        }
    }

    /// The walk ended well: its records go into the file this run writes.
    pub fn finish(self) {
        let mut new = self.new.into_inner().unwrap();
        if let [old] = self.old.as_slice()
            && new.equals(old)
        {
            self.cache.same.lock().unwrap().insert(self.root);
            return;
        }
        self.cache.append(&self.root, &mut new);
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

    fn walk(c: &StatCache, root: &str, puts: &[(&str, Digest, i64, i64)]) {
        let ctx = c.context(Path::new(root));
        for (path, digest, mtime, at) in puts {
            ctx.put(Path::new(path), stamp(*mtime), *digest, *at);
        }
        ctx.finish();
    }

    fn get(c: &StatCache, root: &str, path: &str, mtime: i64) -> Option<(Digest, i64)> {
        c.context(Path::new(root))
            .get(Path::new(path), &stamp(mtime))
    }

    #[test]
    fn round_trip_and_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let root = Path::new("/project");
        let cache = StatCache::open(dir.path(), root);
        let at = now_ns();
        let old = at - 10_000_000_000;
        walk(
            &cache,
            "/project/ctx",
            &[("/project/ctx/a", [7; 32], old, at)],
        );
        let file = cache.path().to_path_buf();
        cache.save();
        let again = StatCache::open(dir.path(), root);
        assert_eq!(
            get(&again, "/project/ctx", "/project/ctx/a", old),
            Some(([7; 32], at))
        );
        assert_eq!(
            get(&again, "/project/ctx", "/project/ctx/a", old + 1),
            None,
            "another mtime"
        );
        assert_eq!(
            get(&again, "/project", "/project/ctx/a", old),
            None,
            "another context"
        );
        drop(again);

        // Truncated, flipped (in a block, in the index) or foreign: ignored.
        let bytes = std::fs::read(&file).unwrap();
        let head = header().len();
        for bad in [
            bytes[..bytes.len() - 1].to_vec(),
            {
                let mut b = bytes.clone();
                b[head + 10] ^= 1;
                b
            },
            {
                let mut b = bytes.clone();
                let n = b.len() - TRAILER as usize - 5;
                b[n] ^= 1;
                b
            },
            {
                let mut b = bytes.clone();
                b[16 + 2] = b'9';
                b
            },
            Vec::new(),
            b"garbage".repeat(20),
        ] {
            std::fs::write(&file, bad).unwrap();
            let c = StatCache::open(dir.path(), root);
            assert_eq!(get(&c, "/project/ctx", "/project/ctx/a", old), None);
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
    fn blocks_of_contexts_not_walked_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let root = Path::new("/p");
        let at = now_ns();
        let old = at - 10_000_000_000;
        let c = StatCache::open(dir.path(), root);
        walk(&c, "/p/a", &[("/p/a/x", [1; 32], old, at)]);
        walk(&c, "/p/b", &[("/p/b/y", [2; 32], old, at)]);
        c.save();
        // Walk only a; its file is gone.
        let c = StatCache::open(dir.path(), root);
        walk(&c, "/p/a", &[]);
        c.save();
        let c = StatCache::open(dir.path(), root);
        assert_eq!(
            get(&c, "/p/a", "/p/a/x", old),
            None,
            "dropped with its context"
        );
        assert_eq!(get(&c, "/p/b", "/p/b/y", old), Some(([2; 32], at)));
    }

    #[test]
    fn two_walks_of_one_root_both_count_and_the_last_record_wins() {
        let dir = tempfile::tempdir().unwrap();
        let at = now_ns();
        let old = at - 10_000_000_000;
        let c = StatCache::open(dir.path(), Path::new("/p"));
        walk(
            &c,
            "/p",
            &[("/p/x", [1; 32], old, at), ("/p/x", [3; 32], old, at)],
        );
        walk(&c, "/p", &[("/p/y", [2; 32], old, at)]);
        c.save();
        let c = StatCache::open(dir.path(), Path::new("/p"));
        assert_eq!(get(&c, "/p", "/p/x", old), Some(([3; 32], at)));
        assert_eq!(get(&c, "/p", "/p/y", old), Some(([2; 32], at)));
    }

    #[test]
    fn a_run_that_is_not_saved_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let c = StatCache::open(dir.path(), Path::new("/p"));
        walk(&c, "/p", &[("/p/x", [1; 32], 1, 2)]);
        drop(c);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_run_that_finds_everything_as_kept_writes_nothing() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let root = Path::new("/p");
        let at = now_ns();
        let old = at - 10_000_000_000;
        let c = StatCache::open(dir.path(), root);
        walk(&c, "/p/a", &[("/p/a/x", [1; 32], old, at)]);
        walk(&c, "/p/b", &[("/p/b/y", [2; 32], old, at)]);
        let file = c.path().to_path_buf();
        c.save();
        let ino = |f: &Path| std::fs::metadata(f).unwrap().ino();
        let first = ino(&file);

        // Both contexts found as they were: the file is left alone.
        let c = StatCache::open(dir.path(), root);
        for (ctx, path) in [("/p/a", "/p/a/x"), ("/p/b", "/p/b/y")] {
            let view = c.context(Path::new(ctx));
            assert!(view.get(Path::new(path), &stamp(old)).is_some());
            view.finish();
        }
        c.save();
        assert_eq!(ino(&file), first, "not rewritten");

        // One context changed: rewritten, the unchanged block kept as it was.
        let c = StatCache::open(dir.path(), root);
        let view = c.context(Path::new("/p/a"));
        assert!(view.get(Path::new("/p/a/x"), &stamp(old)).is_some());
        view.finish();
        walk(&c, "/p/b", &[("/p/b/z", [3; 32], old, at)]);
        c.save();
        assert_ne!(ino(&file), first, "rewritten");
        let c = StatCache::open(dir.path(), root);
        assert_eq!(get(&c, "/p/a", "/p/a/x", old), Some(([1; 32], at)));
        assert_eq!(get(&c, "/p/b", "/p/b/z", old), Some(([3; 32], at)));
        assert_eq!(get(&c, "/p/b", "/p/b/y", old), None, "y is gone");
    }
}
