//! Output formats for `tags` and `graph`, kept apart from the logic.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use crate::config::env_name;
use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::project::Hashed;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TagsFormat {
    Text,
    Json,
    Env,
    Github,
}

/// The services to show, sorted by name.
pub fn tags(format: TagsFormat, shown: &[&Hashed]) -> String {
    let mut s = String::new();
    match format {
        TagsFormat::Text => {
            for h in shown {
                let _ = writeln!(s, "{}\t{}", h.name, h.image());
            }
        }
        TagsFormat::Env => {
            for h in shown {
                let _ = writeln!(s, "TAGSMITH_TAG_{}={}", env_name(&h.name), h.tag);
            }
        }
        TagsFormat::Github => {
            for h in shown {
                let _ = writeln!(s, "{}-tag={}", h.name, h.tag);
                let _ = writeln!(s, "{}-image={}", h.name, h.image());
            }
        }
        TagsFormat::Json => {
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
                services: shown
                    .iter()
                    .map(|h| Svc {
                        name: &h.name,
                        tag: &h.tag,
                        image: h.image(),
                        depends_on: h.deps.iter().map(|d| d.name.as_str()).collect(),
                    })
                    .collect(),
            };
            s = serde_json::to_string_pretty(&doc).expect("serializable") + "\n";
        }
    }
    s
}

/// Services in build order with their direct dependencies.
pub fn graph(graph: &Graph, dot: bool) -> String {
    let order = graph.order();
    let mut s = String::new();
    if dot {
        s.push_str("digraph tagsmith {\n  rankdir=LR;\n");
        for n in &order {
            let _ = writeln!(s, "  \"{n}\";");
            for d in graph.deps(n) {
                let _ = writeln!(s, "  \"{n}\" -> \"{d}\";");
            }
        }
        s.push_str("}\n");
    } else {
        let width = order.iter().map(String::len).max().unwrap_or(0);
        for n in &order {
            let deps: Vec<&str> = graph.deps(n).collect();
            if deps.is_empty() {
                let _ = writeln!(s, "{n}");
            } else {
                let _ = writeln!(s, "{n:<width$}  <- {}", deps.join(", "));
            }
        }
    }
    s
}

/// Sorted view of the hashed services that were asked for.
pub fn pick<'a>(all: &'a BTreeMap<String, Hashed>, names: &[String]) -> Vec<&'a Hashed> {
    all.values()
        .filter(|h| names.is_empty() || names.contains(&h.name))
        .collect()
}

/// Reads a JSON file that tagsmith wrote earlier; a bad one is a located error.
pub fn read_json<T: serde::de::DeserializeOwned>(file: &std::path::Path, what: &str) -> Result<T> {
    let text = std::fs::read_to_string(file).map_err(|e| Error::io(file, e))?;
    serde_json::from_str(&text).map_err(|e| {
        Error::at(
            file,
            e.line() as u64,
            e.column() as u64,
            format!("not {what}: {e}"),
        )
    })
}
