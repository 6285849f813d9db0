//! SIGINT and SIGTERM: a build is cancelled in the engine (no step keeps
//! running, no container is left), nothing partial is pushed, the exit code
//! is 130 or 143, and the next run completes the work.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::infra;
use common::*;

fn running(pattern: &str) -> bool {
    Command::new("pgrep")
        .args(["-f", pattern])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn wait_for(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn containers() -> usize {
    let o = Command::new("docker")
        .args([
            "ps",
            "-aq",
            "--filter",
            &format!("ancestor={}", infra::BUSYBOX),
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).lines().count()
}

fn interrupted_build(builder: &str, signal: &str, code: i32) {
    let reg = infra::Registry::start(false);
    let marker = format!("{}", 20_000 + std::process::id() % 10_000 + code as u32);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        &d.join("tagsmith.yaml"),
        &format!(
            "registry: {}/intr\nservices:\n  app:\n    context: app\n",
            reg.host()
        ),
    );
    write(
        &d.join("app/Dockerfile"),
        &format!("FROM {}\nRUN sleep {marker} || sleep 3\n", infra::busybox()),
    );
    let cfg = infra::docker_config(None);
    let before = containers();
    let child = Command::new(bin())
        .args(["build", "--push", "--builder", builder])
        .current_dir(d)
        .env("DOCKER_CONFIG", cfg.path())
        .env("TAGSMITH_CACHE_DIR", cache_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let step = format!("sleep {marker}");
    wait_for("the RUN step to start", || running(&step));
    assert!(
        Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(code), "{}", stderr(&o));
    assert!(stderr(&o).contains("interrupted"), "{}", stderr(&o));
    wait_for("the step to be cancelled", || !running(&step));
    wait_for("no container to be left", || containers() <= before);
    assert!(
        reg.all_tags("intr/app", false).is_empty(),
        "nothing was pushed"
    );

    // The next run completes the work (the step is shortened to finish).
    write(
        &d.join("app/Dockerfile"),
        &format!("FROM {}\nRUN true\n", infra::busybox()),
    );
    let o = infra::tagsmith(d, cfg.path(), &["build", "--push", "--builder", builder]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(reg.tags("intr/app", false), [tags(d)["app"].clone()]);
}

#[test]
fn sigint_cancels_a_buildkit_build() {
    if !infra::available("sigint_cancels_a_buildkit_build") {
        return;
    }
    interrupted_build("buildkit", "INT", 130);
}

#[test]
fn sigterm_cancels_a_classic_build() {
    if !infra::available("sigterm_cancels_a_classic_build") {
        return;
    }
    interrupted_build("classic", "TERM", 143);
}

#[test]
fn an_interrupted_render_leaves_the_output_as_it_was() {
    // The templates are still being read (one is a FIFO nobody writes):
    // nothing has been written when the interrupt comes.
    let dir = single(None);
    let d = dir.path();
    write(&d.join("t/a.yaml"), "a: << tag \"app\" >>\n");
    mkfifo(&d.join("fifo.yaml"));
    write(&d.join("out/a.yaml"), "old\n");
    let child = Command::new(bin())
        .args(["render", "t/a.yaml", "fifo.yaml", "-o", "out"])
        .current_dir(d)
        .env("TAGSMITH_CACHE_DIR", cache_dir())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let status = child.wait_with_output().unwrap().status;
    assert!(!status.success());
    let files: Vec<_> = std::fs::read_dir(d.join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(files, ["a.yaml"]);
    assert_eq!(
        std::fs::read_to_string(d.join("out/a.yaml")).unwrap(),
        "old\n"
    );
}
