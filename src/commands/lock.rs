//! `lock`: pin the external base images to digests in `tagsmith.lock`.
//! Plain `lock` adds what is missing and drops what no Dockerfile uses,
//! keeping every digest it already has (a lock only moves on request);
//! `--check` compares with the registries; `--update` moves digests on and
//! says which tags change because of it.

use std::collections::{BTreeMap, BTreeSet};

use super::{Report, write_atomically};
use crate::error::{Error, Result};
use crate::paths::Shown;
use crate::project::Project;
use crate::project::lock::{self, Lock, Locked};
use crate::registry::{ImageRef, Registry};

pub enum Mode {
    /// Add missing images, drop stale ones.
    Write,
    /// Exit 1 listing moved, missing and stale images.
    Check,
    /// Re-resolve these images (all when empty).
    Update(Vec<String>),
}

pub struct Options {
    pub mode: Mode,
}

pub enum LockReport {
    Written { lines: Vec<String> },
    Checked { problems: Vec<String>, count: usize },
}

impl Report for LockReport {
    fn stdout(&self) -> Vec<u8> {
        match self {
            LockReport::Written { lines } => lines
                .iter()
                .map(|l| format!("{l}\n"))
                .collect::<String>()
                .into_bytes(),
            LockReport::Checked { problems, count } if problems.is_empty() => {
                format!("{} is current ({count} images)\n", lock::FILE_NAME).into_bytes()
            }
            LockReport::Checked { .. } => Vec::new(),
        }
    }

    fn outcome(&self) -> Result<()> {
        match self {
            LockReport::Checked { problems, .. } if !problems.is_empty() => Err(Error::many(
                problems.iter().map(|p| Error::User(p.clone())).collect(),
                format!("{} is not current", lock::FILE_NAME),
            )),
            _ => Ok(()),
        }
    }
}

pub fn run(project: &Project, options: Options) -> Result<LockReport> {
    let names: Vec<&str> = project.config.services.keys().map(String::as_str).collect();
    let used = project.all_bases(names.iter().copied())?;
    let current = project.lock.clone().unwrap_or_else(|| Lock {
        path: project.config.root.join(lock::FILE_NAME),
        images: BTreeMap::new(),
    });
    let resolve: BTreeSet<String> = match &options.mode {
        Mode::Write => used
            .keys()
            .filter(|r| !current.images.contains_key(*r))
            .cloned()
            .collect(),
        Mode::Check => used.keys().cloned().collect(),
        Mode::Update(wanted) if wanted.is_empty() => used.keys().cloned().collect(),
        Mode::Update(wanted) => select(wanted, &used, &current)?,
    };
    let resolved = resolve_all(project, &used, &resolve)?;
    match options.mode {
        Mode::Check => Ok(check(project, &used, &current, &resolved)),
        Mode::Write => {
            let mut next = current.clone();
            next.images.retain(|r, _| used.contains_key(r));
            next.images.extend(resolved.clone());
            let mut lines: Vec<String> = resolved
                .iter()
                .map(|(r, l)| format!("added    {r} {}", l.digest))
                .collect();
            lines.extend(
                current
                    .images
                    .keys()
                    .filter(|r| !used.contains_key(*r))
                    .map(|r| format!("removed  {r} (no Dockerfile uses it)")),
            );
            save(&current, &next, &mut lines)?;
            Ok(LockReport::Written { lines })
        }
        Mode::Update(_) => {
            let mut next = current.clone();
            next.images.retain(|r, _| used.contains_key(r));
            let mut lines = Vec::new();
            for (r, l) in &resolved {
                match current.images.get(r) {
                    Some(old) if old == l => {}
                    Some(old) => lines.push(format!("{r}: {} -> {}", old.digest, l.digest)),
                    None => lines.push(format!("{r}: (new) -> {}", l.digest)),
                }
                next.images.insert(r.clone(), l.clone());
            }
            if lines.is_empty() {
                lines.push("every image is at the digest its tag names".into());
            } else {
                lines.extend(retagged(project, &next)?);
            }
            save(&current, &next, &mut lines)?;
            Ok(LockReport::Written { lines })
        }
    }
}

/// Writes `next` when it differs; `tagsmith.lock` is written whole or not at all.
fn save(current: &Lock, next: &Lock, lines: &mut Vec<String>) -> Result<()> {
    let text = next.render();
    let on_disk = std::fs::read_to_string(&next.path).ok();
    if on_disk.as_deref() != Some(text.as_str()) {
        write_atomically(&next.path, text.as_bytes())?;
        lines.push(format!(
            "wrote {} ({} images)",
            Shown(&next.path),
            next.images.len()
        ));
    } else if current.images.is_empty() && next.images.is_empty() {
        lines.push("no external base images to lock".into());
    } else {
        lines.push(format!(
            "{} is unchanged ({} images)",
            Shown(&next.path),
            next.images.len()
        ));
    }
    Ok(())
}

/// The images `--update` names: a reference as Docker would normalise it,
/// or a repository (every tag of it in use).
fn select(
    wanted: &[String],
    used: &BTreeMap<String, (ImageRef, &str)>,
    current: &Lock,
) -> Result<BTreeSet<String>> {
    let known: BTreeSet<&String> = used.keys().chain(current.images.keys()).collect();
    let mut out = BTreeSet::new();
    for w in wanted {
        let parsed = ImageRef::parse(w).map_err(Error::user)?;
        let matches: Vec<&&String> = known
            .iter()
            .filter(|k| match &parsed.tag {
                Some(_) => ***k == parsed.to_string(),
                None => ImageRef::parse(k).is_ok_and(|r| r.repository == parsed.repository),
            })
            .collect();
        if matches.is_empty() {
            return Err(Error::user(format!(
                "no Dockerfile uses the image \"{w}\"; the locked images are: {}",
                known
                    .iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        out.extend(matches.into_iter().map(|k| (*k).clone()));
    }
    Ok(out)
}

/// Resolves each reference in its registry (or its mirror), concurrently.
/// Nothing is written unless every one resolved.
fn resolve_all(
    project: &Project,
    used: &BTreeMap<String, (ImageRef, &str)>,
    which: &BTreeSet<String>,
) -> Result<BTreeMap<String, Locked>> {
    if which.is_empty() {
        return Ok(BTreeMap::new());
    }
    let config = &project.config;
    let lookup = |r: &ImageRef| config.mirrored(r);
    let hosts: BTreeSet<String> = which
        .iter()
        .filter_map(|r| used.get(r))
        .map(|(i, _)| lookup(i).repository.host().to_string())
        .collect();
    let registry = Registry::for_hosts(
        hosts.iter().map(String::as_str),
        &config.insecure_registries,
        config.retry_deadline,
    )?;
    // The platforms the services that use an image build for.
    let mut platforms: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, service) in &config.services {
        let Some(p) = &service.platform else { continue };
        for base in project.bases(name) {
            if let Ok(r) = &base.reference {
                platforms
                    .entry(r.to_string())
                    .or_default()
                    .insert(p.clone());
            }
        }
    }
    super::runtime(2)?.block_on(async {
        let lookups = which.iter().map(|reference| {
            let (image, service) = &used[reference];
            let at = lookup(image);
            let registry = &registry;
            let wanted = platforms.get(reference).cloned().unwrap_or_default();
            async move {
                let manifest = registry.manifest(&at).await?.ok_or_else(|| {
                    Error::user(format!(
                        "{reference} (used by {service}) is not in its registry ({at})"
                    ))
                })?;
                let mut locked = Locked {
                    digest: manifest.digest.clone(),
                    platforms: BTreeMap::new(),
                };
                if manifest.is_index() {
                    for p in wanted {
                        let found = manifest
                            .platforms
                            .iter()
                            .find(|m| m.platform == *p)
                            .ok_or_else(|| {
                                Error::user(format!(
                                    "{reference} has no {p} image (it has: {})",
                                    manifest
                                        .platforms
                                        .iter()
                                        .map(|m| m.platform.as_str())
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                ))
                            })?;
                        locked.platforms.insert(p.clone(), found.digest.clone());
                    }
                }
                Ok::<_, Error>((reference.clone(), locked))
            }
        });
        futures_util::future::join_all(lookups)
            .await
            .into_iter()
            .collect()
    })
}

fn check(
    project: &Project,
    used: &BTreeMap<String, (ImageRef, &str)>,
    current: &Lock,
    resolved: &BTreeMap<String, Locked>,
) -> LockReport {
    let mut problems = Vec::new();
    for (reference, now) in resolved {
        match current.images.get(reference) {
            None => {
                let service = used[reference].1;
                let line = project
                    .bases(service)
                    .iter()
                    .find(|b| {
                        b.reference
                            .as_ref()
                            .is_ok_and(|r| r.to_string() == *reference)
                    })
                    .map_or(0, |b| b.line);
                problems.push(format!(
                    "missing: {reference} ({}:{line}); run `tagsmith lock`",
                    Shown(&project.config.services[service].dockerfile)
                ));
            }
            Some(locked) if locked.digest != now.digest => problems.push(format!(
                "moved:   {reference}: {} -> {}; `tagsmith lock --update {reference}` takes it",
                locked.digest, now.digest
            )),
            Some(_) => {}
        }
    }
    for reference in current.images.keys().filter(|r| !used.contains_key(*r)) {
        problems.push(format!(
            "stale:   {reference} (no Dockerfile uses it); run `tagsmith lock`"
        ));
    }
    LockReport::Checked {
        problems,
        count: used.len(),
    }
}

/// The services whose tags the new lock changes, `name: old -> new`.
fn retagged(project: &Project, next: &Lock) -> Result<Vec<String>> {
    let order = project.select(&[])?;
    let Ok(before) = project.hash(&order) else {
        return Ok(vec![
            "(tags before the update are unknown: the old lock did not cover every base image)"
                .into(),
        ]);
    };
    let after = project.with_lock(next.clone()).hash(&order)?;
    let mut lines = Vec::new();
    for (name, h) in &after {
        if before[name].tag != h.tag {
            lines.push(format!("tag of {name}: {} -> {}", before[name].tag, h.tag));
        }
    }
    if lines.is_empty() {
        lines.push("no tag changes".into());
    }
    Ok(lines)
}
