//! Every kind of engine address, end to end through `tagsmith build`: TLS
//! with client certificates (a TLS-terminating proxy in front of the real
//! engine), ssh (a real sshd running `docker system dial-stdio`), docker
//! contexts on disk, and Podman's Docker-compatible service. Each failure
//! is one message on stderr that says what to fix, exit code 1.

mod common;

use std::ffi::OsString;
use std::path::Path;

use common::engines::{self, Ca, Podman, Proxy, Sshd, one_error, succeeded, tagsmith};
use common::infra;
use common::stdout;

fn os(s: impl Into<OsString>) -> OsString {
    s.into()
}

fn status_of(out: &str, service: &str) -> String {
    out.lines()
        .find(|l| l.split_whitespace().next() == Some(service))
        .unwrap_or_default()
        .to_string()
}

/// The image `app` of a project at its current tag.
fn image(dir: &Path, images: &engines::DockerImages) -> String {
    format!("{}/app:{}", images.0, common::tags(dir)["app"])
}

fn docker_has(image: &str) -> bool {
    std::process::Command::new("docker")
        .args(["image", "inspect", image])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn tls_engine_with_client_certificates_builds() {
    if !infra::available("tls_engine_with_client_certificates_builds")
        || !engines::tools(
            "tls_engine_with_client_certificates_builds",
            &["openssl", "python3"],
        )
    {
        return;
    }
    let ca = Ca::new("tagsmith test CA");
    let proxy = Proxy::tls(&ca.server("engine"), &ca);
    let certs = tempfile::tempdir().unwrap();
    engines::cert_files(certs.path(), &ca, Some(&ca.client("builder")));
    let (project, images) = engines::project("tls");
    let d = project.path();
    let env = [
        ("DOCKER_HOST", &os(proxy.host())),
        ("DOCKER_TLS_VERIFY", &os("1")),
        ("DOCKER_CERT_PATH", &os(certs.path())),
    ];

    // BuildKit (the default for Docker) opens a second, upgraded connection
    // for its session over the same TLS transport.
    let o = tagsmith(d, &env, &["build"]);
    let err = succeeded(&o, "build through TLS");
    assert!(
        status_of(&stdout(&o), "app").contains("built"),
        "{}",
        stdout(&o)
    );
    assert!(
        err.contains("app | #1 ") && err.contains("exporting to image"),
        "BuildKit's steps: {err}"
    );
    assert!(docker_has(&image(d, &images)));

    // --dry-run connects too, and asks the engine for the image.
    let o = tagsmith(d, &env, &["build", "--dry-run"]);
    succeeded(&o, "dry run through TLS");
    assert!(
        status_of(&stdout(&o), "app").ends_with("up-to-date"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn tls_engine_failures_say_what_to_fix() {
    if !infra::available("tls_engine_failures_say_what_to_fix")
        || !engines::tools(
            "tls_engine_failures_say_what_to_fix",
            &["openssl", "python3"],
        )
    {
        return;
    }
    let ca = Ca::new("tagsmith test CA");
    let other = Ca::new("another CA");
    let proxy = Proxy::tls(&ca.server("engine"), &ca);
    let plain = Proxy::plain();
    let (project, _images) = engines::project("tls-failures");
    let d = project.path();
    let dirs = tempfile::tempdir().unwrap();
    let certs = |name: &str, ca: &Ca, client: Option<&engines::Pair>| -> OsString {
        let dir = dirs.path().join(name);
        engines::cert_files(&dir, ca, client);
        dir.into_os_string()
    };
    let good = certs("good", &ca, Some(&ca.client("builder")));
    let tls = |host: String, cert_path: &OsString| {
        let env = [
            ("DOCKER_HOST", &os(host)),
            ("DOCKER_TLS_VERIFY", &os("1")),
            ("DOCKER_CERT_PATH", cert_path),
        ];
        tagsmith(d, &env, &["build", "--dry-run"])
    };
    let at = format!(
        "cannot reach the Docker engine at {} (DOCKER_HOST)",
        proxy.host()
    );
    let path = |dir: &OsString, file: &str| Path::new(dir).join(file).display().to_string();

    // A client certificate signed by a CA the engine does not trust.
    let foreign = certs("foreign-client", &ca, Some(&other.client("stranger")));
    one_error(
        &tls(proxy.host(), &foreign),
        &[
            &at,
            "refused the client certificate",
            &path(&foreign, "cert.pem"),
            "signed by a CA the engine trusts",
        ],
    );

    // No client certificate at all.
    let none = certs("no-client", &ca, None);
    one_error(
        &tls(proxy.host(), &none),
        &[
            &at,
            "without a client certificate",
            "put cert.pem and key.pem in",
            &Path::new(&none).display().to_string(),
            "DOCKER_CERT_PATH",
        ],
    );

    // The engine's certificate is not signed by the CA in ca.pem.
    let wrong_ca = certs("wrong-ca", &other, Some(&ca.client("builder")));
    one_error(
        &tls(proxy.host(), &wrong_ca),
        &[
            &at,
            "UnknownIssuer",
            "not signed by the CA in",
            &path(&wrong_ca, "ca.pem"),
        ],
    );

    // A name the engine's certificate (IP SAN 127.0.0.1) does not hold.
    one_error(
        &tls(format!("tcp://localhost:{}", proxy.port), &good),
        &[
            "not valid for name \"localhost\"",
            "use a host name or IP address that it names",
        ],
    );

    // DOCKER_TLS_VERIFY against a plain-HTTP port.
    one_error(
        &tls(plain.host(), &good),
        &[
            &format!("cannot reach the Docker engine at {}", plain.host()),
            "does not speak TLS on this port",
            "unset DOCKER_TLS_VERIFY",
        ],
    );

    // Plain HTTP against the TLS port: answered as Go's net/http does.
    let o = tagsmith(
        d,
        &[("DOCKER_HOST", &os(proxy.host()))],
        &["build", "--dry-run"],
    );
    one_error(
        &o,
        &[
            &at,
            "400 Bad Request",
            "HTTPS",
            "set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH",
        ],
    );

    // DOCKER_TLS_VERIFY with no ca.pem where DOCKER_CERT_PATH says.
    let empty = dirs.path().join("empty").into_os_string();
    std::fs::create_dir(&empty).unwrap();
    one_error(
        &tls(proxy.host(), &empty),
        &[&path(&empty, "ca.pem"), "not found", "DOCKER_CERT_PATH"],
    );

    // And the right files still work: nothing above was a broken proxy.
    succeeded(&tls(proxy.host(), &good), "the good certificates");
}

#[test]
fn ssh_engine_builds() {
    if !infra::available("ssh_engine_builds")
        || !engines::tools("ssh_engine_builds", &["ssh", "sshd", "ssh-keygen"])
    {
        return;
    }
    let sshd = Sshd::start();
    let (project, images) = engines::project("ssh");
    let d = project.path();
    let path = sshd.path();
    let env = [("DOCKER_HOST", &os(sshd.url())), ("PATH", &path)];

    let o = tagsmith(d, &env, &["build"]);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(
        o.status.success(),
        "build over ssh: {err}\nsshd: {}",
        sshd.log()
    );
    assert!(
        status_of(&stdout(&o), "app").contains("built"),
        "{}",
        stdout(&o)
    );
    assert!(err.contains("app | #1 "), "BuildKit over ssh: {err}");
    assert!(docker_has(&image(d, &images)));
    // The docker CLI's ssh command line.
    let port = sshd.port.to_string();
    let want = [
        "-l",
        &sshd.user,
        "-p",
        &port,
        "-o",
        "ConnectTimeout=30",
        "-o",
        "BatchMode=yes",
        "-T",
        "--",
        "127.0.0.1",
        "docker system dial-stdio",
    ];
    assert_eq!(sshd.argv(), want);

    let o = tagsmith(d, &env, &["build", "--dry-run"]);
    succeeded(&o, "dry run over ssh");
    assert!(
        status_of(&stdout(&o), "app").ends_with("up-to-date"),
        "{}",
        stdout(&o)
    );

    // A socket path in the URL goes to the remote docker; a wrong one is
    // the remote command's own message.
    let url = format!("{}/nonexistent/docker.sock", sshd.url());
    let o = tagsmith(
        d,
        &[("DOCKER_HOST", &os(&url)), ("PATH", &path)],
        &["build", "--dry-run"],
    );
    one_error(
        &o,
        &[
            &format!("cannot reach the Docker engine at {url}"),
            "ssh failed (exit status 1)",
            "/nonexistent/docker.sock",
            "docker --host=unix:///nonexistent/docker.sock system dial-stdio",
        ],
    );
}

#[test]
fn an_unreachable_ssh_host_is_one_clear_error() {
    if !engines::tools("an_unreachable_ssh_host_is_one_clear_error", &["ssh"]) {
        return;
    }
    let (project, _images) = engines::project("ssh-unreachable");
    let port = engines::free_port();
    let url = format!("ssh://someone@127.0.0.1:{port}");
    // Several times: ssh's message must never be lost to a race with its exit.
    for _ in 0..5 {
        let o = tagsmith(
            project.path(),
            &[("DOCKER_HOST", &os(&url))],
            &["build", "--dry-run"],
        );
        one_error(
            &o,
            &[
                &format!("cannot reach the Docker engine at {url} (DOCKER_HOST)"),
                "ssh failed (exit status 255)",
                &format!("connect to host 127.0.0.1 port {port}: Connection refused"),
                "log in without a prompt",
            ],
        );
    }
}

#[test]
fn docker_contexts_select_the_engine() {
    if !infra::available("docker_contexts_select_the_engine")
        || !engines::tools("docker_contexts_select_the_engine", &["openssl", "python3"])
    {
        return;
    }
    let ca = Ca::new("tagsmith test CA");
    let other = Ca::new("another CA");
    let proxy = Proxy::tls(&ca.server("engine"), &ca);
    let config = tempfile::tempdir().unwrap();
    let c = config.path();
    let client = ca.client("builder");
    engines::write_context(c, "secure", &proxy.host(), Some((&ca, Some(&client))));
    let wrong = engines::write_context(c, "wrong-ca", &proxy.host(), Some((&other, Some(&client))));
    let closed = format!("tcp://127.0.0.1:{}", engines::free_port());
    engines::write_context(c, "dead", &closed, None);
    let set_current = |name: Option<&str>| {
        let json = match name {
            Some(n) => format!("{{\"currentContext\": \"{n}\"}}"),
            None => "{}".to_string(),
        };
        std::fs::write(c.join("config.json"), json).unwrap();
    };
    let (project, images) = engines::project("contexts");
    let d = project.path();
    let cfg = os(c);
    let run = |extra: &[(&str, &OsString)], args: &[&str]| {
        let mut env = vec![("DOCKER_CONFIG", &cfg)];
        env.extend_from_slice(extra);
        tagsmith(d, &env, args)
    };
    let socket = os(format!("unix://{}", engines::ENGINE_SOCKET));

    // DOCKER_CONTEXT: a TLS context (files under contexts/tls/<digest>/docker/).
    set_current(None);
    let o = run(&[("DOCKER_CONTEXT", &os("secure"))], &["build", "--quiet"]);
    succeeded(&o, "build through the context");
    assert!(
        status_of(&stdout(&o), "app").contains("built"),
        "{}",
        stdout(&o)
    );
    assert!(docker_has(&image(d, &images)));

    // currentContext in config.json.
    set_current(Some("secure"));
    let o = run(&[], &["build", "--dry-run"]);
    succeeded(&o, "currentContext");
    assert!(status_of(&stdout(&o), "app").ends_with("up-to-date"));

    // DOCKER_CONTEXT wins over currentContext; the message names the context.
    let o = run(&[("DOCKER_CONTEXT", &os("dead"))], &["build", "--dry-run"]);
    one_error(
        &o,
        &[&format!(
            "cannot reach the Docker engine at {closed} (docker context \"dead\" from DOCKER_CONTEXT)"
        )],
    );

    // DOCKER_HOST wins over both.
    set_current(Some("dead"));
    let o = run(&[("DOCKER_HOST", &socket)], &["build", "--dry-run"]);
    succeeded(&o, "DOCKER_HOST over currentContext");
    let o = run(
        &[("DOCKER_HOST", &socket), ("DOCKER_CONTEXT", &os("dead"))],
        &["build", "--dry-run"],
    );
    succeeded(&o, "DOCKER_HOST over DOCKER_CONTEXT");
    assert!(status_of(&stdout(&o), "app").ends_with("up-to-date"));

    // The context's own TLS files are named, not DOCKER_CERT_PATH.
    let o = run(
        &[("DOCKER_CONTEXT", &os("wrong-ca"))],
        &["build", "--dry-run"],
    );
    let err = one_error(
        &o,
        &[
            "docker context \"wrong-ca\" from DOCKER_CONTEXT",
            "not signed by the CA in",
            &wrong.join("ca.pem").display().to_string(),
        ],
    );
    assert!(!err.contains("DOCKER_CERT_PATH"), "{err}");

    // The default context is the default socket.
    let o = run(
        &[("DOCKER_CONTEXT", &os("default"))],
        &["build", "--dry-run"],
    );
    succeeded(&o, "the default context");

    // Unknown names, from either place, are one clear error.
    let o = run(&[("DOCKER_CONTEXT", &os("nope"))], &["build", "--dry-run"]);
    one_error(
        &o,
        &[
            "docker context \"nope\" not found",
            "the name comes from DOCKER_CONTEXT",
            "docker context ls",
        ],
    );
    set_current(Some("gone"));
    let o = run(&[], &["build", "--dry-run"]);
    one_error(
        &o,
        &[
            "docker context \"gone\" not found",
            &format!(
                "the name comes from currentContext in {}",
                c.join("config.json").display()
            ),
        ],
    );
}

#[test]
fn podman_gets_the_classic_builder() {
    if !engines::tools("podman_gets_the_classic_builder", &["podman"]) {
        return;
    }
    let podman = Podman::start();
    let (project, images) = engines::project("podman");
    let d = project.path();
    let env = [("DOCKER_HOST", &os(podman.host()))];

    let o = tagsmith(d, &env, &["build"]);
    let err = succeeded(&o, "build on Podman");
    assert!(
        status_of(&stdout(&o), "app").contains("built"),
        "{}",
        stdout(&o)
    );
    let notes: Vec<&str> = err.lines().filter(|l| l.contains("note:")).collect();
    assert_eq!(notes.len(), 1, "one note: {err}");
    assert!(
        notes[0].contains("(Podman) offers no BuildKit: using the classic builder"),
        "{err}"
    );
    assert!(
        err.contains("app | STEP 2/"),
        "the classic (buildah) steps: {err}"
    );
    let image = format!("{}/app:{}", images.0, common::tags(d)["app"]);
    assert!(podman.has_image(&image), "{image} in Podman's store");
    assert!(!docker_has(&image), "not in Docker's");

    let o = tagsmith(d, &env, &["build", "--dry-run"]);
    succeeded(&o, "dry run on Podman");
    assert!(
        status_of(&stdout(&o), "app").ends_with("up-to-date"),
        "{}",
        stdout(&o)
    );

    let o = tagsmith(d, &env, &["build", "--force", "--builder", "buildkit"]);
    one_error(
        &o,
        &[
            &podman.host(),
            "(Podman) offers no BuildKit",
            "--builder classic",
        ],
    );
}
