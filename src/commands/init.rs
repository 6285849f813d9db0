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

/// A line and column in the source file.
type Pos = (u64, u64);

fn pos(l: &serde_saphyr::Location) -> Pos {
    (l.line(), l.column())
}

/// A service found in the repository.
#[derive(Debug, Clone, Default)]
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
    /// Where the source defines it, names its context and its Dockerfile
    /// (none for a Dockerfile found by walking).
    at: Option<Pos>,
    context_at: Option<Pos>,
    dockerfile_at: Option<Pos>,
    /// Images to build first (skaffold's `requires`), each with the build
    /// arg that carries its reference.
    requires: Vec<(String, Option<String>)>,
    /// The services of `requires`, once names are final.
    depends_on: Vec<String>,
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
    // A context or Dockerfile the source names but the repository lacks is
    // the source's error, located there (tagsmith.yaml is not written yet).
    check_paths(root, &source, &found)?;
    let mut found = unique_names(found);
    let required = resolve_requires(root, &source, &mut found, &mut unmapped);
    let (registry, placeholder) = common_registry(&found);
    let text = render(&found, &registry, placeholder);
    // What is written must load.
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
    lines.extend(required);
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

/// `file:line` of a place in the source, for messages.
fn place(source: &Path, at: Option<Pos>) -> String {
    match at {
        Some((line, _)) => format!("{}:{line}", Shown(source)),
        None => Shown(source).to_string(),
    }
}

/// Every context is a directory and every Dockerfile a file.
fn check_paths(root: &Path, source: &Path, found: &[Found]) -> Result<()> {
    let error = |at: Option<Pos>, msg: String| match at {
        Some((line, column)) => Error::at(source, line, column, msg),
        None => Error::file(source, msg),
    };
    for f in found {
        let what = f.image.as_deref().unwrap_or(&f.name);
        if f.context == ".." || f.context.starts_with("../") || f.context.starts_with('/') {
            return Err(error(
                f.context_at.or(f.at),
                format!(
                    "the context \"{}\" of {what} is outside the repository (the directory tagsmith.yaml goes in)",
                    f.context
                ),
            ));
        }
        let context = root.join(&f.context);
        if !context.is_dir() {
            return Err(error(
                f.context_at.or(f.at),
                format!("the context \"{}\" of {what} is not a directory", f.context),
            ));
        }
        let dockerfile = f.dockerfile.as_deref().unwrap_or("Dockerfile");
        if !context.join(dockerfile).is_file() {
            return Err(error(
                f.dockerfile_at.or(f.at),
                format!(
                    "the Dockerfile {} of {what} does not exist",
                    Shown(&context.join(dockerfile))
                ),
            ));
        }
    }
    Ok(())
}

/// Turns each `requires` image into a dependency on the service that
/// builds it; returns hints where the build arg skaffold passes is not the
/// one tagsmith passes.
fn resolve_requires(
    root: &Path,
    source: &Path,
    found: &mut [Found],
    unmapped: &mut Vec<String>,
) -> Vec<String> {
    let by_repo: BTreeMap<String, String> = found
        .iter()
        .filter_map(|f| Some((repository_of(f.image.as_deref()?)?, f.name.clone())))
        .collect();
    let mut hints = Vec::new();
    for f in found.iter_mut() {
        for (image, alias) in std::mem::take(&mut f.requires) {
            let Some(base) = repository_of(&image).and_then(|r| by_repo.get(&r)) else {
                unmapped.push(format!(
                    "{}: {} requires {image}, which is not built here; build it first yourself",
                    place(source, f.at),
                    f.name
                ));
                continue;
            };
            if !f.depends_on.contains(base) {
                f.depends_on.push(base.clone());
            }
            let arg = image_arg(base);
            match alias {
                Some(alias) if alias != arg => hints.push(format!(
                    "hint: {}: {} gets the image of {base} as build arg {alias}; tagsmith passes it as {arg} (and the tag as {}): write `ARG {arg}` and `FROM ${{{arg}}}` in {}",
                    place(source, f.at),
                    f.name,
                    crate::registry::reference::tag_arg(base),
                    Shown(
                        &root
                            .join(&f.context)
                            .join(f.dockerfile.as_deref().unwrap_or("Dockerfile"))
                    )
                )),
                _ => {}
            }
        }
    }
    hints
}

fn repository_of(image: &str) -> Option<String> {
    ImageRef::parse(image)
        .ok()
        .map(|r| r.repository.to_string())
}

/// A compose value with a variable that compose fills in from the
/// environment (`${VAR}`, `$VAR`; `$$` is a literal `$`).
fn interpolated(value: &str) -> bool {
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c == '$' {
            match chars.next() {
                Some('{') => return true,
                Some(c) if c == '_' || c.is_ascii_alphabetic() => return true,
                _ => {}
            }
        }
    }
    false
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
    context: Option<Spanned<String>>,
    docker: Option<SkaffoldDocker>,
    #[serde(default)]
    requires: Vec<SkaffoldRequire>,
    jib: Option<serde_json::Value>,
    ko: Option<serde_json::Value>,
    buildpacks: Option<serde_json::Value>,
    bazel: Option<serde_json::Value>,
    custom: Option<serde_json::Value>,
    kaniko: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct SkaffoldDocker {
    dockerfile: Option<Spanned<String>>,
    #[serde(rename = "buildArgs", default)]
    build_args: BTreeMap<String, Option<String>>,
    target: Option<String>,
}

/// An artifact this one builds on; skaffold passes its reference as the
/// build arg `alias`.
#[derive(Deserialize)]
struct SkaffoldRequire {
    image: String,
    alias: Option<String>,
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
        let at = Some(pos(&image.referenced));
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
                "{}: artifact {} uses the {builder} builder; tagsmith builds Dockerfiles only",
                place(path, at),
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
                Some(v) if v.contains("{{") => unmapped.push(format!(
                    "{}: build arg {k} of {} is a template that skaffold fills in ({v}); give it a fixed value in tagsmith.yaml, or leave it to the Dockerfile's default",
                    place(path, at),
                    image.value
                )),
                Some(v) => {
                    args.insert(k, v);
                }
                None => unmapped.push(format!(
                    "{}: build arg {k} of {} takes its value from the environment; give it one in tagsmith.yaml",
                    place(path, at),
                    image.value
                )),
            }
        }
        found.push(Found {
            name: last_segment(&image.value),
            context: clean_context(artifact.context.as_ref().map_or(".", |c| c.value.as_str())),
            context_at: artifact.context.as_ref().map(|c| pos(&c.referenced)),
            dockerfile_at: docker.dockerfile.as_ref().map(|d| pos(&d.referenced)),
            dockerfile: docker
                .dockerfile
                .map(|d| d.value)
                .filter(|d| d != "Dockerfile"),
            args,
            target: docker.target,
            image: Some(image.value.clone()),
            at,
            requires: artifact
                .requires
                .into_iter()
                .map(|r| (r.image, r.alias))
                .collect(),
            depends_on: Vec::new(),
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
    build: Option<Spanned<ComposeBuild>>,
}

/// `build:` is a context path or a mapping.
#[derive(Default)]
struct ComposeBuild {
    context: Option<String>,
    dockerfile: Option<String>,
    dockerfile_inline: Option<String>,
    args: ComposeArgs,
    target: Option<String>,
}

/// Build args as a mapping (`KEY: value`, `KEY:` for the environment's
/// value) or a list (`KEY=value`, `KEY`).
#[derive(Default)]
struct ComposeArgs(Vec<(String, Option<String>)>);

/// Deserializes `build:` and `args:` by the shape of the YAML node, so a
/// wrong value inside is reported as itself, not as "no variant matched".
mod compose_shapes {
    use std::collections::BTreeMap;
    use std::fmt;

    use serde::Deserialize;
    use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

    use super::{ComposeArgs, ComposeBuild};

    impl<'de> Deserialize<'de> for ComposeBuild {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = ComposeBuild;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("a context path or a mapping (context, dockerfile, args, target)")
                }
                fn visit_str<E: de::Error>(self, v: &str) -> Result<ComposeBuild, E> {
                    Ok(ComposeBuild {
                        context: Some(v.to_string()),
                        ..ComposeBuild::default()
                    })
                }
                fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ComposeBuild, A::Error> {
                    #[derive(Deserialize)]
                    struct Full {
                        context: Option<String>,
                        dockerfile: Option<String>,
                        dockerfile_inline: Option<String>,
                        #[serde(default)]
                        args: ComposeArgs,
                        target: Option<String>,
                    }
                    let f = Full::deserialize(de::value::MapAccessDeserializer::new(map))?;
                    Ok(ComposeBuild {
                        context: f.context,
                        dockerfile: f.dockerfile,
                        dockerfile_inline: f.dockerfile_inline,
                        args: f.args,
                        target: f.target,
                    })
                }
            }
            d.deserialize_any(V)
        }
    }

    impl<'de> Deserialize<'de> for ComposeArgs {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = ComposeArgs;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("build args as a mapping (KEY: value) or a list (KEY=value)")
                }
                fn visit_unit<E: de::Error>(self) -> Result<ComposeArgs, E> {
                    Ok(ComposeArgs::default())
                }
                fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ComposeArgs, A::Error> {
                    let m: BTreeMap<String, Option<String>> =
                        Deserialize::deserialize(de::value::MapAccessDeserializer::new(map))?;
                    Ok(ComposeArgs(m.into_iter().collect()))
                }
                fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<ComposeArgs, A::Error> {
                    let l: Vec<String> =
                        Deserialize::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
                    Ok(ComposeArgs(
                        l.into_iter()
                            .map(|kv| match kv.split_once('=') {
                                Some((k, v)) => (k.to_string(), Some(v.to_string())),
                                None => (kv, None),
                            })
                            .collect(),
                    ))
                }
            }
            d.deserialize_any(V)
        }
    }
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
        let at = Some(pos(&build.referenced));
        let build = build.value;
        let context = build.context.unwrap_or_else(|| ".".into());
        if context.contains("://") || context.starts_with("git@") {
            unmapped.push(format!(
                "{}: {name} builds from a remote context ({context})",
                place(path, at)
            ));
            continue;
        }
        if build.dockerfile_inline.is_some() {
            unmapped.push(format!(
                "{}: {name} has an inline Dockerfile (dockerfile_inline); put it in a file",
                place(path, at)
            ));
            continue;
        }
        let mut args = BTreeMap::new();
        for (k, v) in build.args.0 {
            match v {
                Some(v) if interpolated(&v) => unmapped.push(format!(
                    "{}: build arg {k} of {name} is filled in from the environment ({v}); give it a fixed value in tagsmith.yaml",
                    place(path, at)
                )),
                // `$$` is compose's escape for a literal `$`.
                Some(v) => {
                    args.insert(k, v.replace("$$", "$"));
                }
                None => unmapped.push(format!(
                    "{}: build arg {k} of {name} takes its value from the environment; give it one in tagsmith.yaml",
                    place(path, at)
                )),
            }
        }
        found.push(Found {
            name,
            context: clean_context(&context),
            dockerfile: build.dockerfile.filter(|d| d != "Dockerfile"),
            args,
            target: build.target,
            image: service.image,
            at,
            ..Found::default()
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
            ..Found::default()
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
        if !f.depends_on.is_empty() {
            let _ = writeln!(s, "    depends_on: [{}]", f.depends_on.join(", "));
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
