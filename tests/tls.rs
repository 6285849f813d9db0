//! HTTPS registries as the Docker engine treats them: on loopback (which
//! Docker counts as insecure: HTTPS without verification, plain HTTP only
//! as a fallback), and under a name that must be verified, with the CA and
//! client certificates in `/etc/docker/certs.d/<host:port>/`.

mod common;

use std::path::Path;

use common::faults::{self, Fault, FaultProxy, Rule};
use common::infra::{self, Registry, Serving};
use common::pki::{self, CertsD, HostsEntry, Pki};
use common::*;

/// The demo pushing to `registry`, with a short retry deadline.
fn project(registry: &str, deadline: u64) -> tempfile::TempDir {
    let demo = demo();
    infra::use_registry(demo.path(), &format!("{registry}/demo"));
    let config = demo.path().join("tagsmith.yaml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        format!("retry_deadline_seconds: {deadline}\n{text}"),
    )
    .unwrap();
    demo
}

fn ok(d: &Path, cfg: &Path, args: &[&str]) -> String {
    let o = infra::tagsmith(d, cfg, args);
    assert!(
        o.status.success(),
        "tagsmith {args:?}: {}\n{}",
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

/// `build --push` (with a report), then `render` with digests from the
/// registry; each pushed digest is the one the registry stores.
fn build_push_and_render(reg: &Registry, d: &Path, cfg: &Path, pushed: &[&str], extra: &[&str]) {
    let report = d.join("report.json");
    let mut args = vec![
        "build",
        "--push",
        "--quiet",
        "--report",
        report.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    ok(d, cfg, &args);
    let statuses = infra::statuses(&report);
    for (name, status) in &statuses {
        let want = if pushed.contains(&name.as_str()) {
            "pushed"
        } else {
            "up-to-date"
        };
        assert_eq!(status, want, "{name}: {statuses:?}");
    }
    let digests = by_name(&std::fs::read_to_string(&report).unwrap(), "digest");
    let tags = tags(d);
    assert_eq!(
        reg.stored("demo/worker", &tags["worker"]),
        Some(digests["worker"].clone()),
        "the registry has what the report says"
    );
    write(
        &d.join("t/pinned.yaml"),
        "image: << pinned \"worker\" >>\ndigest: << digest \"base\" >>\n",
    );
    let out = ok(d, cfg, &["render", "t"]);
    assert_eq!(
        out,
        format!(
            "image: {}/demo/worker:{}@{}\ndigest: {}\n",
            reg_host_of(d),
            tags["worker"],
            digests["worker"],
            digests["base"]
        )
    );
    let mut args = vec!["build", "--push", "--dry-run"];
    args.extend_from_slice(extra);
    let out = ok(d, cfg, &args);
    assert!(
        out.lines().all(|l| l.ends_with("up-to-date")),
        "everything is there now: {out}"
    );
}

/// The registry host a project's config names.
fn reg_host_of(d: &Path) -> String {
    let text = std::fs::read_to_string(d.join("tagsmith.yaml")).unwrap();
    let line = text.lines().find(|l| l.starts_with("registry:")).unwrap();
    line["registry:".len()..]
        .trim()
        .trim_end_matches("/demo")
        .to_string()
}

/// A registry on 127.0.0.1:PORT over HTTPS with a certificate from a CA of
/// our own: the engine (which counts 127.0.0.0/8 as insecure) pushes to it
/// without verifying, and so do tagsmith's checks — with or without the CA
/// in certs.d.
#[test]
fn https_registry_on_loopback() {
    if !pki::available("https_registry_on_loopback") {
        return;
    }
    let pki = Pki::new(&["127.0.0.1"], &["localhost"]);
    let (cert, key) = (pki.path("server.crt"), pki.path("server.key"));
    let reg = Registry::serve(Serving {
        tls: Some((&cert, &key)),
        ..Serving::default()
    });
    let _images = infra::ImagesOf(reg.host());
    let demo = project(&reg.host(), 8);
    let d = demo.path();
    let cfg = infra::docker_config(None);
    build_push_and_render(&reg, d, cfg.path(), &["base", "api", "web", "worker"], &[]);

    // With the CA where the engine looks for it, the same.
    let _ca = CertsD::install(&reg.host(), &[(pki.path("ca.crt"), "ca.crt")]);
    write(&d.join("services/worker/worker.yaml"), "changed: 1\n");
    build_push_and_render(&reg, d, cfg.path(), &["worker"], &[]);
}

/// The report: a registry on 127.0.0.1:PORT over HTTPS. A
/// transient failure of an HTTPS request must not send tagsmith over to
/// plain HTTP, which such a registry answers with 400 "Client sent an HTTP
/// request to an HTTPS server" — for every check after.
#[test]
fn a_transient_failure_on_loopback_https_stays_on_https() {
    if !pki::available("a_transient_failure_on_loopback_https_stays_on_https") {
        return;
    }
    let pki = Pki::new(&["127.0.0.1"], &["localhost"]);
    let reg = Registry::start(false);
    let proxy = FaultProxy::with_tls(
        &reg.host(),
        &pki.path("server.crt"),
        &pki.path("server.key"),
    );
    let _images = infra::ImagesOf(proxy.host());
    let demo = project(&proxy.host(), 8);
    let d = demo.path();
    let cfg = infra::docker_config(None);
    // The engine pushes through the HTTPS proxy.
    ok(d, cfg.path(), &["build", "--push", "--quiet", "worker"]);
    let tag = tags(d)["worker"].clone();
    for fault in [Fault::Reset, Fault::Truncate, Fault::Status(503)] {
        for first in ["GET", "HEAD"] {
            // The very first request of a run (learning the challenge), or a check.
            let rule = match first {
                "GET" => Rule::new("GET", "^/v2/$", fault).times(1),
                _ => {
                    Rule::new("HEAD", format!("^/v2/demo/worker/manifests/{tag}$"), fault).times(1)
                }
            };
            proxy.rules(&[rule]);
            let mark = proxy.mark();
            let out = ok(d, cfg.path(), &["build", "--push", "--dry-run"]);
            let log = proxy.since(mark);
            assert!(
                out.lines()
                    .find(|l| l.starts_with("worker"))
                    .is_some_and(|l| l.ends_with("up-to-date")),
                "{} on {first}: {out}",
                fault.name()
            );
            assert!(
                log.iter().all(|e| e.method != "PLAIN"),
                "{} on {first}: never plain HTTP to an HTTPS registry:\n{}",
                fault.name(),
                faults::show(&log)
            );
        }
    }
}

/// A unique host name for this test process.
fn name(what: &str) -> String {
    format!("tagsmith-{what}-{}.test", std::process::id())
}

/// A registry under a name resolving to an address outside 127.0.0.0/8:
/// Docker verifies its certificate, and so does tagsmith. Without the CA
/// in certs.d: one clear message naming the host and where the CA goes;
/// with it: build --push (the engine reads the same CA) and render work.
#[test]
fn a_verified_registry_needs_its_ca_in_certs_d() {
    if !pki::available("a_verified_registry_needs_its_ca_in_certs_d") {
        return;
    }
    let ip = pki::outside_ip().expect("an IPv4 address outside 127.0.0.0/8");
    let name = name("verified");
    let hosts = HostsEntry::add(&ip, &name);
    let pki = Pki::new(&[], &[&name]);
    let (cert, key) = (pki.path("server.crt"), pki.path("server.key"));
    let reg = Registry::serve(Serving {
        ip: Some(&ip),
        tls: Some((&cert, &key)),
        ..Serving::default()
    });
    let host = format!("{name}:{}", reg.port);
    let _images = infra::ImagesOf(host.clone());
    let demo = project(&host, 4);
    let d = demo.path();
    let cfg = infra::docker_config(None);

    let certs_d = format!("/etc/docker/certs.d/{host}/ca.crt");
    for args in [
        &["build", "--push", "--dry-run"][..],
        &["build", "--push"],
        &["plan"],
    ] {
        let o = infra::tagsmith(d, cfg.path(), args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.contains(&format!("registry {host}")) && err.contains(&certs_d),
            "{args:?}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{args:?}: one message: {err}");
        assert!(o.stdout.is_empty(), "{args:?}: {}", stdout(&o));
        eprintln!("{args:?}: {err}");
    }

    let _ca = CertsD::install(&host, &[(pki.path("ca.crt"), "ca.crt")]);
    hosts.settle();
    build_push_and_render(&reg, d, cfg.path(), &["base", "api", "web", "worker"], &[]);
}

/// Mutual TLS: a registry that wants a client certificate signed by its
/// client CA. With only the CA in certs.d: one message saying where
/// client.cert and client.key go; with them there, build --push (the
/// engine shows the same certificate) and render work.
#[test]
fn mutual_tls_takes_the_client_certificate_from_certs_d() {
    if !pki::available("mutual_tls_takes_the_client_certificate_from_certs_d") {
        return;
    }
    let ip = pki::outside_ip().expect("an IPv4 address outside 127.0.0.0/8");
    let name = name("mtls");
    let hosts = HostsEntry::add(&ip, &name);
    let pki = Pki::new(&[], &[&name]);
    let (cert, key, client_ca) = (
        pki.path("server.crt"),
        pki.path("server.key"),
        pki.path("client-ca.crt"),
    );
    let reg = Registry::serve(Serving {
        ip: Some(&ip),
        tls: Some((&cert, &key)),
        client_cas: Some(&client_ca),
        ..Serving::default()
    });
    let host = format!("{name}:{}", reg.port);
    let _images = infra::ImagesOf(host.clone());
    let demo = project(&host, 4);
    let d = demo.path();
    let cfg = infra::docker_config(None);

    let dir = format!("/etc/docker/certs.d/{host}/");
    {
        let _ca = CertsD::install(&host, &[(pki.path("ca.crt"), "ca.crt")]);
        let start = std::time::Instant::now();
        let o = infra::tagsmith(d, cfg.path(), &["build", "--push"]);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.contains(&format!("registry {host}"))
                && err.contains(&format!("client.cert and client.key in {dir}")),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "one message: {err}");
        assert!(
            start.elapsed() < std::time::Duration::from_secs(3),
            "not retried"
        );
        eprintln!("{err}");
    }
    let _certs = CertsD::install(
        &host,
        &[
            (pki.path("ca.crt"), "ca.crt"),
            (pki.path("client.cert"), "client.cert"),
            (pki.path("client.key"), "client.key"),
        ],
    );
    hosts.settle();
    build_push_and_render(&reg, d, cfg.path(), &["base", "api", "web", "worker"], &[]);
}

/// Docker's rule for insecure registries goes by address: a name that
/// resolves into 127.0.0.0/8 is insecure too, so the engine neither
/// verifies its certificate nor needs its CA — and neither may tagsmith,
/// or its checks fail where the engine's pushes work.
#[test]
fn a_name_resolving_to_loopback_is_insecure_as_for_docker() {
    if !pki::available("a_name_resolving_to_loopback_is_insecure_as_for_docker") {
        return;
    }
    let name = name("loopback");
    let hosts = HostsEntry::add("127.0.0.1", &name);
    let pki = Pki::new(&[], &[&name]);
    let (cert, key) = (pki.path("server.crt"), pki.path("server.key"));
    let reg = Registry::serve(Serving {
        tls: Some((&cert, &key)),
        ..Serving::default()
    });
    let host = format!("{name}:{}", reg.port);
    let _images = infra::ImagesOf(host.clone());
    let demo = project(&host, 4);
    let d = demo.path();
    let cfg = infra::docker_config(None);
    hosts.settle();
    build_push_and_render(&reg, d, cfg.path(), &["base", "api", "web", "worker"], &[]);
}
