//! `explain`: every input of a tag, as text or JSON; the difference between
//! two such records — the answer to "why did this rebuild?"; and, with
//! `--path`, why a file is or is not in the build context.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Report, read_json};
use crate::context::{Selection, Why};
use crate::error::{Error, Result};
use crate::paths;
use crate::project::{Hashed, Project, Service};

pub struct Options {
    pub service: String,
    pub json: bool,
    /// What to compare with.
    pub against: Option<Against>,
    /// Paths to explain (relative to `cwd` or to the context).
    pub paths: Vec<PathBuf>,
    pub cwd: PathBuf,
}

/// The other side of `explain --against`.
pub enum Against {
    /// An earlier `explain --json` output.
    File(PathBuf),
    /// The same service as a commit had it (read from git).
    Project(Box<Project>),
}

pub enum ExplainReport {
    Inputs {
        explain: Box<Explain>,
        json: bool,
    },
    Diff {
        old: Box<Explain>,
        new: Box<Explain>,
    },
    Paths {
        paths: Vec<PathWhy>,
        json: bool,
    },
}

pub fn run(project: &Project, options: Options) -> Result<ExplainReport> {
    let old = match &options.against {
        Some(Against::File(file)) => {
            Some(read_json::<Explain>(file, "an `explain --json` output")?)
        }
        Some(Against::Project(then)) => {
            let name = &options.service;
            if !then.config.services.contains_key(name) {
                return Err(Error::user(format!(
                    "service \"{name}\" does not exist{}",
                    then.tree.at()
                )));
            }
            let hashed = then.hash_with_entries(&then.select(std::slice::from_ref(name))?)?;
            Some(Explain::new(&then.config.services[name], &hashed[name]))
        }
        None => None,
    };
    let order = project.select(std::slice::from_ref(&options.service))?;
    let hashed = project.hash_with_entries(&order)?;
    let service = &project.config.services[&options.service];
    let hashed = &hashed[&options.service];
    if !options.paths.is_empty() {
        let selection = Selection::for_service(
            &service.context,
            &service.dockerfile,
            service.dockerfile_path_in_context(),
        )?;
        let paths = options
            .paths
            .iter()
            .map(|p| why(service, hashed, &selection, &options.cwd, p))
            .collect();
        return Ok(ExplainReport::Paths {
            paths,
            json: options.json,
        });
    }
    let new = Box::new(Explain::new(service, hashed));
    Ok(match old {
        Some(old) => ExplainReport::Diff {
            old: Box::new(old),
            new,
        },
        None => ExplainReport::Inputs {
            explain: new,
            json: options.json,
        },
    })
}

impl Report for ExplainReport {
    fn stdout(&self) -> Vec<u8> {
        match self {
            ExplainReport::Inputs {
                explain,
                json: true,
            } => serde_json::to_string_pretty(explain).expect("serializable") + "\n",
            ExplainReport::Inputs { explain, .. } => explain.to_text(),
            ExplainReport::Diff { old, new } => diff_text(old, new),
            ExplainReport::Paths { paths, json: true } => {
                #[derive(Serialize)]
                struct Doc<'a> {
                    version: u32,
                    paths: &'a [PathWhy],
                }
                serde_json::to_string_pretty(&Doc { version: 1, paths }).expect("serializable")
                    + "\n"
            }
            ExplainReport::Paths { paths, .. } => paths
                .iter()
                .map(|p| format!("{}: {}\n", p.path, p.reason))
                .collect(),
        }
        .into_bytes()
    }
}

/// The answer for one `--path`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PathWhy {
    /// As given on the command line.
    pub path: String,
    /// Whether the path is in the build context (and so in the tag).
    pub included: bool,
    pub reason: String,
    /// The ignore file, line and pattern that decided, if one did.
    pub file: Option<String>,
    pub line: Option<usize>,
    pub pattern: Option<String>,
}

/// Resolves `given` against the working directory when it exists there
/// (or names a place inside the context), else against the context.
fn resolve(service: &Service, cwd: &Path, given: &Path) -> Option<String> {
    let context = &service.context;
    let from_cwd = PathBuf::from(paths::clean(&cwd.join(given).to_string_lossy()));
    let in_context = |p: &Path| {
        p.strip_prefix(context)
            .ok()
            .map(|r| r.to_string_lossy().into_owned())
    };
    if std::fs::symlink_metadata(&from_cwd).is_ok() || from_cwd.starts_with(context) {
        return in_context(&from_cwd);
    }
    let from_context = paths::clean(&given.to_string_lossy());
    (!from_context.starts_with("..") && !given.is_absolute()).then_some(from_context)
}

fn why(
    service: &Service,
    hashed: &Hashed,
    selection: &Selection,
    cwd: &Path,
    given: &Path,
) -> PathWhy {
    let mut out = PathWhy {
        path: given.display().to_string(),
        included: false,
        reason: String::new(),
        file: None,
        line: None,
        pattern: None,
    };
    let rel = match resolve(service, cwd, given) {
        Some(rel) if !rel.is_empty() && rel != "." => rel,
        _ => {
            out.reason = "not in the context".into();
            return out;
        }
    };
    let ignore_file = selection
        .ignore_file
        .as_deref()
        .map(|f| paths::Shown(f).to_string())
        .unwrap_or_default();
    let mut decided_by = |i: usize| {
        let p = selection.matcher.pattern(i);
        out.file = Some(ignore_file.clone());
        out.line = Some(p.line());
        out.pattern = Some(format!(
            "{}{}",
            if p.is_exception() { "!" } else { "" },
            p.text()
        ));
        format!(
            "{ignore_file}:{} ({})",
            p.line(),
            out.pattern.as_deref().unwrap_or_default()
        )
    };
    let (included, reason) = match selection.why(&rel) {
        Why::Included => (true, "included".to_string()),
        Why::AlwaysSent => (true, "always sent".to_string()),
        Why::ReIncluded(i) => (true, format!("re-included by {}", decided_by(i))),
        Why::Excluded(i) => (false, format!("excluded by {}", decided_by(i))),
        Why::ExcludedDirectory { dir, by } => (
            false,
            format!(
                "excluded: directory {dir}/ is excluded by {}",
                decided_by(by)
            ),
        ),
    };
    let exists = std::fs::symlink_metadata(service.context.join(&rel)).is_ok();
    // An excluded directory that holds re-included entries is sent too.
    let sent = hashed
        .entries
        .binary_search_by(|e| e.path.as_str().cmp(&rel))
        .is_ok();
    out.included = sent;
    out.reason = if !exists {
        format!("not in the context: no such file or directory (if there were one: {reason})")
    } else if sent && !included {
        format!("included: it holds re-included entries, though {reason}")
    } else {
        reason
    };
    out
}

/// The text of `explain --against`: a header, then one line per difference.
fn diff_text(old: &Explain, new: &Explain) -> String {
    let lines = diff(old, new);
    let service = &new.service;
    let mut s = if old.tag == new.tag {
        format!("{service}: tag unchanged ({})\n", new.tag)
    } else {
        format!("{service}: tag {} -> {}\n", old.tag, new.tag)
    };
    if lines.is_empty() && old.tag != new.tag {
        s.push_str("  no input differs: the tag scheme or tag_length changed\n");
    }
    for l in lines {
        let _ = writeln!(s, "  {l}");
    }
    s
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Explain {
    pub version: u32,
    pub service: String,
    pub tag: String,
    #[serde(default)]
    pub image: Option<String>,
    pub inputs: Vec<Input>,
    pub dockerfile: Dockerfile,
    #[serde(default)]
    pub ignore_file: Option<String>,
    pub args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub platform: Option<String>,
    pub depends_on: Vec<DepTag>,
    /// External base images and their locked digests (none: unpinned).
    #[serde(default)]
    pub bases: Vec<BaseInput>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BaseInput {
    pub reference: String,
    pub digest: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Input {
    pub path: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub executable: bool,
    pub blake3: Option<String>,
    pub target: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Dockerfile {
    pub path: String,
    pub blake3: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DepTag {
    pub name: String,
    pub tag: String,
}

impl Explain {
    pub fn new(service: &Service, hashed: &Hashed) -> Explain {
        Explain {
            version: 1,
            service: hashed.name.clone(),
            tag: hashed.tag.clone(),
            image: Some(hashed.image().to_string()),
            inputs: hashed
                .entries
                .iter()
                .map(|e| Input {
                    path: e.path.clone(),
                    kind: e.kind.as_str().to_string(),
                    executable: e.executable,
                    blake3: e
                        .digest
                        .map(|d| blake3::Hash::from_bytes(d).to_hex().to_string()),
                    target: e.target.clone(),
                })
                .collect(),
            dockerfile: Dockerfile {
                path: hashed.dockerfile_path.clone(),
                blake3: hashed.dockerfile_digest.to_hex().to_string(),
            },
            ignore_file: hashed.ignore_file.clone(),
            args: service.args.clone(),
            target: service.target.clone(),
            platform: service.platform.clone(),
            depends_on: hashed
                .deps
                .iter()
                .map(|d| DepTag {
                    name: d.name.clone(),
                    tag: d.tag.clone(),
                })
                .collect(),
            bases: hashed
                .bases
                .iter()
                .map(|b| BaseInput {
                    reference: b.reference.clone(),
                    digest: b.digest.clone(),
                })
                .collect(),
        }
    }

    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let none = || "-".to_string();
        let _ = writeln!(s, "service     {}", self.service);
        let _ = writeln!(s, "tag         {}", self.tag);
        if let Some(image) = &self.image {
            let _ = writeln!(s, "image       {image}");
        }
        let _ = writeln!(
            s,
            "dockerfile  {} (blake3 {})",
            self.dockerfile.path,
            short(&self.dockerfile.blake3)
        );
        let _ = writeln!(
            s,
            "ignore file {}",
            self.ignore_file.clone().unwrap_or_else(none)
        );
        let _ = writeln!(
            s,
            "target      {}",
            self.target.clone().unwrap_or_else(none)
        );
        let _ = writeln!(
            s,
            "platform    {}",
            self.platform.clone().unwrap_or_else(none)
        );
        let _ = writeln!(s, "{}", header("args", self.args.is_empty()));
        for (k, v) in &self.args {
            let _ = writeln!(s, "  {k}={v}");
        }
        let _ = writeln!(s, "{}", header("depends on", self.depends_on.is_empty()));
        for d in &self.depends_on {
            let _ = writeln!(s, "  {} {}", d.name, d.tag);
        }
        if !self.bases.is_empty() {
            let _ = writeln!(s, "base images");
            for b in &self.bases {
                let _ = writeln!(
                    s,
                    "  {} {}",
                    b.reference,
                    b.digest.as_deref().unwrap_or("unpinned (no tagsmith.lock)")
                );
            }
        }
        let _ = writeln!(s, "inputs      {} entries", self.inputs.len());
        for i in &self.inputs {
            let mode = if i.executable { "x" } else { "-" };
            let what = match (&i.blake3, &i.target) {
                (_, Some(t)) => format!("-> {t}"),
                (Some(h), None) => short(h).to_string(),
                (None, None) => String::new(),
            };
            let _ = writeln!(s, "  {:<7} {mode} {:<16} {}", i.kind, what, i.path);
        }
        s
    }
}

/// A section title, with `-` when the section is empty.
fn header(title: &str, empty: bool) -> String {
    if empty {
        format!("{title:<11} -")
    } else {
        title.to_string()
    }
}

fn short(hex: &str) -> &str {
    &hex[..hex.len().min(16)]
}

/// What differs between `old` and `new`, one line per difference.
pub fn diff<'a>(old: &'a Explain, new: &'a Explain) -> Vec<String> {
    let mut out = Vec::new();
    if old.service != new.service {
        out.push(format!(
            "service: {} -> {} (comparing different services)",
            old.service, new.service
        ));
    }
    if old.dockerfile.path != new.dockerfile.path {
        out.push(format!(
            "dockerfile: moved {} -> {}",
            old.dockerfile.path, new.dockerfile.path
        ));
    }
    if old.dockerfile.blake3 != new.dockerfile.blake3 {
        out.push(format!(
            "dockerfile: content of {} changed",
            new.dockerfile.path
        ));
    }
    for (what, a, b) in [
        ("target", &old.target, &new.target),
        ("platform", &old.platform, &new.platform),
    ] {
        if a != b {
            out.push(format!(
                "{what}: {} -> {}",
                show(a.as_deref()),
                show(b.as_deref())
            ));
        }
    }
    let args_old: BTreeMap<&str, &str> = old
        .args
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let args_new: BTreeMap<&str, &str> = new
        .args
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    changes(&args_old, &args_new, |k, a, b| {
        out.push(format!("arg {k}: {} -> {}", show(a), show(b)))
    });
    let bases = |e: &'a Explain| -> BTreeMap<&'a str, &'a str> {
        e.bases
            .iter()
            .map(|b| {
                (
                    b.reference.as_str(),
                    b.digest.as_deref().unwrap_or("unpinned"),
                )
            })
            .collect()
    };
    changes(&bases(old), &bases(new), |k, a, b| {
        out.push(format!("base image {k}: digest {} -> {}", show(a), show(b)))
    });
    let deps_old: BTreeMap<&str, &str> = old
        .depends_on
        .iter()
        .map(|d| (d.name.as_str(), d.tag.as_str()))
        .collect();
    let deps_new: BTreeMap<&str, &str> = new
        .depends_on
        .iter()
        .map(|d| (d.name.as_str(), d.tag.as_str()))
        .collect();
    changes(&deps_old, &deps_new, |k, a, b| {
        out.push(format!("dependency {k}: tag {} -> {}", show(a), show(b)))
    });
    let in_old: BTreeMap<&str, &Input> = old.inputs.iter().map(|i| (i.path.as_str(), i)).collect();
    let in_new: BTreeMap<&str, &Input> = new.inputs.iter().map(|i| (i.path.as_str(), i)).collect();
    changes(&in_old, &in_new, |path, a, b| {
        out.push(match (a, b) {
            (None, Some(b)) => format!("added    {path} ({})", b.kind),
            (Some(a), None) => format!("removed  {path} ({})", a.kind),
            (Some(a), Some(b)) => format!("changed  {path} ({})", input_change(a, b)),
            (None, None) => unreachable!(),
        })
    });
    out
}

fn input_change(a: &Input, b: &Input) -> String {
    let mut what = Vec::new();
    if a.kind != b.kind {
        what.push(format!("{} -> {}", a.kind, b.kind));
    } else if a.target != b.target {
        what.push(format!(
            "link target {} -> {}",
            show(a.target.as_deref()),
            show(b.target.as_deref())
        ));
    } else if a.blake3 != b.blake3 {
        what.push("content".to_string());
    }
    if a.executable != b.executable {
        what.push(
            if b.executable {
                "became executable"
            } else {
                "no longer executable"
            }
            .to_string(),
        );
    }
    what.join(", ")
}

/// Calls `f(key, old, new)` for every key whose value differs.
fn changes<'a, V: PartialEq + Copy>(
    old: &BTreeMap<&'a str, V>,
    new: &BTreeMap<&'a str, V>,
    mut f: impl FnMut(&str, Option<V>, Option<V>),
) {
    let keys: std::collections::BTreeSet<&&str> = old.keys().chain(new.keys()).collect();
    for k in keys {
        let (a, b) = (old.get(*k).copied(), new.get(*k).copied());
        if a != b {
            f(k, a, b);
        }
    }
}

fn show(v: Option<&str>) -> String {
    match v {
        None => "(none)".into(),
        Some(v) => format!("\"{v}\""),
    }
}
