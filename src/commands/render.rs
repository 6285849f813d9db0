//! `render`: templates in, manifests out. Everything is read, parsed and
//! rendered before anything is written, so an error leaves outputs untouched;
//! every problem of every file is reported in one run.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use super::{Report, read_json};
use crate::error::{Error, Result};
use crate::paths::{self, Shown};
use crate::project::{Hashed, Project};
use crate::registry::Registry;
use crate::shell::Shell;
use crate::suggestion::Suggestion;
use crate::template::{self, Action, Piece};

pub struct Options {
    /// Template files or directories; none means the config's `templates`.
    pub paths: Vec<PathBuf>,
    /// `-o DIR`: write files there instead of streaming to stdout.
    pub output: Option<PathBuf>,
    /// With `output`: write nothing, fail listing what differs.
    pub check: bool,
    /// With `output`: remove files no template produces.
    pub prune: bool,
    /// A `build --report` file to read digests from, offline.
    pub report: Option<PathBuf>,
}

pub enum RenderReport {
    /// Without `-o`: the stream for stdout.
    Stream(Vec<u8>),
    /// Files were written under a directory.
    Written,
    /// `--check`: what differs (nothing when up to date).
    Checked { dir: PathBuf, plan: Plan },
}

/// A template file, parsed.
pub struct Template {
    /// The path as shown in messages.
    pub source: PathBuf,
    /// Where it goes under `-o DIR` (`/`-separated).
    pub output: String,
    bytes: Vec<u8>,
    pieces: Vec<Piece>,
}

/// A rendered file.
pub struct Rendered {
    pub output: String,
    pub bytes: Vec<u8>,
}

/// Lists the template files under `paths`: files as given (output name = base
/// name), directories recursively (output = path below the directory),
/// hidden files and directories skipped. Sorted by output path.
pub fn collect(paths: &[PathBuf]) -> Result<Vec<(PathBuf, String)>> {
    let mut files: BTreeMap<String, PathBuf> = BTreeMap::new();
    for path in paths {
        let meta = fs::metadata(path).map_err(|e| Error::io(path, e))?;
        let mut found = Vec::new();
        if meta.is_dir() {
            walk(path, path, &mut found)?;
        } else {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            found.push((path.clone(), name));
        }
        for (source, output) in found {
            if let Some(other) = files.insert(output.clone(), source.clone()) {
                return Err(Error::user(format!(
                    "{} and {} would both render to \"{output}\"; pass only one of them",
                    Shown(&other),
                    Shown(&source)
                )));
            }
        }
    }
    Ok(files
        .into_iter()
        .map(|(output, source)| (source, output))
        .collect())
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, String)>) -> Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .collect::<std::io::Result<_>>()
        .map_err(|e| Error::io(dir, e))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        let meta = fs::metadata(&path).map_err(|e| Error::io(&path, e))?;
        if meta.is_dir() {
            walk(root, &path, out)?;
        } else if meta.is_file() {
            let rel = paths::relative(root, &path);
            out.push((path, rel));
        }
    }
    Ok(())
}

/// Reads and parses every template. Syntax errors are returned beside the
/// templates (which keep their well-formed actions), so that one run reports
/// every problem.
pub fn load(files: Vec<(PathBuf, String)>) -> Result<(Vec<Template>, Vec<Error>)> {
    let contents = read_parallel(&files)?;
    let mut templates = Vec::new();
    let mut errors = Vec::new();
    for ((source, output), bytes) in files.into_iter().zip(contents) {
        let parsed = template::parse(&bytes);
        errors.extend(
            parsed
                .errors
                .into_iter()
                .map(|e| Error::at(&source, e.line as u64, e.column as u64, e.message)),
        );
        templates.push(Template {
            source,
            output,
            bytes,
            pieces: parsed.pieces,
        });
    }
    Ok((templates, errors))
}

/// Reads the files on every core: with many small templates the system
/// calls, not the scanning, are what costs.
fn read_parallel(files: &[(PathBuf, String)]) -> Result<Vec<Vec<u8>>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = files.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|(path, _)| fs::read(path).map_err(|e| Error::io(path, e)))
                        .collect::<Result<Vec<_>>>()
                })
            })
            .collect();
        let mut out = Vec::with_capacity(files.len());
        for h in handles {
            out.extend(
                h.join()
                    .map_err(|_| Error::internal("a reader thread panicked"))??,
            );
        }
        Ok(out)
    })
}

/// Every action in the templates, with the file it is in.
pub fn actions(templates: &[Template]) -> impl Iterator<Item = (&Template, &Action)> + '_ {
    templates.iter().flat_map(|t| {
        t.pieces.iter().filter_map(move |p| match p {
            Piece::Action(a) => Some((t, a)),
            Piece::Text(_) => None,
        })
    })
}

/// Renders every template with `value`, which may fail per action; all
/// failures are reported together.
pub fn render_all(
    templates: &[Template],
    mut value: impl FnMut(&Action) -> std::result::Result<String, String>,
) -> Result<Vec<Rendered>> {
    let mut errors = Vec::new();
    let mut out = Vec::new();
    for t in templates {
        let bytes = template::render(&t.bytes, &t.pieces, |a| {
            value(a).unwrap_or_else(|msg| {
                errors.push(Error::at(&t.source, a.line as u64, a.column as u64, msg));
                String::new()
            })
        });
        out.push(Rendered {
            output: t.output.clone(),
            bytes,
        });
    }
    if !errors.is_empty() {
        return Err(Error::many(errors, "nothing written"));
    }
    Ok(out)
}

fn is_yaml(path: &str) -> bool {
    path.ends_with(".yaml") || path.ends_with(".yml")
}

/// One stream for `kubectl apply -f -`: YAML files separated by `---` unless
/// they already end with one.
pub fn stream(rendered: &[Rendered]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, r) in rendered.iter().enumerate() {
        out.extend_from_slice(&r.bytes);
        let last = i + 1 == rendered.len();
        if last || !is_yaml(&r.output) || ends_with_separator(&r.bytes) {
            continue;
        }
        if !r.bytes.is_empty() && !r.bytes.ends_with(b"\n") {
            out.push(b'\n');
        }
        out.extend_from_slice(b"---\n");
    }
    out
}

fn ends_with_separator(bytes: &[u8]) -> bool {
    let trimmed = bytes.trim_ascii_end();
    let last_line = match memchr::memrchr(b'\n', trimmed) {
        Some(i) => &trimmed[i + 1..],
        None => trimmed,
    };
    last_line == b"---"
}

/// What `-o DIR` would change.
#[derive(Debug, Default)]
pub struct Plan {
    /// Outputs that are missing or differ.
    pub changed: Vec<String>,
    /// Files in DIR that no template produces.
    pub stale: Vec<String>,
}

pub fn plan(dir: &Path, rendered: &[Rendered]) -> Result<Plan> {
    let mut plan = Plan::default();
    for r in rendered {
        let path = dir.join(&r.output);
        match fs::read(&path) {
            Ok(existing) if existing == r.bytes => {}
            Ok(_) => plan.changed.push(r.output.clone()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                plan.changed.push(r.output.clone())
            }
            Err(e) => return Err(Error::io(&path, e)),
        }
    }
    let produced: BTreeSet<&str> = rendered.iter().map(|r| r.output.as_str()).collect();
    if dir.is_dir() {
        let mut existing = Vec::new();
        walk(dir, dir, &mut existing)?;
        plan.stale = existing
            .into_iter()
            .map(|(_, rel)| rel)
            .filter(|rel| !produced.contains(rel.as_str()))
            .collect();
    }
    Ok(plan)
}

/// Writes each changed output through a temporary file and a rename.
/// Writes the changed outputs in two steps: every file to a temporary name
/// first, then all renamed into place. An error or an interrupt (SIGINT,
/// SIGTERM) before the renames removes the temporary files and the
/// directories made for them, leaving DIR as it was; the renames themselves
/// take milliseconds and are not interrupted.
pub fn write(dir: &Path, rendered: &[Rendered], plan: &Plan, prune: bool) -> Result<()> {
    write_unless(dir, rendered, plan, prune, &Interrupt::catch())
}

fn write_unless(
    dir: &Path,
    rendered: &[Rendered],
    plan: &Plan,
    prune: bool,
    interrupt: &Interrupt,
) -> Result<()> {
    let changed: BTreeSet<&str> = plan.changed.iter().map(String::as_str).collect();
    let mut staged: Vec<(PathBuf, PathBuf)> = Vec::new();
    let mut made: Vec<PathBuf> = Vec::new();
    let undo = |staged: &[(PathBuf, PathBuf)], made: &[PathBuf]| {
        for (tmp, _) in staged {
            let _ = fs::remove_file(tmp);
        }
        for d in made.iter().rev() {
            let _ = fs::remove_dir(d);
        }
    };
    for r in rendered
        .iter()
        .filter(|r| changed.contains(r.output.as_str()))
    {
        if let Some(signal) = interrupt.signal() {
            undo(&staged, &made);
            return Err(Error::Interrupted(signal));
        }
        let path = dir.join(&r.output);
        let parent = path.parent().unwrap_or(dir).to_path_buf();
        let missing: Vec<PathBuf> = parent
            .ancestors()
            .take_while(|a| !a.exists())
            .map(Path::to_path_buf)
            .collect();
        if let Err(e) = fs::create_dir_all(&parent) {
            undo(&staged, &made);
            return Err(Error::io(&parent, e));
        }
        made.extend(missing.into_iter().rev());
        let tmp = parent.join(format!(
            ".{}.tagsmith-{}",
            file_name(&path),
            std::process::id()
        ));
        if let Err(e) = fs::write(&tmp, &r.bytes) {
            let _ = fs::remove_file(&tmp);
            undo(&staged, &made);
            return Err(Error::io(&path, e));
        }
        staged.push((tmp, path));
    }
    if let Some(signal) = interrupt.signal() {
        undo(&staged, &made);
        return Err(Error::Interrupted(signal));
    }
    for (i, (tmp, path)) in staged.iter().enumerate() {
        if let Err(e) = fs::rename(tmp, path) {
            undo(&staged[i..], &[]);
            return Err(Error::io(path, e));
        }
    }
    if prune {
        for rel in &plan.stale {
            let path = dir.join(rel);
            fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
        }
    }
    match interrupt.signal() {
        Some(signal) => Err(Error::Interrupted(signal)),
        None => Ok(()),
    }
}

/// SIGINT and SIGTERM noted instead of ending the process, while alive.
struct Interrupt {
    got: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    ids: Vec<signal_hook::SigId>,
}

impl Interrupt {
    fn catch() -> Interrupt {
        let got = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let ids = [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM]
            .into_iter()
            .filter_map(|sig| {
                signal_hook::flag::register_usize(sig, got.clone(), sig as usize).ok()
            })
            .collect();
        Interrupt { got, ids }
    }

    fn signal(&self) -> Option<i32> {
        match self.got.load(std::sync::atomic::Ordering::SeqCst) {
            0 => None,
            s => Some(s as i32),
        }
    }
}

impl Drop for Interrupt {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `tagsmith render`.
pub fn run(project: &Project, options: Options, shell: &Shell) -> Result<RenderReport> {
    let paths = match (options.paths.is_empty(), &project.config.templates) {
        (false, _) => options.paths,
        (true, Some(default)) => vec![default.clone()],
        (true, None) => {
            return Err(Error::user(format!(
                "no templates given: pass PATH or set `templates` in {}",
                Shown(&project.config.path)
            )));
        }
    };
    let (templates, mut errors) = load(collect(&paths)?)?;
    let services = &project.config.services;
    let mut wanted = BTreeSet::new();
    for (t, a) in actions(&templates) {
        if services.contains_key(&a.argument) {
            wanted.insert(a.argument.clone());
        } else {
            errors.push(Error::at(
                &t.source,
                a.line as u64,
                a.column as u64,
                format!(
                    "unknown service \"{}\"{}",
                    a.argument,
                    Suggestion::closest(&a.argument, services.keys().map(String::as_str))
                ),
            ));
        }
    }
    if !errors.is_empty() {
        // Sorted by file, then place, whatever check found them.
        errors.sort_by_key(|e| match e {
            Error::Located { at, .. } => (at.path.clone(), at.line, at.column),
            _ => Default::default(),
        });
        return Err(Error::many(errors, "nothing written"));
    }
    let wanted: Vec<String> = wanted.into_iter().collect();
    let hashed = project.hash(&project.select(&wanted)?)?;
    let pinned: BTreeSet<&str> = actions(&templates)
        .filter(|(_, a)| a.function.needs_digest())
        .map(|(_, a)| a.argument.as_str())
        .collect();
    let digests = match &options.report {
        _ if pinned.is_empty() => Default::default(),
        Some(file) => digests_from_report(file, &hashed)?,
        None => digests_from_registry(project, &hashed, &pinned)?,
    };
    let rendered = render_all(&templates, |a| {
        let h = &hashed[&a.argument];
        let digest = match digests.get(&a.argument) {
            Some(Some(d)) => Some(d.as_str()),
            _ if !a.function.needs_digest() => None,
            _ => {
                return Err(format!(
                    "no digest for \"{}\": {} is not in the registry{}; run `tagsmith build --push` first",
                    a.argument,
                    h.image(),
                    if options.report.is_some() {
                        " according to the report"
                    } else {
                        ""
                    }
                ));
            }
        };
        Ok(a.function.evaluate(&h.image(), digest))
    })?;
    let Some(dir) = options.output else {
        return Ok(RenderReport::Stream(stream(&rendered)));
    };
    let plan = plan(&dir, &rendered)?;
    if options.check {
        return Ok(RenderReport::Checked { dir, plan });
    }
    write(&dir, &rendered, &plan, options.prune)?;
    for f in &plan.stale {
        let verb = if options.prune {
            "removed stale"
        } else {
            "stale (no template produces it; --prune removes it)"
        };
        shell.line(format!("{verb}: {}", Shown(&dir.join(f))));
    }
    shell.line(format!(
        "rendered {} files into {} ({} changed)",
        rendered.len(),
        Shown(&dir),
        plan.changed.len()
    ));
    Ok(RenderReport::Written)
}

impl Report for RenderReport {
    fn stdout(&self) -> Vec<u8> {
        match self {
            RenderReport::Stream(bytes) => bytes.clone(),
            _ => Vec::new(),
        }
    }

    fn outcome(&self) -> Result<()> {
        let RenderReport::Checked { dir, plan } = self else {
            return Ok(());
        };
        let problems: Vec<Error> = plan
            .changed
            .iter()
            .map(|f| Error::User(format!("differs: {}", Shown(&dir.join(f)))))
            .chain(plan.stale.iter().map(|f| {
                Error::User(format!(
                    "stale:   {} (no template produces it)",
                    Shown(&dir.join(f))
                ))
            }))
            .collect();
        if problems.is_empty() {
            return Ok(());
        }
        let outcome = format!(
            "{} is not up to date: run `tagsmith render -o {}`",
            Shown(dir),
            Shown(dir)
        );
        Err(match problems.len() {
            1 => Error::Many { problems, outcome },
            _ => Error::many(problems, outcome),
        })
    }
}

/// Digests from the registry, for the services whose actions need one.
fn digests_from_registry(
    project: &Project,
    hashed: &BTreeMap<String, Hashed>,
    wanted: &BTreeSet<&str>,
) -> Result<BTreeMap<String, Option<String>>> {
    let registry = Registry::for_hosts(
        wanted.iter().map(|n| hashed[*n].repository.host()),
        &project.config.insecure_registries,
        project.config.retry_deadline,
    )?;
    super::runtime(1)?.block_on(async {
        let lookups = wanted.iter().map(|name| {
            let registry = &registry;
            async move {
                let digest = registry.digest(&hashed[*name].image()).await?;
                Ok::<_, Error>((name.to_string(), digest))
            }
        });
        futures_util::future::join_all(lookups)
            .await
            .into_iter()
            .collect()
    })
}

/// Digests from a `build --report` file, for the services whose tag in the
/// report is still the current one.
pub(crate) fn digests_from_report(
    file: &Path,
    hashed: &BTreeMap<String, Hashed>,
) -> Result<BTreeMap<String, Option<String>>> {
    #[derive(serde::Deserialize)]
    struct Report {
        services: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        name: String,
        tag: String,
        digest: Option<String>,
    }
    let report: Report = read_json(file, "a `build --report` file")?;
    Ok(report
        .services
        .into_iter()
        .filter(|s| hashed.get(&s.name).is_some_and(|h| h.tag == s.tag))
        .map(|s| (s.name, s.digest))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interrupt_before_the_renames_leaves_the_directory_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        fs::create_dir(&out).unwrap();
        fs::write(out.join("a.yaml"), "old\n").unwrap();
        let rendered = vec![
            Rendered {
                output: "a.yaml".into(),
                bytes: b"new\n".to_vec(),
            },
            Rendered {
                output: "deep/er/b.yaml".into(),
                bytes: b"b\n".to_vec(),
            },
        ];
        let plan = plan(&out, &rendered).unwrap();
        let interrupt = Interrupt {
            got: std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(2)),
            ids: Vec::new(),
        };
        let err = write_unless(&out, &rendered, &plan, false, &interrupt).unwrap_err();
        assert_eq!(err.exit_code(), 130);
        let left: Vec<_> = walk_all(&out);
        assert_eq!(left, ["a.yaml"], "no temporary file, no new directory");
        assert_eq!(fs::read_to_string(out.join("a.yaml")).unwrap(), "old\n");
        // Uninterrupted, everything lands.
        let calm = Interrupt {
            got: std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            ids: Vec::new(),
        };
        write_unless(&out, &rendered, &plan, false, &calm).unwrap();
        assert_eq!(walk_all(&out), ["a.yaml", "deep/er/b.yaml"]);
    }

    fn walk_all(dir: &Path) -> Vec<String> {
        let mut found = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    found.push(paths::relative(dir, &p));
                }
            }
        }
        found.sort();
        found
    }
}
