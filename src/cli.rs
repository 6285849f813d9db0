//! Command-line arguments: clap types only, each turned into a command's
//! plain options; then the command runs and its report goes to stdout.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use clap_complete::ArgValueCandidates;

use crate::commands::{Report, build, cleanup, explain, graph, init, lock, plan, render, tags};
use crate::error::{Error, Result};
use crate::project::Project;
use crate::project::config::BuilderKind;
use crate::secrets;
use crate::shell::{Progress, Shell, Verbosity};
use crate::suggestion::Suggestion;
use crate::tree::Commit;

#[derive(Debug, Parser)]
#[command(
    name = "tagsmith",
    version,
    about = "Content-addressed image tags, builds and manifests for container monorepos"
)]
pub struct Cli {
    /// The config file (default: tagsmith.yaml in the current directory or the nearest parent)
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Hash every file, without reusing digests of unchanged files from earlier runs
    #[arg(long, global = true)]
    pub no_stat_cache: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print every service's content-hash tag
    Tags {
        /// Only these services (their dependencies are still hashed)
        #[arg(add = ArgValueCandidates::new(service_candidates))]
        services: Vec<String>,
        #[arg(long, value_enum, default_value = "text")]
        format: TagsFormat,
        /// A `build --report` file: registry digests for --format kustomize
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
        /// The tags a checkout of this commit would give, read from git
        #[arg(long, value_name = "REV")]
        rev: Option<String>,
    },
    /// Show every input of a service's tag, what changed since an earlier `explain --json`, or why a path is (not) in its context
    Explain {
        #[arg(add = ArgValueCandidates::new(service_candidates))]
        service: String,
        /// Print JSON (save it to compare later with --against)
        #[arg(long)]
        json: bool,
        /// What to compare with: an earlier `explain --json` output, or a git revision
        #[arg(long, value_name = "FILE|REV", conflicts_with = "path")]
        against: Option<String>,
        /// Explain the service as this commit has it, read from git
        #[arg(long, value_name = "REV")]
        rev: Option<String>,
        /// Say why PATH is or is not in the build context (repeatable; relative to the current directory or the context)
        #[arg(long, value_name = "PATH")]
        path: Vec<PathBuf>,
    },
    /// Fill `<< tag "svc" >>`, `<< image "svc" >>` and other actions into manifest templates
    Render {
        /// Template files or directories (default: `templates` in tagsmith.yaml)
        paths: Vec<PathBuf>,
        /// Write each rendered file under DIR instead of streaming to stdout
        #[arg(short = 'o', long = "output", value_name = "DIR")]
        output: Option<PathBuf>,
        /// With -o: write nothing; exit 1 listing files in DIR that differ
        #[arg(long, requires = "output")]
        check: bool,
        /// With -o: remove files in DIR that no template produces any more
        #[arg(long, requires = "output", conflicts_with = "check")]
        prune: bool,
        /// A `build --report` file: digests for `digest`/`pinned` without asking the registry
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
    },
    /// Build (and with --push, push) every image whose tag is not there yet
    Build(BuildArgs),
    /// List the services whose tag is missing in the registry, in waves for CI runners
    Plan {
        /// Only these services and their dependencies
        #[arg(add = ArgValueCandidates::new(service_candidates))]
        services: Vec<String>,
        #[arg(long, value_enum, default_value = "text")]
        format: PlanFormat,
    },
    /// Pin external base images to digests in tagsmith.lock (adds missing ones, drops unused ones)
    Lock {
        /// Write nothing; exit 1 listing images whose registry digest moved, missing and stale entries
        #[arg(long, conflicts_with = "update")]
        check: bool,
        /// Move these images (all when none are named) to the digest their tag names now
        #[arg(long, num_args = 0.., value_name = "IMAGE")]
        update: Option<Vec<String>>,
    },
    /// Delete content tags no keep rule protects from the services' repositories
    Cleanup {
        /// Keep the tags of this many commits of each branch (default: cleanup.keep_last, else 10)
        #[arg(long, value_name = "N")]
        keep_last: Option<usize>,
        /// Branches whose last commits are kept (repeatable; default: cleanup.branches, else HEAD)
        #[arg(long, value_name = "BRANCH")]
        branch: Vec<String>,
        /// Keep every image named in the files below DIR (rendered manifests, a GitOps repository)
        #[arg(long, value_name = "DIR")]
        keep_manifests: Vec<PathBuf>,
        /// Keep every image reference listed in FILE (e.g. what kubectl reports running)
        #[arg(long, value_name = "FILE")]
        keep_file: Vec<PathBuf>,
        /// Keep images younger than this many days (default: cleanup.min_age_days, else 7)
        #[arg(long, value_name = "DAYS")]
        min_age_days: Option<u64>,
        /// List what would be deleted and kept; delete nothing
        #[arg(long)]
        dry_run: bool,
        /// Delete without asking (needed without a terminal)
        #[arg(long, short = 'y')]
        yes: bool,
        /// Write what was deleted and kept as JSON
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
    },
    /// Write a first tagsmith.yaml from skaffold.yaml, a compose file or the Dockerfiles found
    Init {
        /// Replace an existing tagsmith.yaml
        #[arg(long)]
        force: bool,
    },
    /// Print the shell script that completes tagsmith's commands, options and service names
    Completions {
        #[arg(value_enum)]
        shell: CompletionShell,
    },
    /// Print tagsmith's manual page, or a command's (roff; `tagsmith man | man -l -`)
    Man {
        /// The command whose page to print (`tagsmith man build` is tagsmith-build(1))
        command: Option<String>,
        /// Write every page (tagsmith.1, tagsmith-build.1, …) into DIR instead
        #[arg(long, value_name = "DIR", conflicts_with = "command")]
        out_dir: Option<PathBuf>,
    },
    /// Print services in build order with their dependencies
    Graph {
        /// Graphviz dot format
        #[arg(long)]
        dot: bool,
        /// The graph of this commit, read from git
        #[arg(long, value_name = "REV")]
        rev: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TagsFormat {
    Text,
    Json,
    Env,
    Github,
    Kustomize,
    Helm,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
    Powershell,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    Text,
    Json,
    Github,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Only these services and their dependencies
    #[arg(add = ArgValueCandidates::new(service_candidates))]
    services: Vec<String>,
    /// Push to the registry; presence is checked in the registry instead of the local engine
    #[arg(long)]
    push: bool,
    /// Builds at once (default: the number of cores)
    #[arg(long, short = 'j', value_name = "N")]
    jobs: Option<usize>,
    /// Print the plan (each service, its tag, up-to-date or build and why) and do nothing
    #[arg(long)]
    dry_run: bool,
    /// Build (and push) even when the tag is present
    #[arg(long)]
    force: bool,
    /// Always pull newer versions of external base images
    #[arg(long)]
    pull: bool,
    /// Do not use the engine's layer cache
    #[arg(long)]
    no_cache: bool,
    /// Hide build logs
    #[arg(long, short = 'q')]
    quiet: bool,
    /// The engine's builder (default: `builder` in tagsmith.yaml, else BuildKit when the engine offers it)
    #[arg(long, value_enum)]
    builder: Option<BuilderArg>,
    /// A build secret, as buildx takes it: id=ID,env=VARIABLE or id=ID,src=FILE (repeatable)
    #[arg(long, value_name = "SPEC")]
    secret: Vec<String>,
    /// Write a JSON report of every service's status, digest and time
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// With --dry-run: the plan as text or JSON
    #[arg(long, value_enum, default_value = "text", requires = "dry_run")]
    format: DryRunFormat,
    /// How progress is shown: live lines redrawn on a terminal, or plain lines
    #[arg(long, value_enum, default_value = "auto")]
    progress: ProgressArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressArg {
    /// Live on a terminal, plain otherwise
    Auto,
    Plain,
    /// Live, even when stderr is not a terminal
    Tty,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DryRunFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BuilderArg {
    Buildkit,
    Classic,
}

impl BuildArgs {
    fn options(self) -> Result<build::Options> {
        Ok(build::Options {
            services: self.services,
            push: self.push,
            jobs: self.jobs,
            dry_run: self.dry_run,
            force: self.force,
            pull: self.pull,
            no_cache: self.no_cache,
            builder: self.builder.map(|b| match b {
                BuilderArg::Buildkit => BuilderKind::BuildKit,
                BuilderArg::Classic => BuilderKind::Classic,
            }),
            secrets: self
                .secret
                .iter()
                .map(|s| secrets::Spec::parse(s))
                .collect::<Result<_>>()?,
            report: self.report,
            json: self.format == DryRunFormat::Json,
        })
    }
}

impl From<TagsFormat> for tags::Format {
    fn from(f: TagsFormat) -> Self {
        match f {
            TagsFormat::Text => tags::Format::Text,
            TagsFormat::Json => tags::Format::Json,
            TagsFormat::Env => tags::Format::Env,
            TagsFormat::Github => tags::Format::Github,
            TagsFormat::Kustomize => tags::Format::Kustomize,
            TagsFormat::Helm => tags::Format::Helm,
        }
    }
}

/// Parses the arguments, runs the command, prints; returns the exit code.
pub fn main() -> i32 {
    // Every TLS config names ring; installing it as the process default
    // keeps any library that asks for "the default" from panicking.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // `COMPLETE=bash tagsmith …` is the shell asking for completions.
    clap_complete::CompleteEnv::with_factory(Cli::command).complete();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // A usage error is the user's to fix: exit 1 (help and --version exit 0).
            let code = if err.use_stderr() { 1 } else { 0 };
            let _ = err.print();
            return code;
        }
    };
    let (verbosity, progress) = match &cli.command {
        Command::Build(args) => (
            if args.quiet {
                Verbosity::Quiet
            } else {
                Verbosity::Normal
            },
            match args.progress {
                ProgressArg::Auto => Progress::Auto,
                ProgressArg::Plain => Progress::Plain,
                ProgressArg::Tty => Progress::Live,
            },
        ),
        // Only builds have running tasks to show.
        _ => (Verbosity::Normal, Progress::Plain),
    };
    let shell = Shell::with_progress(verbosity, progress);
    match run(cli, &shell) {
        Ok(()) => 0,
        Err(err) => {
            shell.error(&err);
            err.exit_code()
        }
    }
}

/// Runs a parsed command: its report goes to stdout, then its outcome decides.
pub fn run(cli: Cli, shell: &Shell) -> Result<()> {
    let cwd =
        std::env::current_dir().map_err(|e| Error::internal(format!("current directory: {e}")))?;
    // The commands that need no project.
    match cli.command {
        Command::Init { force } => {
            let root = match &cli.config {
                Some(path) => cwd.join(path).parent().map(PathBuf::from).unwrap_or(cwd),
                None => cwd,
            };
            return finish(init::run(init::Options { root, force })?);
        }
        Command::Completions { shell: which } => return print(&completions(which)?),
        Command::Man { command, out_dir } => return man(command.as_deref(), out_dir, &cwd),
        _ => {}
    }
    let rev = match &cli.command {
        Command::Tags { rev, .. } | Command::Explain { rev, .. } | Command::Graph { rev, .. } => {
            rev.clone()
        }
        _ => None,
    };
    let at = |rev: &str| Project::at_commit(cli.config.as_deref(), &cwd, Commit::open(&cwd, rev)?);
    let mut project = match &rev {
        Some(rev) => at(rev)?,
        None => Project::open(cli.config.as_deref(), &cwd)?,
    };
    if cli.no_stat_cache {
        project.config.stat_cache = false;
    }
    match cli.command {
        Command::Init { .. } | Command::Completions { .. } | Command::Man { .. } => {
            unreachable!("handled above")
        }
        Command::Tags {
            services,
            format,
            report,
            ..
        } => {
            let options = tags::Options {
                services,
                format: format.into(),
                github_output: github_output(),
                report,
            };
            finish(tags::run(&project, options)?)
        }
        Command::Explain {
            service,
            json,
            against,
            path,
            ..
        } => finish(explain::run(
            &project,
            explain::Options {
                service,
                json,
                // A file that exists is a saved record; anything else, a revision.
                against: match against {
                    Some(a) if cwd.join(&a).is_file() => {
                        Some(explain::Against::File(PathBuf::from(a)))
                    }
                    Some(rev) => Some(explain::Against::Project(Box::new(at(&rev)?))),
                    None => None,
                },
                paths: path,
                cwd,
            },
        )?),
        Command::Render {
            paths,
            output,
            check,
            prune,
            report,
        } => finish(render::run(
            &project,
            render::Options {
                paths,
                output,
                check,
                prune,
                report,
            },
            shell,
        )?),
        Command::Build(args) => finish(build::run(&project, args.options()?, shell)?),
        Command::Graph { dot, .. } => finish(graph::run(&project, graph::Options { dot })?),
        Command::Cleanup {
            keep_last,
            branch,
            keep_manifests,
            keep_file,
            min_age_days,
            dry_run,
            yes,
            report,
        } => {
            use std::io::IsTerminal;
            let rules = &project.config.cleanup;
            let options = cleanup::Options {
                keep_last: keep_last.unwrap_or(rules.keep_last),
                branches: if branch.is_empty() {
                    rules.branches.clone()
                } else {
                    branch
                },
                keep_manifests,
                keep_files: keep_file,
                min_age: std::time::Duration::from_secs(
                    min_age_days.unwrap_or(rules.min_age_days) * 86_400,
                ),
                dry_run,
                yes,
                interactive: std::io::stdin().is_terminal() && std::io::stderr().is_terminal(),
                report,
                cwd: cwd.clone(),
                config: cli.config.clone(),
            };
            finish(cleanup::run(&project, options, shell)?)
        }
        Command::Plan { services, format } => finish(plan::run(
            &project,
            plan::Options {
                services,
                format: match format {
                    PlanFormat::Text => plan::Format::Text,
                    PlanFormat::Json => plan::Format::Json,
                    PlanFormat::Github => plan::Format::Github,
                },
                github_output: github_output(),
            },
        )?),
        Command::Lock { check, update } => {
            let mode = match (check, update) {
                (true, _) => lock::Mode::Check,
                (false, Some(images)) => lock::Mode::Update(images),
                (false, None) => lock::Mode::Write,
            };
            finish(lock::run(&project, lock::Options { mode })?)
        }
    }
}

/// The registration script of clap's dynamic completion for `shell`: the
/// shell then asks `COMPLETE=<shell> tagsmith …` for candidates, so service
/// names come from the tagsmith.yaml at hand.
fn completions(shell: CompletionShell) -> Result<Vec<u8>> {
    let name = match shell {
        CompletionShell::Bash => "bash",
        CompletionShell::Zsh => "zsh",
        CompletionShell::Fish => "fish",
        CompletionShell::Powershell => "powershell",
    };
    let shells = clap_complete::env::Shells::builtins();
    let completer = shells
        .completer(name)
        .ok_or_else(|| Error::internal(format!("no completer for {name}")))?;
    let mut out = Vec::new();
    completer
        .write_registration("COMPLETE", "tagsmith", "tagsmith", "tagsmith", &mut out)
        .map_err(|e| Error::internal(format!("writing completions: {e}")))?;
    Ok(out)
}

/// The manual: the top page, one command's page, or every page written
/// into a directory. Pages of commands are named `tagsmith-COMMAND(1)`, as
/// the top page's SUBCOMMANDS section refers to them.
fn man(command: Option<&str>, out_dir: Option<PathBuf>, cwd: &Path) -> Result<()> {
    let mut top = Cli::command().disable_help_subcommand(true);
    top.build();
    if let Some(dir) = out_dir {
        let dir = cwd.join(dir);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        clap_mangen::generate_to(top, &dir).map_err(|e| Error::io(&dir, e))?;
        return Ok(());
    }
    let page = match command {
        None => top,
        Some(name) => {
            let names: Vec<&str> = top.get_subcommands().map(|c| c.get_name()).collect();
            let Some(sub) = top.find_subcommand(name) else {
                return Err(Error::user(format!(
                    "no command \"{name}\" has a manual page{}",
                    Suggestion::closest(name, names)
                )));
            };
            sub.clone()
        }
    };
    let mut out = Vec::new();
    clap_mangen::Man::new(page)
        .render(&mut out)
        .map_err(|e| Error::internal(format!("rendering the manual: {e}")))?;
    print(&out)
}

/// The `--config` of the command line being completed (`COMPLETE=bash
/// tagsmith -- tagsmith --config x tags …`), if one was typed.
fn config_being_completed() -> Option<PathBuf> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let mut words = args.iter().skip_while(|a| *a != "--").skip(1);
    while let Some(word) = words.next() {
        let word = word.to_str()?;
        if word == "--config" {
            return words.next().map(PathBuf::from);
        }
        if let Some(path) = word.strip_prefix("--config=") {
            return Some(PathBuf::from(path));
        }
    }
    None
}

/// Service names for completion: those of the `--config` typed so far or
/// the tagsmith.yaml found from the working directory (nothing when there
/// is none or it does not load).
fn service_candidates() -> Vec<clap_complete::CompletionCandidate> {
    let Ok(cwd) = std::env::current_dir() else {
        return Vec::new();
    };
    let explicit = config_being_completed();
    let Ok(path) = crate::project::config::locate(explicit.as_deref(), &cwd) else {
        return Vec::new();
    };
    let Ok(config) = crate::project::config::load(&path) else {
        return Vec::new();
    };
    config
        .services
        .keys()
        .map(clap_complete::CompletionCandidate::new)
        .collect()
}

/// `$GITHUB_OUTPUT`, where GitHub Actions steps write their outputs.
fn github_output() -> Option<PathBuf> {
    std::env::var_os("GITHUB_OUTPUT")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

fn finish(report: impl Report) -> Result<()> {
    print(&report.stdout())?;
    report.outcome()
}

fn print(bytes: &[u8]) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|_| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Error::internal(format!("writing output: {e}")))
        }
        _ => Ok(()),
    }
}
