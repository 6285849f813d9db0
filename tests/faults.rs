//! Registry faults, injected by a proxy (tests/common/faultproxy.py) in
//! front of a real registry, for tagsmith's own checks and for the engine's
//! pushes: every fault kind is retried and the run succeeds within the
//! deadline; faults that outlast it fail exactly the services they hit.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::faults::{self, Entry, Fault, FaultProxy, Rule};
use common::infra::{self, Registry};
use common::*;

/// A registry, the proxy in front of it, and a copy of the demo pushing
/// through the proxy with `retry_deadline_seconds: deadline`. Dropping it
/// removes the images the tests built.
struct Setup {
    proxy: FaultProxy,
    _reg: Registry,
    demo: tempfile::TempDir,
    cfg: tempfile::TempDir,
}

impl Setup {
    fn new(deadline: u64) -> Setup {
        let reg = Registry::start(false);
        let proxy = FaultProxy::start(&reg.host());
        let demo = demo();
        infra::use_registry(demo.path(), &format!("{}/demo", proxy.host()));
        let config = demo.path().join("tagsmith.yaml");
        let text = std::fs::read_to_string(&config).unwrap();
        std::fs::write(
            &config,
            format!("retry_deadline_seconds: {deadline}\n{text}"),
        )
        .unwrap();
        Setup {
            proxy,
            _reg: reg,
            demo,
            cfg: infra::docker_config(None),
        }
    }

    fn dir(&self) -> &Path {
        self.demo.path()
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        infra::tagsmith(self.dir(), self.cfg.path(), args)
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "tagsmith {args:?}: {}\n{}\nproxy log:\n{}",
            stdout(&o),
            stderr(&o),
            faults::show(&self.proxy.since(0))
        );
        stdout(&o)
    }

    fn tag(&self, service: &str) -> String {
        tags(self.dir())[service].clone()
    }

    /// `^/v2/demo/<service's repository>/manifests/<its tag>$`.
    fn manifest_path(&self, service: &str) -> String {
        let repo = match service {
            "web" => "frontend/web",
            s => s,
        };
        format!("^/v2/demo/{repo}/manifests/{}$", self.tag(service))
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        drop(infra::ImagesOf(self.proxy.host()));
    }
}

/// The requests to `path` (a regex): one entry each (the proxy logs a
/// stall's end and a delay's start besides).
fn requests(log: &[Entry], method: &str, path: &str) -> Vec<Entry> {
    let re = regex::Regex::new(path).unwrap();
    log.iter()
        .filter(|e| e.method == method && re.is_match(&e.path))
        .filter(|e| !matches!(e.fault.as_deref(), Some("stall-end" | "delay")))
        .cloned()
        .collect()
}

fn line<'a>(out: &'a str, name: &str) -> &'a str {
    out.lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_default()
}

/// Asserts that the requests to `path` met `fault` `times` times and then
/// one got through; for 429, that each retry waited `Retry-After`.
fn assert_retried(log: &[Entry], method: &str, path: &str, fault: Fault, times: usize) {
    let seen = requests(log, method, path);
    let shown = faults::show(log);
    assert_eq!(
        seen.len(),
        times + 1,
        "{} faulted {times} times, then through: {shown}",
        fault.name()
    );
    for e in &seen[..times] {
        assert!(e.fault.is_some(), "{shown}");
    }
    let gaps: Vec<String> = seen
        .windows(2)
        .map(|p| format!("{:.2}s", p[1].t - p[0].t))
        .collect();
    eprintln!(
        "{method} {path}: {} then through; retried after {}",
        fault.name(),
        gaps.join(", ")
    );
    let last = seen.last().unwrap();
    assert!(
        last.fault.is_none() && last.status.is_some_and(|s| s < 500),
        "{shown}"
    );
    if let Fault::TooMany { retry_after } = fault {
        for pair in seen.windows(2) {
            assert!(
                pair[1].t - pair[0].t >= retry_after as f64 - 0.05,
                "Retry-After: {retry_after} honoured: {shown}"
            );
        }
    }
}

/// Each fault, twice on one service's manifest HEAD: `build --push
/// --dry-run` and `plan` retry it and answer exactly as without faults.
fn check_fault_recovers(fault: Fault) {
    // A request timeout of 2 s (a quarter of the deadline).
    let s = Setup::new(8);
    s.ok(&["build", "--push", "--quiet", "worker"]);
    let path = s.manifest_path("worker");

    s.proxy.rules(&[Rule::new("HEAD", &path, fault).times(2)]);
    let mark = s.proxy.mark();
    let start = Instant::now();
    let out = s.ok(&["build", "--push", "--dry-run"]);
    let took = start.elapsed();
    assert!(line(&out, "worker").ends_with("up-to-date"), "{out}");
    for name in ["base", "api", "web"] {
        assert!(
            line(&out, name).ends_with("build (not in registry)"),
            "{out}"
        );
    }
    assert_retried(&s.proxy.since(mark), "HEAD", &path, fault, 2);
    assert!(
        took < Duration::from_secs(8),
        "within the deadline: {took:?}"
    );

    s.proxy.rules(&[Rule::new("HEAD", &path, fault).times(2)]);
    let mark = s.proxy.mark();
    let out = s.ok(&["plan"]);
    assert_eq!(out, "wave 0: base\nwave 1: api web\n");
    assert_retried(&s.proxy.since(mark), "HEAD", &path, fault, 2);
}

#[test]
fn check_500_is_retried() {
    if faults::available("check_500_is_retried") {
        check_fault_recovers(Fault::Status(500));
    }
}

#[test]
fn check_502_is_retried() {
    if faults::available("check_502_is_retried") {
        check_fault_recovers(Fault::Status(502));
    }
}

#[test]
fn check_503_is_retried() {
    if faults::available("check_503_is_retried") {
        check_fault_recovers(Fault::Status(503));
    }
}

#[test]
fn check_429_waits_retry_after() {
    if faults::available("check_429_waits_retry_after") {
        check_fault_recovers(Fault::TooMany { retry_after: 1 });
    }
}

#[test]
fn check_reset_is_retried() {
    if faults::available("check_reset_is_retried") {
        check_fault_recovers(Fault::Reset);
    }
}

#[test]
fn check_stall_times_out_and_is_retried() {
    if faults::available("check_stall_times_out_and_is_retried") {
        check_fault_recovers(Fault::Stall(4.0));
    }
}

#[test]
fn check_truncated_answer_is_retried() {
    if faults::available("check_truncated_answer_is_retried") {
        check_fault_recovers(Fault::Truncate);
    }
}

/// A slow answer (1.5 s) within the request timeout (2 s, a quarter of the
/// deadline) is waited for, not retried.
#[test]
fn a_slow_answer_within_the_timeout_is_not_retried() {
    if !faults::available("a_slow_answer_within_the_timeout_is_not_retried") {
        return;
    }
    let s = Setup::new(8);
    let path = s.manifest_path("worker");
    s.proxy
        .rules(&[Rule::new("HEAD", &path, Fault::Delay(1.5))]);
    let mark = s.proxy.mark();
    let out = s.ok(&["build", "--push", "--dry-run", "worker"]);
    assert!(
        line(&out, "worker").ends_with("build (not in registry)"),
        "{out}"
    );
    let log = s.proxy.since(mark);
    let heads = requests(&log, "HEAD", &path);
    assert_eq!(heads.len(), 1, "{}", faults::show(&log));
}

/// A 429 whose Retry-After is beyond the deadline: nothing waits past the
/// deadline; the service's check fails at once, naming the 429.
#[test]
fn a_retry_after_beyond_the_deadline_is_reported_at_once() {
    if !faults::available("a_retry_after_beyond_the_deadline_is_reported_at_once") {
        return;
    }
    let s = Setup::new(4);
    let path = s.manifest_path("worker");
    s.proxy
        .rules(&[Rule::new("HEAD", &path, Fault::TooMany { retry_after: 30 })]);
    let start = Instant::now();
    let o = s.run(&["build", "--push", "--dry-run", "worker"]);
    let took = start.elapsed();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("failed: 429 Too Many Requests"),
        "{}",
        stderr(&o)
    );
    assert!(took < Duration::from_secs(2), "{took:?}");
}

/// Faults that outlast a 4 s deadline: exactly the services they hit fail,
/// each with a message naming the registry and the reason; the others are
/// checked (and built and pushed) as usual.
#[test]
fn check_faults_outlasting_the_deadline_fail_their_services_only() {
    if !faults::available("check_faults_outlasting_the_deadline_fail_their_services_only") {
        return;
    }
    let s = Setup::new(4);
    s.ok(&["build", "--push", "--quiet", "worker"]);
    let host = s.proxy.host();
    s.proxy.rules(&[
        Rule::new("HEAD", s.manifest_path("worker"), Fault::Status(503)),
        Rule::new("HEAD", s.manifest_path("web"), Fault::Stall(30.0)),
        Rule::new("HEAD", s.manifest_path("api"), Fault::Reset),
    ]);
    let reasons = [
        ("worker", "503 Service Unavailable"),
        ("web", "timed out"),
        ("api", "reset"),
    ];
    let check = |o: &std::process::Output, took: Duration| {
        assert_eq!(o.status.code(), Some(1), "{}", stderr(o));
        let err = stderr(o);
        for (name, reason) in reasons {
            let l = err
                .lines()
                .find(|l| l.contains(&format!("{name}: registry {host}: checking {host}/demo/")))
                .unwrap_or_else(|| panic!("{name} is reported: {err}"));
            assert!(
                l.contains(" attempts: ") && l.contains(reason),
                "{name}: {reason}: {l}"
            );
        }
        assert!(!err.contains("base: registry"), "{err}");
        assert!(
            took >= Duration::from_secs(3) && took < Duration::from_secs(9),
            "retried until the deadline, then reported: {took:?}"
        );
    };

    let start = Instant::now();
    let o = s.run(&["build", "--push", "--dry-run"]);
    check(&o, start.elapsed());
    let out = stdout(&o);
    assert!(
        line(&out, "base").ends_with("build (not in registry)"),
        "{out}"
    );
    for name in ["worker", "web", "api"] {
        assert!(
            line(&out, name).ends_with("unknown (the check failed)"),
            "{out}"
        );
    }

    let start = Instant::now();
    let o = s.run(&["plan"]);
    check(&o, start.elapsed());
    assert!(stderr(&o).contains("3 problems, no plan"), "{}", stderr(&o));

    // A real run: the base is built and pushed, the three fail.
    let report = s.dir().join("report.json");
    let start = Instant::now();
    let o = s.run(&[
        "build",
        "--push",
        "--quiet",
        "--report",
        report.to_str().unwrap(),
    ]);
    check(&o, start.elapsed());
    assert!(stderr(&o).contains("3 failed, 0 blocked"), "{}", stderr(&o));
    let statuses = infra::statuses(&report);
    assert_eq!(statuses["base"], "pushed");
    for name in ["worker", "web", "api"] {
        assert_eq!(statuses[name], "failed", "{statuses:?}");
    }
}

/// Each fault, twice on the manifest PUT of a push: the engine reports the
/// push failed, tagsmith pushes again, and the service is `pushed` with the
/// digest the registry holds for its tag.
fn push_fault_recovers(fault: Fault) {
    let s = Setup::new(8);
    let path = s.manifest_path("worker");
    s.proxy.rules(&[Rule::new("PUT", &path, fault).times(2)]);
    let mark = s.proxy.mark();
    let report = s.dir().join("report.json");
    let start = Instant::now();
    let o = s.run(&[
        "build",
        "--push",
        "--report",
        report.to_str().unwrap(),
        "worker",
    ]);
    let took = start.elapsed();
    assert!(
        o.status.success(),
        "{}\n{}",
        stderr(&o),
        faults::show(&s.proxy.since(mark))
    );
    let err = stderr(&o);
    assert_eq!(
        err.matches("worker | push failed (").count(),
        2,
        "two failed pushes said so: {err}"
    );
    assert_eq!(infra::statuses(&report)["worker"], "pushed");
    let digest = by_name(&std::fs::read_to_string(&report).unwrap(), "digest")["worker"].clone();
    assert_eq!(
        s._reg.stored("demo/worker", &s.tag("worker")),
        Some(digest),
        "pushed with the digest the registry holds"
    );
    assert_retried(&s.proxy.since(mark), "PUT", &path, fault, 2);
    assert!(
        took < Duration::from_secs(10),
        "within the deadline: {took:?}"
    );
}

#[test]
fn push_500_is_retried() {
    if faults::available("push_500_is_retried") {
        push_fault_recovers(Fault::Status(500));
    }
}

#[test]
fn push_502_is_retried() {
    if faults::available("push_502_is_retried") {
        push_fault_recovers(Fault::Status(502));
    }
}

#[test]
fn push_503_is_retried() {
    if faults::available("push_503_is_retried") {
        push_fault_recovers(Fault::Status(503));
    }
}

#[test]
fn push_reset_is_retried() {
    if faults::available("push_reset_is_retried") {
        push_fault_recovers(Fault::Reset);
    }
}

#[test]
fn push_truncated_answer_is_retried() {
    if faults::available("push_truncated_answer_is_retried") {
        push_fault_recovers(Fault::Truncate);
    }
}

/// Two pushes of the same layers at once (two CI jobs): while one commits
/// a blob, the registry may answer the other's manifest PUT with
/// MANIFEST_BLOB_UNKNOWN. The blob is there a moment later: pushed again.
#[test]
fn push_manifest_blob_unknown_is_retried() {
    if faults::available("push_manifest_blob_unknown_is_retried") {
        push_fault_recovers(Fault::Error {
            status: 400,
            code: "MANIFEST_BLOB_UNKNOWN",
        });
    }
}

/// The engine has no timeout of its own for a registry that stops
/// answering: a push with no progress for a quarter of the deadline is
/// abandoned and pushed again.
#[test]
fn push_stall_is_cut_and_retried() {
    if faults::available("push_stall_is_cut_and_retried") {
        push_fault_recovers(Fault::Stall(30.0));
    }
}

/// A registry rate-limiting a push (429, `Retry-After: 2`, for 2 s): the
/// engine does not pass Retry-After on, so tagsmith asks the registry
/// itself before pushing again, and waits as long as it says.
#[test]
fn push_429_waits_retry_after() {
    if !faults::available("push_429_waits_retry_after") {
        return;
    }
    let s = Setup::new(8);
    let path = s.manifest_path("worker");
    let limited = "^/v2/demo/worker/manifests/";
    s.proxy.rules(&[
        Rule::new("PUT", &path, Fault::TooMany { retry_after: 2 }).window(2.0, Some(limited))
    ]);
    let mark = s.proxy.mark();
    let report = s.dir().join("report.json");
    let o = s.run(&[
        "build",
        "--push",
        "--report",
        report.to_str().unwrap(),
        "worker",
    ]);
    let log = s.proxy.since(mark);
    assert!(o.status.success(), "{}\n{}", stderr(&o), faults::show(&log));
    assert_eq!(infra::statuses(&report)["worker"], "pushed");
    let puts = requests(&log, "PUT", &path);
    assert_eq!(
        puts.len(),
        2,
        "one limited push, one that went through: {}",
        faults::show(&log)
    );
    assert_eq!(puts[0].status, Some(429));
    assert!(puts[1].fault.is_none());
    let waited = puts[1].t - puts[0].t;
    eprintln!("PUT {path}: 429 (Retry-After: 2), pushed again after {waited:.2}s");
    assert!(
        waited >= 1.95,
        "pushed again only after Retry-After: {}",
        faults::show(&log)
    );
    let limited_answers = log.iter().filter(|e| e.status == Some(429)).count();
    assert!(
        limited_answers <= 2,
        "nothing but one question asked while limited: {}",
        faults::show(&log)
    );
}

/// Push faults that outlast a 4 s deadline: the service fails with the
/// engine's reason and the number of attempts, its dependents are blocked,
/// the rest is pushed.
#[test]
fn push_faults_outlasting_the_deadline_fail_their_services_only() {
    if !faults::available("push_faults_outlasting_the_deadline_fail_their_services_only") {
        return;
    }
    let s = Setup::new(4);
    let report = s.dir().join("report.json");
    let build = || {
        let start = Instant::now();
        let o = s.run(&["build", "--push", "--report", report.to_str().unwrap()]);
        (o, start.elapsed())
    };

    // The base's manifest PUT always 503.
    s.proxy.rules(&[Rule::new(
        "PUT",
        s.manifest_path("base"),
        Fault::Status(503),
    )]);
    let (o, took) = build();
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    let base = err
        .lines()
        .find(|l| l.starts_with("base | error: "))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(
        base.contains(&format!("pushing {}/demo/base:", s.proxy.host()))
            && base.contains(" attempts: ")
            && base.contains("503 Service Unavailable"),
        "{base}"
    );
    eprintln!("{base} ({took:.1?})");
    assert!(err.contains("1 failed, 2 blocked"), "{err}");
    let statuses = infra::statuses(&report);
    assert_eq!(statuses["base"], "failed");
    assert_eq!(statuses["api"], "blocked");
    assert_eq!(statuses["web"], "blocked");
    assert_eq!(statuses["worker"], "pushed");
    assert!(took < Duration::from_secs(15), "{took:?}");
    assert_eq!(s._reg.stored("demo/base", &s.tag("base")), None);

    // The worker's manifest PUT never answered: each push is given up
    // after a second of silence (a quarter of the deadline).
    write(&s.dir().join("services/worker/worker.yaml"), "changed: 1\n");
    s.proxy.rules(&[Rule::new(
        "PUT",
        s.manifest_path("worker"),
        Fault::Stall(30.0),
    )]);
    let (o, took) = build();
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    let worker = err
        .lines()
        .find(|l| l.starts_with("worker | error: "))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(
        worker.contains(" attempts: ") && worker.contains("no progress for 1s"),
        "{worker}"
    );
    eprintln!("{worker} ({took:.1?})");
    let statuses = infra::statuses(&report);
    assert_eq!(statuses["worker"], "failed");
    for name in ["base", "api", "web"] {
        assert_eq!(statuses[name], "pushed", "{statuses:?}");
    }
    assert!(took < Duration::from_secs(15), "{took:?}");
}

/// A fault on a layer upload: the engine retries that itself (its
/// "Retrying in N seconds" countdown is progress, not a stall), and the
/// push goes through.
#[test]
fn a_layer_upload_fault_is_retried_by_the_engine() {
    if !faults::available("a_layer_upload_fault_is_retried_by_the_engine") {
        return;
    }
    let s = Setup::new(8);
    let uploads = "^/v2/demo/worker/blobs/uploads/";
    s.proxy
        .rules(&[Rule::new("PATCH", uploads, Fault::Reset).times(1)]);
    let mark = s.proxy.mark();
    let report = s.dir().join("report.json");
    let start = Instant::now();
    let o = s.run(&[
        "build",
        "--push",
        "--report",
        report.to_str().unwrap(),
        "worker",
    ]);
    let took = start.elapsed();
    let log = s.proxy.since(mark);
    assert!(o.status.success(), "{}\n{}", stderr(&o), faults::show(&log));
    assert!(
        requests(&log, "PATCH", uploads)
            .iter()
            .any(|e| e.fault.as_deref() == Some("reset")),
        "{}",
        faults::show(&log)
    );
    assert_eq!(infra::statuses(&report)["worker"], "pushed");
    eprintln!("a reset layer upload: pushed in {took:.1?}");
}

/// A registry behind a Bearer token realm (the proxy's): 50 services in 5
/// repositories. Each run fetches one token per repository scope however
/// many checks use it — anonymously, or with the docker config's
/// credentials — and a failing token service is retried like the registry.
#[test]
fn bearer_tokens_are_fetched_once_per_scope() {
    if !faults::available("bearer_tokens_are_fetched_once_per_scope") {
        return;
    }
    let reg = Registry::start(false);
    let proxy = FaultProxy::with_tokens(&reg.host());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let _images = infra::ImagesOf(proxy.host());
    let mut config = format!(
        "registry: {}/team\nretry_deadline_seconds: 10\nservices:\n",
        proxy.host()
    );
    for i in 0..50 {
        config.push_str(&format!(
            "  s{i:02}:\n    context: svc/s{i:02}\n    repository: r{}\n",
            i % 5
        ));
        write(
            &d.join(format!("svc/s{i:02}/Dockerfile")),
            "FROM scratch\nCOPY . /\n",
        );
        write(&d.join(format!("svc/s{i:02}/f")), &format!("{i}\n"));
    }
    write(&d.join("tagsmith.yaml"), &config);
    let scopes: Vec<String> = (0..5).map(|r| format!("team/r{r}:pull")).collect();
    let anonymous = infra::docker_config(None);
    let tokens = |log: &[Entry]| -> Vec<String> {
        let mut all: Vec<String> = log
            .iter()
            .filter(|e| e.by_tagsmith())
            .filter_map(|e| e.token_scopes.clone())
            .flatten()
            .collect();
        all.sort();
        all
    };
    let run = |cfg: &Path, args: &[&str]| {
        let mark = proxy.mark();
        let o = infra::tagsmith(d, cfg, args);
        let log = proxy.since(mark);
        assert!(
            o.status.success(),
            "{args:?}: {}\n{}",
            stderr(&o),
            faults::show(&log)
        );
        (stdout(&o), log)
    };

    for args in [&["build", "--push", "--dry-run"][..], &["plan"]] {
        let (out, log) = run(anonymous.path(), args);
        assert_eq!(tokens(&log), scopes, "{args:?}: one token per scope");
        assert!(log.iter().filter(|e| e.is_token()).all(|e| !e.basic));
        let heads = requests(&log, "HEAD", "/manifests/");
        assert_eq!(heads.len(), 50, "{}", faults::show(&log));
        assert!(
            heads.iter().all(|h| h.status == Some(404)),
            "{}",
            faults::show(&log)
        );
        if args[0] == "plan" {
            assert!(out.starts_with("wave 0: s00 s01"), "{out}");
        }
    }

    // The token service fails twice: retried, still one token per scope.
    proxy.rules(&[Rule::new("GET", "^/token", Fault::Status(503)).times(2)]);
    let (_, log) = run(anonymous.path(), &["build", "--push", "--dry-run"]);
    assert_eq!(tokens(&log), scopes, "{}", faults::show(&log));
    assert_eq!(
        log.iter()
            .filter(|e| e.path.starts_with("/token") && e.status == Some(503))
            .count(),
        2
    );
    proxy.clear();

    // With credentials, the token requests carry them; a push goes through
    // the realm too, and its checks reuse their tokens.
    let authed = infra::docker_config(Some(&proxy.host()));
    let report = d.join("report.json");
    let (_, log) = run(
        authed.path(),
        &[
            "build",
            "--push",
            "--quiet",
            "--report",
            report.to_str().unwrap(),
            "s00",
            "s05",
        ],
    );
    let statuses = infra::statuses(&report);
    assert_eq!(statuses["s00"], "pushed");
    assert_eq!(statuses["s05"], "pushed");
    // (The engine and its BuildKit fetch tokens of their own.)
    let ours: Vec<&Entry> = log
        .iter()
        .filter(|e| e.is_token() && e.by_tagsmith())
        .collect();
    assert_eq!(
        ours.iter()
            .map(|e| e.token_scopes.clone().unwrap())
            .collect::<Vec<_>>(),
        [["team/r0:pull"]],
        "one token for the checks of both: {}",
        faults::show(&log)
    );
    assert!(
        ours.iter().all(|e| e.basic),
        "with the configured credentials"
    );
    assert!(
        requests(&log, "PUT", "^/v2/team/r0/manifests/")
            .iter()
            .any(|e| e.status == Some(201)),
        "the engine pushed through the realm: {}",
        faults::show(&log)
    );
}

/// Many pushes at once queue in the engine (it uploads a few layers at a
/// time, "Waiting" for the rest): with a registry slow to take each layer
/// (1.5 s, within the 2 s request timeout), a push queued for longer than
/// the timeout is waiting, not stalled — no push is given up.
#[test]
fn pushes_queued_in_the_engine_are_not_stalls() {
    if !faults::available("pushes_queued_in_the_engine_are_not_stalls") {
        return;
    }
    let reg = Registry::start(false);
    let proxy = FaultProxy::start(&reg.host());
    let _images = infra::ImagesOf(proxy.host());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut config = format!(
        "registry: {}/q\nretry_deadline_seconds: 8\nservices:\n",
        proxy.host()
    );
    for i in 0..12 {
        config.push_str(&format!("  s{i:02}:\n    context: s{i:02}\n"));
        write(
            &d.join(format!("s{i:02}/Dockerfile")),
            "FROM scratch\nCOPY f /f\n",
        );
        write(
            &d.join(format!("s{i:02}/f")),
            &format!("{i} {}\n", std::process::id()),
        );
    }
    write(&d.join("tagsmith.yaml"), &config);
    proxy.rules(&[Rule::new("PATCH", "/blobs/uploads/", Fault::Delay(1.5))]);
    let cfg = infra::docker_config(None);
    let report = d.join("report.json");
    let o = infra::tagsmith(
        d,
        cfg.path(),
        &[
            "build",
            "--push",
            "--jobs",
            "12",
            "--report",
            report.to_str().unwrap(),
        ],
    );
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        !err.contains("no progress"),
        "no queued push was taken for a stall: {}",
        err.lines()
            .filter(|l| l.contains("no progress"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(infra::statuses(&report).values().all(|s| s == "pushed"));
}
