//! `graph`: services in build order with their direct dependencies.

use std::fmt::Write as _;

use super::Report;
use crate::error::Result;
use crate::project::Project;

pub struct Options {
    /// Graphviz dot instead of text.
    pub dot: bool,
}

pub struct GraphReport {
    dot: bool,
    /// Every service in build order, with its direct dependencies.
    services: Vec<(String, Vec<String>)>,
}

pub fn run(project: &Project, options: Options) -> Result<GraphReport> {
    let graph = &project.graph;
    let services = graph
        .order()
        .into_iter()
        .map(|n| {
            let deps = graph.deps(&n).map(str::to_string).collect();
            (n, deps)
        })
        .collect();
    Ok(GraphReport {
        dot: options.dot,
        services,
    })
}

impl Report for GraphReport {
    fn stdout(&self) -> Vec<u8> {
        let mut s = String::new();
        if self.dot {
            s.push_str("digraph tagsmith {\n  rankdir=LR;\n");
            for (n, deps) in &self.services {
                let _ = writeln!(s, "  \"{n}\";");
                for d in deps {
                    let _ = writeln!(s, "  \"{n}\" -> \"{d}\";");
                }
            }
            s.push_str("}\n");
        } else {
            let width = self
                .services
                .iter()
                .map(|(n, _)| n.len())
                .max()
                .unwrap_or(0);
            for (n, deps) in &self.services {
                if deps.is_empty() {
                    let _ = writeln!(s, "{n}");
                } else {
                    let _ = writeln!(s, "{n:<width$}  <- {}", deps.join(", "));
                }
            }
        }
        s.into_bytes()
    }
}
