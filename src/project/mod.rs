//! A loaded project: the config, each Dockerfile read once, dependencies
//! declared and inferred, and the graph. Hashing walks the selected
//! services' contexts and digests them in build order.

pub mod config;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::context::{self, DigestCache, Entry, Selection};
use crate::dockerfile;
use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::hash::{self, Dep};
use crate::paths;
use crate::registry::reference::{ImageRef, Repository, image_arg};
use crate::suggestion::Suggestion;
pub use config::{Config, Service};

/// A walked context: the ignore file that applied and the selected entries.
type Walked = (Option<PathBuf>, Vec<Entry>);

pub struct Project {
    pub config: Config,
    pub graph: Graph,
    dockerfiles: BTreeMap<String, Vec<u8>>,
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
    pub entries: Vec<Entry>,
    pub deps: Vec<Dep>,
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
        Project::load(config::load(&path)?)
    }

    /// Reads every Dockerfile, infers dependencies, and checks the graph.
    pub fn load(config: Config) -> Result<Project> {
        let by_arg: BTreeMap<String, &str> = config
            .services
            .keys()
            .map(|n| (image_arg(n), n.as_str()))
            .collect();
        let injected: BTreeSet<String> = by_arg.keys().cloned().collect();
        let mut dockerfiles = BTreeMap::new();
        let mut edges = BTreeMap::new();
        for (name, service) in &config.services {
            let bytes = std::fs::read(&service.dockerfile)
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
        }
        let graph = Graph::new(edges).map_err(|cycle| {
            Error::file(
                &config.path,
                format!("dependency cycle: {}", cycle.join(" -> ")),
            )
        })?;
        Ok(Project {
            config,
            graph,
            dockerfiles,
        })
    }

    /// The Dockerfile's bytes as they were read (and hashed).
    pub fn dockerfile(&self, name: &str) -> &[u8] {
        &self.dockerfiles[name]
    }

    /// The Dockerfile the builder reads. Builders do not expand build args
    /// in `COPY --from=` or `RUN --mount=…,from=`, so a reference there that
    /// uses one (`--from=${BASE_IMAGE}`) is written out with `args` (the
    /// build args, with every dependency's image). Everything else stays
    /// byte for byte; a function of hashed inputs only.
    pub fn dockerfile_to_send(&self, name: &str, args: &BTreeMap<String, String>) -> Vec<u8> {
        let original = &self.dockerfiles[name];
        let text = String::from_utf8_lossy(original);
        // The same text scanned at load time, so it cannot fail here.
        let Ok(scan) = dockerfile::scan(&text, args, &BTreeSet::new()) else {
            return original.clone();
        };
        let subs: Vec<dockerfile::Substitution> = scan
            .refs
            .iter()
            .filter(|r| r.kind != dockerfile::RefKind::From && !r.stage && r.raw.contains('$'))
            .map(|r| dockerfile::Substitution {
                line: r.line,
                kind: r.kind,
                raw: r.raw.clone(),
                with: r.expanded.clone(),
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
    pub fn hash(&self, order: &[String]) -> Result<BTreeMap<String, Hashed>> {
        let walked = self.walk_all(order)?;
        let mut done: BTreeMap<String, Hashed> = BTreeMap::new();
        for (name, (ignore_file, entries)) in order.iter().zip(walked) {
            let service = &self.config.services[name];
            let hashed = self.digest(service, &done, ignore_file, entries);
            done.insert(name.clone(), hashed);
        }
        Ok(done)
    }

    /// Walks the contexts of `order`, several services at a time: a walk of a
    /// small context spends most of its time waiting, so they overlap. The
    /// error reported is the first in `order`, whatever finished first.
    fn walk_all(&self, order: &[String]) -> Result<Vec<(Option<PathBuf>, Vec<Entry>)>> {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let cache = DigestCache::default();
        let next = AtomicUsize::new(0);
        let results: Vec<Mutex<Option<Result<Walked>>>> =
            order.iter().map(|_| Mutex::new(None)).collect();
        std::thread::scope(|scope| {
            for _ in 0..threads.min(order.len()) {
                scope.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(name) = order.get(i) else { break };
                        let walked = self.walk_one(&self.config.services[name], &cache, threads);
                        *results[i].lock().unwrap() = Some(walked);
                    }
                });
            }
        });
        results
            .into_iter()
            .map(|r| r.into_inner().unwrap().expect("every service was walked"))
            .collect()
    }

    fn walk_one(&self, service: &Service, cache: &DigestCache, threads: usize) -> Result<Walked> {
        let selection = Selection::for_service(
            &service.context,
            &service.dockerfile,
            service.dockerfile_path_in_context(),
        )?;
        let entries = context::walk(&service.context, &selection, cache, threads)?;
        Ok((selection.ignore_file, entries))
    }

    fn digest(
        &self,
        service: &Service,
        done: &BTreeMap<String, Hashed>,
        ignore_file: Option<PathBuf>,
        entries: Vec<Entry>,
    ) -> Hashed {
        let deps: Vec<Dep> = self
            .graph
            .deps(&service.name)
            .map(|d| {
                let h = &done[d];
                Dep {
                    name: d.to_string(),
                    repository: h.repository.to_string(),
                    tag: h.tag.clone(),
                }
            })
            .collect();
        let dockerfile = &self.dockerfiles[&service.name];
        let digest = hash::digest(&hash::Inputs {
            dockerfile_path: &service.dockerfile_in_context,
            dockerfile,
            target: service.target.as_deref(),
            platform: service.platform.as_deref(),
            args: &service.args,
            deps: &deps,
            entries: &entries,
        });
        Hashed {
            name: service.name.clone(),
            tag: hash::tag(&digest, self.config.tag_length),
            repository: service.repository.clone(),
            dockerfile_path: service.dockerfile_in_context.clone(),
            dockerfile_digest: blake3::hash(dockerfile),
            ignore_file: ignore_file.map(|p| paths::relative(&service.context, &p)),
            entries,
            deps,
        }
    }
}
