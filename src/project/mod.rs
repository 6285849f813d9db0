//! A loaded project: the config, each Dockerfile read once, dependencies
//! declared and inferred, and the graph. Hashing walks the selected
//! services' contexts and digests them in build order.

pub mod config;
pub mod lock;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};

use crate::context::statcache::cache_dir as statcache_dir;
use crate::context::{self, DigestCache, Entry, HashStats, Selection, StatCache};
use crate::dockerfile;
use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::hash::{self, Dep};
use crate::paths;
use crate::registry::reference::{ImageRef, Repository, image_arg};
use crate::suggestion::Suggestion;
use crate::tree::{Commit, Tree};
pub use config::{Config, Service};
pub use lock::Lock;

/// A walked context: the ignore file that applied and the selected entries.
type Walked = (Option<PathBuf>, Vec<Entry>);

/// A service's context, walked already or to be digested in its commit.
enum Work<'c> {
    Walked(Walked),
    InCommit(&'c Commit),
}

/// Whether hashing keeps each context's entries in its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entries {
    Keep,
    Drop,
}

/// The services digested so far by a run's walkers.
#[derive(Default)]
struct Digested {
    done: BTreeMap<String, Hashed>,
    /// A walk failed: the others stop.
    failed: bool,
}

#[derive(Clone)]
pub struct Project {
    pub config: Config,
    /// Where the files are read: the working tree, or a commit.
    pub tree: std::sync::Arc<Tree>,
    pub graph: Graph,
    /// `tagsmith.lock`, when there is one.
    pub lock: Option<Lock>,
    dockerfiles: BTreeMap<String, Vec<u8>>,
    scans: BTreeMap<String, dockerfile::Scan>,
    bases: BTreeMap<String, Vec<Base>>,
}

/// An external image a Dockerfile builds on (not an in-repo service, not a
/// stage, not `scratch`, not already pinned with a digest).
#[derive(Debug, Clone)]
pub struct Base {
    /// Normalised, with its tag (`docker.io/library/python:3.12`); the
    /// parse error when the expanded text is no reference.
    pub reference: std::result::Result<ImageRef, String>,
    pub line: usize,
    pub kind: dockerfile::RefKind,
    /// As written in the Dockerfile.
    pub raw: String,
}

/// A base image as it enters a tag: its digest from the lock, or none
/// (`unpinned`) when there is no lock file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseDigest {
    pub reference: String,
    pub digest: Option<String>,
}

/// A service's tag with every input that produced it.
#[derive(Debug, Clone)]
pub struct Hashed {
    pub name: String,
    pub tag: String,
    pub repository: Repository,
    pub dockerfile_path: String,
    pub dockerfile_digest: blake3::Hash,
    pub ignore_file: Option<String>,
    /// The context's entries, sorted by path; empty unless hashed with
    /// [`Project::hash_with_entries`].
    pub entries: Vec<Entry>,
    pub deps: Vec<Dep>,
    /// External base images, sorted by reference.
    pub bases: Vec<BaseDigest>,
}

impl Hashed {
    /// The full image reference, `<registry>/<repository>:<tag>`.
    pub fn image(&self) -> ImageRef {
        self.repository.with_tag(&self.tag)
    }
}

impl Project {
    /// Finds the config (`explicit`, else `tagsmith.yaml` in `cwd` or above) and loads it.
    pub fn open(explicit: Option<&Path>, cwd: &Path) -> Result<Project> {
        let path = config::locate(explicit, cwd)?;
        Project::load(config::load(&path)?, Tree::WorkTree)
    }

    /// The project as the commit `rev` of the repository holding `cwd`
    /// has it, read from git's objects. Its config is that commit's
    /// `tagsmith.yaml` (in `cwd`'s directory or the nearest parent), or
    /// `explicit`, read from the working tree with its paths resolved in
    /// the commit's tree.
    pub fn at_commit(explicit: Option<&Path>, cwd: &Path, commit: Commit) -> Result<Project> {
        let workdir = commit.workdir().to_path_buf();
        let tree = Tree::Commit(Box::new(commit));
        let path = match explicit {
            Some(p) => config::locate(Some(p), cwd)?,
            None => {
                let cwd = paths::absolute(cwd).map_err(|e| Error::io(cwd, e))?;
                cwd.ancestors()
                    .take_while(|d| d.starts_with(&workdir))
                    .map(|d| d.join(config::FILE_NAME))
                    .find(|p| tree.is_file(p))
                    .ok_or_else(|| {
                        Error::user(format!(
                            "no {} in {} or any parent directory{}",
                            config::FILE_NAME,
                            paths::Shown(&cwd),
                            tree.at()
                        ))
                    })?
            }
        };
        let text = match explicit {
            Some(_) => std::fs::read(&path),
            None => tree.read(&path),
        }
        .map_err(|e| Error::io(&path, e))?;
        let text = String::from_utf8(text).map_err(|_| Error::file(&path, "not valid UTF-8"))?;
        let mut config = config::parse_in(&path, &text, &tree)?;
        config.stat_cache = false;
        Project::load(config, tree)
    }

    /// Reads every Dockerfile, infers dependencies, and checks the graph.
    pub fn load(config: Config, tree: Tree) -> Result<Project> {
        let by_arg: BTreeMap<String, &str> = config
            .services
            .keys()
            .map(|n| (image_arg(n), n.as_str()))
            .collect();
        let injected: BTreeSet<String> = by_arg.keys().cloned().collect();
        let mut dockerfiles = BTreeMap::new();
        let mut bases = BTreeMap::new();
        let mut scans = BTreeMap::new();
        let mut edges = BTreeMap::new();
        for (name, service) in &config.services {
            let bytes = tree
                .read(&service.dockerfile)
                .map_err(|e| Error::io(&service.dockerfile, e))?;
            let text = String::from_utf8_lossy(&bytes);
            let scan = dockerfile::scan(&text, &service.args, &injected)
                .map_err(|e| Error::at(&service.dockerfile, e.line as u64, 1, e.message))?;
            let mut deps: BTreeSet<String> = service.depends_on.iter().cloned().collect();
            for r in scan.refs.iter().filter(|r| !r.stage) {
                deps.extend(
                    r.vars
                        .iter()
                        .filter_map(|v| by_arg.get(v))
                        .map(|s| s.to_string()),
                );
            }
            edges.insert(name.clone(), deps);
            dockerfiles.insert(name.clone(), bytes);
            bases.insert(name.clone(), external_bases(&scan, &injected));
            scans.insert(name.clone(), scan);
        }
        let graph = Graph::new(edges).map_err(|cycle| {
            Error::file(
                &config.path,
                format!("dependency cycle: {}", cycle.join(" -> ")),
            )
        })?;
        let lock = Lock::load(&config.root, &tree)?;
        Ok(Project {
            config,
            tree: std::sync::Arc::new(tree),
            graph,
            lock,
            dockerfiles,
            scans,
            bases,
        })
    }

    /// The same project with another lock (what `lock --update` would give).
    pub fn with_lock(&self, lock: Lock) -> Project {
        Project {
            lock: Some(lock),
            ..self.clone()
        }
    }

    /// What the scanner found in a service's Dockerfile.
    pub fn scan(&self, name: &str) -> &dockerfile::Scan {
        &self.scans[name]
    }

    /// The external base images of a service's Dockerfile.
    pub fn bases(&self, name: &str) -> &[Base] {
        &self.bases[name]
    }

    /// Every external base of `services` that parsed, by reference, with
    /// where it first appears (for messages).
    pub fn all_bases<'a>(
        &'a self,
        services: impl IntoIterator<Item = &'a str>,
    ) -> Result<BTreeMap<String, (ImageRef, &'a str)>> {
        let mut out = BTreeMap::new();
        for name in services {
            for base in &self.bases[name] {
                let r = base
                    .reference
                    .as_ref()
                    .map_err(|e| self.base_error(name, base, e))?;
                out.entry(r.to_string()).or_insert((r.clone(), name));
            }
        }
        Ok(out)
    }

    fn base_error(&self, service: &str, base: &Base, why: &str) -> Error {
        Error::at(
            &self.config.services[service].dockerfile,
            base.line as u64,
            1,
            format!("base image \"{}\": {why}", base.raw),
        )
    }

    /// The base digests that are inputs of `service`'s tag: with a lock,
    /// each locked digest (for the service's platform); without, none.
    fn base_digests(&self, service: &Service) -> Result<Vec<BaseDigest>> {
        let mut out: BTreeMap<String, Option<String>> = BTreeMap::new();
        for base in &self.bases[&service.name] {
            let reference = match (&base.reference, &self.lock) {
                (Ok(r), _) => r.to_string(),
                (Err(e), Some(_)) => return Err(self.base_error(&service.name, base, e)),
                (Err(_), None) => continue,
            };
            let digest = match &self.lock {
                None => None,
                Some(lock) => match lock.images.get(&reference) {
                    Some(locked) => {
                        Some(locked.for_platform(service.platform.as_deref()).to_string())
                    }
                    None => {
                        return Err(self.base_error(
                            &service.name,
                            base,
                            format!(
                                "{reference} is not in {}; run `tagsmith lock`",
                                paths::Shown(&lock.path)
                            )
                            .as_str(),
                        ));
                    }
                },
            };
            out.insert(reference, digest);
        }
        Ok(out
            .into_iter()
            .map(|(reference, digest)| BaseDigest { reference, digest })
            .collect())
    }

    /// The Dockerfile's bytes as they were read (and hashed).
    pub fn dockerfile(&self, name: &str) -> &[u8] {
        &self.dockerfiles[name]
    }

    /// The Dockerfile the builder reads, byte for byte the file except for
    /// image references, which are written out:
    ///
    /// * builders do not expand build args in `COPY --from=` or
    ///   `RUN --mount=…,from=`, so such a reference that uses one
    ///   (`--from=${BASE_IMAGE}`) gets its value from `args` (the build
    ///   args, with every dependency's image);
    /// * with a lock file, every external base reads
    ///   `<reference>@<locked digest>`, so the build uses the locked image
    ///   even after its tag moved.
    ///
    /// A function of hashed inputs only.
    pub fn dockerfile_to_send(&self, name: &str, args: &BTreeMap<String, String>) -> Vec<u8> {
        let original = &self.dockerfiles[name];
        let text = String::from_utf8_lossy(original);
        // The same text scanned at load time, so it cannot fail here.
        let Ok(scan) = dockerfile::scan(&text, args, &BTreeSet::new()) else {
            return original.clone();
        };
        let locked = |r: &dockerfile::FromRef| -> Option<String> {
            let lock = self.lock.as_ref()?;
            let base = self.bases[name]
                .iter()
                .find(|b| b.line == r.line && b.raw == r.raw && b.kind == r.kind)?;
            let reference = base.reference.as_ref().ok()?.to_string();
            let digest = &lock.images.get(&reference)?.digest;
            Some(format!("{reference}@{digest}"))
        };
        let subs: Vec<dockerfile::Substitution> = scan
            .refs
            .iter()
            .filter(|r| !r.stage)
            .filter_map(|r| {
                let with = locked(r).or_else(|| {
                    (r.kind != dockerfile::RefKind::From && r.raw.contains('$'))
                        .then(|| r.expanded.clone())
                })?;
                Some(dockerfile::Substitution {
                    line: r.line,
                    kind: r.kind,
                    raw: r.raw.clone(),
                    with,
                })
            })
            .collect();
        if subs.is_empty() {
            return original.clone();
        }
        dockerfile::rewrite(&text, &subs).into_bytes()
    }

    /// Checks service names given on the command line and returns them with
    /// their dependencies, in build order. No names means every service.
    pub fn select(&self, names: &[String]) -> Result<Vec<String>> {
        if names.is_empty() {
            return Ok(self.graph.order());
        }
        for n in names {
            if !self.config.services.contains_key(n) {
                return Err(self.unknown_service(n));
            }
        }
        Ok(self.graph.closure(names.iter().map(String::as_str)))
    }

    pub fn unknown_service(&self, name: &str) -> Error {
        let known: Vec<&str> = self.config.services.keys().map(String::as_str).collect();
        Error::user(format!(
            "unknown service \"{name}\"{}; {} defines: {}",
            Suggestion::closest(name, known.iter().copied()),
            paths::Shown(&self.config.path),
            known.join(", ")
        ))
    }

    /// Hashes `order` (which must list dependencies before dependents).
    /// The results hold no context entries: see [`Project::hash_with_entries`].
    pub fn hash(&self, order: &[String]) -> Result<BTreeMap<String, Hashed>> {
        self.hash_keeping(order, Entries::Drop)
            .map(|(hashed, _)| hashed)
    }

    /// [`Project::hash`], each result with its context's entries (for
    /// `explain` and the build context). Memory then grows with the files
    /// of all the services, not of the few being walked.
    pub fn hash_with_entries(&self, order: &[String]) -> Result<BTreeMap<String, Hashed>> {
        self.hash_keeping(order, Entries::Keep)
            .map(|(hashed, _)| hashed)
    }

    /// [`Project::hash`], and what it cost: files read, digests reused.
    pub fn hash_with_stats(
        &self,
        order: &[String],
    ) -> Result<(BTreeMap<String, Hashed>, HashStats)> {
        self.hash_keeping(order, Entries::Drop)
    }

    /// Walks the contexts of `order`, several services at a time (a walk of
    /// a small context spends most of its time waiting, so they overlap),
    /// and digests each as soon as its walk and its dependencies are done,
    /// so that a walk's entries are dropped then unless `entries` keeps
    /// them. The error reported is the first in `order`, whatever failed
    /// first.
    fn hash_keeping(
        &self,
        order: &[String],
        entries: Entries,
    ) -> Result<(BTreeMap<String, Hashed>, HashStats)> {
        // A base missing from the lock is found before any file is read.
        let bases = order
            .iter()
            .map(|n| self.base_digests(&self.config.services[n]))
            .collect::<Result<Vec<_>>>()?;
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let cache = match (self.config.stat_cache, statcache_dir()) {
            (true, Some(dir)) => {
                DigestCache::with_stat_cache(StatCache::open(&dir, &self.config.root))
            }
            _ => DigestCache::default(),
        };
        for name in order {
            cache.walking(&self.config.services[name].context);
        }
        let next = AtomicUsize::new(0);
        let errors: Vec<Mutex<Option<Error>>> = order.iter().map(|_| Mutex::default()).collect();
        let state = Mutex::new(Digested::default());
        let changed = Condvar::new();
        std::thread::scope(|scope| {
            for _ in 0..threads.min(order.len()) {
                scope.spawn(|| {
                    while !state.lock().unwrap().failed {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(name) = order.get(i) else { break };
                        let service = &self.config.services[name];
                        let fail = |e: Error| {
                            *errors[i].lock().unwrap() = Some(e);
                            state.lock().unwrap().failed = true;
                            changed.notify_all();
                        };
                        // In a commit, tags only: the walk may not be needed
                        // at all, which is known once the deps' tags are.
                        let work = match (&*self.tree, entries) {
                            (Tree::Commit(commit), Entries::Drop) => Work::InCommit(commit),
                            _ => match self.walk_one(service, &cache, threads) {
                                Ok(walked) => Work::Walked(walked),
                                Err(e) => {
                                    fail(e);
                                    break;
                                }
                            },
                        };
                        // Dependencies come earlier in `order`: each is
                        // walked by now or being walked, so this ends.
                        let mut s = state.lock().unwrap();
                        while !s.failed && !self.graph.deps(name).all(|d| s.done.contains_key(d)) {
                            s = changed.wait(s).unwrap();
                        }
                        if s.failed {
                            break;
                        }
                        let deps = self.deps_of(name, &s.done);
                        drop(s);
                        let base = bases[i].clone();
                        let hashed = match work {
                            Work::Walked((ignore_file, walked)) => {
                                Ok(self.digest(service, deps, ignore_file, walked, base, None))
                            }
                            Work::InCommit(commit) => {
                                self.digest_in_commit(commit, service, deps, base)
                            }
                        };
                        let mut hashed = match hashed {
                            Ok(h) => h,
                            Err(e) => {
                                fail(e);
                                break;
                            }
                        };
                        if entries == Entries::Drop {
                            hashed.entries = Vec::new();
                        }
                        state.lock().unwrap().done.insert(name.clone(), hashed);
                        changed.notify_all();
                    }
                });
            }
        });
        if let Some(err) = errors.into_iter().find_map(|e| e.into_inner().unwrap()) {
            // A run that failed leaves the caches as they were.
            return Err(err);
        }
        let stats = cache.stats();
        cache.finish();
        if let Tree::Commit(commit) = &*self.tree {
            commit.save();
        }
        Ok((state.into_inner().unwrap().done, stats))
    }

    /// The dependencies of `name` as they enter its hash.
    fn deps_of(&self, name: &str, done: &BTreeMap<String, Hashed>) -> Vec<Dep> {
        self.graph
            .deps(name)
            .map(|d| Dep {
                name: d.to_string(),
                repository: done[d].repository.to_string(),
                tag: done[d].tag.clone(),
            })
            .collect()
    }

    fn walk_one(&self, service: &Service, cache: &DigestCache, threads: usize) -> Result<Walked> {
        let selection = Selection::in_tree(
            &service.context,
            &service.dockerfile,
            service.dockerfile_path_in_context(),
            &self.tree,
        )?;
        let entries = match &*self.tree {
            Tree::WorkTree => context::walk(&service.context, &selection, cache, threads)?,
            Tree::Commit(commit) => context::commit::walk(commit, &service.context, &selection)?,
        };
        Ok((selection.ignore_file, entries))
    }

    /// A service's digest in a commit, tags only: reused from an earlier
    /// run when the key says every input is the same. The key holds the
    /// context's tree id and selection fingerprint (all its entries depend
    /// on) and the digest of every other input (Dockerfile, args, deps'
    /// tags, bases) with no entries.
    fn digest_in_commit(
        &self,
        commit: &Commit,
        service: &Service,
        deps: Vec<Dep>,
        bases: Vec<BaseDigest>,
    ) -> Result<Hashed> {
        let selection = Selection::in_tree(
            &service.context,
            &service.dockerfile,
            service.dockerfile_path_in_context(),
            &self.tree,
        )?;
        let key = commit.tree_id(&service.context).map(|id| {
            let rest = self.inputs_digest(service, &deps, &[], &bases);
            let mut key = blake3::Hasher::new();
            key.update(b"tagsmith service digest key 1\0");
            key.update(id.as_bytes());
            key.update(&selection.fingerprint);
            key.update(rest.as_bytes());
            *key.finalize().as_bytes()
        });
        if let Some(digest) = key.as_ref().and_then(|k| commit.known_digest(k)) {
            let digest = blake3::Hash::from_bytes(digest);
            return Ok(self.digest(
                service,
                deps,
                selection.ignore_file,
                Vec::new(),
                bases,
                Some(digest),
            ));
        }
        let entries = context::commit::walk(commit, &service.context, &selection)?;
        let digest = self.inputs_digest(service, &deps, &entries, &bases);
        if let Some(key) = key {
            commit.remember_digest(key, *digest.as_bytes());
        }
        Ok(self.digest(
            service,
            deps,
            selection.ignore_file,
            Vec::new(),
            bases,
            Some(digest),
        ))
    }

    fn inputs_digest(
        &self,
        service: &Service,
        deps: &[Dep],
        entries: &[Entry],
        bases: &[BaseDigest],
    ) -> blake3::Hash {
        let locked: Vec<(&str, &str)> = bases
            .iter()
            .filter_map(|b| Some((b.reference.as_str(), b.digest.as_deref()?)))
            .collect();
        hash::digest(&hash::Inputs {
            dockerfile_path: &service.dockerfile_in_context,
            dockerfile: &self.dockerfiles[&service.name],
            target: service.target.as_deref(),
            platform: service.platform.as_deref(),
            args: &service.args,
            deps,
            entries,
            bases: &locked,
        })
    }

    /// The result for `service`; `digest` when it is known already.
    fn digest(
        &self,
        service: &Service,
        deps: Vec<Dep>,
        ignore_file: Option<PathBuf>,
        entries: Vec<Entry>,
        bases: Vec<BaseDigest>,
        digest: Option<blake3::Hash>,
    ) -> Hashed {
        let dockerfile = &self.dockerfiles[&service.name];
        let digest = digest.unwrap_or_else(|| self.inputs_digest(service, &deps, &entries, &bases));
        Hashed {
            name: service.name.clone(),
            tag: hash::tag(&digest, self.config.tag_length),
            repository: service.repository.clone(),
            dockerfile_path: service.dockerfile_in_context.clone(),
            dockerfile_digest: blake3::hash(dockerfile),
            ignore_file: ignore_file.map(|p| paths::relative(&service.context, &p)),
            entries,
            deps,
            bases,
        }
    }
}

/// The references of a scan that name external images.
fn external_bases(scan: &dockerfile::Scan, injected: &BTreeSet<String>) -> Vec<Base> {
    scan.refs
        .iter()
        .filter(|r| !r.stage && r.vars.is_disjoint(injected))
        .filter(|r| !r.expanded.eq_ignore_ascii_case("scratch") && !r.expanded.contains('@'))
        .map(|r| Base {
            reference: ImageRef::parse(&r.expanded).map(|mut i| {
                i.tag.get_or_insert_with(|| "latest".to_string());
                i
            }),
            line: r.line,
            kind: r.kind,
            raw: r.raw.clone(),
        })
        .collect()
}
