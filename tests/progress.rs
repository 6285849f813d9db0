//! `build` on a real terminal (a pty, through `script`): a live area with
//! one line per running service, redrawn in place; plain lines with
//! `--progress plain`; no colour with NO_COLOR.

mod common;

use std::process::Command;

use common::infra;
use common::*;

/// Runs `tagsmith ARGS` on a pty in `dir`; returns what the terminal got.
fn on_a_terminal(dir: &std::path::Path, args: &str, env: &[(&str, &str)]) -> String {
    let out = dir.join("typescript");
    let mut cmd = Command::new("script");
    cmd.args(["-qfec", &format!("{} {args}", bin())])
        .arg(&out)
        .current_dir(dir)
        .env("TAGSMITH_CACHE_DIR", cache_dir())
        .env("DOCKER_CONFIG", dir);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&std::fs::read(&out).unwrap()).into_owned()
}

fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("tagsmith.yaml"),
        &format!(
            "registry: localhost/tagsmith-test-tty-{}\nservices:\n  app:\n    context: app\n  web:\n    context: web\n",
            std::process::id()
        ),
    );
    for s in ["app", "web"] {
        write(
            &dir.path().join(format!("{s}/Dockerfile")),
            &format!(
                "FROM {}\nRUN echo {s}-one && sleep 1 && echo {s}-two\n",
                infra::busybox()
            ),
        );
    }
    write(&dir.path().join("config.json"), "{}");
    dir
}

#[test]
fn a_terminal_gets_a_live_area_with_one_line_per_running_service() {
    if !infra::available("a_terminal_gets_a_live_area_with_one_line_per_running_service") {
        return;
    }
    let dir = project();
    let screen = on_a_terminal(dir.path(), "build --force --no-cache --jobs 2", &[]);
    assert!(
        screen.contains("\x1b[2F\x1b[J"),
        "two running services redrawn in place: {screen:?}"
    );
    assert!(
        screen.contains("  app  ") && screen.contains("  web  "),
        "{screen:?}"
    );
    assert!(
        screen.contains("RUN echo app-one") || screen.contains("app-one"),
        "what it is doing: {screen:?}"
    );
    assert!(
        !screen.contains("app | "),
        "no log lines on a terminal: {screen:?}"
    );
    assert!(
        screen.contains("tagsmith: app: built in") && screen.contains("SERVICE"),
        "the summary: {screen:?}"
    );

    // Plain lines on a terminal, in colour (the dimmed `name |` prefix).
    let plain = on_a_terminal(dir.path(), "build --force --progress plain", &[]);
    assert!(
        !plain.contains("\x1b[1F") && plain.contains("\x1b[2mapp |\x1b[0m"),
        "{plain:?}"
    );

    // NO_COLOR: no colour, plain or live.
    let no_color = on_a_terminal(
        dir.path(),
        "build --force --progress plain",
        &[("NO_COLOR", "1")],
    );
    assert!(
        no_color.contains("app | ") && !no_color.contains("\x1b["),
        "{no_color:?}"
    );
    let live = on_a_terminal(dir.path(), "build --force", &[("NO_COLOR", "1")]);
    assert!(live.contains("\x1b[J"), "still live: {live:?}");
}
