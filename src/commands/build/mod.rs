//! `build`: find which tags are missing ([`plan`]), build those in
//! dependency order with bounded parallelism ([`schedule`]) through a
//! [`Builder`], push them, and report. Never rebuilds what exists (unless
//! `--force`).

pub mod plan;
pub mod schedule;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;

use super::{Report, runtime, write_atomically};
use crate::engine::{BuildSpec, Builder, Dockerfile, Engine, Idle, PushError};
use crate::error::{Error, Result};
use crate::project::config::BuilderKind;
use crate::project::{Hashed, Project};
use crate::registry::reference::{image_arg, tag_arg};
use crate::registry::{ImageRef, Registry};
use crate::secrets::{self, Secrets};
use crate::shell::Shell;

/// The one tag tagsmith moves: it points at the latest pushed image of a
/// repository, so that a fresh runner's build can use its layers as cache.
pub const CACHE_TAG: &str = "buildcache";
use plan::{Need, Presence};
use schedule::{Done, Event, Schedule};

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Only these services and their dependencies (all when empty).
    pub services: Vec<String>,
    /// Push; presence is then checked in the registry, not the engine.
    pub push: bool,
    /// Builds at once (default: the number of cores).
    pub jobs: Option<usize>,
    /// Print the plan and do nothing.
    pub dry_run: bool,
    /// Build (and push) even when the tag is present.
    pub force: bool,
    /// Always pull newer external base images.
    pub pull: bool,
    /// No layer cache: neither the engine's nor the registry's.
    pub no_cache: bool,
    /// The builder (default: the config's, else BuildKit when the engine offers it).
    pub builder: Option<BuilderKind>,
    /// `--secret` specs, beside the config's.
    pub secrets: Vec<secrets::Spec>,
    /// Where to write the JSON report.
    pub report: Option<PathBuf>,
    /// `--dry-run` prints JSON.
    pub json: bool,
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
    pub fn as_str(self) -> &'static str {
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

impl Outcome {
    fn new(h: &Hashed, status: Status) -> Outcome {
        Outcome {
            name: h.name.clone(),
            tag: h.tag.clone(),
            image: h.image().to_string(),
            status,
            digest: None,
            seconds: 0.0,
            error: None,
        }
    }
}

pub enum BuildReport {
    /// `--dry-run`: each service and what it needs; failed checks.
    Plan {
        steps: Vec<PlannedStep>,
        failed: Vec<Outcome>,
        json: bool,
    },
    /// Every service's outcome, in build order.
    Done(Vec<Outcome>),
}

/// One line of a `--dry-run`.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedStep {
    pub name: String,
    pub tag: String,
    pub image: String,
    /// `build`, `up-to-date` or `unknown` (the check failed).
    pub action: &'static str,
    pub reason: Option<String>,
}

impl BuildReport {
    pub fn outcomes(&self) -> &[Outcome] {
        match self {
            BuildReport::Plan { failed: o, .. } | BuildReport::Done(o) => o,
        }
    }

    /// The `--report` file's JSON.
    pub fn json(&self) -> String {
        #[derive(Serialize)]
        struct Doc<'a> {
            version: u32,
            services: &'a [Outcome],
        }
        serde_json::to_string_pretty(&Doc {
            version: 1,
            services: self.outcomes(),
        })
        .expect("serializable")
            + "\n"
    }
}

impl Report for BuildReport {
    fn stdout(&self) -> Vec<u8> {
        match self {
            BuildReport::Plan {
                steps, json: true, ..
            } => {
                #[derive(Serialize)]
                struct Doc<'a> {
                    version: u32,
                    services: &'a [PlannedStep],
                }
                (serde_json::to_string_pretty(&Doc {
                    version: 1,
                    services: steps,
                })
                .expect("serializable")
                    + "\n")
                    .into_bytes()
            }
            BuildReport::Plan { steps, .. } => steps
                .iter()
                .map(|s| {
                    let what = match (s.action, &s.reason) {
                        ("build", Some(r)) => format!("build ({r})"),
                        ("unknown", _) => "unknown (the check failed)".to_string(),
                        (a, _) => a.to_string(),
                    };
                    format!("{}\t{}\t{what}\n", s.name, s.image)
                })
                .collect::<String>()
                .into_bytes(),
            BuildReport::Done(outcomes) => summary(outcomes).into_bytes(),
        }
    }

    fn outcome(&self) -> Result<()> {
        let count = |s| self.outcomes().iter().filter(|o| o.status == s).count();
        let (failed, blocked) = (count(Status::Failed), count(Status::Blocked));
        if failed + blocked == 0 {
            return Ok(());
        }
        Err(Error::user(format!(
            "{failed} failed, {blocked} blocked (see the logs above)"
        )))
    }
}

/// Everything the builds of one run share.
struct Run<'a> {
    project: &'a Project,
    hashed: &'a BTreeMap<String, Hashed>,
    options: &'a Options,
    shell: &'a Shell,
    engine: Engine,
    builder: Box<dyn Builder>,
    kind: BuilderKind,
    registry: Registry,
    revision: Option<String>,
    secrets: Secrets,
    /// Whether builds use and update the registry layer cache.
    cache: bool,
    /// The pushes' silence limit: the registry's request timeout, a quarter
    /// of the deadline (1-30 s), shared by all pushes of the run.
    idle: Idle,
}

pub fn run(project: &Project, options: Options, shell: &Shell) -> Result<BuildReport> {
    let order = project.select(&options.services)?;
    let hashed = project.hash_with_entries(&order)?;
    let report = runtime(options.jobs().clamp(2, 8))?.block_on(async {
        // An interrupt drops the run: every build's connections close, and
        // the engine cancels what was running; nothing half done is pushed.
        let ticker = async {
            let mut every = tokio::time::interval(std::time::Duration::from_millis(250));
            loop {
                every.tick().await;
                shell.tick();
            }
        };
        tokio::select! {
            report = run_async(project, &order, &hashed, &options, shell) => report,
            _ = ticker => unreachable!("the ticker never ends"),
            signal = interrupted() => {
                shell.status("interrupted: the running builds were cancelled; nothing more is pushed");
                Err(Error::Interrupted(signal))
            }
        }
    });
    shell.end_live();
    let report = report?;
    if let (Some(path), BuildReport::Done(_)) = (&options.report, &report) {
        write_atomically(path, report.json().as_bytes())?;
    }
    Ok(report)
}

async fn run_async(
    project: &Project,
    order: &[String],
    hashed: &BTreeMap<String, Hashed>,
    options: &Options,
    shell: &Shell,
) -> Result<BuildReport> {
    let registry = Registry::for_hosts(
        order.iter().map(|n| hashed[n].repository.host()),
        &project.config.insecure_registries,
        project.config.retry_deadline,
    )?;
    // Secrets are read before anything else happens: a missing one stops here.
    let mut specs = project.config.secrets.clone();
    specs.retain(|s| !options.secrets.iter().any(|o| o.id == s.id));
    specs.extend(options.secrets.iter().cloned());
    let secrets = Secrets::resolve(&specs)?;
    let engine = Engine::connect().await?;
    let kind = match options.builder.or(project.config.builder) {
        Some(BuilderKind::BuildKit) if !engine.offers_buildkit() => {
            return Err(Error::user(format!(
                "the engine at {} ({:?}) offers no BuildKit; use --builder classic (or `builder: classic` in tagsmith.yaml)",
                engine.endpoint, engine.kind
            )));
        }
        Some(kind) => kind,
        None if engine.offers_buildkit() => BuilderKind::BuildKit,
        None => {
            shell.note(format!(
                "the engine at {} ({:?}) offers no BuildKit: using the classic builder",
                engine.endpoint, engine.kind
            ));
            BuilderKind::Classic
        }
    };
    if kind == BuilderKind::Classic && secrets.ids().next().is_some() {
        shell.warn("the classic builder cannot mount secrets; they are not used");
    }
    if kind == BuilderKind::BuildKit {
        missing_secrets(project, order, &secrets)?;
    }
    let builder: Box<dyn Builder> = match kind {
        BuilderKind::BuildKit => Box::new(engine.buildkit(secrets.clone())),
        BuilderKind::Classic => Box::new(engine.classic()),
    };
    let run = Run {
        project,
        hashed,
        options,
        shell,
        builder,
        kind,
        engine,
        registry,
        revision: git_revision(project),
        secrets,
        cache: options.push && !options.no_cache && project.config.cache,
        idle: Idle::new((project.config.retry_deadline / 4).clamp(
            std::time::Duration::from_secs(1),
            std::time::Duration::from_secs(30),
        )),
    };
    let presence = if options.force {
        Presence::Nowhere
    } else if options.push {
        Presence::Registry(&run.registry)
    } else {
        Presence::Engine(&run.engine)
    };
    let mut needs = plan::check(order, hashed, presence).await?;

    // A failed check is reported for its service, which then counts as failed.
    let mut outcomes: BTreeMap<String, Outcome> = BTreeMap::new();
    for (name, need) in &needs {
        if let Need::Unknown { error } = need {
            shell.status(format!("{name}: {error}"));
            let mut o = Outcome::new(&hashed[name], Status::Failed);
            o.error = Some(error.to_string());
            outcomes.insert(name.clone(), o);
        }
    }
    if options.dry_run {
        let steps = order
            .iter()
            .map(|name| {
                let (action, reason) = match &needs[name] {
                    Need::Present { .. } => ("up-to-date", None),
                    Need::Build { reason } => ("build", Some(reason.to_string())),
                    Need::Unknown { error } => ("unknown", Some(error.to_string())),
                };
                let h = &hashed[name];
                PlannedStep {
                    name: name.clone(),
                    tag: h.tag.clone(),
                    image: h.image().to_string(),
                    action,
                    reason,
                }
            })
            .collect();
        return Ok(BuildReport::Plan {
            steps,
            failed: outcomes.into_values().collect(),
            json: options.json,
        });
    }

    let mut to_build = Vec::new();
    for name in order {
        match needs.remove(name) {
            Some(Need::Present { digest }) => {
                let mut o = Outcome::new(&hashed[name], Status::UpToDate);
                o.digest = digest;
                outcomes.insert(name.clone(), o);
            }
            Some(Need::Build { .. }) => to_build.push(name.clone()),
            _ => {}
        }
    }
    // A locked base that its registry no longer has by digest fails its
    // services before anything is built.
    for (name, error) in gone_bases(&run, &to_build).await {
        shell.status(format!("{name}: {error}"));
        let mut o = Outcome::new(&hashed[&name], Status::Failed);
        o.error = Some(error.to_string());
        outcomes.insert(name.clone(), o);
        to_build.retain(|n| *n != name);
    }
    let failed_before: BTreeSet<String> = outcomes
        .iter()
        .filter(|(_, o)| o.status == Status::Failed)
        .map(|(n, _)| n.clone())
        .collect();
    let deps = |name: &str| project.graph.deps(name).map(str::to_string).collect();
    let schedule = Schedule {
        order: &to_build,
        deps: &deps,
        failed: &failed_before,
        limit: options.jobs(),
    };
    let results = schedule
        .run(
            |name| run.build_one(name),
            |o: &Outcome| o.status == Status::Failed,
            |event| match event {
                Event::Started { name, running } => {
                    if shell.is_live() {
                        shell.task_started(name);
                    } else {
                        shell.status(format!(
                            "{name}: building (running: {})",
                            running.join(", ")
                        ))
                    }
                }
                Event::Finished {
                    name,
                    result,
                    finished,
                    total,
                } => {
                    shell.task_finished(name);
                    shell.status(format!(
                        "{name}: {} in {:.1}s [{finished}/{total}]",
                        result.status.as_str(),
                        result.seconds
                    ))
                }
                Event::Blocked { name, by } => {
                    shell.status(format!("{name}: blocked (dependency {by} was not built)"))
                }
            },
        )
        .await;
    for (name, done) in results {
        let o = match done {
            Done::Ran(o) => o,
            Done::Blocked { by } => {
                let mut o = Outcome::new(&hashed[&name], Status::Blocked);
                o.error = Some(format!("dependency {by} was not built"));
                o
            }
        };
        outcomes.insert(name, o);
    }
    Ok(BuildReport::Done(
        order.iter().filter_map(|n| outcomes.remove(n)).collect(),
    ))
}

impl Run<'_> {
    async fn build_one(&self, name: &str) -> Outcome {
        let h = &self.hashed[name];
        let start = Instant::now();
        let log = |line: &str| self.shell.log(name, &self.secrets.scrub(line));
        let result = async {
            let spec = self.spec(h).await;
            self.builder
                .build(spec, &log)
                .await
                .map_err(|e| self.explain_failure(name, e))?;
            if !self.options.push {
                return Ok((Status::Built, None));
            }
            let image = h.image();
            // Another run may have pushed this tag since the plan: a content
            // tag is never pushed over (unless --force says to).
            if !self.options.force
                && let Some(digest) = self.registry.digest(&image).await?
            {
                log("the registry got this tag from another run meanwhile; not pushed again");
                return Ok((Status::UpToDate, Some(digest)));
            }
            let pushed = self.push(&image, &log).await?;
            // Pushed means: the registry has the tag, with what the engine pushed.
            let digest = match (self.registry.digest(&image).await?, pushed) {
                (Some(d), Some(p)) if d == p => d,
                (Some(d), _) => {
                    log(&format!(
                        "another run pushed this tag at the same time; the registry keeps {d}"
                    ));
                    return Ok((Status::UpToDate, Some(d)));
                }
                (None, _) => {
                    return Err(Error::user(format!(
                        "the engine pushed {image}, but the registry does not have it"
                    )));
                }
            };
            let digest = Some(digest);
            if self.cache {
                // The cache tag follows the content tag; failing to move it
                // costs the next fresh runner time, not this build.
                let moved = async {
                    self.engine.tag(&image, CACHE_TAG).await?;
                    self.push(&h.repository.with_tag(CACHE_TAG), &log).await
                }
                .await;
                if let Err(e) = moved {
                    log(&format!("warning: the cache tag was not updated: {e}"));
                }
            }
            Ok::<_, Error>((Status::Pushed, digest))
        }
        .await;
        let mut outcome = Outcome::new(h, Status::Failed);
        outcome.seconds = start.elapsed().as_secs_f64();
        match result {
            Ok((status, digest)) => {
                outcome.status = status;
                outcome.digest = digest;
            }
            Err(e) => {
                let text = self.secrets.scrub(&e.to_string());
                for line in text.lines() {
                    self.shell.log_always(name, &format!("error: {line}"));
                }
                outcome.error = Some(text);
            }
        }
        outcome
    }

    /// A failure the user can do something precise about, said so.
    fn explain_failure(&self, name: &str, e: Error) -> Error {
        let text = e.to_string();
        match &self.project.scan(name).syntax {
            Some(frontend)
                if self.kind == BuilderKind::BuildKit
                    && (text.contains("frontend gateway") || text.contains(frontend.as_str())) =>
            {
                Error::file(
                    &self.project.config.services[name].dockerfile,
                    format!(
                        "`# syntax={frontend}` names a Dockerfile frontend image the engine cannot get ({}); remove the line to use the engine's built-in frontend, or make {frontend} available to the engine",
                        text.lines().next().unwrap_or_default()
                    ),
                )
            }
            _ => e,
        }
    }

    /// Pushes `image`, retrying what the engine reports as a transient
    /// failure until the registry deadline; the digest the engine pushed.
    /// A push that shows no progress for a quarter of the deadline (the
    /// registry's request timeout) counts as such a failure.
    async fn push(&self, image: &ImageRef, log: crate::engine::Log<'_>) -> Result<Option<String>> {
        use std::time::Duration;
        let host = image.repository.host();
        let start = Instant::now();
        let deadline = self.project.config.retry_deadline;
        let mut delay = Duration::from_millis(500);
        let mut attempts = 1;
        loop {
            let result = self
                .engine
                .push(image, self.registry.keyring().get(host), &self.idle, log)
                .await;
            let result = match result {
                // While another push (another run's) commits the same blob,
                // the registry may not know it for a moment.
                Err(PushError::Other(msg)) if msg.contains("blob unknown") => {
                    Err(PushError::Transient(one_line(&msg)))
                }
                Err(PushError::Transient(msg)) => Err(PushError::Transient(one_line(&msg))),
                Err(PushError::Other(msg)) => Err(PushError::Other(one_line(&msg))),
                other => other,
            };
            match result {
                Ok(digest) => return Ok(digest),
                Err(PushError::Auth(_)) => return Err(self.registry.auth_error(host, None)),
                Err(PushError::Transient(msg))
                    if start.elapsed() + delay < deadline && rate_limited(&msg) =>
                {
                    // The engine does not pass the registry's Retry-After on:
                    // the registry is asked, by a client that waits as long
                    // as it says (within the deadline), before the next push.
                    log(&format!(
                        "push failed ({msg}); asking the registry when to try again"
                    ));
                    if let Err(e) = self.registry.digest(image).await {
                        return Err(Error::user(format!(
                            "pushing {image} failed after {attempts} attempts: {msg}; then {e}"
                        )));
                    }
                    attempts += 1;
                }
                Err(PushError::Transient(msg)) if start.elapsed() + delay < deadline => {
                    log(&format!(
                        "push failed ({msg}); trying again in {:.1}s",
                        delay.as_secs_f64()
                    ));
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(10));
                    attempts += 1;
                }
                Err(PushError::Transient(msg) | PushError::Other(msg)) => {
                    let tries = if attempts > 1 {
                        format!(" after {attempts} attempts")
                    } else {
                        String::new()
                    };
                    return Err(Error::user(format!("pushing {image} failed{tries}: {msg}")));
                }
            }
        }
    }

    /// The registry cache source for `h`, when there is one. The classic
    /// builder only uses local images as cache, so it is pulled first.
    async fn cache_from(&self, h: &Hashed) -> Vec<ImageRef> {
        if !self.cache {
            return Vec::new();
        }
        let cache = h.repository.with_tag(CACHE_TAG);
        if self.kind == BuilderKind::BuildKit {
            return vec![cache];
        }
        match self.registry.digest(&cache).await {
            Ok(Some(_)) => {
                let creds = self.registry.keyring().get(cache.repository.host());
                match self.engine.pull(&cache, creds).await {
                    Ok(()) => vec![cache],
                    Err(e) => {
                        self.shell.log(
                            &h.name,
                            &format!("warning: building without the registry cache: {e}"),
                        );
                        Vec::new()
                    }
                }
            }
            _ => Vec::new(),
        }
    }

    async fn spec(&self, h: &Hashed) -> BuildSpec {
        let service = &self.project.config.services[&h.name];
        let mut args: HashMap<String, String> = service
            .args
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for dep in &h.deps {
            let d = &self.hashed[&dep.name];
            args.insert(image_arg(&dep.name), d.image().to_string());
            args.insert(tag_arg(&dep.name), d.tag.clone());
        }
        let mut labels = HashMap::from([
            ("dev.tagsmith.tag".to_string(), h.tag.clone()),
            ("dev.tagsmith.service".to_string(), h.name.clone()),
        ]);
        if let Some(rev) = &self.revision {
            labels.insert("org.opencontainers.image.revision".into(), rev.clone());
        }
        let sorted: BTreeMap<String, String> = args.clone().into_iter().collect();
        let bytes = self.project.dockerfile_to_send(&h.name, &sorted);
        let unchanged = bytes == self.project.dockerfile(&h.name);
        let dockerfile = Dockerfile {
            in_context: service
                .dockerfile_path_in_context()
                .filter(|_| unchanged)
                .map(str::to_string),
            bytes,
        };
        BuildSpec {
            context: service.context.clone(),
            entries: h.entries.clone(),
            dockerfile,
            image: h.image(),
            args,
            labels,
            target: service.target.clone(),
            platform: service.platform.clone(),
            pull: self.options.pull,
            no_cache: self.options.no_cache,
            cache_from: self.cache_from(h).await,
            inline_cache: self.cache && self.kind == BuilderKind::BuildKit,
            auth: self.registry.keyring().docker(),
        }
    }
}

/// The engine's multi-line messages ("errors:\ndigest invalid\n…") in one line.
fn one_line(msg: &str) -> String {
    msg.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
        .replace(":; ", ": ")
}

/// Whether the engine's push error is a registry's 429.
fn rate_limited(msg: &str) -> bool {
    msg.contains("429 Too Many Requests") || msg.contains("toomanyrequests")
}

/// Resolves with the number of the first SIGINT or SIGTERM.
async fn interrupted() -> i32 {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => 2,
        _ = term.recv() => 15,
    }
}

/// A secret a Dockerfile mounts with `required=true` that no `--secret` or
/// `secrets:` gives is an error before anything is built.
fn missing_secrets(project: &Project, order: &[String], secrets: &Secrets) -> Result<()> {
    let mut problems = Vec::new();
    for name in order {
        let dockerfile = &project.config.services[name].dockerfile;
        for mount in &project.scan(name).secrets {
            if mount.required && secrets.get(&mount.id).is_none() {
                problems.push(Error::at(
                    dockerfile,
                    mount.line as u64,
                    1,
                    format!(
                        "RUN mounts the secret \"{}\" with required=true, and none is given: pass --secret id={},env=VARIABLE (or src=FILE), or add it under secrets: in tagsmith.yaml",
                        mount.id, mount.id
                    ),
                ));
            }
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(Error::many(problems, "nothing was built"))
}

/// Services to build whose locked base images cannot be had by digest.
async fn gone_bases(run: &Run<'_>, to_build: &[String]) -> Vec<(String, Error)> {
    let Some(lock) = &run.project.lock else {
        return Vec::new();
    };
    let mut wanted: BTreeMap<String, (ImageRef, Vec<String>)> = BTreeMap::new();
    for name in to_build {
        for b in run.hashed[name].bases.iter() {
            let Some(locked) = lock.images.get(&b.reference) else {
                continue;
            };
            let Ok(mut image) = ImageRef::parse(&b.reference) else {
                continue;
            };
            image.digest = Some(locked.digest.clone());
            let entry = wanted
                .entry(format!("{image}"))
                .or_insert((image, Vec::new()));
            entry.1.push(name.clone());
        }
    }
    let checks = wanted.into_values().map(|(image, services)| async move {
        let at = run.project.config.mirrored(&image);
        match run.registry.digest(&at).await {
            // Not known is what matters; an unreachable registry is left to the builder.
            Ok(None) => services
                .into_iter()
                .map(|s| {
                    (
                        s,
                        Error::user(format!(
                            "the locked base image {image} can no longer be fetched by digest from its registry; `tagsmith lock --update {}` moves the lock to what its tag names now",
                            ImageRef { digest: None, ..image.clone() }
                        )),
                    )
                })
                .collect(),
            _ => Vec::new(),
        }
    });
    futures_util::future::join_all(checks)
        .await
        .into_iter()
        .flatten()
        .collect()
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
