//! `plan`: which services a CI run must build (their tag is not in the
//! registry), grouped into waves for fanning builds out over runners: a
//! service's wave is one more than the highest wave among its missing
//! dependencies. The registry is the coordination: each runner builds its
//! services with `build --push`, and finds earlier waves' images there.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

use serde::Serialize;

use super::Report;
use super::build::plan::{Need, Presence, check};
use crate::error::{Error, Result};
use crate::project::Project;
use crate::registry::Registry;

/// `wave<i>` outputs written even when empty, so a workflow with a fixed
/// number of wave jobs can skip the empty ones.
pub const GITHUB_WAVES: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    Github,
}

pub struct Options {
    pub services: Vec<String>,
    pub format: Format,
    /// `$GITHUB_OUTPUT`, for [`Format::Github`].
    pub github_output: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Planned {
    pub name: String,
    pub tag: String,
    pub image: String,
    pub wave: usize,
    /// Its missing dependencies.
    pub needs: Vec<String>,
}

pub struct PlanReport {
    format: Format,
    waves: Vec<Vec<String>>,
    services: Vec<Planned>,
    appended: bool,
}

pub fn run(project: &Project, options: Options) -> Result<PlanReport> {
    let github_output = match options.format {
        Format::Github => Some(options.github_output.clone().ok_or_else(|| {
            Error::user("--format github appends to the file named by $GITHUB_OUTPUT, which is not set (it is set inside GitHub Actions steps)")
        })?),
        _ => None,
    };
    let order = project.select(&options.services)?;
    let hashed = project.hash(&order)?;
    let config = &project.config;
    let registry = Registry::for_hosts(
        order.iter().map(|n| hashed[n].repository.host()),
        &config.insecure_registries,
        config.retry_deadline,
    )?;
    let needs =
        super::runtime(2)?.block_on(check(&order, &hashed, Presence::Registry(&registry)))?;
    let mut failures = Vec::new();
    let mut wave: BTreeMap<&str, usize> = BTreeMap::new();
    let mut services = Vec::new();
    for name in &order {
        match &needs[name] {
            Need::Present { .. } => continue,
            Need::Unknown { error } => {
                failures.push(Error::user(format!("{name}: {error}")));
                continue;
            }
            Need::Build { .. } => {}
        }
        let missing: Vec<String> = project
            .graph
            .deps(name)
            .filter(|d| wave.contains_key(d))
            .map(str::to_string)
            .collect();
        let w = missing
            .iter()
            .map(|d| wave[d.as_str()] + 1)
            .max()
            .unwrap_or(0);
        wave.insert(name, w);
        let h = &hashed[name];
        services.push(Planned {
            name: name.clone(),
            tag: h.tag.clone(),
            image: h.image().to_string(),
            wave: w,
            needs: missing,
        });
    }
    if !failures.is_empty() {
        return Err(Error::many(
            failures,
            "no plan: the registry could not be asked about every service",
        ));
    }
    let count = services.iter().map(|s| s.wave + 1).max().unwrap_or(0);
    let mut waves = vec![Vec::new(); count];
    for s in &services {
        waves[s.wave].push(s.name.clone());
    }
    for w in &mut waves {
        w.sort();
    }
    services.sort_by(|a, b| (a.wave, &a.name).cmp(&(b.wave, &b.name)));
    let mut report = PlanReport {
        format: options.format,
        waves,
        services,
        appended: false,
    };
    if let Some(file) = github_output {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&file)
            .map_err(|e| Error::io(&file, e))?;
        f.write_all(&report.render())
            .map_err(|e| Error::io(&file, e))?;
        report.appended = true;
    }
    Ok(report)
}

impl PlanReport {
    fn render(&self) -> Vec<u8> {
        let mut s = String::new();
        match self.format {
            Format::Text if self.waves.is_empty() => {
                s.push_str("nothing to build: every tag is in the registry\n")
            }
            Format::Text => {
                for (i, w) in self.waves.iter().enumerate() {
                    let _ = writeln!(s, "wave {i}: {}", w.join(" "));
                }
            }
            Format::Json => {
                #[derive(Serialize)]
                struct Doc<'a> {
                    version: u32,
                    waves: &'a [Vec<String>],
                    services: &'a [Planned],
                }
                s = serde_json::to_string_pretty(&Doc {
                    version: 1,
                    waves: &self.waves,
                    services: &self.services,
                })
                .expect("serializable")
                    + "\n";
            }
            Format::Github => {
                let _ = writeln!(s, "waves={}", self.waves.len());
                for i in 0..self.waves.len().max(GITHUB_WAVES) {
                    let empty = Vec::new();
                    let names = self.waves.get(i).unwrap_or(&empty);
                    let _ = writeln!(
                        s,
                        "wave{i}={}",
                        serde_json::to_string(names).expect("serializable")
                    );
                }
                let _ = writeln!(s, "any={}", !self.waves.is_empty());
            }
        }
        s.into_bytes()
    }
}

impl Report for PlanReport {
    fn stdout(&self) -> Vec<u8> {
        if self.appended {
            Vec::new()
        } else {
            self.render()
        }
    }
}
