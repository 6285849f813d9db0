//! `cleanup`: delete the content tags no keep rule protects, from every
//! service's repository in the registry. Kept: the tags of the last N
//! commits of each branch (computed from git), images named in manifests or
//! a list, tags younger than a minimum age, the cache tag, and every tag
//! that is not a tagsmith content tag. An image is deleted (by digest) only
//! when no kept tag points at it, since deleting a digest removes every tag
//! on it.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::build::CACHE_TAG;
use super::{Report, runtime, write_atomically};
use crate::error::{Error, Result};
use crate::paths::Shown;
use crate::project::Project;
use crate::registry::{ImageRef, Registry, Repository};
use crate::shell::Shell;
use crate::tree::Commit;

pub struct Options {
    /// Keep the tags of this many commits of each branch.
    pub keep_last: usize,
    /// The branches (default: HEAD).
    pub branches: Vec<String>,
    /// Directories of manifests whose image references are kept.
    pub keep_manifests: Vec<PathBuf>,
    /// Files listing image references to keep.
    pub keep_files: Vec<PathBuf>,
    /// Tags whose image is younger than this are kept.
    pub min_age: Duration,
    pub dry_run: bool,
    /// Delete without asking.
    pub yes: bool,
    /// Whether a person can be asked (stdin and stderr are terminals).
    pub interactive: bool,
    pub report: Option<PathBuf>,
    /// For reading each commit's config: the working directory, and
    /// `--config` when given.
    pub cwd: PathBuf,
    pub config: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Tagged {
    pub repository: String,
    pub tag: String,
    pub digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct CleanupReport {
    pub version: u32,
    pub dry_run: bool,
    pub deleted: Vec<Tagged>,
    pub kept: Vec<Tagged>,
    /// Commits whose tags could not be computed (and so kept nothing).
    pub skipped_commits: Vec<String>,
    /// Repositories left alone because the registry could not be asked.
    pub failed_repositories: Vec<String>,
}

impl Report for CleanupReport {
    fn stdout(&self) -> Vec<u8> {
        let mut s = String::new();
        for t in &self.deleted {
            let verb = if self.dry_run {
                "would delete"
            } else {
                "deleted"
            };
            s.push_str(&format!(
                "{verb}  {}:{} ({})\n",
                t.repository,
                t.tag,
                t.digest.as_deref().unwrap_or("-")
            ));
        }
        for t in &self.kept {
            s.push_str(&format!(
                "kept  {}:{} ({})\n",
                t.repository,
                t.tag,
                t.reason.as_deref().unwrap_or("")
            ));
        }
        s.push_str(&format!(
            "{} {} tag(s), kept {}\n",
            if self.dry_run {
                "would delete"
            } else {
                "deleted"
            },
            self.deleted.len(),
            self.kept.len()
        ));
        s.into_bytes()
    }

    fn outcome(&self) -> Result<()> {
        if self.failed_repositories.is_empty() {
            return Ok(());
        }
        Err(Error::user(format!(
            "nothing was deleted in {}: the registry could not be asked (see above)",
            self.failed_repositories.join(", ")
        )))
    }
}

/// Why a tag is kept, by repository and tag (or digest).
#[derive(Default)]
struct Keep {
    tags: BTreeMap<(String, String), String>,
    digests: BTreeMap<(String, String), String>,
}

impl Keep {
    fn tag(&mut self, repository: &str, tag: &str, why: String) {
        self.tags
            .entry((repository.to_string(), tag.to_string()))
            .or_insert(why);
    }

    fn reference(&mut self, r: &ImageRef, why: &str) {
        let repo = r.repository.to_string();
        if let Some(t) = &r.tag {
            self.tag(&repo, t, why.to_string());
        }
        if let Some(d) = &r.digest {
            self.digests
                .entry((repo, d.clone()))
                .or_insert(why.to_string());
        }
    }
}

pub fn run(project: &Project, options: Options, shell: &Shell) -> Result<CleanupReport> {
    let mut report = CleanupReport {
        version: 1,
        dry_run: options.dry_run,
        ..CleanupReport::default()
    };
    let mut keep = Keep::default();
    history(project, &options, shell, &mut keep, &mut report)?;
    for dir in &options.keep_manifests {
        for r in references_in_dir(dir)? {
            keep.reference(&r, &format!("named in {}", Shown(dir)));
        }
    }
    for file in &options.keep_files {
        let text = std::fs::read_to_string(file).map_err(|e| Error::io(file, e))?;
        for r in references(&text) {
            keep.reference(&r, &format!("listed in {}", Shown(file)));
        }
    }
    let repositories: BTreeSet<Repository> = project
        .config
        .services
        .values()
        .map(|s| s.repository.clone())
        .collect();
    let config = &project.config;
    let registry = Registry::for_hosts(
        repositories.iter().map(|r| r.host()),
        &config.insecure_registries,
        config.retry_deadline,
    )?;
    let tag_length = config.tag_length;
    let rt = runtime(2)?;
    let mut plans = Vec::new();
    for repository in &repositories {
        match rt.block_on(plan(
            &registry,
            repository,
            &keep,
            tag_length,
            options.min_age,
        )) {
            Ok(p) => plans.push((repository.clone(), p)),
            Err(e) => {
                shell.status(format!("{repository}: {e}"));
                report.failed_repositories.push(repository.to_string());
            }
        }
    }
    let doomed: usize = plans.iter().map(|(_, p)| p.delete.len()).sum();
    for (_, p) in &plans {
        report.kept.extend(p.keep.iter().cloned());
    }
    if !options.dry_run && doomed > 0 && !confirmed(&options, doomed)? {
        return Err(Error::user("nothing was deleted (not confirmed)"));
    }
    for (repository, p) in plans {
        // One DELETE per image: it removes every tag on it.
        let mut by_digest: BTreeMap<String, Vec<Tagged>> = BTreeMap::new();
        for t in p.delete {
            by_digest
                .entry(t.digest.clone().unwrap_or_default())
                .or_default()
                .push(t);
        }
        for (digest, tags) in by_digest {
            if !options.dry_run {
                rt.block_on(registry.delete(&repository, &digest))?;
            }
            report.deleted.extend(tags);
        }
    }
    if let Some(path) = &options.report {
        let json = serde_json::to_string_pretty(&report).expect("serializable") + "\n";
        write_atomically(path, json.as_bytes())?;
    }
    Ok(report)
}

/// Keeps the tags of the last commits of each branch.
fn history(
    project: &Project,
    options: &Options,
    shell: &Shell,
    keep: &mut Keep,
    report: &mut CleanupReport,
) -> Result<()> {
    if options.keep_last == 0 {
        return Ok(());
    }
    let branches = if options.branches.is_empty() {
        vec!["HEAD".to_string()]
    } else {
        options.branches.clone()
    };
    let base = Commit::open(&options.cwd, "HEAD")?;
    let _ = project;
    for branch in &branches {
        for id in base.history(branch, options.keep_last)? {
            let short = id.to_hex_with_len(12).to_string();
            let commit = base.sibling(id)?;
            let tags = Project::at_commit(options.config.as_deref(), &options.cwd, commit)
                .and_then(|p| {
                    let order = p.select(&[])?;
                    p.hash(&order)
                });
            match tags {
                Ok(hashed) => {
                    for h in hashed.values() {
                        keep.tag(
                            &h.repository.to_string(),
                            &h.tag,
                            format!("the tag of commit {short} of {branch}"),
                        );
                    }
                }
                Err(e) => {
                    shell.status(format!("commit {short} of {branch} skipped: {e}"));
                    report.skipped_commits.push(format!("{short}: {e}"));
                }
            }
        }
    }
    Ok(())
}

struct Plan {
    delete: Vec<Tagged>,
    keep: Vec<Tagged>,
}

/// Decides every tag of one repository; deletes nothing.
async fn plan(
    registry: &Registry,
    repository: &Repository,
    keep: &Keep,
    tag_length: usize,
    min_age: Duration,
) -> Result<Plan> {
    let repo = repository.to_string();
    let tags = registry.tags(repository).await?;
    let images: Vec<ImageRef> = tags.iter().map(|t| repository.with_tag(t)).collect();
    let digests = futures_util::future::join_all(images.iter().map(|i| registry.digest(i)))
        .await
        .into_iter()
        .collect::<Result<Vec<_>>>()?;
    let mut kept = Vec::new();
    let mut candidates = Vec::new();
    for (tag, digest) in tags.into_iter().zip(digests) {
        let reason = if tag == CACHE_TAG {
            Some("the cache tag".to_string())
        } else if tag.len() != tag_length
            || !tag
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Some("not a tagsmith content tag".to_string())
        } else if let Some(why) = keep.tags.get(&(repo.clone(), tag.clone())) {
            Some(why.clone())
        } else {
            digest
                .as_ref()
                .and_then(|d| keep.digests.get(&(repo.clone(), d.clone())))
                .cloned()
        };
        let t = Tagged {
            repository: repo.clone(),
            tag,
            digest,
            reason,
        };
        if t.reason.is_some() {
            kept.push(t);
        } else {
            candidates.push(t);
        }
    }
    // Young images stay, by their config's `created`; unknown age stays too.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64;
    let mut old = Vec::new();
    for mut t in candidates {
        let image = repository.with_tag(&t.tag);
        let created = match registry.manifest(&image).await? {
            Some(m) => registry.created(repository, &m).await?,
            None => None,
        };
        match created.as_deref().and_then(parse_rfc3339) {
            Some(secs) if now - secs >= min_age.as_secs() as i64 => old.push(t),
            Some(_) => {
                t.reason = Some(format!("younger than {} days", min_age.as_secs() / 86_400));
                kept.push(t);
            }
            None => {
                t.reason = Some("its age is unknown".into());
                kept.push(t);
            }
        }
    }
    // Deleting a digest deletes every tag on it: not while a kept tag has it.
    let kept_digests: BTreeMap<String, String> = kept
        .iter()
        .filter_map(|k| Some((k.digest.clone()?, k.tag.clone())))
        .collect();
    let mut delete = Vec::new();
    for mut t in old {
        match t.digest.as_ref().and_then(|d| kept_digests.get(d)) {
            Some(other) => {
                t.reason = Some(format!("its image is also the kept tag {other}"));
                kept.push(t);
            }
            None => delete.push(t),
        }
    }
    Ok(Plan { delete, keep: kept })
}

/// Asks on the terminal, or takes `--yes`; without a terminal, only `--yes`.
fn confirmed(options: &Options, count: usize) -> Result<bool> {
    if options.yes {
        return Ok(true);
    }
    if !options.interactive {
        return Err(Error::user(format!(
            "{count} tag(s) would be deleted; without a terminal, cleanup deletes only with --yes (or lists them with --dry-run)"
        )));
    }
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "Delete {count} tag(s) from the registry? [y/N] ");
    let _ = err.flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| Error::internal(format!("reading the answer: {e}")))?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

/// Image references in the files below `dir` (YAML, JSON, text).
fn references_in_dir(dir: &Path) -> Result<Vec<ImageRef>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let meta = std::fs::metadata(&d).map_err(|e| Error::io(&d, e))?;
        if meta.is_file() {
            if let Ok(text) = std::fs::read_to_string(&d) {
                out.extend(references(&text));
            }
            continue;
        }
        for entry in std::fs::read_dir(&d).map_err(|e| Error::io(&d, e))? {
            stack.push(entry.map_err(|e| Error::io(&d, e))?.path());
        }
    }
    Ok(out)
}

/// Every word of `text` that reads as an image reference with a registry
/// host and a tag or digest (`host/repo:tag`, `host/repo@sha256:…`).
fn references(text: &str) -> Vec<ImageRef> {
    text.split(|c: char| {
        c.is_whitespace() || matches!(c, '"' | '\'' | ',' | '[' | ']' | '{' | '}' | '=')
    })
    .map(|w| {
        w.trim_start_matches("image:")
            .trim_matches(|c: char| c == ':' || c == '-')
    })
    .filter(|w| w.contains('/') && (w.contains(':') || w.contains('@')))
    .filter_map(|w| ImageRef::parse(w).ok())
    .filter(|r| r.tag.is_some() || r.digest.is_some())
    .collect()
}

/// Seconds since the epoch of an RFC 3339 time (`2024-05-01T12:00:00.5Z`,
/// or with a `+hh:mm` offset).
fn parse_rfc3339(s: &str) -> Option<i64> {
    let (date, time) = s.split_once(['T', 't', ' '])?;
    let mut d = date.split('-');
    let (y, m, day): (i64, i64, i64) = (
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
    );
    let (clock, offset) = match time.find(['Z', 'z', '+', '-']) {
        Some(i) => (&time[..i], &time[i..]),
        None => (time, "Z"),
    };
    let mut c = clock.split(':');
    let (hh, mm): (i64, i64) = (c.next()?.parse().ok()?, c.next()?.parse().ok()?);
    let ss: f64 = c.next()?.parse().ok()?;
    let offset_secs = match offset.chars().next()? {
        'Z' | 'z' => 0,
        sign => {
            let (oh, om) = offset[1..].split_once(':')?;
            let v = oh.parse::<i64>().ok()? * 3600 + om.parse::<i64>().ok()? * 60;
            if sign == '-' { -v } else { v }
        }
    };
    // Days from 1970-01-01 (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss as i64 - offset_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_times() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2000-01-01T00:00:00Z"), Some(946_684_800));
        assert_eq!(
            parse_rfc3339("2024-02-29T12:30:15.123456789Z"),
            Some(1_709_209_815)
        );
        assert_eq!(
            parse_rfc3339("2024-02-29T14:30:15+02:00"),
            Some(1_709_209_815)
        );
        assert_eq!(parse_rfc3339("nonsense"), None);
    }

    #[test]
    fn references_in_manifests_and_lists() {
        let text = "image: reg.example/team/api:0123abcd\n  - image: \"reg.example/web@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"\nname: api\nfoo:bar\nreg.example:5000/x/y:1 reg.example/z\n";
        let found: Vec<String> = references(text).iter().map(ToString::to_string).collect();
        assert_eq!(
            found,
            [
                "reg.example/team/api:0123abcd",
                "reg.example/web@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                "reg.example:5000/x/y:1"
            ]
        );
    }
}
