//! `tagsmith.yaml`: finding it, parsing it with locations, and validating it
//! into [`Config`], whose paths are absolute and known to exist.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_saphyr::Spanned;

use crate::error::{Error, Result};
use crate::paths;
use crate::registry::reference::{
    Repository, env_name, image_arg, is_component, registry_prefix_problem, suggest_component,
};
use crate::suggestion::Suggestion;
use crate::tree::Tree;

pub const FILE_NAME: &str = "tagsmith.yaml";
pub const DEFAULT_TAG_LENGTH: usize = 32;

/// The largest YAML file tagsmith reads (`tagsmith.yaml`, `tagsmith.lock`):
/// far above any real one (a thousand services take about 100 KB), and
/// checked before the file is read.
pub const MAX_YAML_BYTES: u64 = 4 << 20;
/// Limits on what a YAML file may make the parser do, so that a hostile
/// one (an alias bomb, a deep nest) is refused quickly in bounded memory.
/// Real files stay far below each.
pub const MAX_YAML_DEPTH: usize = 32;
pub const MAX_YAML_NODES: usize = 250_000;
pub const MAX_YAML_ALIASES: usize = 10_000;
pub const MAX_YAML_REPLAYED: usize = 50_000;
pub const MAX_YAML_ANCHORED: usize = 10_000;

/// The parser options for every YAML file tagsmith reads: the limits
/// above, duplicate keys an error, no `!include`. A merge key (`<<: *x`)
/// may be used as often as needed: the number of aliases and of the events
/// they replay is capped, not their ratio to anchors.
pub(crate) fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_depth: MAX_YAML_DEPTH,
            max_documents: 1,
            max_nodes: MAX_YAML_NODES,
            max_events: 4 * MAX_YAML_NODES,
            max_aliases: MAX_YAML_ALIASES,
            max_anchors: MAX_YAML_ALIASES,
            max_merge_keys: MAX_YAML_ALIASES,
            max_total_scalar_bytes: MAX_YAML_BYTES as usize,
            max_recorded_anchor_events: MAX_YAML_ANCHORED,
            max_recorded_anchor_bytes: 1 << 20,
            enforce_alias_anchor_ratio: false,
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: MAX_YAML_REPLAYED,
            max_replay_stack_depth: 16,
        },
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::Error,
        with_snippet: false,
    }
}

/// Reads a YAML input file from `tree`: `None` if it does not exist; an
/// error if it is larger than [`MAX_YAML_BYTES`] (in the working tree,
/// before reading it) or not UTF-8.
pub(crate) fn read_yaml(path: &Path, tree: &Tree) -> Result<Option<String>> {
    use std::io::Read;
    let missing = |e: &std::io::Error| e.kind() == std::io::ErrorKind::NotFound;
    let bytes = match tree {
        Tree::WorkTree => {
            let file = match std::fs::File::open(path) {
                Ok(f) => f,
                Err(e) if missing(&e) => return Ok(None),
                Err(e) => return Err(Error::io(path, e)),
            };
            let size = file.metadata().map_err(|e| Error::io(path, e))?.len();
            if size > MAX_YAML_BYTES {
                return Err(too_large(path, size));
            }
            let mut bytes = Vec::with_capacity(size as usize);
            file.take(MAX_YAML_BYTES + 1)
                .read_to_end(&mut bytes)
                .map_err(|e| Error::io(path, e))?;
            bytes
        }
        _ => match tree.read(path) {
            Ok(bytes) => bytes,
            Err(e) if missing(&e) => return Ok(None),
            Err(e) => return Err(Error::io(path, e)),
        },
    };
    if bytes.len() as u64 > MAX_YAML_BYTES {
        return Err(too_large(path, bytes.len() as u64));
    }
    String::from_utf8(bytes).map(Some).map_err(|e| {
        Error::file(
            path,
            format!("not valid UTF-8 (at byte {})", e.utf8_error().valid_up_to()),
        )
    })
}

fn too_large(path: &Path, size: u64) -> Error {
    Error::file(
        path,
        format!(
            "the file is {:.1} MiB; tagsmith reads YAML files of at most {} MiB",
            size as f64 / (1 << 20) as f64,
            MAX_YAML_BYTES >> 20
        ),
    )
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The config file, as it is shown in messages.
    pub path: PathBuf,
    /// The directory holding the config file: the repository root.
    pub root: PathBuf,
    pub registry: String,
    pub tag_length: usize,
    /// Default template path for `render`, relative to `root`.
    pub templates: Option<PathBuf>,
    /// Registry hosts reached over plain HTTP besides localhost.
    pub insecure_registries: Vec<String>,
    /// The builder `build` uses unless `--builder` says otherwise.
    pub builder: Option<BuilderKind>,
    /// Whether `build --push` keeps a registry layer cache (default true).
    pub cache: bool,
    /// Build secrets by id.
    pub secrets: Vec<crate::secrets::Spec>,
    /// How long one registry call may keep retrying.
    pub retry_deadline: std::time::Duration,
    /// Whether file digests of earlier runs are reused for unchanged files.
    pub stat_cache: bool,
    /// `tagsmith cleanup`'s keep rules.
    pub cleanup: Cleanup,
    /// Registries whose images are looked up at another host (`docker.io`
    /// at a pull-through mirror): registry host → mirror host.
    pub mirrors: BTreeMap<String, String>,
    pub services: BTreeMap<String, Service>,
}

/// The keep rules of `tagsmith cleanup` (its flags override them).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cleanup {
    /// The tags of this many commits of each branch are kept.
    #[serde(default = "default_keep_last")]
    pub keep_last: usize,
    /// Default: the branch checked out (HEAD).
    #[serde(default)]
    pub branches: Vec<String>,
    /// Images younger than this many days are kept.
    #[serde(default = "default_min_age_days")]
    pub min_age_days: u64,
}

fn default_keep_last() -> usize {
    10
}

fn default_min_age_days() -> u64 {
    7
}

impl Default for Cleanup {
    fn default() -> Self {
        Cleanup {
            keep_last: default_keep_last(),
            branches: Vec::new(),
            min_age_days: default_min_age_days(),
        }
    }
}

/// Which builder of the engine builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuilderKind {
    BuildKit,
    Classic,
}

#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
    /// Absolute context directory.
    pub context: PathBuf,
    /// Absolute Dockerfile path.
    pub dockerfile: PathBuf,
    /// The Dockerfile relative to the context, `/`-separated, cleaned;
    /// starts with `../` when the Dockerfile lives outside the context.
    pub dockerfile_in_context: String,
    /// `<registry>/<repository>`.
    pub repository: Repository,
    /// Declared dependencies (more are inferred from the Dockerfile).
    pub depends_on: Vec<String>,
    pub args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub platform: Option<String>,
}

impl Config {
    /// Where `image` is looked up: at its registry's mirror, if it has one.
    pub fn mirrored(&self, image: &crate::registry::ImageRef) -> crate::registry::ImageRef {
        match self.mirrors.get(image.repository.host()) {
            Some(mirror) => crate::registry::ImageRef {
                repository: Repository::under(mirror, image.repository.path()),
                ..image.clone()
            },
            None => image.clone(),
        }
    }
}

impl Service {
    /// The Dockerfile's path inside the context, if it is inside.
    pub fn dockerfile_path_in_context(&self) -> Option<&str> {
        (!self.dockerfile_in_context.starts_with("../"))
            .then_some(self.dockerfile_in_context.as_str())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    registry: Spanned<String>,
    tag_length: Option<Spanned<i64>>,
    templates: Option<Spanned<String>>,
    #[serde(default)]
    insecure_registries: Vec<Spanned<String>>,
    builder: Option<Spanned<String>>,
    cache: Option<bool>,
    #[serde(default)]
    secrets: BTreeMap<String, RawSecret>,
    retry_deadline_seconds: Option<Spanned<u64>>,
    #[serde(default)]
    mirrors: BTreeMap<String, String>,
    stat_cache: Option<bool>,
    #[serde(default)]
    cleanup: Cleanup,
    #[serde(deserialize_with = "ordered_map")]
    services: Vec<(Spanned<String>, RawService)>,
}

/// `{env: VAR}` or `{file: PATH}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSecret {
    env: Option<String>,
    file: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    context: Spanned<String>,
    dockerfile: Option<Spanned<String>>,
    repository: Option<Spanned<String>>,
    #[serde(default)]
    depends_on: Vec<Spanned<String>>,
    #[serde(default)]
    args: BTreeMap<String, String>,
    target: Option<String>,
    platform: Option<String>,
}

/// A mapping read as a list of pairs, so that keys keep their locations
/// and their order (services, lock file images).
pub(crate) fn ordered_map<'de, D: Deserializer<'de>, V: Deserialize<'de>>(
    d: D,
) -> Result<Vec<(Spanned<String>, V)>, D::Error> {
    struct Pairs<V>(std::marker::PhantomData<V>);
    impl<'de, V: Deserialize<'de>> Visitor<'de> for Pairs<V> {
        type Value = Vec<(Spanned<String>, V)>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a mapping")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(entry) = map.next_entry()? {
                out.push(entry);
            }
            Ok(out)
        }
    }
    d.deserialize_map(Pairs(std::marker::PhantomData))
}

/// Finds the config: `explicit`, else `tagsmith.yaml` in `cwd` or the nearest
/// ancestor. The path returned is absolute.
pub fn locate(explicit: Option<&Path>, cwd: &Path) -> Result<PathBuf> {
    if let Some(path) = explicit {
        let full = cwd.join(path);
        if !full.is_file() {
            return Err(Error::file(path, "config file not found"));
        }
        return Ok(full);
    }
    for dir in cwd.ancestors() {
        let candidate = dir.join(FILE_NAME);
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err(Error::user(format!(
        "no {FILE_NAME} in {} or any parent directory (pass --config PATH)",
        cwd.display()
    )))
}

pub fn load(path: &Path) -> Result<Config> {
    let text = read_yaml(path, &Tree::WorkTree)?
        .ok_or_else(|| Error::io(path, std::io::Error::from(std::io::ErrorKind::NotFound)))?;
    parse(path, &text)
}

/// Parses and validates config text; `path` locates it (paths are relative to its directory).
pub fn parse(path: &Path, text: &str) -> Result<Config> {
    parse_in(path, text, &Tree::WorkTree)
}

/// [`parse`], with contexts and Dockerfiles looked up in `tree` (the
/// working tree, or a commit's).
pub fn parse_in(path: &Path, text: &str, tree: &Tree) -> Result<Config> {
    if text.len() as u64 > MAX_YAML_BYTES {
        return Err(too_large(path, text.len() as u64));
    }
    let raw: RawConfig = serde_saphyr::from_str_with_options(text, yaml_options())
        .map_err(|e| yaml_error(path, &e))?;
    let path = &paths::absolute(path).map_err(|e| Error::io(path, e))?;
    let root = path.parent().unwrap_or(Path::new("/")).to_path_buf();
    let at = |line: u64, column: u64, msg: String| Error::at(path, line, column, msg);

    let registry = raw.registry.value.trim_end_matches('/').to_string();
    if let Some(problem) = registry_prefix_problem(&registry) {
        return Err(at(
            raw.registry.referenced.line(),
            raw.registry.referenced.column(),
            problem,
        ));
    }
    let tag_length = match raw.tag_length {
        None => DEFAULT_TAG_LENGTH,
        Some(s) if (12..=64).contains(&s.value) => s.value as usize,
        Some(s) => {
            return Err(at(
                s.referenced.line(),
                s.referenced.column(),
                format!(
                    "tag_length must be between 12 and 64 hex characters, got {}",
                    s.value
                ),
            ));
        }
    };

    let names: Vec<String> = raw.services.iter().map(|(n, _)| n.value.clone()).collect();
    let mut services = BTreeMap::new();
    let mut env_names: BTreeMap<String, String> = BTreeMap::new();
    for (name, svc) in raw.services {
        let (line, column) = (name.referenced.line(), name.referenced.column());
        let name = name.value;
        if !is_component(&name) {
            return Err(at(
                line,
                column,
                format!(
                    "service name \"{name}\" is not a valid image repository name: use lowercase letters, digits and single separators (. _ -), e.g. \"{}\"",
                    suggest_component(&name)
                ),
            ));
        }
        if let Some(other) = env_names.insert(env_name(&name), name.clone()) {
            return Err(at(
                line,
                column,
                format!(
                    "services \"{other}\" and \"{name}\" both map to the build arg {}; rename one",
                    image_arg(&name)
                ),
            ));
        }
        let service = validate_service(path, &root, &registry, &name, svc, &names, tree)?;
        services.insert(name, service);
    }
    if services.is_empty() {
        return Err(Error::file(path, "no services defined"));
    }

    let builder = match raw.builder {
        None => None,
        Some(b) => Some(match b.value.as_str() {
            "buildkit" => BuilderKind::BuildKit,
            "classic" => BuilderKind::Classic,
            other => {
                return Err(at(
                    b.referenced.line(),
                    b.referenced.column(),
                    format!(
                        "builder \"{other}\" is not known{}; expected buildkit or classic",
                        Suggestion::closest(other, ["buildkit", "classic"])
                    ),
                ));
            }
        }),
    };
    let mut secrets = Vec::new();
    for (id, secret) in raw.secrets {
        let source = match (secret.env, secret.file) {
            (Some(var), None) => crate::secrets::Source::Env(var),
            (None, Some(file)) => crate::secrets::Source::File(root.join(file.value)),
            _ => {
                return Err(Error::file(
                    path,
                    format!("secret \"{id}\" needs exactly one of `env: VARIABLE` or `file: PATH`"),
                ));
            }
        };
        secrets.push(crate::secrets::Spec { id, source });
    }
    let retry_deadline = match raw.retry_deadline_seconds {
        None => crate::registry::DEFAULT_DEADLINE,
        Some(s) if (1..=3600).contains(&s.value) => std::time::Duration::from_secs(s.value),
        Some(s) => {
            return Err(at(
                s.referenced.line(),
                s.referenced.column(),
                format!(
                    "retry_deadline_seconds must be between 1 and 3600, got {}",
                    s.value
                ),
            ));
        }
    };
    let templates = raw.templates.map(|t| root.join(t.value));
    let insecure_registries = raw
        .insecure_registries
        .into_iter()
        .map(|s| s.value)
        .collect();
    Ok(Config {
        path: path.to_path_buf(),
        root,
        registry,
        tag_length,
        templates,
        insecure_registries,
        builder,
        cache: raw.cache.unwrap_or(true),
        secrets,
        retry_deadline,
        mirrors: raw.mirrors,
        stat_cache: raw.stat_cache.unwrap_or(true),
        cleanup: raw.cleanup,
        services,
    })
}

/// What a symlink that leads nowhere is called in messages.
const DANGLING: &str = "is a symbolic link that leads nowhere (a loop, or a missing target)";

/// Whether `path` in the working tree is a symlink that resolves to nothing.
fn dangling(tree: &Tree, path: &Path) -> bool {
    matches!(tree, Tree::WorkTree) && path.symlink_metadata().is_ok() && !path.exists()
}

fn validate_service(
    path: &Path,
    root: &Path,
    registry: &str,
    name: &str,
    raw: RawService,
    names: &[String],
    tree: &Tree,
) -> Result<Service> {
    let at = |s: &Spanned<String>, msg: String| {
        Error::at(path, s.referenced.line(), s.referenced.column(), msg)
    };

    let context = paths::inside(root, Path::new(""), &raw.context.value).ok_or_else(|| {
        at(
            &raw.context,
            format!(
                "context \"{}\" is outside the repository ({})",
                raw.context.value,
                root.display()
            ),
        )
    })?;
    if !tree.is_dir(&context) {
        let what = if tree.kind(&context).is_some() {
            format!("is not a directory{}", tree.at())
        } else if dangling(tree, &context) {
            DANGLING.to_string()
        } else {
            format!("does not exist{}", tree.at())
        };
        return Err(at(
            &raw.context,
            format!(
                "context \"{}\" of service \"{name}\" {what}",
                raw.context.value
            ),
        ));
    }

    let dockerfile_spec = raw
        .dockerfile
        .clone()
        .map(|s| s.value)
        .unwrap_or_else(|| "Dockerfile".into());
    let df_at = |msg: String| match &raw.dockerfile {
        Some(s) => at(s, msg),
        None => at(&raw.context, msg),
    };
    let rel_context = context.strip_prefix(root).unwrap_or(&context).to_path_buf();
    let dockerfile = paths::inside(root, &rel_context, &dockerfile_spec).ok_or_else(|| {
        df_at(format!(
            "Dockerfile \"{dockerfile_spec}\" of service \"{name}\" is outside the repository"
        ))
    })?;
    if !tree.is_file(&dockerfile) {
        let shown = dockerfile
            .strip_prefix(root)
            .unwrap_or(&dockerfile)
            .display();
        return Err(df_at(if dangling(tree, &dockerfile) {
            format!("Dockerfile \"{shown}\" of service \"{name}\" {DANGLING}")
        } else {
            format!(
                "Dockerfile \"{shown}\" of service \"{name}\" does not exist{} (dockerfile paths are relative to the context)",
                tree.at()
            )
        }));
    }
    let dockerfile_in_context = paths::relative(&context, &dockerfile);

    let repository = match &raw.repository {
        None => name.to_string(),
        Some(r) => {
            if !r.value.split('/').all(is_component) {
                return Err(at(
                    r,
                    format!(
                        "repository \"{}\" is not a valid image repository path (lowercase components separated by /)",
                        r.value
                    ),
                ));
            }
            r.value.clone()
        }
    };
    let repository = Repository::under(registry, &repository);

    let mut depends_on = Vec::new();
    for dep in raw.depends_on {
        if !names.contains(&dep.value) {
            return Err(at(
                &dep,
                format!(
                    "service \"{name}\" depends on unknown service \"{}\"{}",
                    dep.value,
                    Suggestion::closest(&dep.value, names.iter().map(String::as_str))
                ),
            ));
        }
        depends_on.push(dep.value);
    }

    Ok(Service {
        name: name.to_string(),
        context,
        dockerfile,
        dockerfile_in_context,
        repository,
        depends_on,
        args: raw.args,
        target: raw.target,
        platform: raw.platform,
    })
}

/// Turns a YAML/serde error into `file:line:column: message`, with a
/// "did you mean" for misspelt keys.
pub(crate) fn yaml_error(path: &Path, err: &serde_saphyr::Error) -> Error {
    let at = |msg: String| match err.location() {
        Some(loc) if loc.line() > 0 => Error::at(path, loc.line(), loc.column(), msg),
        _ => Error::file(path, msg),
    };
    if let Some(msg) = refusal(err) {
        return at(msg);
    }
    let full = err.without_snippet().to_string();
    let first = full.lines().next().unwrap_or_default();
    // The crate prefixes its own "error: line N column M: ".
    let msg = match first.find(": ") {
        Some(i) if first.starts_with("error: line ") => &first[i + 2..],
        _ => first,
    };
    // The location goes in front; say what was expected in plain words.
    let msg = msg.split(" at line ").next().unwrap_or(msg);
    let mut msg = match msg {
        "expected string scalar" => "expected a string".to_string(),
        "expected sequence start" => "expected a list, e.g. [a, b]".to_string(),
        "expected mapping start" => "expected a mapping of keys to values".to_string(),
        m if m.starts_with("invalid i64") || m.starts_with("invalid u") => {
            "expected a whole number".to_string()
        }
        m => m.to_string(),
    };
    if let Some(field) = msg
        .strip_prefix("unknown field `")
        .and_then(|r| r.split('`').next())
    {
        // The message lists the keys that mapping takes.
        let keys: Vec<&str> = msg
            .split("expected one of ")
            .nth(1)
            .map(|list| list.split(", ").collect())
            .unwrap_or_default();
        msg = format!(
            "unknown key \"{field}\"{}; expected one of: {}",
            Suggestion::closest(field, keys.iter().copied()),
            keys.join(", ")
        );
    }
    at(msg)
}

/// A plain message for what the parser refused on its own terms (duplicate
/// keys, the limits of [`yaml_options`]), whose own texts name its options.
fn refusal(err: &serde_saphyr::Error) -> Option<String> {
    use serde_saphyr::Error as E;
    use serde_saphyr::budget::BudgetBreach as B;
    let mut err = err;
    while let E::WithSnippet { error, .. } | E::AliasError { error, .. } = err {
        err = error;
    }
    let too_many = |what: &str, limit: usize| {
        format!("refused: more than {limit} {what} (a limit against hostile YAML)")
    };
    Some(match err {
        E::DuplicateMappingKey { key: Some(key), .. } => {
            format!("duplicate key \"{key}\": a key may appear only once in a mapping")
        }
        E::DuplicateMappingKey { key: None, .. } => {
            "duplicate key: a key may appear only once in a mapping".into()
        }
        E::Budget { breach, .. } => match breach {
            B::Depth { .. } => format!(
                "refused: nested more than {MAX_YAML_DEPTH} levels deep (a limit against hostile YAML)"
            ),
            B::Nodes { .. } | B::Events { .. } => too_many("values", MAX_YAML_NODES),
            B::Aliases { .. } => too_many("aliases (*name)", MAX_YAML_ALIASES),
            B::Anchors { .. } => too_many("anchors (&name)", MAX_YAML_ALIASES),
            B::MergeKeys { .. } => too_many("merge keys (<<)", MAX_YAML_ALIASES),
            B::Documents { .. } => "expected one YAML document, found more (---)".into(),
            B::ScalarBytes { .. } => format!(
                "refused: more than {} MiB of text (a limit against hostile YAML)",
                MAX_YAML_BYTES >> 20
            ),
            B::RecordedAnchorBytes { .. } => {
                "refused: more than 1 MiB of text held by anchors (a limit against hostile YAML)"
                    .into()
            }
            B::RecordedAnchorEvents { .. } => {
                too_many("values held by anchors (&name)", MAX_YAML_ANCHORED)
            }
            _ => "refused: the file exceeds tagsmith's limits for YAML input".into(),
        },
        E::AliasReplayLimitExceeded { .. }
        | E::AliasExpansionLimitExceeded { .. }
        | E::AliasReplayCounterOverflow { .. } => {
            too_many("values expanded from aliases", MAX_YAML_REPLAYED)
        }
        E::AliasReplayStackDepthExceeded { .. } => {
            "refused: aliases nested more than 16 deep (a limit against hostile YAML)".into()
        }
        E::BinaryNotUtf8 { .. } => "expected text, found a !!binary value that is not UTF-8".into(),
        _ => return None,
    })
}
