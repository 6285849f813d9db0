//! The registry layer cache on a fresh runner: a rebuild after a change to a
//! late step, on a second engine that has never built anything (its own
//! data root, as a new CI runner's), reuses every earlier layer from the
//! registry. A real second dockerd, not `rmi` + `builder prune` on the shared
//! one: Docker 20.10's BuildKit can keep records of layers `rmi` deleted.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::infra;
use common::*;

/// A second dockerd with an empty data root and its own bridge, stopped and
/// removed on drop. Needs root, like the engine .ci/run starts.
struct FreshEngine {
    daemon: Child,
    dir: tempfile::TempDir,
    bridge: String,
}

impl FreshEngine {
    fn start() -> FreshEngine {
        // Under /var/lib so its overlay2 sits on the file system the main engine's does.
        let dir = tempfile::Builder::new()
            .prefix("tagsmith-fresh-engine-")
            .tempdir_in("/var/lib")
            .unwrap();
        let bridge = format!("tsm{}", std::process::id() % 100_000);
        let ip = |args: &[&str]| {
            let o = Command::new("ip")
                .args(args)
                .output()
                .expect("ip (iproute2)");
            assert!(
                o.status.success(),
                "ip {args:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        };
        let _ = Command::new("ip").args(["link", "del", &bridge]).output();
        ip(&["link", "add", &bridge, "type", "bridge"]);
        ip(&["addr", "add", "172.31.251.1/24", "dev", &bridge]);
        ip(&["link", "set", &bridge, "up"]);
        let p = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
        let daemon = Command::new("dockerd")
            .args(["--data-root", &p("data"), "--exec-root", &p("exec")])
            .args([
                "--pidfile",
                &p("pid"),
                "-H",
                &format!("unix://{}", p("sock")),
            ])
            .args(["-b", &bridge, "--iptables=false", "--ip-masq=false"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(p("log")).unwrap())
            .spawn()
            .expect("dockerd starts");
        let engine = FreshEngine {
            daemon,
            dir,
            bridge,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !engine.docker(&["info"]).status.success() {
            assert!(
                Instant::now() < deadline,
                "the fresh engine did not start: {}",
                std::fs::read_to_string(engine.dir.path().join("log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        // The base image, as a runner's engine has it after its first pull.
        let saved = infra::saved(infra::busybox());
        let mut load = Command::new("docker")
            .args(["-H", &engine.host(), "load"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        std::io::Write::write_all(load.stdin.as_mut().unwrap(), &saved).unwrap();
        drop(load.stdin.take());
        assert!(
            load.wait().unwrap().success(),
            "docker load into the fresh engine"
        );
        engine
    }

    fn host(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("sock")
    }

    fn docker(&self, args: &[&str]) -> std::process::Output {
        Command::new("docker")
            .arg("-H")
            .arg(self.host())
            .args(args)
            .output()
            .unwrap()
    }
}

impl Drop for FreshEngine {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.daemon.id().to_string())
            .output();
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.daemon.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .output();
    }
}

/// Runs tagsmith against `engine` (the shared one when None).
fn tagsmith_on(
    engine: Option<&FreshEngine>,
    dir: &Path,
    config: &Path,
    args: &[&str],
) -> std::process::Output {
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .current_dir(dir)
        .env("DOCKER_CONFIG", config)
        .env("TAGSMITH_CACHE_DIR", cache_dir())
        .env_remove("GITHUB_OUTPUT");
    match engine {
        Some(e) => cmd.env("DOCKER_HOST", e.host()),
        None => cmd.env_remove("DOCKER_HOST"),
    };
    cmd.output().unwrap()
}

/// The `/marker` file of a pushed image, read on the shared engine.
fn marker(image: &str) -> String {
    let o = Command::new("docker")
        .args(["pull", "-q", image])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "docker pull {image}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(infra::image_files(image)["marker"].clone()).unwrap()
}

#[test]
fn a_fresh_runner_reuses_layers_from_the_registry() {
    if !infra::available("a_fresh_runner_reuses_layers_from_the_registry") {
        return;
    }
    let reg = infra::Registry::start(false);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        &d.join("tagsmith.yaml"),
        &format!(
            "registry: {}/c\nservices:\n  app:\n    context: app\n",
            reg.host()
        ),
    );
    write(
        &d.join("app/Dockerfile"),
        &format!(
            "FROM {}\nRUN cat /proc/sys/kernel/random/uuid > /marker\nCOPY app.txt /app.txt\n",
            infra::busybox()
        ),
    );
    write(&d.join("app/app.txt"), "one\n");
    let cfg = infra::docker_config(None);
    let push = |engine: Option<&FreshEngine>, extra: &[&str]| {
        let mut args = vec!["build", "--push"];
        args.extend_from_slice(extra);
        let o = tagsmith_on(engine, d, cfg.path(), &args);
        assert!(o.status.success(), "{}", stderr(&o));
        o
    };
    push(None, &[]);
    let first = format!("{}/c/app:{}", reg.host(), tags(d)["app"]);
    let first_marker = marker(&first);
    assert_eq!(
        reg.digest("c/app", "buildcache", false),
        reg.digest("c/app", &tags(d)["app"], false),
        "the cache tag points at the pushed image"
    );

    let fresh = FreshEngine::start();
    write(&d.join("app/app.txt"), "two\n");
    let o = push(Some(&fresh), &[]);
    let err = stderr(&o);
    assert!(err.contains("importing cache manifest from"), "{err}");
    let second = format!("{}/c/app:{}", reg.host(), tags(d)["app"]);
    assert_ne!(first, second);
    assert!(
        fresh
            .docker(&["image", "inspect", &second])
            .status
            .success(),
        "built on the fresh engine"
    );
    assert_eq!(
        marker(&second),
        first_marker,
        "the RUN layer came from the registry cache"
    );
    assert_eq!(
        String::from_utf8(infra::image_files(&second)["app.txt"].clone()).unwrap(),
        "two\n"
    );
    assert_eq!(
        reg.digest("c/app", "buildcache", false),
        reg.digest("c/app", &tags(d)["app"], false),
        "the cache tag moved to the new image"
    );
    assert_eq!(
        reg.tags("c/app", false).len(),
        2,
        "content tags are never moved or removed"
    );

    // --no-cache: neither the registry cache nor the engine's own.
    write(&d.join("app/app.txt"), "three\n");
    push(Some(&fresh), &["--no-cache"]);
    let third = format!("{}/c/app:{}", reg.host(), tags(d)["app"]);
    assert_ne!(marker(&third), first_marker, "--no-cache builds every step");
    infra::remove_images(&[&first, &second, &third]);
}
