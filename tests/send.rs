//! What is hashed is what is built: a context file that changes between
//! hashing and sending, or grows while it is sent, fails that build with a
//! message naming it, for both builders, and nothing is tagged. Driven
//! through the library's seam: the entries handed to a builder are the ones
//! hashed earlier.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use common::infra;
use common::*;
use tagsmith::engine::{BuildSpec, Builder, Dockerfile, Engine};
use tagsmith::project::Project;
use tagsmith::registry::Repository;
use tagsmith::secrets::Secrets;

/// A one-service project with a `big` file of `size` bytes, hashed.
fn hashed_project(size: usize) -> (tempfile::TempDir, Project, Vec<tagsmith::context::Entry>) {
    let dir = single(None);
    let ctx = dir.path().join("ctx");
    let mut f = std::fs::File::create(ctx.join("big")).unwrap();
    let block: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
    for _ in 0..size >> 20 {
        f.write_all(&block).unwrap();
    }
    drop(f);
    let project = Project::open(Some(Path::new("tagsmith.yaml")), dir.path()).unwrap();
    let order = project.select(&[]).unwrap();
    let entries = project.hash_with_entries(&order).unwrap()["app"]
        .entries
        .clone();
    (dir, project, entries)
}

fn spec(project: &Project, entries: Vec<tagsmith::context::Entry>, tag: &str) -> BuildSpec {
    let service = &project.config.services["app"];
    BuildSpec {
        context: service.context.clone(),
        entries,
        dockerfile: Dockerfile {
            in_context: Some("Dockerfile".into()),
            bytes: project.dockerfile("app").to_vec(),
        },
        image: Repository::under("localhost/tagsmith-test-send", "app").with_tag(tag),
        args: HashMap::new(),
        labels: HashMap::new(),
        target: None,
        platform: None,
        pull: false,
        no_cache: true,
        cache_from: Vec::new(),
        inline_cache: false,
        auth: HashMap::new(),
    }
}

fn builders(engine: &Engine) -> Vec<(&'static str, Box<dyn Builder>)> {
    vec![
        (
            "buildkit",
            Box::new(engine.buildkit(Secrets::default())) as Box<dyn Builder>,
        ),
        ("classic", Box::new(engine.classic())),
    ]
}

#[test]
fn a_file_changed_after_hashing_fails_its_build() {
    if !infra::available("a_file_changed_after_hashing_fails_its_build") {
        return;
    }
    let (dir, project, entries) = hashed_project(1 << 20);
    // Same size, other bytes: only the hash can tell.
    let big = dir.path().join("ctx/big");
    let mut bytes = std::fs::read(&big).unwrap();
    bytes[1000] ^= 0xff;
    std::fs::write(&big, &bytes).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let engine = Engine::connect().await.unwrap();
        for (name, builder) in builders(&engine) {
            let tag = format!("changed-{name}-{}", std::process::id());
            let spec = spec(&project, entries.clone(), &tag);
            let image = spec.image.clone();
            let err = builder.build(spec, &|_| {}).await.unwrap_err().to_string();
            assert!(
                err.contains("ctx/big") && err.contains("changed after it was hashed"),
                "{name}: {err}"
            );
            assert!(
                !engine.has_image(&image).await.unwrap(),
                "{name}: nothing is tagged"
            );
        }
    });
}

#[test]
fn a_file_that_grows_while_it_is_sent_fails_its_build() {
    if !infra::available("a_file_that_grows_while_it_is_sent_fails_its_build") {
        return;
    }
    let (dir, project, entries) = hashed_project(64 << 20);
    let big = dir.path().join("ctx/big");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let engine = Engine::connect().await.unwrap();
        for (name, builder) in builders(&engine) {
            // The file keeps growing from now until the build is over.
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let writer = {
                let (big, stop) = (big.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut f = std::fs::OpenOptions::new().append(true).open(big).unwrap();
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        f.write_all(&[b'x'; 4096]).unwrap();
                        std::thread::sleep(std::time::Duration::from_millis(2));
                    }
                })
            };
            let tag = format!("grows-{name}-{}", std::process::id());
            let spec = spec(&project, entries.clone(), &tag);
            let image = spec.image.clone();
            let result = builder.build(spec, &|_| {}).await;
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            writer.join().unwrap();
            let err = result.unwrap_err().to_string();
            assert!(
                err.contains("ctx/big")
                    && (err.contains("grew while it was being sent")
                        || err.contains("changed after it was hashed")),
                "{name}: {err}"
            );
            assert!(
                !engine.has_image(&image).await.unwrap(),
                "{name}: nothing is tagged"
            );
        }
    });
}
