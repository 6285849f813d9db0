//! The build context: exactly the entries `docker build` would send, walked
//! in parallel, each with the digest of its content.
//!
//! Selection follows [`crate::dockerignore`]. Symlinks are never followed
//! (a link's content is its target text). Directories that are excluded but
//! walked for an exception are not entries themselves, but any such directory
//! above an included entry is added back, as BuildKit does, so that the tar
//! made from this list is complete.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub mod commit;
pub mod dockerignore;
pub mod statcache;

use ignore::{WalkBuilder, WalkState};

use crate::error::{Error, Location, Result};
use crate::tree::Tree;
use dockerignore::Matcher;
pub use statcache::StatCache;

pub type Digest = [u8; 32];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    File,
    Dir,
    Symlink,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Dir => "dir",
            Kind::Symlink => "symlink",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative to the context root, `/`-separated, never empty.
    pub path: String,
    pub kind: Kind,
    /// The owner's execute bit (files only): the one mode bit that is kept.
    pub executable: bool,
    /// BLAKE3 of a file's content or of a symlink's target text.
    pub digest: Option<Digest>,
    /// A symlink's target text.
    pub target: Option<String>,
}

/// Which ignore file applies to a service, and which paths Docker always sends.
pub struct Selection {
    pub matcher: Matcher,
    /// The ignore file that was read, if any (for messages and `explain`).
    pub ignore_file: Option<PathBuf>,
    /// `.dockerignore` and the Dockerfile (when inside the context).
    always: Vec<String>,
    /// BLAKE3 of everything the selection is made from (the ignore file's
    /// path and bytes, the paths always sent): equal fingerprints select alike.
    pub fingerprint: [u8; 32],
}

/// Why a path is or is not in a context, by Docker's rules
/// ([`Selection::why`]). Patterns are indices into [`Selection::matcher`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    /// No pattern matched the path or a parent directory.
    Included,
    /// The last pattern that matched is this exception.
    ReIncluded(usize),
    /// The last pattern that matched is this exclusion.
    Excluded(usize),
    /// A parent directory is excluded and, with no exception naming a path
    /// below it, never walked (Docker prunes it).
    ExcludedDirectory { dir: String, by: usize },
    /// The Dockerfile and `.dockerignore` are sent whatever the patterns say.
    AlwaysSent,
}

impl Selection {
    /// Reads `<dockerfile>.dockerignore` if it exists, else `<context>/.dockerignore`,
    /// and keeps the Dockerfile (when inside the context) and `.dockerignore`.
    pub fn for_service(
        context: &Path,
        dockerfile: &Path,
        dockerfile_in_context: Option<&str>,
    ) -> Result<Selection> {
        Selection::in_tree(context, dockerfile, dockerfile_in_context, &Tree::WorkTree)
    }

    /// [`Selection::for_service`], with the ignore files read from `tree`.
    pub fn in_tree(
        context: &Path,
        dockerfile: &Path,
        dockerfile_in_context: Option<&str>,
        tree: &Tree,
    ) -> Result<Selection> {
        let specific = PathBuf::from(format!("{}.dockerignore", dockerfile.display()));
        let generic = context.join(".dockerignore");
        let ignore_file = [specific, generic].into_iter().find(|p| tree.is_file(p));
        let mut fingerprint = blake3::Hasher::new();
        let mut matcher = match &ignore_file {
            None => Matcher::default(),
            Some(path) => {
                let bytes = tree.read(path).map_err(|e| Error::io(path, e))?;
                let name = path.as_os_str().as_encoded_bytes();
                fingerprint.update(&(name.len() as u64).to_le_bytes());
                fingerprint.update(name);
                fingerprint.update(&(bytes.len() as u64).to_le_bytes());
                fingerprint.update(&bytes);
                Matcher::from_bytes(&bytes).map_err(|e| Error::Located {
                    at: Location::line(path, e.line as u64),
                    message: e.message,
                })?
            }
        };
        let always: Vec<String> = std::iter::once(".dockerignore")
            .chain(dockerfile_in_context)
            .map(str::to_string)
            .collect();
        for path in &always {
            fingerprint.update(&(path.len() as u64).to_le_bytes());
            fingerprint.update(path.as_bytes());
        }
        if !matcher.is_empty() {
            for path in &always {
                matcher.keep(path).map_err(|e| {
                    Error::file(ignore_file.as_deref().unwrap_or(context), e.message)
                })?;
            }
        }
        Ok(Selection {
            matcher,
            ignore_file,
            always,
            fingerprint: *fingerprint.finalize().as_bytes(),
        })
    }

    /// Why `path` (relative to the context, `/`-separated, cleaned) is or is
    /// not selected: each parent directory is decided first, top down, as
    /// the walk does.
    pub fn why(&self, path: &str) -> Why {
        if self.always.iter().any(|a| a == path) {
            return Why::AlwaysSent;
        }
        let mut parent: Option<Vec<bool>> = None;
        let mut end = 0;
        loop {
            let next = path[end..].find('/').map(|i| end + i);
            let prefix = &path[..next.unwrap_or(path.len())];
            let decision = self.matcher.decide(prefix, parent.as_deref());
            match (next, decision.by) {
                (None, None) => return Why::Included,
                (None, Some(by)) if decision.excluded => return Why::Excluded(by),
                (None, Some(by)) => return Why::ReIncluded(by),
                (Some(_), Some(by)) if decision.excluded && !self.matcher.must_descend(prefix) => {
                    return Why::ExcludedDirectory {
                        dir: prefix.to_string(),
                        by,
                    };
                }
                (Some(i), _) => end = i + 1,
            }
            parent = Some(decision.matched);
        }
    }
}

/// Content digests shared by every walk of one run, so that a file that lies
/// in several contexts is read once (keyed by device and inode); and, with
/// a [`StatCache`], digests of earlier runs for files whose stat is unchanged.
#[derive(Default)]
pub struct DigestCache {
    /// By device and inode: the digest and when it was hashed, once known.
    /// Only files another walk may meet are kept here (see [`Scope`]).
    map: Mutex<HashMap<(u64, u64), Slot>>,
    stat: Option<StatCache>,
    /// The context roots this run walks.
    roots: Mutex<Vec<PathBuf>>,
    /// Files whose content was read, and digests the stat cache gave.
    read: std::sync::atomic::AtomicUsize,
    reused: std::sync::atomic::AtomicUsize,
}

/// One inode's digest and the moment it was hashed; filled by the first
/// walk that gets there, awaited by the others.
type Slot = std::sync::Arc<Mutex<Option<(Digest, i64)>>>;

/// What a run of hashing cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HashStats {
    /// Files whose content was read and hashed.
    pub files_read: usize,
    /// Files whose digest came from the stat cache.
    pub from_stat_cache: usize,
}

impl DigestCache {
    pub fn with_stat_cache(stat: StatCache) -> DigestCache {
        DigestCache {
            stat: Some(stat),
            ..DigestCache::default()
        }
    }

    pub fn stats(&self) -> HashStats {
        use std::sync::atomic::Ordering::Relaxed;
        HashStats {
            files_read: self.read.load(Relaxed),
            from_stat_cache: self.reused.load(Relaxed),
        }
    }

    /// Ends the run: the stat cache, if any, is written.
    pub fn finish(self) {
        if let Some(stat) = self.stat {
            stat.save();
        }
    }

    /// A context root this run will walk (all are named before any walk).
    pub fn walking(&self, root: &Path) {
        self.roots.lock().unwrap().push(root.to_path_buf());
    }

    /// What one walk of `root` uses.
    fn scope(&self, root: &Path) -> Scope<'_> {
        let roots = self.roots.lock().unwrap();
        let meeting = roots
            .iter()
            .filter(|r| r.starts_with(root) || root.starts_with(r))
            .count();
        Scope {
            cache: self,
            stat: self.stat.as_ref().map(|s| s.context(root)),
            overlaps: meeting > 1,
        }
    }
}

/// One walk's access to the run's digests.
struct Scope<'a> {
    cache: &'a DigestCache,
    stat: Option<statcache::Context<'a>>,
    /// Another walk of this run covers some of this context: its files may
    /// be met twice. Otherwise only hard links can be, and the shared map
    /// (which would cost memory per file) is skipped for the others.
    overlaps: bool,
}

impl Scope<'_> {
    /// A file's digest: hashed at most once per inode and run, even when
    /// several walks meet the same inode at once (hard links, contexts in
    /// contexts); reused from the stat cache when its stat is unchanged.
    fn file_digest(&self, path: &Path, meta: &fs::Metadata) -> Result<Digest> {
        if !self.overlaps && meta.nlink() <= 1 {
            return self.fresh(path, meta).map(|(digest, _)| digest);
        }
        let key = (meta.dev(), meta.ino());
        let cell = self
            .cache
            .map
            .lock()
            .unwrap()
            .entry(key)
            .or_default()
            .clone();
        // Others wanting this inode wait here until it is hashed.
        let mut slot = cell.lock().unwrap();
        if let Some((digest, hashed_at)) = *slot {
            // Another path to the same inode: the stat cache learns it too.
            if let Some(stat) = &self.stat {
                stat.put(path, statcache::Stamp::of(meta), digest, hashed_at);
            }
            return Ok(digest);
        }
        let (digest, hashed_at) = self.fresh(path, meta)?;
        *slot = Some((digest, hashed_at));
        Ok(digest)
    }

    /// The digest from the stat cache, else from reading the file.
    fn fresh(&self, path: &Path, meta: &fs::Metadata) -> Result<(Digest, i64)> {
        use std::sync::atomic::Ordering::Relaxed;
        let stamp = statcache::Stamp::of(meta);
        if let Some(found) = self.stat.as_ref().and_then(|s| s.get(path, &stamp)) {
            self.cache.reused.fetch_add(1, Relaxed);
            return Ok(found);
        }
        let hashed_at = StatCache::clock();
        let digest = hash_file(path).map_err(|e| Error::io(path, e))?;
        self.cache.read.fetch_add(1, Relaxed);
        if let Some(stat) = &self.stat {
            stat.put(path, stamp, digest, hashed_at);
        }
        Ok((digest, hashed_at))
    }

    /// The walk ended well: the stat cache keeps what it learnt.
    fn finish(self) {
        if let Some(stat) = self.stat {
            stat.finish();
        }
    }
}

/// BLAKE3 of a file's content, which must not change while it is read.
///
/// The file is read, not mapped: a mapped file that another process
/// truncates kills the reader with SIGBUS. Its size, inode and modification
/// and change times are compared before and after the read. A file changed
/// within [`RACY`] of the read could have changed without its times moving
/// (file times come from a coarse clock), so it is read a second time and
/// must give the same digest. A file that keeps changing is an error.
pub fn hash_file(path: &Path) -> std::io::Result<Digest> {
    let mut earlier = None;
    for _ in 0..3 {
        let start = std::time::SystemTime::now();
        let file = fs::File::open(path)?;
        let before = file.metadata()?;
        let mut hasher = blake3::Hasher::new();
        read_into(&file, &mut hasher)?;
        let after = file.metadata()?;
        let digest = *hasher.finalize().as_bytes();
        if stamp(&before) != stamp(&after) {
            earlier = None;
            continue;
        }
        let changed = std::time::UNIX_EPOCH
            + std::time::Duration::new(after.ctime().max(0) as u64, after.ctime_nsec() as u32);
        if changed + RACY < start || earlier == Some(digest) {
            return Ok(digest);
        }
        earlier = Some(digest);
    }
    Err(std::io::Error::other(
        "the file changed while it was being hashed; run again once nothing writes to it",
    ))
}

/// Feeds the file to the hasher through one buffer per thread
/// (`update_reader` zeroes a fresh 64 KiB buffer for every file).
fn read_into(mut file: &fs::File, hasher: &mut blake3::Hasher) -> std::io::Result<()> {
    use std::io::Read;
    thread_local! {
        static BUF: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; 64 * 1024]);
    }
    BUF.with_borrow_mut(|buf| {
        loop {
            match file.read(buf) {
                Ok(0) => return Ok(()),
                Ok(n) => {
                    hasher.update(&buf[..n]);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    })
}

/// How recently a file may have changed for a read of it to be in doubt.
const RACY: std::time::Duration = std::time::Duration::from_millis(20);

/// What changes when a file's content does.
fn stamp(m: &fs::Metadata) -> (u64, u64, i64, i64, i64, i64) {
    (
        m.ino(),
        m.len(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec(),
    )
}

/// Walks `root` with `threads` threads and returns the selected entries sorted by path.
pub fn walk(
    root: &Path,
    selection: &Selection,
    cache: &DigestCache,
    threads: usize,
) -> Result<Vec<Entry>> {
    let entries = Mutex::new(Vec::new());
    let first_error: Mutex<Option<Error>> = Mutex::new(None);
    let shared = Shared {
        root,
        matcher: &selection.matcher,
        scope: cache.scope(root),
        descended: Mutex::new(BTreeSet::new()),
        decided: Mutex::new(HashMap::new()),
    };

    WalkBuilder::new(root)
        .standard_filters(false)
        .follow_links(false)
        .threads(threads)
        .build_parallel()
        .run(|| {
            let (shared, first_error) = (&shared, &first_error);
            let mut batch = Batch {
                entries: Vec::new(),
                into: &entries,
            };
            Box::new(move |item| {
                let outcome = item
                    .map_err(|e| walk_error(root, e))
                    .and_then(|dent| visit(shared, &dent, &mut batch.entries));
                match outcome {
                    Ok(state) => state,
                    Err(err) => {
                        first_error.lock().unwrap().get_or_insert(err);
                        WalkState::Quit
                    }
                }
            })
        });

    if let Some(err) = first_error.into_inner().unwrap() {
        return Err(err);
    }
    shared.scope.finish();
    let mut entries = entries.into_inner().unwrap();
    add_missing_parents(&mut entries, &shared.descended.into_inner().unwrap());
    entries.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    Ok(entries)
}

/// What every walker thread of one walk shares.
struct Shared<'a> {
    root: &'a Path,
    matcher: &'a Matcher,
    scope: Scope<'a>,
    /// Excluded directories walked because an exception lies below them.
    descended: Mutex<BTreeSet<String>>,
    /// Each walked directory's per-pattern results, for its children
    /// (see [`Matcher::decide`]). A directory is always visited before them.
    decided: Mutex<HashMap<String, Vec<bool>>>,
}

/// One walker thread's entries, handed over when the thread's visitor is dropped.
struct Batch<'a> {
    entries: Vec<Entry>,
    into: &'a Mutex<Vec<Entry>>,
}

impl Drop for Batch<'_> {
    fn drop(&mut self) {
        self.into.lock().unwrap().append(&mut self.entries);
    }
}

fn visit(shared: &Shared, dent: &ignore::DirEntry, out: &mut Vec<Entry>) -> Result<WalkState> {
    if dent.depth() == 0 {
        return Ok(WalkState::Continue);
    }
    let (root, matcher, scope) = (shared.root, shared.matcher, &shared.scope);
    let path = dent.path();
    // A name that is not UTF-8 is matched with its bad bytes replaced, and
    // is an error only if it is selected.
    let (rel, utf8) = relative_str(root, path)?;
    let file_type = dent
        .file_type()
        .ok_or_else(|| Error::internal(format!("{}: no file type", path.display())))?;
    let excluded = if matcher.is_empty() {
        false
    } else {
        let parent = rel
            .rsplit_once('/')
            .and_then(|(dir, _)| shared.decided.lock().unwrap().get(dir).cloned());
        let decision = matcher.decide(&rel, parent.as_deref());
        if file_type.is_dir() {
            shared
                .decided
                .lock()
                .unwrap()
                .insert(rel.clone(), decision.matched);
        }
        decision.excluded
    };
    if excluded {
        if file_type.is_dir() {
            if matcher.must_descend(&rel) {
                shared.descended.lock().unwrap().insert(rel);
                return Ok(WalkState::Continue);
            }
            return Ok(WalkState::Skip);
        }
        return Ok(WalkState::Continue);
    }
    if !utf8 {
        return Err(Error::file(
            path,
            "file name is not valid UTF-8; rename it or add it to .dockerignore",
        ));
    }
    let entry = if file_type.is_dir() {
        Entry {
            path: rel,
            kind: Kind::Dir,
            executable: false,
            digest: None,
            target: None,
        }
    } else if file_type.is_symlink() {
        let target = fs::read_link(path).map_err(|e| Error::io(path, e))?;
        let target = target
            .to_str()
            .ok_or_else(|| Error::file(path, "symlink target is not valid UTF-8"))?
            .to_string();
        let digest = *blake3::hash(target.as_bytes()).as_bytes();
        Entry {
            path: rel,
            kind: Kind::Symlink,
            executable: false,
            digest: Some(digest),
            target: Some(target),
        }
    } else if file_type.is_file() {
        let meta = dent.metadata().map_err(|e| walk_error(root, e))?;
        let digest = scope.file_digest(path, &meta)?;
        Entry {
            path: rel,
            kind: Kind::File,
            executable: meta.mode() & 0o100 != 0,
            digest: Some(digest),
            target: None,
        }
    } else {
        let what = if file_type.is_socket() {
            "a socket"
        } else if file_type.is_fifo() {
            "a named pipe (FIFO)"
        } else {
            "a device file"
        };
        return Err(Error::file(
            path,
            format!("{what} cannot be part of a build context; add \"{rel}\" to .dockerignore"),
        ));
    };
    out.push(entry);
    Ok(WalkState::Continue)
}

/// Adds the walked-but-excluded directories that hold an included entry.
fn add_missing_parents(entries: &mut Vec<Entry>, descended: &BTreeSet<String>) {
    if descended.is_empty() {
        return;
    }
    let mut needed = BTreeSet::new();
    for e in entries.iter() {
        let mut p = e.path.as_str();
        while let Some(i) = p.rfind('/') {
            p = &p[..i];
            if descended.contains(p) {
                needed.insert(p.to_string());
            }
        }
    }
    entries.extend(needed.into_iter().map(|path| Entry {
        path,
        kind: Kind::Dir,
        executable: false,
        digest: None,
        target: None,
    }));
}

/// `path` relative to `root`, `/`-separated, and whether it is valid UTF-8.
fn relative_str(root: &Path, path: &Path) -> Result<(String, bool)> {
    let rel = path.strip_prefix(root).map_err(|_| {
        Error::internal(format!(
            "{} is not under {}",
            path.display(),
            root.display()
        ))
    })?;
    Ok(match rel.to_str() {
        Some(s) => (s.to_string(), true),
        None => (rel.to_string_lossy().into_owned(), false),
    })
}

fn walk_error(root: &Path, err: ignore::Error) -> Error {
    // Find the path and the I/O cause inside ignore's nested error.
    fn parts(err: &ignore::Error) -> (Option<PathBuf>, Option<&std::io::Error>) {
        match err {
            ignore::Error::WithPath { path, err } => (Some(path.clone()), parts(err).1),
            ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
                parts(err)
            }
            ignore::Error::Io(io) => (None, Some(io)),
            _ => (None, None),
        }
    }
    match parts(&err) {
        (Some(path), Some(io)) => Error::io(&path, std::io::Error::new(io.kind(), io.to_string())),
        (path, _) => Error::file(path.as_deref().unwrap_or(root), err),
    }
}
