//! BuildKit's status stream as plain lines, the way `docker build
//! --progress=plain` shows it: `#N <step>`, `#N <log line>`, `#N CACHED`,
//! `#N DONE 0.3s`, `#N ERROR: …`. BuildKit re-sends a vertex as its state
//! changes; a line is printed only when something changed.

use std::collections::{HashMap, VecDeque};

use super::proto::{StatusResponse, Timestamp};

/// How many log lines of the failing step a failure shows.
pub const TAIL: usize = 10;

#[derive(Default)]
struct Step {
    number: usize,
    name: String,
    started: bool,
    cached: bool,
    done: bool,
    error: String,
    start: Option<Timestamp>,
    /// The last lines of output, and a line not yet ended.
    tail: VecDeque<String>,
    partial: String,
}

#[derive(Default)]
pub struct Progress {
    steps: HashMap<String, Step>,
    order: Vec<String>,
}

impl Progress {
    /// Applies one status update, calling `line` for every line to show.
    pub fn update(&mut self, status: StatusResponse, line: &mut dyn FnMut(&str)) {
        for v in status.vertexes {
            let next = self.order.len() + 1;
            let step = self.steps.entry(v.digest.clone()).or_insert_with(|| Step {
                number: next,
                name: v.name.clone(),
                ..Step::default()
            });
            if step.number == next {
                self.order.push(v.digest.clone());
            }
            let n = step.number;
            if v.started.is_some() && !step.started {
                step.started = true;
                step.start = v.started;
                line(&format!("#{n} {}", step.name));
            }
            if v.cached && !step.cached {
                step.cached = true;
                if !step.started {
                    line(&format!("#{n} {}", step.name));
                    step.started = true;
                }
                line(&format!("#{n} CACHED"));
            }
            if !v.error.is_empty() && step.error.is_empty() {
                step.error = v.error.clone();
                if is_cache_import(&step.name) && v.error.ends_with("not found") {
                    line(&format!("#{n} no cache image yet"));
                } else {
                    line(&format!("#{n} ERROR: {}", v.error));
                }
            }
            if let (Some(end), false) = (v.completed, step.done) {
                step.done = true;
                if v.error.is_empty() && !step.cached {
                    let secs = step.start.map_or(0.0, |s| seconds(end) - seconds(s));
                    line(&format!("#{n} DONE {secs:.1}s"));
                }
            }
        }
        for log in status.logs {
            let Some(step) = self.steps.get_mut(&log.vertex) else {
                continue;
            };
            step.partial.push_str(&String::from_utf8_lossy(&log.msg));
            while let Some(i) = step.partial.find('\n') {
                let text: String = step.partial.drain(..=i).collect();
                let text = text.trim_end_matches(['\n', '\r']).to_string();
                line(&format!("#{} {text}", step.number));
                step.tail.push_back(text);
                if step.tail.len() > TAIL {
                    step.tail.pop_front();
                }
            }
        }
    }

    /// The step that failed, with its last lines of output.
    pub fn failed_step(&self) -> Option<(&str, Vec<&str>)> {
        self.order
            .iter()
            .map(|d| &self.steps[d])
            .find(|s| !s.error.is_empty() && !is_cache_import(&s.name))
            .map(|s| {
                let mut tail: Vec<&str> = s.tail.iter().map(String::as_str).collect();
                if !s.partial.is_empty() {
                    tail.push(&s.partial);
                }
                (s.name.as_str(), tail)
            })
    }

    /// Cache imports that failed for another reason than a missing tag: the
    /// build then runs without the cache, so the user should hear of it.
    pub fn cache_import_failures(&self) -> Vec<(&str, &str)> {
        self.steps
            .values()
            .filter(|s| is_cache_import(&s.name) && !s.error.is_empty())
            .filter(|s| !s.error.ends_with("not found"))
            .map(|s| (s.name.as_str(), s.error.as_str()))
            .collect()
    }
}

fn is_cache_import(name: &str) -> bool {
    name.starts_with("importing cache manifest from")
}

fn seconds(t: Timestamp) -> f64 {
    t.seconds as f64 + f64::from(t.nanos) / 1e9
}

#[cfg(test)]
mod tests {
    use super::super::proto::{Vertex, VertexLog};
    use super::*;

    fn vertex(digest: &str, name: &str, started: i64, completed: Option<i64>) -> Vertex {
        Vertex {
            digest: digest.into(),
            name: name.into(),
            started: Some(Timestamp {
                seconds: started,
                nanos: 0,
            }),
            completed: completed.map(|s| Timestamp {
                seconds: s,
                nanos: 0,
            }),
            ..Vertex::default()
        }
    }

    #[test]
    fn steps_logs_and_failures_become_lines() {
        let mut p = Progress::default();
        let mut out = Vec::new();
        let mut push = |l: &str| out.push(l.to_string());
        p.update(
            StatusResponse {
                vertexes: vec![vertex("a", "[1/2] FROM base", 10, None)],
                ..StatusResponse::default()
            },
            &mut push,
        );
        // The same vertex again, now done; and a second one, cached.
        let mut cached = vertex("b", "[2/2] RUN make", 11, Some(11));
        cached.cached = true;
        p.update(
            StatusResponse {
                vertexes: vec![vertex("a", "[1/2] FROM base", 10, Some(12)), cached],
                ..StatusResponse::default()
            },
            &mut push,
        );
        let mut failing = vertex("c", "[3/3] RUN test", 12, None);
        p.update(
            StatusResponse {
                vertexes: vec![failing.clone()],
                logs: vec![VertexLog {
                    vertex: "c".into(),
                    msg: b"one\ntw".to_vec(),
                    ..VertexLog::default()
                }],
                ..StatusResponse::default()
            },
            &mut push,
        );
        failing.error = "exit code: 3".into();
        failing.completed = Some(Timestamp {
            seconds: 13,
            nanos: 0,
        });
        p.update(
            StatusResponse {
                vertexes: vec![failing],
                logs: vec![VertexLog {
                    vertex: "c".into(),
                    msg: b"o\n".to_vec(),
                    ..VertexLog::default()
                }],
                ..StatusResponse::default()
            },
            &mut push,
        );
        assert_eq!(
            out,
            [
                "#1 [1/2] FROM base",
                "#1 DONE 2.0s",
                "#2 [2/2] RUN make",
                "#2 CACHED",
                "#3 [3/3] RUN test",
                "#3 one",
                "#3 ERROR: exit code: 3",
                "#3 two",
            ]
        );
        assert_eq!(
            p.failed_step(),
            Some(("[3/3] RUN test", vec!["one", "two"]))
        );
    }
}
