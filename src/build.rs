//! `build`: find which tags are missing (registry with `--push`, else the
//! local engine), build those in dependency order with bounded parallelism,
//! push them, and report. Never rebuilds what exists (unless `--force`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use tokio::task::JoinSet;

use crate::config::env_name;
use crate::engine::{BuildSpec, Engine};
use crate::error::{Error, Result};
use crate::project::{Hashed, Project};
use crate::registry::{self, CheckError, Credentials, Registry};

#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Push to the registry; presence is checked in the registry instead of the local engine
    #[arg(long)]
    pub push: bool,
    /// Builds at once (default: the number of cores)
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,
    /// Print the plan (each service, its tag, up-to-date or build and why) and do nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Build (and push) even when the tag is present
    #[arg(long)]
    pub force: bool,
    /// Always pull newer versions of external base images
    #[arg(long)]
    pub pull: bool,
    /// Do not use the engine's layer cache
    #[arg(long)]
    pub no_cache: bool,
    /// Hide build logs
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

impl Options {
    fn jobs(&self) -> usize {
        self.jobs
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
            .max(1)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    UpToDate,
    Built,
    Pushed,
    Failed,
    Blocked,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::UpToDate => "up-to-date",
            Status::Built => "built",
            Status::Pushed => "pushed",
            Status::Failed => "failed",
            Status::Blocked => "blocked",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub name: String,
    pub tag: String,
    pub image: String,
    pub status: Status,
    pub digest: Option<String>,
    pub seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Serialize)]
pub struct Report<'a> {
    pub version: u32,
    pub services: &'a [Outcome],
}

/// What a service needs, before anything is built.
enum Step {
    UpToDate {
        digest: Option<String>,
    },
    Build {
        reason: &'static str,
    },
    /// The check itself failed (after retries): reported for this service.
    Unknown {
        error: String,
    },
}

/// Everything the build tasks share.
struct Shared {
    engine: Engine,
    registry: Registry,
    creds: BTreeMap<String, Credentials>,
    options: Options,
    revision: Option<String>,
}

/// Runs the build and returns the outcomes (in build order) and the text
/// for stdout (the plan for `--dry-run`, else the summary table).
pub fn run(
    project: &Project,
    order: &[String],
    hashed: &BTreeMap<String, Hashed>,
    options: Options,
) -> Result<(Vec<Outcome>, String)> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(options.jobs().clamp(2, 8))
        .enable_all()
        .build()
        .map_err(|e| Error::internal(format!("starting the async runtime: {e}")))?;
    runtime.block_on(run_async(project, order, hashed, options))
}

async fn run_async(
    project: &Project,
    order: &[String],
    hashed: &BTreeMap<String, Hashed>,
    options: Options,
) -> Result<(Vec<Outcome>, String)> {
    let hosts: BTreeSet<&str> = order
        .iter()
        .map(|n| registry::host(&hashed[n].repository))
        .collect();
    let mut creds = BTreeMap::new();
    for host in &hosts {
        creds.insert(host.to_string(), Credentials::for_host(host)?);
    }
    let registry = Registry::new(
        &hosts.iter().copied().collect::<Vec<_>>(),
        &project.config.insecure_registries,
    );
    let engine = Engine::connect().await?;
    let shared = Arc::new(Shared {
        engine,
        registry,
        creds,
        options: options.clone(),
        revision: git_revision(project),
    });

    let steps = plan(&shared, order, hashed).await?;
    if options.dry_run {
        let mut text = String::new();
        let mut failed = Vec::new();
        for name in order {
            let h = &hashed[name];
            let what = match &steps[name] {
                Step::UpToDate { .. } => "up-to-date".to_string(),
                Step::Build { reason } => format!("build ({reason})"),
                Step::Unknown { error } => {
                    eprintln!("tagsmith: {name}: {error}");
                    failed.push(outcome(h, Status::Failed, None, 0.0, Some(error.clone())));
                    "unknown (the check failed)".to_string()
                }
            };
            let _ = writeln!(text, "{name}\t{}\t{what}", h.image());
        }
        return Ok((failed, text));
    }

    let outcomes = execute(project, order, hashed, &steps, shared).await;
    Ok((outcomes.clone(), summary(&outcomes)))
}

/// Checks every tag at once: the registry with `--push`, else the engine.
async fn plan(
    shared: &Shared,
    order: &[String],
    hashed: &BTreeMap<String, Hashed>,
) -> Result<BTreeMap<String, Step>> {
    let checks = order.iter().map(|name| async move {
        let h = &hashed[name];
        let step = if shared.options.force {
            Step::Build { reason: "--force" }
        } else if shared.options.push {
            let creds = &shared.creds[registry::host(&h.repository)];
            match shared.registry.digest(&h.image(), creds).await {
                Ok(Some(digest)) => Step::UpToDate {
                    digest: Some(digest),
                },
                Ok(None) => Step::Build {
                    reason: "not in registry",
                },
                // Bad credentials concern the whole run: one message.
                Err(CheckError::Auth(e)) => return Err(e),
                Err(CheckError::Failed(e)) => Step::Unknown {
                    error: e.to_string(),
                },
            }
        } else if shared.engine.has_image(&h.image()).await? {
            Step::UpToDate { digest: None }
        } else {
            Step::Build {
                reason: "not in the local engine",
            }
        };
        Ok::<_, Error>((name.clone(), step))
    });
    futures_util::future::join_all(checks)
        .await
        .into_iter()
        .collect()
}

async fn execute(
    project: &Project,
    order: &[String],
    hashed: &BTreeMap<String, Hashed>,
    steps: &BTreeMap<String, Step>,
    shared: Arc<Shared>,
) -> Vec<Outcome> {
    let mut done: BTreeMap<String, Outcome> = BTreeMap::new();
    let mut pending: Vec<String> = Vec::new();
    for name in order {
        let h = &hashed[name];
        match &steps[name] {
            Step::UpToDate { digest } => {
                done.insert(
                    name.clone(),
                    outcome(h, Status::UpToDate, digest.clone(), 0.0, None),
                );
            }
            Step::Build { .. } => pending.push(name.clone()),
            Step::Unknown { error } => {
                eprintln!("tagsmith: {name}: {error}");
                let failed = outcome(h, Status::Failed, None, 0.0, Some(error.clone()));
                done.insert(name.clone(), failed);
            }
        }
    }
    let total = pending.len();
    let mut running: JoinSet<Outcome> = JoinSet::new();
    let mut running_names: BTreeSet<String> = BTreeSet::new();
    let jobs = shared.options.jobs();
    loop {
        // Start every service whose dependencies are done, up to --jobs.
        let mut i = 0;
        while i < pending.len() {
            let name = pending[i].clone();
            let deps: Vec<&str> = project.graph.deps(&name).collect();
            let broken = deps.iter().find(|d| {
                done.get(**d)
                    .is_some_and(|o| matches!(o.status, Status::Failed | Status::Blocked))
            });
            if let Some(dep) = broken {
                let msg = format!("dependency {dep} was not built");
                progress(&shared, &format!("{name}: blocked ({msg})"));
                done.insert(
                    name.clone(),
                    outcome(&hashed[&name], Status::Blocked, None, 0.0, Some(msg)),
                );
                pending.remove(i);
                continue;
            }
            let ready = deps.iter().all(|d| done.contains_key(*d));
            if ready && running.len() < jobs {
                pending.remove(i);
                running_names.insert(name.clone());
                let spec = spec(project, &hashed[&name], hashed, &shared);
                let h = hashed[&name].clone();
                let shared = shared.clone();
                progress(
                    &shared,
                    &format!(
                        "{name}: building (running: {})",
                        running_names.iter().cloned().collect::<Vec<_>>().join(", ")
                    ),
                );
                running.spawn(async move { build_one(h, spec, shared).await });
                continue;
            }
            i += 1;
        }
        let Some(result) = running.join_next().await else {
            break;
        };
        let o = match result {
            Ok(o) => o,
            Err(e) => panic!("a build task panicked: {e}"),
        };
        running_names.remove(&o.name);
        let finished = done
            .values()
            .filter(|o| !matches!(o.status, Status::UpToDate))
            .count()
            + 1;
        progress(
            &shared,
            &format!(
                "{}: {} in {:.1}s [{finished}/{total}]",
                o.name,
                o.status.as_str(),
                o.seconds
            ),
        );
        done.insert(o.name.clone(), o);
    }
    order.iter().filter_map(|n| done.remove(n)).collect()
}

fn progress(shared: &Shared, line: &str) {
    if !shared.options.quiet || std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        eprintln!("tagsmith: {line}");
    }
}

fn outcome(
    h: &Hashed,
    status: Status,
    digest: Option<String>,
    seconds: f64,
    error: Option<String>,
) -> Outcome {
    Outcome {
        name: h.name.clone(),
        tag: h.tag.clone(),
        image: h.image(),
        status,
        digest,
        seconds,
        error,
    }
}

fn spec(
    project: &Project,
    h: &Hashed,
    hashed: &BTreeMap<String, Hashed>,
    shared: &Shared,
) -> BuildSpec {
    let service = &project.config.services[&h.name];
    let mut args: HashMap<String, String> = service
        .args
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for dep in &h.deps {
        let d = &hashed[&dep.name];
        args.insert(format!("{}_IMAGE", env_name(&dep.name)), d.image());
        args.insert(format!("{}_TAG", env_name(&dep.name)), d.tag.clone());
    }
    let mut labels = HashMap::from([
        ("dev.tagsmith.tag".to_string(), h.tag.clone()),
        ("dev.tagsmith.service".to_string(), h.name.clone()),
    ]);
    if let Some(rev) = &shared.revision {
        labels.insert("org.opencontainers.image.revision".into(), rev.clone());
    }
    let outside = service
        .dockerfile_path_in_context()
        .is_none()
        .then(|| project.dockerfile(&h.name).to_vec());
    let dockerfile = match &outside {
        Some(bytes) => crate::tarball::outside_dockerfile_name(bytes),
        None => service.dockerfile_in_context.clone(),
    };
    BuildSpec {
        context: service.context.clone(),
        entries: h.entries.clone(),
        dockerfile,
        outside_dockerfile: outside,
        image: h.image(),
        args,
        labels,
        target: service.target.clone(),
        platform: service.platform.clone(),
        pull: shared.options.pull,
        no_cache: shared.options.no_cache,
        auth: shared
            .creds
            .iter()
            .map(|(host, c)| (host.clone(), c.docker(host)))
            .collect(),
    }
}

async fn build_one(h: Hashed, spec: BuildSpec, shared: Arc<Shared>) -> Outcome {
    let start = Instant::now();
    let quiet = shared.options.quiet;
    let name = h.name.clone();
    let mut log = move |line: &str| {
        if !quiet {
            eprintln!("{name} | {line}");
        }
    };
    let result = async {
        shared.engine.build(spec, &mut log).await?;
        if !shared.options.push {
            return Ok((Status::Built, None));
        }
        let host = registry::host(&h.repository);
        let creds = &shared.creds[host];
        shared
            .engine
            .push(&h.repository, &h.tag, creds.docker(host), &mut log)
            .await
            .map_err(|e| {
                if e.to_string().contains("unauthorized") || e.to_string().contains("denied") {
                    registry::auth_error(host, creds)
                } else {
                    e
                }
            })?;
        let digest = shared.registry.digest(&h.image(), creds).await?;
        Ok::<_, Error>((Status::Pushed, digest))
    }
    .await;
    let seconds = start.elapsed().as_secs_f64();
    match result {
        Ok((status, digest)) => outcome(&h, status, digest, seconds, None),
        Err(e) => {
            eprintln!("{} | error: {e}", h.name);
            outcome(&h, Status::Failed, None, seconds, Some(e.to_string()))
        }
    }
}

fn git_revision(project: &Project) -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(&project.config.root)
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn summary(outcomes: &[Outcome]) -> String {
    let w = outcomes
        .iter()
        .map(|o| o.name.len())
        .max()
        .unwrap_or(7)
        .max(7);
    let mut s = format!(
        "{:<w$}  {:<12}  {:<10}  {:<19}  {:>7}\n",
        "SERVICE", "TAG", "STATUS", "DIGEST", "TIME"
    );
    for o in outcomes {
        let tag: String = o.tag.chars().take(12).collect();
        let digest: String = o
            .digest
            .as_deref()
            .unwrap_or("-")
            .chars()
            .take(19)
            .collect();
        let _ = writeln!(
            s,
            "{:<w$}  {tag:<12}  {:<10}  {digest:<19}  {:>6.1}s",
            o.name,
            o.status.as_str(),
            o.seconds
        );
    }
    s
}

pub fn report_json(outcomes: &[Outcome]) -> String {
    serde_json::to_string_pretty(&Report {
        version: 1,
        services: outcomes,
    })
    .expect("serializable")
        + "\n"
}
