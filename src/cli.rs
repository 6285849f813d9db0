//! Command-line arguments → a typed command → library calls.

use std::io::Write;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::build;
use crate::config;
use crate::error::{Error, Result};
use crate::explain::{self, Explain};
use crate::output::{self, TagsFormat};
use crate::project::Project;
use crate::render;

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
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print every service's content-hash tag
    Tags {
        /// Only these services (their dependencies are still hashed)
        services: Vec<String>,
        #[arg(long, value_enum, default_value = "text")]
        format: TagsFormat,
    },
    /// Show every input of a service's tag, or what changed since an earlier `explain --json`
    Explain {
        service: String,
        /// Print JSON (save it to compare later with --against)
        #[arg(long)]
        json: bool,
        /// An earlier `explain --json` output to compare with
        #[arg(long, value_name = "FILE")]
        against: Option<PathBuf>,
    },
    /// Fill `<< tag "svc" >>`, `<< image "svc" >>` and `<< repository "svc" >>` into manifest templates
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
    Build {
        /// Only these services and their dependencies
        services: Vec<String>,
        #[command(flatten)]
        options: build::Options,
        /// Write a JSON report of every service's status, digest and time
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
    },
    /// Print services in build order with their dependencies
    Graph {
        /// Graphviz dot format
        #[arg(long)]
        dot: bool,
    },
}

/// Runs a parsed command; everything it prints goes out in one write at the end.
pub fn run(cli: Cli) -> Result<()> {
    let cwd =
        std::env::current_dir().map_err(|e| Error::internal(format!("current directory: {e}")))?;
    run_in(cli, &cwd).map_err(|e| relative_paths(e, &cwd))
}

/// Paths below the working directory read better relative to it.
fn relative_paths(err: Error, cwd: &std::path::Path) -> Error {
    let prefix = format!("{}/", cwd.display());
    match err {
        Error::User(m) => Error::User(m.replace(&prefix, "")),
        Error::Internal(m) => Error::Internal(m.replace(&prefix, "")),
    }
}

fn run_in(cli: Cli, cwd: &std::path::Path) -> Result<()> {
    let path = config::locate(cli.config.as_deref(), cwd)?;
    let project = Project::load(config::load(&path)?)?;
    let out = match cli.command {
        Command::Tags { services, format } => tags(&project, &services, format)?.into_bytes(),
        Command::Explain {
            service,
            json,
            against,
        } => explain(&project, &service, json, against)?.into_bytes(),
        Command::Render {
            paths,
            output,
            check,
            prune,
            report,
        } => render::run(
            &project,
            paths,
            output.as_deref(),
            check,
            prune,
            report.as_deref(),
        )?,
        Command::Build {
            services,
            options,
            report,
        } => build(&project, &services, options, report.as_deref())?,
        Command::Graph { dot } => output::graph(&project.graph, dot).into_bytes(),
    };
    print(&out)
}

fn tags(project: &Project, services: &[String], format: TagsFormat) -> Result<String> {
    let order = project.select(services)?;
    let github_output = match format {
        TagsFormat::Github => Some(std::env::var_os("GITHUB_OUTPUT").filter(|v| !v.is_empty()).ok_or_else(|| {
            Error::user("--format github appends to the file named by $GITHUB_OUTPUT, which is not set (it is set inside GitHub Actions steps)")
        })?),
        _ => None,
    };
    let hashed = project.hash(&order)?;
    let text = output::tags(format, &output::pick(&hashed, services));
    match github_output {
        None => Ok(text),
        Some(file) => {
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(&file)
                .map_err(|e| Error::io(file.as_ref(), e))?;
            f.write_all(text.as_bytes())
                .map_err(|e| Error::io(file.as_ref(), e))?;
            Ok(String::new())
        }
    }
}

fn explain(
    project: &Project,
    service: &str,
    json: bool,
    against: Option<PathBuf>,
) -> Result<String> {
    let previous = match &against {
        None => None,
        Some(file) => {
            let old: Explain = output::read_json(file, "an `explain --json` output")?;
            Some(old)
        }
    };
    let order = project.select(&[service.to_string()])?;
    let hashed = project.hash(&order)?;
    let current = Explain::new(&project.config.services[service], &hashed[service]);
    Ok(match previous {
        Some(old) => {
            let lines = explain::diff(&old, &current);
            let mut s = if old.tag == current.tag {
                format!("{service}: tag unchanged ({})\n", current.tag)
            } else {
                format!("{service}: tag {} -> {}\n", old.tag, current.tag)
            };
            if lines.is_empty() && old.tag != current.tag {
                s.push_str("  no input differs: the tag scheme or tag_length changed\n");
            }
            for l in lines {
                s.push_str(&format!("  {l}\n"));
            }
            s
        }
        None if json => serde_json::to_string_pretty(&current).expect("serializable") + "\n",
        None => current.to_text(),
    })
}

fn build(
    project: &Project,
    services: &[String],
    options: build::Options,
    report: Option<&std::path::Path>,
) -> Result<Vec<u8>> {
    let order = project.select(services)?;
    let hashed = project.hash(&order)?;
    let dry_run = options.dry_run;
    let (outcomes, text) = build::run(project, &order, &hashed, options)?;
    if let (Some(path), false) = (report, dry_run) {
        write_atomically(path, build::report_json(&outcomes).as_bytes())?;
    }
    let failed = outcomes
        .iter()
        .filter(|o| o.status == build::Status::Failed)
        .count();
    let blocked = outcomes
        .iter()
        .filter(|o| o.status == build::Status::Blocked)
        .count();
    if failed + blocked == 0 {
        return Ok(text.into_bytes());
    }
    print(text.as_bytes())?;
    Err(Error::user(format!(
        "{failed} failed, {blocked} blocked (see the logs above)"
    )))
}

fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("tagsmith-{}.tmp", std::process::id()));
    std::fs::write(&tmp, bytes)
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Error::io(path, e)
        })
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
