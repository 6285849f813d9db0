//! Where a project's files come from: the working tree, or the tree of a
//! git commit read straight from git's objects (`--rev REV`), with no
//! checkout and no change to the working tree or the index.
//!
//! Paths are absolute in both cases (below the repository's work tree for
//! a commit), so the rest of tagsmith does not care which it reads.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

use gix::ObjectId;

use crate::context::Digest;
use crate::error::{Error, Result};

/// What a path is, in a tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File {
        executable: bool,
    },
    Dir,
    Symlink,
    /// A submodule: a commit of another repository.
    Submodule,
}

pub enum Tree {
    WorkTree,
    Commit(Box<Commit>),
}

impl Tree {
    pub fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        match self {
            Tree::WorkTree => std::fs::read(path),
            Tree::Commit(c) => c.read(path),
        }
    }

    pub fn kind(&self, path: &Path) -> Option<Kind> {
        match self {
            Tree::WorkTree => {
                let meta = std::fs::metadata(path).ok()?;
                if meta.is_dir() {
                    Some(Kind::Dir)
                } else if meta.is_file() {
                    use std::os::unix::fs::PermissionsExt;
                    Some(Kind::File {
                        executable: meta.permissions().mode() & 0o100 != 0,
                    })
                } else {
                    None
                }
            }
            Tree::Commit(c) => c.kind(path),
        }
    }

    pub fn is_file(&self, path: &Path) -> bool {
        matches!(self.kind(path), Some(Kind::File { .. }))
    }

    pub fn is_dir(&self, path: &Path) -> bool {
        matches!(self.kind(path), Some(Kind::Dir))
    }

    /// ` at <rev>` for a commit, for messages.
    pub fn at(&self) -> String {
        match self {
            Tree::WorkTree => String::new(),
            Tree::Commit(c) => format!(" at {}", c.rev),
        }
    }
}

/// A commit's tree, and the digests of the blobs seen so far (a blob id
/// seen before reuses its digest, which makes many commits cheap). Blob
/// digests are also kept in the per-user cache directory between runs:
/// a blob id names its content, so they can never be stale.
pub struct Commit {
    repo: gix::ThreadSafeRepository,
    workdir: PathBuf,
    tree: ObjectId,
    /// The revision as the user gave it.
    pub rev: String,
    pub id: ObjectId,
    blobs: std::sync::Arc<RwLock<Blobs>>,
    /// Where the blob digests are kept, and how many were read from there.
    blobs_file: Option<(PathBuf, usize)>,
    /// The last walk of each context by this commit or a sibling: a
    /// context whose tree and rules are unchanged between commits is not
    /// walked again. One walk per context, so memory stays that of one commit.
    walks: std::sync::Arc<Mutex<HashMap<WalkKey, (ObjectId, Walk)>>>,
    /// Service digests of earlier runs, by a key that covers every input
    /// of the digest (see `Project`), kept in the cache directory.
    known: std::sync::Arc<RwLock<HashMap<Digest, Digest>>>,
    known_file: Option<(PathBuf, usize)>,
}

/// A context's path and its selection's fingerprint; with the context's
/// tree id, all that its walk depends on.
pub type WalkKey = (PathBuf, [u8; 32]);
type Walk = std::sync::Arc<Vec<crate::context::Entry>>;

/// One entry of a commit's directory.
pub struct Child {
    pub name: Vec<u8>,
    pub kind: Kind,
    pub id: ObjectId,
}

/// The git repository holding `dir`, and its work tree.
pub fn repository(dir: &Path) -> Result<(gix::ThreadSafeRepository, PathBuf)> {
    let repo = gix::discover(dir).map_err(|e| {
        Error::user(format!(
            "{} is not in a git repository ({e}); --rev reads a commit from git",
            crate::paths::Shown(dir)
        ))
    })?;
    let workdir = repo
        .workdir()
        .ok_or_else(|| Error::user("--rev needs a repository with a work tree"))?
        .to_path_buf();
    let workdir = crate::paths::absolute(&workdir).map_err(|e| Error::io(&workdir, e))?;
    Ok((repo.into_sync(), workdir))
}

impl Commit {
    /// The commit `rev` names in the repository holding `dir`.
    pub fn open(dir: &Path, rev: &str) -> Result<Commit> {
        let (repo, workdir) = repository(dir)?;
        Commit::in_repository(repo, workdir, rev)
    }

    pub fn in_repository(
        repo: gix::ThreadSafeRepository,
        workdir: PathBuf,
        rev: &str,
    ) -> Result<Commit> {
        let local = repo.to_thread_local();
        let bad = |e: &dyn std::fmt::Display| Error::user(format!("--rev {rev}: {e}"));
        let object = local.rev_parse_single(rev).map_err(|e| bad(&e))?;
        let commit = object
            .object()
            .map_err(|e| bad(&e))?
            .peel_to_commit()
            .map_err(|e| bad(&e))?;
        let tree = commit.tree_id().map_err(|e| bad(&e))?.detach();
        let kept = |what: &str| {
            crate::context::statcache::cache_dir().map(|dir| {
                let key = blake3::hash(repo.git_dir().as_os_str().as_encoded_bytes()).to_hex();
                dir.join(format!("{what}-{}.bin", &key[..24]))
            })
        };
        let file = kept("blobs");
        let blobs = file.as_deref().map(load_blobs).unwrap_or_default();
        let known_file = kept("digests");
        let known = known_file.as_deref().map(load_known).unwrap_or_default();
        Ok(Commit {
            id: commit.id,
            repo,
            workdir,
            tree,
            rev: rev.to_string(),
            blobs_file: file.map(|f| (f, blobs.len())),
            blobs: std::sync::Arc::new(RwLock::new(blobs)),
            walks: std::sync::Arc::default(),
            known_file: known_file.map(|f| (f, known.len())),
            known: std::sync::Arc::new(RwLock::new(known)),
        })
    }

    /// Keeps the blob digests (once there are enough new ones) and the
    /// service digests (when there is any new one) for the next run.
    pub fn save(&self) {
        if let Some((file, loaded)) = &self.blobs_file {
            let blobs = self.blobs.read().unwrap();
            // Rewriting every kept digest for a handful of new ones costs
            // more than hashing those few blobs again next time.
            if blobs.len() > *loaded + *loaded / 16 {
                let mut out = Vec::with_capacity(blobs.len() * 53);
                for (id, (digest, lfs)) in blobs.iter() {
                    if id.as_bytes().len() == 20 {
                        out.extend_from_slice(id.as_bytes());
                        out.extend_from_slice(digest);
                        out.push(u8::from(*lfs));
                    }
                }
                write_kept(file, BLOBS_MAGIC, out);
            }
        }
        if let Some((file, loaded)) = &self.known_file {
            let known = self.known.read().unwrap();
            if known.len() > *loaded {
                let mut out = Vec::with_capacity(known.len() * 64);
                for (key, digest) in known.iter() {
                    out.extend_from_slice(key);
                    out.extend_from_slice(digest);
                }
                write_kept(file, KNOWN_MAGIC, out);
            }
        }
    }

    /// A service digest an earlier run computed under `key`.
    pub fn known_digest(&self, key: &Digest) -> Option<Digest> {
        self.known.read().unwrap().get(key).copied()
    }

    pub fn remember_digest(&self, key: Digest, digest: Digest) {
        let mut known = self.known.write().unwrap();
        // Bounded: past this many, start over rather than grow.
        if known.len() >= KNOWN_MAX {
            known.clear();
        }
        known.insert(key, digest);
    }

    /// Another commit of the same repository, sharing the blob digests.
    pub fn sibling(&self, id: ObjectId) -> Result<Commit> {
        let local = self.repo.to_thread_local();
        let tree = local
            .find_commit(id)
            .and_then(|c| c.tree_id().map(|t| t.detach()))
            .map_err(|e| Error::user(format!("commit {id}: {e}")))?;
        Ok(Commit {
            id,
            repo: self.repo.clone(),
            workdir: self.workdir.clone(),
            tree,
            rev: id.to_hex_with_len(12).to_string(),
            blobs: self.blobs.clone(),
            blobs_file: self.blobs_file.clone(),
            walks: self.walks.clone(),
            known: self.known.clone(),
            known_file: self.known_file.clone(),
        })
    }

    pub fn workdir(&self) -> &Path {
        &self.workdir
    }

    /// The first `n` commits of `branch`, newest first, following first parents.
    pub fn history(&self, branch: &str, n: usize) -> Result<Vec<ObjectId>> {
        let local = self.repo.to_thread_local();
        let tip = local
            .rev_parse_single(branch)
            .map_err(|e| Error::user(format!("branch {branch}: {e}")))?
            .detach();
        let walk = local
            .rev_walk([tip])
            .first_parent_only()
            .all()
            .map_err(|e| Error::user(format!("walking {branch}: {e}")))?;
        let mut out = Vec::new();
        for info in walk.take(n) {
            out.push(
                info.map_err(|e| Error::user(format!("walking {branch}: {e}")))?
                    .id,
            );
        }
        Ok(out)
    }

    /// The path below the work tree, as git names it.
    fn relative(&self, path: &Path) -> Option<String> {
        let rel = path.strip_prefix(&self.workdir).ok()?;
        Some(rel.to_str()?.to_string())
    }

    /// The entry at `path`: its kind and object id (the root is a directory).
    fn entry(&self, path: &Path) -> Option<(Kind, ObjectId)> {
        let rel = self.relative(path)?;
        if rel.is_empty() {
            return Some((Kind::Dir, self.tree));
        }
        let local = self.repo.to_thread_local();
        let tree = local.find_tree(self.tree).ok()?;
        let entry = tree.lookup_entry_by_path(&rel).ok()??;
        Some((kind(entry.mode()), entry.object_id()))
    }

    pub fn kind(&self, path: &Path) -> Option<Kind> {
        self.entry(path).map(|(k, _)| k)
    }

    pub fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        match self.entry(path) {
            Some((Kind::File { .. } | Kind::Symlink, id)) => self.blob(id),
            Some(_) => Err(io::Error::new(io::ErrorKind::InvalidInput, "not a file")),
            None => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("not in {}", self.rev),
            )),
        }
    }

    pub fn blob(&self, id: ObjectId) -> io::Result<Vec<u8>> {
        let local = self.repo.to_thread_local();
        let object = local.find_object(id).map_err(io::Error::other)?;
        Ok(object.detach().data)
    }

    /// The tree id of the directory at `path`.
    pub fn tree_id(&self, path: &Path) -> Option<ObjectId> {
        match self.entry(path)? {
            (Kind::Dir, id) => Some(id),
            _ => None,
        }
    }

    /// The last walk under `key`, by this commit or a sibling, if it was of tree `id`.
    pub fn walked(&self, key: &WalkKey, id: ObjectId) -> Option<Walk> {
        let walks = self.walks.lock().unwrap();
        walks
            .get(key)
            .filter(|(t, _)| *t == id)
            .map(|(_, w)| w.clone())
    }

    pub fn remember_walk(&self, key: WalkKey, id: ObjectId, entries: Walk) {
        self.walks.lock().unwrap().insert(key, (id, entries));
    }

    /// The entries of the directory at `path`.
    pub fn children(&self, path: &Path) -> io::Result<Vec<Child>> {
        let Some((Kind::Dir, id)) = self.entry(path) else {
            return Err(io::Error::new(io::ErrorKind::NotFound, "not a directory"));
        };
        self.tree_children(id)
    }

    /// The entries of the tree object `id`: a walk goes down by ids, so
    /// no tree is read twice (resolving each directory's path from the
    /// root read the top trees once per directory).
    pub fn tree_children(&self, id: ObjectId) -> io::Result<Vec<Child>> {
        let local = self.repo.to_thread_local();
        let tree = local.find_tree(id).map_err(io::Error::other)?;
        let mut out = Vec::new();
        for entry in tree.iter() {
            let entry = entry.map_err(io::Error::other)?;
            out.push(Child {
                name: entry.filename().to_vec(),
                kind: kind(entry.mode()),
                id: entry.oid().to_owned(),
            });
        }
        Ok(out)
    }

    /// The BLAKE3 of a blob, and whether it is a Git LFS pointer (a
    /// checkout with LFS would hold other bytes); from the cache when the
    /// blob was seen before.
    pub fn blob_digest(&self, id: ObjectId) -> io::Result<(Digest, bool)> {
        if let Some(d) = self.blobs.read().unwrap().get(&id) {
            return Ok(*d);
        }
        let data = self.blob(id)?;
        let lfs =
            data.len() < 1024 && data.starts_with(b"version https://git-lfs.github.com/spec/");
        let answer = (*blake3::hash(&data).as_bytes(), lfs);
        self.blobs.write().unwrap().insert(id, answer);
        Ok(answer)
    }
}

/// Blob id -> (BLAKE3, Git LFS pointer); ids are hashes already, so the
/// map uses gix's hasher that takes their first bytes.
type Blobs = gix::hashtable::HashMap<ObjectId, (Digest, bool)>;

const BLOBS_MAGIC: &[u8] = b"tagsmith-blobs\0\x01";

/// Blob digests kept by an earlier run: 20-byte SHA-1 id, 32-byte BLAKE3,
/// an LFS flag.
fn load_blobs(file: &Path) -> Blobs {
    let records = read_kept(file, BLOBS_MAGIC, 53);
    let mut blobs = Blobs::default();
    blobs.reserve(records.len() / 53);
    blobs.extend(records.chunks_exact(53).filter_map(|r| {
        let id = ObjectId::try_from(&r[..20]).ok()?;
        let digest: Digest = r[20..52].try_into().ok()?;
        Some((id, (digest, r[52] == 1)))
    }));
    blobs
}

const KNOWN_MAGIC: &[u8] = b"tagsmith-known\0\x01";
const KNOWN_MAX: usize = 200_000;

/// Service digests kept by an earlier run: 32-byte key, 32-byte digest.
fn load_known(file: &Path) -> HashMap<Digest, Digest> {
    let records = read_kept(file, KNOWN_MAGIC, 64);
    records
        .chunks_exact(64)
        .filter_map(|r| Some((r[..32].try_into().ok()?, r[32..].try_into().ok()?)))
        .collect()
}

/// The records of a kept file: `magic`, records of `size` bytes, the
/// BLAKE3 of all that. Anything else (foreign, cut short, corrupt) is empty.
fn read_kept(file: &Path, magic: &[u8], size: usize) -> Vec<u8> {
    let Ok(mut bytes) = std::fs::read(file) else {
        return Vec::new();
    };
    let Some(body) = bytes.len().checked_sub(32) else {
        return Vec::new();
    };
    let (head, sum) = bytes.split_at(body);
    if blake3::hash(head).as_bytes() != sum
        || !head.starts_with(magic)
        || !(head.len() - magic.len()).is_multiple_of(size)
    {
        return Vec::new();
    }
    bytes.truncate(body);
    bytes.drain(..magic.len());
    bytes
}

/// Replaces `file` with `magic`, `records` and their checksum, atomically;
/// failing costs only speed next time.
fn write_kept(file: &Path, magic: &[u8], records: Vec<u8>) {
    let mut out = magic.to_vec();
    out.extend_from_slice(&records);
    let sum = blake3::hash(&out);
    out.extend_from_slice(sum.as_bytes());
    let (Some(dir), Some(name)) = (file.parent(), file.file_name()) else {
        return;
    };
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    if std::fs::create_dir_all(dir).is_ok()
        && std::fs::write(&tmp, &out)
            .and_then(|_| std::fs::rename(&tmp, file))
            .is_err()
    {
        let _ = std::fs::remove_file(&tmp);
    }
}

fn kind(mode: gix::object::tree::EntryMode) -> Kind {
    use gix::object::tree::EntryKind;
    match mode.kind() {
        EntryKind::Tree => Kind::Dir,
        EntryKind::Blob => Kind::File { executable: false },
        EntryKind::BlobExecutable => Kind::File { executable: true },
        EntryKind::Link => Kind::Symlink,
        EntryKind::Commit => Kind::Submodule,
    }
}
