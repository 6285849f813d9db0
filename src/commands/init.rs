//! `init`: write a first tagsmith.yaml from what the repository already
//! has — `skaffold.yaml`, else a compose file, else every Dockerfile found
//! (outside what `.gitignore` ignores). It says what it found, lists what it
//! could not map, and hints where a Dockerfile names another found image by
//! a fixed reference that tagsmith could track.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::{Report, write_atomically};
use crate::error::{Error, Result};
use crate::paths::{self, Shown};
use crate::project::config::{self, FILE_NAME};
use crate::registry::reference::{ImageRef, image_arg, is_component, suggest_component};

pub struct Options {
    /// The repository root (where tagsmith.yaml goes).
    pub root: PathBuf,
    /// Overwrite an existing tagsmith.yaml.
    pub force: bool,
}

/// A service found in the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Found {
    name: String,
    /// Relative to the root, `/`-separated (`.` for the root).
    context: String,
    /// Relative to the context, when not `Dockerfile`.
    dockerfile: Option<String>,
    args: BTreeMap<String, String>,
    target: Option<String>,
    /// The image it is pushed as, if the source names one.
    image: Option<String>,
}

pub struct InitReport {
    lines: Vec<String>,
}

impl Report for InitReport {
    fn stdout(&self) -> Vec<u8> {
        self.lines
            .iter()
            .map(|l| format!("{l}\n"))
            .collect::<String>()
            .into_bytes()
    }
}

pub fn run(options: Options) -> Result<InitReport> {
    let root = &options.root;
    let target = root.join(FILE_NAME);
    if target.exists() && !options.force {
        return Err(Error::file(
            &target,
            "already exists; `tagsmith init --force` replaces it",
        ));
    }
    let mut lines = Vec::new();
    let mut unmapped = Vec::new();
    let (source, found) = if let Some(path) = existing(root, &["skaffold.yaml", "skaffold.yml"]) {
        (path.clone(), from_skaffold(&path, &mut unmapped)?)
    } else if let Some(path) = existing(
        root,
        &[
            "compose.yaml",
            "compose.yml",
            "docker-compose.yml",
            "docker-compose.yaml",
        ],
    ) {
        (path.clone(), from_compose(&path, &mut unmapped)?)
    } else {
        (root.clone(), from_dockerfiles(root)?)
    };
    if found.is_empty() {
        return Err(Error::user(format!(
            "found no service to build in {}: no skaffold.yaml, compose file or Dockerfile",
            Shown(&source)
        )));
    }
    let found = unique_names(found);
    let (registry, placeholder) = common_registry(&found);
    let text = render(&found, &registry, placeholder);
    // What is written must load: a service whose context or Dockerfile is
    // missing is reported now, not on the first `tagsmith tags`.
    config::parse(&target, &text)?;
    write_atomically(&target, text.as_bytes())?;

    lines.push(format!(
        "found {} service{} in {}: {}",
        found.len(),
        if found.len() == 1 { "" } else { "s" },
        Shown(&source),
        found
            .iter()
            .map(|f| f.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    for u in unmapped {
        lines.push(format!("not mapped: {u}"));
    }
    lines.extend(hints(root, &found));
    if placeholder {
        lines.push(format!(
            "set `registry:` in {FILE_NAME}: no common image prefix was found"
        ));
    }
    lines.push(format!("wrote {}", Shown(&target)));
    Ok(InitReport { lines })
}

fn existing(root: &Path, names: &[&str]) -> Option<PathBuf> {
    names.iter().map(|n| root.join(n)).find(|p| p.is_file())
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::io(path, e))
}

#[derive(Deserialize)]
struct Skaffold {
    #[serde(default)]
    build: Option<SkaffoldBuild>,
}

#[derive(Deserialize)]
struct SkaffoldBuild {
    #[serde(default)]
    artifacts: Vec<Artifact>,
}

#[derive(Deserialize)]
struct Artifact {
    image: Spanned<String>,
    context: Option<String>,
    docker: Option<SkaffoldDocker>,
    jib: Option<serde_json::Value>,
    ko: Option<serde_json::Value>,
    buildpacks: Option<serde_json::Value>,
    bazel: Option<serde_json::Value>,
    custom: Option<serde_json::Value>,
    kaniko: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct SkaffoldDocker {
    dockerfile: Option<String>,
    #[serde(rename = "buildArgs", default)]
    build_args: BTreeMap<String, Option<String>>,
    target: Option<String>,
}

/// `build.artifacts[]` of every document of a skaffold.yaml.
fn from_skaffold(path: &Path, unmapped: &mut Vec<String>) -> Result<Vec<Found>> {
    let text = read(path)?;
    let docs: Vec<Skaffold> =
        serde_saphyr::from_multiple(&text).map_err(|e| config::yaml_error(path, &e))?;
    let mut found = Vec::new();
    for artifact in docs
        .into_iter()
        .filter_map(|d| d.build)
        .flat_map(|b| b.artifacts)
    {
        let image = &artifact.image;
        let other = [
            ("jib", artifact.jib.is_some()),
            ("ko", artifact.ko.is_some()),
            ("buildpacks", artifact.buildpacks.is_some()),
            ("bazel", artifact.bazel.is_some()),
            ("custom", artifact.custom.is_some()),
            ("kaniko", artifact.kaniko.is_some()),
        ]
        .into_iter()
        .find(|(_, set)| *set);
        if let Some((builder, _)) = other {
            unmapped.push(format!(
                "{}:{}: artifact {} uses the {builder} builder; tagsmith builds Dockerfiles only",
                Shown(path),
                image.referenced.line(),
                image.value
            ));
            continue;
        }
        let docker = artifact.docker.unwrap_or(SkaffoldDocker {
            dockerfile: None,
            build_args: BTreeMap::new(),
            target: None,
        });
        let mut args = BTreeMap::new();
        for (k, v) in docker.build_args {
            match v {
                Some(v) => {
                    args.insert(k, v);
                }
                None => unmapped.push(format!(
                    "{}: build arg {k} of {} takes its value from the environment; give it one in tagsmith.yaml",
                    Shown(path),
                    image.value
                )),
            }
        }
        found.push(Found {
            name: last_segment(&image.value),
            context: clean_context(artifact.context.as_deref().unwrap_or(".")),
            dockerfile: docker.dockerfile.filter(|d| d != "Dockerfile"),
            args,
            target: docker.target,
            image: Some(image.value.clone()),
        });
    }
    Ok(found)
}

#[derive(Deserialize)]
struct Compose {
    #[serde(default)]
    services: BTreeMap<String, ComposeService>,
}

#[derive(Deserialize)]
struct ComposeService {
    image: Option<String>,
    build: Option<ComposeBuild>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ComposeBuild {
    Context(String),
    Full {
        context: Option<String>,
        dockerfile: Option<String>,
        #[serde(default)]
        args: ComposeArgs,
        target: Option<String>,
    },
}

#[derive(Deserialize, Default)]
#[serde(untagged)]
enum ComposeArgs {
    Map(BTreeMap<String, Option<String>>),
    List(Vec<String>),
    #[default]
    None,
}

/// `services.*.build` of a compose file; services without `build` are
/// images run as they are, not built.
fn from_compose(path: &Path, unmapped: &mut Vec<String>) -> Result<Vec<Found>> {
    let text = read(path)?;
    let compose: Compose =
        serde_saphyr::from_str(&text).map_err(|e| config::yaml_error(path, &e))?;
    let mut found = Vec::new();
    for (name, service) in compose.services {
        let Some(build) = service.build else {
            continue;
        };
        let (context, dockerfile, raw_args, target) = match build {
            ComposeBuild::Context(c) => (c, None, ComposeArgs::None, None),
            ComposeBuild::Full {
                context,
                dockerfile,
                args,
                target,
            } => (
                context.unwrap_or_else(|| ".".into()),
                dockerfile,
                args,
                target,
            ),
        };
        let mut args = BTreeMap::new();
        let pairs: Vec<(String, Option<String>)> = match raw_args {
            ComposeArgs::Map(m) => m.into_iter().collect(),
            ComposeArgs::List(l) => l
                .into_iter()
                .map(|kv| match kv.split_once('=') {
                    Some((k, v)) => (k.to_string(), Some(v.to_string())),
                    None => (kv, None),
                })
                .collect(),
            ComposeArgs::None => Vec::new(),
        };
        for (k, v) in pairs {
            match v {
                Some(v) => {
                    args.insert(k, v);
                }
                None => unmapped.push(format!(
                    "{}: build arg {k} of {name} takes its value from the environment; give it one in tagsmith.yaml",
                    Shown(path)
                )),
            }
        }
        if context.contains("://") {
            unmapped.push(format!(
                "{}: {name} builds from a remote context ({context})",
                Shown(path)
            ));
            continue;
        }
        found.push(Found {
            name,
            context: clean_context(&context),
            dockerfile: dockerfile.filter(|d| d != "Dockerfile"),
            args,
            target,
            image: service.image,
        });
    }
    Ok(found)
}

/// Every `Dockerfile` and `*.Dockerfile` below the root that git would
/// not ignore; each directory's context is the Dockerfile's directory.
fn from_dockerfiles(root: &Path) -> Result<Vec<Found>> {
    let mut found = Vec::new();
    let walk = ignore::WalkBuilder::new(root)
        .hidden(true)
        .git_ignore(true)
        .require_git(false)
        .sort_by_file_name(|a, b| a.cmp(b))
        .build();
    for entry in walk {
        let entry = entry.map_err(|e| Error::user(format!("reading {}: {e}", Shown(root))))?;
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        let file = entry.file_name().to_string_lossy().into_owned();
        let stem = if file == "Dockerfile" {
            None
        } else if let Some(s) = file
            .strip_suffix(".Dockerfile")
            .or_else(|| file.strip_suffix(".dockerfile"))
        {
            Some(s.to_string())
        } else {
            continue;
        };
        let dir = entry.path().parent().unwrap_or(root);
        let context = paths::relative(root, dir);
        let dir_name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "app".into());
        found.push(Found {
            name: stem.clone().unwrap_or(dir_name),
            context: if context.is_empty() {
                ".".into()
            } else {
                context
            },
            dockerfile: stem.map(|_| file),
            args: BTreeMap::new(),
            target: None,
            image: None,
        });
    }
    Ok(found)
}

fn clean_context(context: &str) -> String {
    paths::clean(context)
}

fn last_segment(image: &str) -> String {
    let without_tag = ImageRef::parse(image)
        .map(|r| r.repository.path().to_string())
        .unwrap_or_else(|_| image.to_string());
    without_tag
        .rsplit('/')
        .next()
        .unwrap_or(&without_tag)
        .to_string()
}

/// Valid, distinct service names (`api`, `api-2`, …).
fn unique_names(found: Vec<Found>) -> Vec<Found> {
    let mut seen: BTreeSet<String> = BTreeSet::new();
    found
        .into_iter()
        .map(|mut f| {
            let mut name = if is_component(&f.name) {
                f.name.clone()
            } else {
                suggest_component(&f.name)
            };
            if name.is_empty() {
                name = "app".into();
            }
            let base = name.clone();
            let mut n = 2;
            while !seen.insert(name.clone()) {
                name = format!("{base}-{n}");
                n += 1;
            }
            f.name = name;
            f
        })
        .collect()
}

/// The registry prefix all named images share (`gcr.io/team`), if any.
fn common_registry(found: &[Found]) -> (String, bool) {
    let prefixes: Vec<String> = found
        .iter()
        .filter_map(|f| f.image.as_deref())
        .filter_map(|i| ImageRef::parse(i).ok())
        .map(|r| {
            let repo = r.repository.to_string();
            repo.rsplit_once('/')
                .map(|(p, _)| p.to_string())
                .unwrap_or(repo)
        })
        .collect();
    let Some(first) = prefixes.first() else {
        return ("registry.example.com/change-me".into(), true);
    };
    let mut common: Vec<&str> = first.split('/').collect();
    for p in &prefixes[1..] {
        let parts: Vec<&str> = p.split('/').collect();
        let same = common
            .iter()
            .zip(&parts)
            .take_while(|(a, b)| a == b)
            .count();
        common.truncate(same);
    }
    if common.is_empty() || prefixes.len() < found.len() {
        return ("registry.example.com/change-me".into(), true);
    }
    (common.join("/"), false)
}

fn render(found: &[Found], registry: &str, placeholder: bool) -> String {
    let mut s = String::from("# Written by `tagsmith init`. See the README for every key.\n");
    if placeholder {
        s.push_str("# CHANGE ME: the registry (and path) every image is pushed under.\n");
    }
    let _ = writeln!(s, "registry: {registry}\nservices:");
    for f in found {
        let _ = writeln!(s, "  {}:\n    context: {}", f.name, quote(&f.context));
        if let Some(d) = &f.dockerfile {
            let _ = writeln!(s, "    dockerfile: {}", quote(d));
        }
        if let Some(image) = f.image.as_deref().and_then(|i| ImageRef::parse(i).ok()) {
            let repo = image.repository.to_string();
            let path = repo.strip_prefix(&format!("{registry}/")).unwrap_or(&repo);
            if path != f.name && !placeholder {
                let _ = writeln!(s, "    repository: {path}");
            }
        }
        if !f.args.is_empty() {
            s.push_str("    args:\n");
            for (k, v) in &f.args {
                let _ = writeln!(s, "      {k}: {}", quote(v));
            }
        }
        if let Some(t) = &f.target {
            let _ = writeln!(s, "    target: {}", quote(t));
        }
    }
    s
}

/// A YAML double-quoted string.
fn quote(s: &str) -> String {
    serde_json::to_string(s).expect("a string")
}

/// Where a Dockerfile names another found service's image by a fixed
/// reference, say how tagsmith could track it instead.
fn hints(root: &Path, found: &[Found]) -> Vec<String> {
    let by_repo: BTreeMap<String, &str> = found
        .iter()
        .filter_map(|f| {
            Some((
                ImageRef::parse(f.image.as_deref()?)
                    .ok()?
                    .repository
                    .to_string(),
                f.name.as_str(),
            ))
        })
        .collect();
    let mut out = Vec::new();
    for f in found {
        let path = root
            .join(&f.context)
            .join(f.dockerfile.as_deref().unwrap_or("Dockerfile"));
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let Ok(scan) = crate::dockerfile::scan(&text, &f.args, &BTreeSet::new()) else {
            continue;
        };
        for r in scan.refs.iter().filter(|r| !r.stage) {
            let Ok(image) = ImageRef::parse(&r.expanded) else {
                continue;
            };
            let Some(base) = by_repo.get(&image.repository.to_string()) else {
                continue;
            };
            if *base == f.name {
                continue;
            }
            let arg = image_arg(base);
            out.push(format!(
                "hint: {}:{}: `{}` names the image of service {base}; write `ARG {arg}` and `FROM ${{{arg}}}` (or `--from=${{{arg}}}`) and tagsmith will build {base} first and re-tag {} when it changes",
                Shown(&path),
                r.line,
                r.raw,
                f.name
            ));
        }
    }
    out
}
