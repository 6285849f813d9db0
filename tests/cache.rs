//! The registry layer cache on a fresh runner: with the engine's images and
//! build cache gone, a rebuild after a change to a late step reuses every
//! earlier layer from the registry. Its own test binary, because it prunes
//! the engine's build cache.

mod common;

use std::process::Command;

use common::infra;
use common::*;

fn marker(image: &str) -> String {
    String::from_utf8(infra::image_files(image)["marker"].clone()).unwrap()
}

/// What a fresh CI runner's engine has: no images of ours, no build cache.
fn forget(images: &[&str]) {
    infra::remove_images(images);
    let o = Command::new("docker")
        .args(["builder", "prune", "-af"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
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
    let push = |extra: &[&str]| {
        let mut args = vec!["build", "--push"];
        args.extend_from_slice(extra);
        let o = infra::tagsmith(d, cfg.path(), &args);
        assert!(o.status.success(), "{}", stderr(&o));
        o
    };
    push(&[]);
    let first = format!("{}/c/app:{}", reg.host(), tags(d)["app"]);
    let first_marker = marker(&first);
    assert_eq!(
        reg.digest("c/app", "buildcache", false),
        reg.digest("c/app", &tags(d)["app"], false),
        "the cache tag points at the pushed image"
    );

    forget(&[&first, &format!("{}/c/app:buildcache", reg.host())]);
    write(&d.join("app/app.txt"), "two\n");
    let o = push(&[]);
    let err = stderr(&o);
    assert!(err.contains("importing cache manifest from"), "{err}");
    let second = format!("{}/c/app:{}", reg.host(), tags(d)["app"]);
    assert_ne!(first, second);
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

    // --no-cache: no registry cache either.
    forget(&[&second, &format!("{}/c/app:buildcache", reg.host())]);
    write(&d.join("app/app.txt"), "three\n");
    push(&["--no-cache"]);
    let third = format!("{}/c/app:{}", reg.host(), tags(d)["app"]);
    assert_ne!(marker(&third), first_marker, "--no-cache builds every step");
    infra::remove_images(&[&third]);
}
