//! `tags`: every selected service's tag, in one of several formats.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

use serde::Serialize;

use super::Report;
use crate::error::{Error, Result};
use crate::project::{Hashed, Project};
use crate::registry::reference::env_name;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `<name>\t<image>` lines.
    Text,
    Json,
    /// `TAGSMITH_TAG_<NAME>=<tag>` lines.
    Env,
    /// `<name>-tag=` and `<name>-image=` lines appended to `$GITHUB_OUTPUT`.
    Github,
    /// An `images:` list for kustomization.yaml.
    Kustomize,
    /// Helm values: `<service>: {image: {repository, tag}}`.
    Helm,
}

pub struct Options {
    /// Only these services (their dependencies are hashed, not shown).
    pub services: Vec<String>,
    pub format: Format,
    /// `$GITHUB_OUTPUT`, for [`Format::Github`].
    pub github_output: Option<PathBuf>,
    /// A `build --report` file: digests for the kustomize format.
    pub report: Option<PathBuf>,
}

pub struct TagsReport {
    format: Format,
    /// Sorted by name.
    shown: Vec<Hashed>,
    /// Whether the lines went to `$GITHUB_OUTPUT` instead of stdout.
    appended: bool,
    /// Registry digests by service, from a build report.
    digests: BTreeMap<String, String>,
}

pub fn run(project: &Project, options: Options) -> Result<TagsReport> {
    if options.report.is_some() && options.format != Format::Kustomize {
        return Err(Error::user(
            "--report gives digests to --format kustomize only; the other formats show tags",
        ));
    }
    let order = project.select(&options.services)?;
    let github_output = match options.format {
        Format::Github => Some(options.github_output.ok_or_else(|| {
            Error::user("--format github appends to the file named by $GITHUB_OUTPUT, which is not set (it is set inside GitHub Actions steps)")
        })?),
        _ => None,
    };
    let hashed = project.hash(&order)?;
    let digests = match &options.report {
        Some(file) => super::render::digests_from_report(file, &hashed)?
            .into_iter()
            .filter_map(|(name, digest)| Some((name, digest?)))
            .collect(),
        None => BTreeMap::new(),
    };
    let shown: Vec<Hashed> = hashed
        .into_values()
        .filter(|h| options.services.is_empty() || options.services.contains(&h.name))
        .collect();
    let mut report = TagsReport {
        format: options.format,
        shown,
        appended: false,
        digests,
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

impl TagsReport {
    fn render(&self) -> Vec<u8> {
        let mut s = String::new();
        match self.format {
            Format::Text => {
                for h in &self.shown {
                    let _ = writeln!(s, "{}\t{}", h.name, h.image());
                }
            }
            Format::Env => {
                for h in &self.shown {
                    let _ = writeln!(s, "TAGSMITH_TAG_{}={}", env_name(&h.name), h.tag);
                }
            }
            Format::Github => {
                for h in &self.shown {
                    let _ = writeln!(s, "{}-tag={}", h.name, h.tag);
                    let _ = writeln!(s, "{}-image={}", h.name, h.image());
                }
            }
            // Written by hand: keys in a fixed order, values that need no quoting
            // (references and hex), so the text is stable across versions.
            Format::Kustomize => {
                s.push_str("images:\n");
                let mut shown: Vec<&Hashed> = self.shown.iter().collect();
                shown.sort_by_key(|h| h.repository.to_string());
                for h in shown {
                    let _ = writeln!(s, "- name: {}\n  newTag: \"{}\"", h.repository, h.tag);
                    if let Some(d) = self.digests.get(&h.name) {
                        let _ = writeln!(s, "  digest: {d}");
                    }
                }
            }
            Format::Helm => {
                for h in &self.shown {
                    let _ = writeln!(
                        s,
                        "{}:\n  image:\n    repository: {}\n    tag: \"{}\"",
                        yaml_key(&h.name),
                        h.repository,
                        h.tag
                    );
                }
            }
            Format::Json => {
                #[derive(Serialize)]
                struct Doc<'a> {
                    version: u32,
                    services: Vec<Svc<'a>>,
                }
                #[derive(Serialize)]
                struct Svc<'a> {
                    name: &'a str,
                    tag: &'a str,
                    image: String,
                    depends_on: Vec<&'a str>,
                }
                let doc = Doc {
                    version: 1,
                    services: self
                        .shown
                        .iter()
                        .map(|h| Svc {
                            name: &h.name,
                            tag: &h.tag,
                            image: h.image().to_string(),
                            depends_on: h.deps.iter().map(|d| d.name.as_str()).collect(),
                        })
                        .collect(),
                };
                s = serde_json::to_string_pretty(&doc).expect("serializable") + "\n";
            }
        }
        s.into_bytes()
    }
}

/// A service name as a YAML key, quoted where a YAML 1.1 reader such as
/// Helm's would take it for a boolean, null or number (`on`, `no`, `1e3`).
fn yaml_key(name: &str) -> String {
    const WORDS: [&str; 9] = ["y", "n", "yes", "no", "on", "off", "true", "false", "null"];
    if WORDS.contains(&name) || name.starts_with(|c: char| c.is_ascii_digit()) {
        format!("\"{name}\"")
    } else {
        name.to_string()
    }
}

impl Report for TagsReport {
    fn stdout(&self) -> Vec<u8> {
        if self.appended {
            Vec::new()
        } else {
            self.render()
        }
    }
}
