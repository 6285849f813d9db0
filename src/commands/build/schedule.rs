//! Dependency-ordered, bounded-parallel execution: a job starts as soon as
//! its dependencies have finished and a slot is free; a job whose
//! dependency failed (or was blocked) is blocked and never starts.
//! Jobs run as futures polled together, so they may borrow from the caller.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

/// What happened to a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done<T> {
    Ran(T),
    /// Not started because this dependency failed or was blocked.
    Blocked {
        by: String,
    },
}

/// What the caller is told as the schedule goes.
pub enum Event<'a, T> {
    Started {
        name: &'a str,
        running: Vec<&'a str>,
    },
    Finished {
        name: &'a str,
        result: &'a T,
        finished: usize,
        total: usize,
    },
    Blocked {
        name: &'a str,
        by: &'a str,
    },
}

/// The jobs to run and how they relate.
pub struct Schedule<'a> {
    /// The jobs, dependencies first.
    pub order: &'a [String],
    /// Each job's direct dependencies; those that are not jobs count as done.
    pub deps: &'a dyn Fn(&str) -> Vec<String>,
    /// Dependencies that failed before the schedule started.
    pub failed: &'a BTreeSet<String>,
    /// At most this many jobs at once (at least 1).
    pub limit: usize,
}

impl<'a> Schedule<'a> {
    /// Runs every job with `start`; `failed` says whether a result blocks
    /// dependents. Returns each job's fate in `order`.
    pub async fn run<T, Fut>(
        &self,
        mut start: impl FnMut(&'a str) -> Fut,
        failed: impl Fn(&T) -> bool,
        mut event: impl FnMut(Event<'_, T>),
    ) -> Vec<(String, Done<T>)>
    where
        Fut: Future<Output = T>,
    {
        let jobs: BTreeSet<&str> = self.order.iter().map(String::as_str).collect();
        let mut done: BTreeMap<String, Done<T>> = BTreeMap::new();
        let mut broken: BTreeSet<String> = self.failed.clone();
        let mut pending: Vec<&'a str> = self.order.iter().map(String::as_str).collect();
        let mut running = FuturesUnordered::new();
        let mut running_names: BTreeSet<&str> = BTreeSet::new();
        let total = pending.len();
        let mut finished = 0;
        loop {
            let mut i = 0;
            while i < pending.len() {
                let name = pending[i];
                let deps = (self.deps)(name);
                if let Some(by) = deps.iter().find(|d| broken.contains(*d)) {
                    event(Event::Blocked { name, by });
                    broken.insert(name.to_string());
                    done.insert(name.to_string(), Done::Blocked { by: by.clone() });
                    pending.remove(i);
                    continue;
                }
                let ready = deps
                    .iter()
                    .all(|d| !jobs.contains(d.as_str()) || done.contains_key(d));
                if ready && running.len() < self.limit.max(1) {
                    pending.remove(i);
                    running_names.insert(name);
                    event(Event::Started {
                        name,
                        running: running_names.iter().copied().collect(),
                    });
                    let fut = start(name);
                    running.push(async move { (name, fut.await) });
                    continue;
                }
                i += 1;
            }
            let Some((name, result)) = running.next().await else {
                break;
            };
            running_names.remove(name);
            finished += 1;
            event(Event::Finished {
                name,
                result: &result,
                finished,
                total,
            });
            if failed(&result) {
                broken.insert(name.to_string());
            }
            done.insert(name.to_string(), Done::Ran(result));
        }
        self.order
            .iter()
            .filter_map(|n| done.remove(n).map(|d| (n.clone(), d)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::time::Duration;

    fn deps_of(
        edges: &'static [(&'static str, &'static [&'static str])],
    ) -> impl Fn(&str) -> Vec<String> {
        move |n| {
            edges
                .iter()
                .find(|(m, _)| *m == n)
                .map(|(_, d)| d.iter().map(|s| s.to_string()).collect())
                .unwrap_or_default()
        }
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    }

    #[test]
    fn dependencies_first_and_at_most_limit_at_once() {
        const EDGES: &[(&str, &[&str])] = &[
            ("base", &[]),
            ("api", &["base"]),
            ("web", &["base"]),
            ("solo", &[]),
        ];
        let order: Vec<String> = ["base", "solo", "api", "web"].map(String::from).to_vec();
        let deps = deps_of(EDGES);
        let log = Mutex::new(Vec::new());
        let peak = Mutex::new(0);
        let schedule = Schedule {
            order: &order,
            deps: &deps,
            failed: &BTreeSet::new(),
            limit: 2,
        };
        let results = runtime().block_on(schedule.run(
            |name| {
                let name = name.to_string();
                let log = &log;
                async move {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    log.lock().unwrap().push(name.clone());
                    name
                }
            },
            |_| false,
            |e| {
                if let Event::Started { running, .. } = e {
                    let mut p = peak.lock().unwrap();
                    *p = (*p).max(running.len());
                }
            },
        ));
        let log = log.into_inner().unwrap();
        let at = |n: &str| log.iter().position(|x| x == n).unwrap();
        assert!(at("base") < at("api") && at("base") < at("web"), "{log:?}");
        assert_eq!(*peak.lock().unwrap(), 2);
        assert!(results.iter().all(|(n, d)| *d == Done::Ran(n.clone())));
    }

    #[test]
    fn a_failure_blocks_dependents_transitively_and_nothing_else() {
        const EDGES: &[(&str, &[&str])] = &[
            ("base", &[]),
            ("api", &["base"]),
            ("edge", &["api"]),
            ("solo", &[]),
            ("late", &["gone"]),
        ];
        let order: Vec<String> = ["base", "solo", "api", "edge", "late"]
            .map(String::from)
            .to_vec();
        let deps = deps_of(EDGES);
        let failed_before = BTreeSet::from(["gone".to_string()]);
        let schedule = Schedule {
            order: &order,
            deps: &deps,
            failed: &failed_before,
            limit: 4,
        };
        let results: BTreeMap<String, Done<bool>> = runtime()
            .block_on(schedule.run(
                |name| {
                    let ok = name != "base";
                    async move { ok }
                },
                |ok| !ok,
                |_| {},
            ))
            .into_iter()
            .collect();
        assert_eq!(results["base"], Done::Ran(false));
        assert_eq!(results["solo"], Done::Ran(true));
        assert_eq!(results["api"], Done::Blocked { by: "base".into() });
        assert_eq!(results["edge"], Done::Blocked { by: "api".into() });
        assert_eq!(results["late"], Done::Blocked { by: "gone".into() });
    }
}
