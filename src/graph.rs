//! The dependency graph between services: build order and cycle detection.

use std::collections::{BTreeMap, BTreeSet};

/// Services with their direct dependencies.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    deps: BTreeMap<String, BTreeSet<String>>,
}

impl Graph {
    /// `deps` maps every service to its direct dependencies (all known services).
    pub fn new(deps: BTreeMap<String, BTreeSet<String>>) -> Result<Graph, Vec<String>> {
        let graph = Graph { deps };
        match graph.find_cycle() {
            Some(cycle) => Err(cycle),
            None => Ok(graph),
        }
    }

    pub fn deps(&self, name: &str) -> impl Iterator<Item = &str> {
        self.deps
            .get(name)
            .into_iter()
            .flatten()
            .map(String::as_str)
    }

    /// Services that depend directly on `name`.
    pub fn dependents(&self, name: &str) -> impl Iterator<Item = &str> {
        self.deps
            .iter()
            .filter(move |(_, d)| d.contains(name))
            .map(|(n, _)| n.as_str())
    }

    /// `roots` and everything they depend on, in build order (dependencies
    /// first, ties by name).
    pub fn closure<'a>(&'a self, roots: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        let mut wanted = BTreeSet::new();
        let mut stack: Vec<&str> = roots.into_iter().collect();
        while let Some(n) = stack.pop() {
            if wanted.insert(n.to_string()) {
                stack.extend(self.deps(n));
            }
        }
        self.order()
            .into_iter()
            .filter(|n| wanted.contains(n))
            .collect()
    }

    /// Every service in build order: Kahn's algorithm, smallest name first.
    pub fn order(&self) -> Vec<String> {
        let mut remaining: BTreeMap<&str, usize> = self
            .deps
            .iter()
            .map(|(n, d)| (n.as_str(), d.len()))
            .collect();
        let mut ready: BTreeSet<&str> = remaining
            .iter()
            .filter(|(_, c)| **c == 0)
            .map(|(n, _)| *n)
            .collect();
        let mut order = Vec::new();
        while let Some(n) = ready.pop_first() {
            remaining.remove(n);
            order.push(n.to_string());
            for dependent in self.dependents(n) {
                let count = remaining.get_mut(dependent).expect("acyclic");
                *count -= 1;
                if *count == 0 {
                    ready.insert(dependent);
                }
            }
        }
        order
    }

    /// A cycle as a path `[a, b, a]`, if there is one.
    fn find_cycle(&self) -> Option<Vec<String>> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            Active,
            Done,
        }
        fn dfs<'a>(
            g: &'a Graph,
            n: &'a str,
            marks: &mut BTreeMap<&'a str, Mark>,
            path: &mut Vec<&'a str>,
        ) -> Option<Vec<String>> {
            match marks.get(n) {
                Some(Mark::Done) => return None,
                Some(Mark::Active) => {
                    let start = path
                        .iter()
                        .position(|p| *p == n)
                        .expect("active node is on the path");
                    let mut cycle: Vec<String> =
                        path[start..].iter().map(|s| s.to_string()).collect();
                    cycle.push(n.to_string());
                    return Some(cycle);
                }
                None => {}
            }
            marks.insert(n, Mark::Active);
            path.push(n);
            for d in g.deps(n) {
                if let Some(c) = dfs(g, d, marks, path) {
                    return Some(c);
                }
            }
            path.pop();
            marks.insert(n, Mark::Done);
            None
        }
        let mut marks = BTreeMap::new();
        for n in self.deps.keys() {
            if let Some(c) = dfs(self, n, &mut marks, &mut Vec::new()) {
                return Some(c);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(&str, &[&str])]) -> Result<Graph, Vec<String>> {
        Graph::new(
            edges
                .iter()
                .map(|(n, d)| (n.to_string(), d.iter().map(|s| s.to_string()).collect()))
                .collect(),
        )
    }

    #[test]
    fn order_puts_dependencies_first() {
        let g = graph(&[
            ("api", &["base"]),
            ("base", &[]),
            ("web", &["base", "api"]),
            ("solo", &[]),
        ])
        .unwrap();
        assert_eq!(g.order(), ["base", "api", "solo", "web"]);
        assert_eq!(g.closure(["api"]), ["base", "api"]);
        assert_eq!(g.closure(["solo"]), ["solo"]);
    }

    #[test]
    fn cycles_are_reported_as_a_path() {
        let err = graph(&[("a", &["b"]), ("b", &["a"])]).unwrap_err();
        assert_eq!(err, ["a", "b", "a"]);
        let err = graph(&[("a", &["a"])]).unwrap_err();
        assert_eq!(err, ["a", "a"]);
        let err = graph(&[("x", &["a"]), ("a", &["b"]), ("b", &["c"]), ("c", &["a"])]).unwrap_err();
        assert_eq!(err, ["a", "b", "c", "a"]);
    }
}
