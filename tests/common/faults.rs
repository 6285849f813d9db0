//! The fault-injecting proxy (`faultproxy.py`) in front of a real registry:
//! started on a free 127.0.0.1 port, given rules as JSON, and read back
//! through its log of every request and fault.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/common/faultproxy.py");

/// Whether python3 is there (the engine and the registry binary are
/// `infra::available`'s business); panics under CI=true if not.
pub fn available(test: &str) -> bool {
    if !super::infra::available(test) {
        return false;
    }
    let python = Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if python {
        return true;
    }
    let what = format!("{test}: needs python3 for the fault proxy; run .ci/run to set it up");
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{what}");
    }
    eprintln!("SKIPPED {what}");
    false
}

/// What a rule does to the requests it matches.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// An error answer (500, 502, 503) without asking the registry.
    Status(u16),
    /// An error answer with this registry error code in its body.
    Error { status: u16, code: &'static str },
    /// 429 with `Retry-After: N`.
    TooMany { retry_after: u64 },
    /// A TCP reset before anything is answered.
    Reset,
    /// Nothing answered for N seconds, then the connection closes.
    Stall(f64),
    /// The registry's answer cut in half, then the connection closes.
    Truncate,
    /// Forwarded after N seconds (a slow registry, not a failure).
    Delay(f64),
}

impl Fault {
    pub fn name(&self) -> String {
        match self {
            Fault::Status(s) => format!("{s}"),
            Fault::Error { status, code } => format!("{status} {code}"),
            Fault::TooMany { retry_after } => format!("429 (Retry-After: {retry_after})"),
            Fault::Reset => "reset".into(),
            Fault::Stall(s) => format!("stall {s}s"),
            Fault::Truncate => "truncate".into(),
            Fault::Delay(s) => format!("delay {s}s"),
        }
    }
}

/// A rule: requests whose method (if given) and path (a regex searched in
/// the path with its query) match get the fault `times` times (always if
/// `None`), after `skip` matches that pass. With `window`, a rate limit: the first match starts it, and
/// every request whose path matches `window_path` (default: `path`), of
/// any method, gets the fault for that many seconds.
#[derive(Debug, Clone)]
pub struct Rule {
    pub method: Option<&'static str>,
    pub path: String,
    pub fault: Fault,
    pub times: Option<u32>,
    /// Matches that pass untouched before the rule applies.
    pub skip: u32,
    pub window: Option<(f64, Option<String>)>,
}

impl Rule {
    pub fn new(method: &'static str, path: impl Into<String>, fault: Fault) -> Rule {
        Rule {
            method: Some(method),
            path: path.into(),
            fault,
            times: None,
            skip: 0,
            window: None,
        }
    }

    pub fn skip(mut self, n: u32) -> Rule {
        self.skip = n;
        self
    }

    pub fn times(mut self, n: u32) -> Rule {
        self.times = Some(n);
        self
    }

    /// A rate limit of `seconds` over the paths `covers` matches, started by this rule's first match.
    pub fn window(mut self, seconds: f64, covers: Option<&str>) -> Rule {
        self.window = Some((seconds, covers.map(str::to_string)));
        self
    }

    fn json(&self) -> Value {
        let mut v = json!({ "path": self.path });
        if let Some(m) = self.method {
            v["method"] = json!(m);
        }
        if let Some(n) = self.times {
            v["times"] = json!(n);
        }
        if self.skip > 0 {
            v["skip"] = json!(self.skip);
        }
        if let Some((w, covers)) = &self.window {
            v["window"] = json!(w);
            if let Some(c) = covers {
                v["window_path"] = json!(c);
            }
        }
        match self.fault {
            Fault::Status(s) => {
                v["fault"] = json!("status");
                v["status"] = json!(s);
            }
            Fault::Error { status, code } => {
                v["fault"] = json!("status");
                v["status"] = json!(status);
                v["code"] = json!(code);
            }
            Fault::TooMany { retry_after } => {
                v["fault"] = json!("status");
                v["status"] = json!(429);
                v["retry_after"] = json!(retry_after);
            }
            Fault::Reset => v["fault"] = json!("reset"),
            Fault::Stall(s) => {
                v["fault"] = json!("stall");
                v["seconds"] = json!(s);
            }
            Fault::Truncate => v["fault"] = json!("truncate"),
            Fault::Delay(s) => {
                v["fault"] = json!("delay");
                v["seconds"] = json!(s);
            }
        }
        v
    }
}

/// One line of the proxy's log.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Seconds since the proxy started (its monotonic clock).
    pub t: f64,
    pub method: String,
    pub path: String,
    /// `status`, `reset`, `stall`, `stall-end`, `truncate`, or none.
    pub fault: Option<String>,
    /// The status the client got, if it got one.
    pub status: Option<u16>,
    /// For a token the proxy issued: its scopes.
    pub token_scopes: Option<Vec<String>>,
    /// For a token request: whether it came with Basic credentials.
    pub basic: bool,
    /// The client's User-Agent.
    pub agent: String,
}

impl Entry {
    /// Whether tagsmith sent it (not the engine, not BuildKit).
    pub fn by_tagsmith(&self) -> bool {
        self.agent.starts_with("tagsmith/")
    }
}

impl Entry {
    pub fn is_token(&self) -> bool {
        self.token_scopes.is_some()
    }
}

pub struct FaultProxy {
    child: Child,
    pub port: u16,
    log: PathBuf,
    rules: PathBuf,
    generation: std::cell::Cell<u64>,
    _dir: tempfile::TempDir,
}

impl FaultProxy {
    /// A proxy in front of the plain-HTTP registry at `upstream` (`host:port`).
    pub fn start(upstream: &str) -> FaultProxy {
        FaultProxy::spawn(upstream, false, None)
    }

    /// The same, and a Bearer token realm: the registry behind it then
    /// wants tokens, which the proxy issues to anyone (see faultproxy.py).
    pub fn with_tokens(upstream: &str) -> FaultProxy {
        FaultProxy::spawn(upstream, true, None)
    }

    /// The same, speaking HTTPS with this certificate and key (PEM files);
    /// plain HTTP gets Go's 400 "Client sent an HTTP request to an HTTPS server".
    pub fn with_tls(upstream: &str, cert: &std::path::Path, key: &std::path::Path) -> FaultProxy {
        FaultProxy::spawn(upstream, false, Some((cert, key)))
    }

    fn spawn(
        upstream: &str,
        token: bool,
        tls: Option<(&std::path::Path, &std::path::Path)>,
    ) -> FaultProxy {
        let dir = tempfile::tempdir().unwrap();
        let port_file = dir.path().join("port");
        let log = dir.path().join("log.jsonl");
        let rules = dir.path().join("rules.json");
        std::fs::write(&rules, "[]").unwrap();
        let mut cmd = Command::new("python3");
        cmd.arg(SCRIPT)
            .args(["--upstream", upstream])
            .arg("--port-file")
            .arg(&port_file)
            .arg("--log")
            .arg(&log)
            .arg("--rules")
            .arg(&rules)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if token {
            cmd.arg("--token");
        }
        if let Some((cert, key)) = tls {
            cmd.arg("--tls-cert").arg(cert).arg("--tls-key").arg(key);
        }
        let child = cmd.spawn().expect("python3 starts the fault proxy");
        let mut proxy = FaultProxy {
            child,
            port: 0,
            log,
            rules,
            generation: Default::default(),
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(p) = std::fs::read_to_string(&port_file)
                && let Ok(p) = p.trim().parse()
            {
                proxy.port = p;
                break;
            }
            if let Ok(Some(status)) = proxy.child.try_wait() {
                panic!("the fault proxy exited: {status}");
            }
            assert!(Instant::now() < deadline, "the fault proxy did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        proxy
    }

    /// `127.0.0.1:PORT`, the registry host for references through the proxy.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Replaces the rules (and resets their counts) from the next request on.
    pub fn rules(&self, rules: &[Rule]) {
        let generation = self.generation.get() + 1;
        self.generation.set(generation);
        let rules: Vec<Value> = rules.iter().map(Rule::json).collect();
        let text = json!({ "generation": generation, "rules": rules }).to_string();
        let tmp = self.rules.with_extension("tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &self.rules).unwrap();
    }

    /// No faults from now on.
    pub fn clear(&self) {
        self.rules(&[]);
    }

    /// A position in the log: [`Self::since`] reads what came after it.
    pub fn mark(&self) -> usize {
        self.entries_all().len()
    }

    /// Every request (and issued token) logged after `mark`.
    pub fn since(&self, mark: usize) -> Vec<Entry> {
        self.entries_all().into_iter().skip(mark).collect()
    }

    fn entries_all(&self) -> Vec<Entry> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v.get("control").is_none())
            .map(|v| Entry {
                t: v["t"].as_f64().unwrap_or_default(),
                method: v["method"].as_str().unwrap_or_default().to_string(),
                path: v["path"].as_str().unwrap_or_default().to_string(),
                fault: v["fault"].as_str().map(str::to_string),
                status: v["status"].as_u64().map(|s| s as u16),
                token_scopes: v["token_scopes"].as_array().map(|a| {
                    a.iter()
                        .map(|s| s.as_str().unwrap_or_default().to_string())
                        .collect()
                }),
                basic: v["basic"].as_bool().unwrap_or_default(),
                agent: v["agent"].as_str().unwrap_or_default().to_string(),
            })
            .collect()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The log as lines, for assertion messages.
pub fn show(entries: &[Entry]) -> String {
    entries
        .iter()
        .map(|e| {
            let token = match &e.token_scopes {
                Some(s) => format!(
                    " token for [{}]{}",
                    s.join(" "),
                    if e.basic { " with Basic" } else { "" }
                ),
                None => String::new(),
            };
            let agent = e.agent.split(['/', ' ']).next().unwrap_or_default();
            format!(
                "{:8.3} {agent:<8} {} {} {} {}{token}",
                e.t,
                e.method,
                e.path,
                e.fault.as_deref().unwrap_or("-"),
                e.status.map_or("-".to_string(), |s| s.to_string())
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}
