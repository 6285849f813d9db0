//! `init` on the fixtures under fixtures/init/: a skaffold.yaml in the shape
//! of a real multi-service repository, compose files of both names and
//! shapes, and plain Dockerfiles; what it writes loads at once, what it
//! cannot map is listed, it never overwrites without --force, and malformed
//! input is a located error.

mod common;

use std::fs;
use std::path::Path;

use common::*;

/// A copy of fixtures/init/<name> in a temp dir.
fn copy(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&fixture("init").join(name), dir.path());
    dir
}

/// The written tagsmith.yaml as JSON.
fn written(d: &Path) -> serde_json::Value {
    let text = fs::read_to_string(d.join("tagsmith.yaml")).unwrap();
    serde_saphyr::from_str(&text).unwrap()
}

fn service(config: &serde_json::Value, name: &str) -> serde_json::Value {
    config["services"][name].clone()
}

fn lines_with<'a>(out: &'a str, prefix: &str) -> Vec<&'a str> {
    out.lines().filter(|l| l.starts_with(prefix)).collect()
}

#[test]
fn skaffold_artifacts_of_every_document() {
    let dir = copy("skaffold");
    let d = dir.path();
    let out = ok(d, &["init"]);
    assert!(
        out.starts_with(
            "found 7 services in skaffold.yaml: base, cartservice, checkoutservice, frontend, paymentservice, loadgenerator, adservice\n"
        ),
        "{out}"
    );
    assert!(out.ends_with("wrote tagsmith.yaml\n"), "{out}");

    let config = written(d);
    // Every image is under gcr.io/acme-shop: that is the registry.
    assert_eq!(config["registry"], "gcr.io/acme-shop");
    assert!(
        !fs::read_to_string(d.join("tagsmith.yaml"))
            .unwrap()
            .contains("CHANGE ME")
    );
    let services: Vec<&String> = config["services"].as_object().unwrap().keys().collect();
    assert_eq!(services.len(), 7, "{services:?}");
    assert!(!services.iter().any(|s| *s == "emailservice"));

    assert_eq!(
        service(&config, "base"),
        serde_json::json!({"context": "images/base"})
    );
    assert_eq!(
        service(&config, "cartservice"),
        serde_json::json!({
            "context": "src/cartservice",
            "args": {"CONFIGURATION": "Release", "DOTNET_VERSION": "8.0"}
        })
    );
    // `requires` becomes a dependency; the target is kept.
    assert_eq!(
        service(&config, "checkoutservice"),
        serde_json::json!({
            "context": "src/checkoutservice",
            "depends_on": ["base"],
            "target": "runtime"
        })
    );
    // A fixed build arg is kept; one from the environment and a template
    // that skaffold fills in are not.
    assert_eq!(
        service(&config, "frontend"),
        serde_json::json!({
            "context": "src/frontend",
            "dockerfile": "Dockerfile.prod",
            "args": {"NODE_ENV": "production"}
        })
    );
    assert_eq!(service(&config, "loadgenerator")["target"], "locust");
    // The second document's artifact.
    assert_eq!(
        service(&config, "adservice"),
        serde_json::json!({"context": "src/adservice", "args": {"GRADLE_VERSION": "8.7"}})
    );

    // What was not mapped, each with its place in skaffold.yaml.
    assert_eq!(
        lines_with(&out, "not mapped: "),
        [
            "not mapped: skaffold.yaml:33: build arg API_TOKEN of gcr.io/acme-shop/frontend takes its value from the environment; give it one in tagsmith.yaml",
            "not mapped: skaffold.yaml:33: build arg GIT_COMMIT of gcr.io/acme-shop/frontend is a template that skaffold fills in ({{.IMAGE_TAG}}); give it a fixed value in tagsmith.yaml, or leave it to the Dockerfile's default",
            "not mapped: skaffold.yaml:50: artifact gcr.io/acme-shop/emailservice uses the jib builder; tagsmith builds Dockerfiles only",
        ]
    );
    // Hints: the build arg skaffold passes for `requires`, and each fixed
    // reference to the base's image.
    let hints = lines_with(&out, "hint: ");
    assert_eq!(hints.len(), 3, "{out}");
    assert_eq!(
        hints[0],
        "hint: skaffold.yaml:26: checkoutservice gets the image of base as build arg BASE; tagsmith passes it as BASE_IMAGE (and the tag as BASE_TAG): write `ARG BASE_IMAGE` and `FROM ${BASE_IMAGE}` in src/checkoutservice/Dockerfile"
    );
    assert!(
        hints[1].starts_with("hint: src/cartservice/Dockerfile:3: `gcr.io/acme-shop/base:latest` names the image of service base; write `ARG BASE_IMAGE` and `FROM ${BASE_IMAGE}`"),
        "{}",
        hints[1]
    );
    assert!(
        hints[2]
            .starts_with("hint: src/frontend/Dockerfile.prod:1: `gcr.io/acme-shop/base:latest`"),
        "{}",
        hints[2]
    );

    // `tagsmith tags` works at once, with the dependency in the graph.
    let before = tags(d);
    assert_eq!(before.len(), 7);
    assert!(
        ok(d, &["graph"])
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["checkoutservice", "<-", "base"])
    );
    write(&d.join("images/base/motd"), "changed\n");
    let after = tags(d);
    assert_eq!(changed(&before, &after), ["base", "checkoutservice"]);

    // Following the hint makes cartservice track the base too.
    let df = d.join("src/cartservice/Dockerfile");
    let text = fs::read_to_string(&df).unwrap().replace(
        "FROM gcr.io/acme-shop/base:latest",
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}",
    );
    fs::write(&df, text).unwrap();
    let before = tags(d);
    write(&d.join("images/base/motd"), "changed again\n");
    assert_eq!(
        changed(&before, &tags(d)),
        ["base", "cartservice", "checkoutservice"]
    );
}

#[test]
fn compose_services_that_build() {
    let dir = copy("compose");
    let d = dir.path();
    let out = ok(d, &["init"]);
    assert!(
        out.starts_with("found 3 services in compose.yaml: api, web, worker\n"),
        "{out}"
    );
    let config = written(d);
    assert_eq!(config["registry"], "ghcr.io/acme/blog");
    assert_eq!(
        service(&config, "api"),
        serde_json::json!({
            "context": "api",
            "dockerfile": "docker/api.Dockerfile",
            "args": {"APP_ENV": "production"},
            "target": "prod"
        })
    );
    // `build: ./web`, a string.
    assert_eq!(
        service(&config, "web"),
        serde_json::json!({"context": "web"})
    );
    // args as a mapping, with a YAML merge key.
    assert_eq!(
        service(&config, "worker"),
        serde_json::json!({
            "context": "worker",
            "args": {"PYTHON_VERSION": "3.12", "QUEUE": "jobs"}
        })
    );
    assert_eq!(
        lines_with(&out, "not mapped: "),
        [
            "not mapped: compose.yaml:12: build arg PIP_INDEX_URL of api takes its value from the environment; give it one in tagsmith.yaml",
            "not mapped: compose.yaml:37: proxy builds from a remote context (https://github.com/acme/proxy.git#main)",
        ]
    );
    // db only runs an image; it is not a service to build.
    assert!(!out.contains("db"), "{out}");
    let tags = tags(d);
    assert_eq!(tags.keys().collect::<Vec<_>>(), ["api", "web", "worker"]);
    assert!(
        ok(d, &["tags", "web"]).starts_with("web\tghcr.io/acme/blog/web:"),
        "image names keep their repository"
    );
}

#[test]
fn docker_compose_yml_without_image_names() {
    let dir = copy("docker-compose");
    let d = dir.path();
    let out = ok(d, &["init"]);
    assert!(
        out.starts_with("found 2 services in docker-compose.yml: app, nginx\n"),
        "{out}"
    );
    // No image names: a placeholder registry, with a comment, and a line saying so.
    let text = fs::read_to_string(d.join("tagsmith.yaml")).unwrap();
    assert!(
        text.contains(
            "# CHANGE ME: the registry (and path) every image is pushed under.\nregistry: registry.example.com/change-me\n"
        ),
        "{text}"
    );
    assert!(
        out.contains("set `registry:` in tagsmith.yaml: no common image prefix was found"),
        "{out}"
    );
    let config = written(d);
    assert_eq!(
        service(&config, "app"),
        serde_json::json!({
            "context": ".",
            "dockerfile": "app/Dockerfile",
            "args": {"BUNDLE_WITHOUT": "development:test", "RUBY_VERSION": "3.3"}
        })
    );
    assert_eq!(
        service(&config, "nginx"),
        serde_json::json!({"context": "nginx"})
    );
    assert_eq!(tags(d).len(), 2);
}

#[test]
fn compose_yaml_is_preferred_to_docker_compose_yml() {
    let dir = copy("compose");
    let d = dir.path();
    fs::copy(
        fixture("init/docker-compose/docker-compose.yml"),
        d.join("docker-compose.yml"),
    )
    .unwrap();
    let out = ok(d, &["init"]);
    assert!(out.contains("in compose.yaml:"), "{out}");
}

#[test]
fn skaffold_yaml_is_preferred_to_compose() {
    let dir = copy("skaffold");
    let d = dir.path();
    write(
        &d.join("compose.yaml"),
        "services:\n  other:\n    build: src/adservice\n",
    );
    let out = ok(d, &["init"]);
    assert!(out.contains("in skaffold.yaml:"), "{out}");
    assert!(written(d)["services"]["other"].is_null());
}

#[test]
fn every_dockerfile_that_git_would_not_ignore() {
    let dir = copy("dockerfiles");
    let d = dir.path();
    // Ignored by .gitignore (so created here: git would not keep them in
    // the fixture either), and a hidden directory.
    for ignored in [
        "vendor/lib/Dockerfile",
        "build/Dockerfile",
        "tools/api.generated.Dockerfile",
        ".devcontainer/Dockerfile",
    ] {
        write(&d.join(ignored), "FROM scratch\n");
    }
    let out = ok(d, &["init"]);
    assert!(out.contains(": billing, indexer, query, tools\n"), "{out}");
    let config = written(d);
    assert_eq!(
        config["services"],
        serde_json::json!({
            "billing": {"context": "services/billing"},
            "indexer": {"context": "services/search/docker", "dockerfile": "indexer.Dockerfile"},
            "query": {"context": "services/search/docker", "dockerfile": "query.Dockerfile"},
            "tools": {"context": "tools"}
        })
    );
    assert_eq!(config["registry"], "registry.example.com/change-me");
    assert!(out.contains("set `registry:`"), "{out}");
    assert_eq!(tags(d).len(), 4);
}

#[test]
fn a_dockerfile_at_the_root_is_named_after_the_directory() {
    let parent = tempfile::tempdir().unwrap();
    let d = parent.path().join("My_Shop");
    write(&d.join("Dockerfile"), "FROM scratch\n");
    let out = ok(&d, &["init"]);
    assert!(out.contains(": my-shop\n"), "{out}");
    assert_eq!(
        written(&d)["services"]["my-shop"],
        serde_json::json!({"context": "."})
    );
    assert_eq!(tags(&d).len(), 1);
}

#[test]
fn never_overwrites_without_force() {
    let dir = copy("compose");
    let d = dir.path();
    fs::write(d.join("tagsmith.yaml"), "# mine\n").unwrap();
    let err = fails(d, &["init"]);
    assert_eq!(
        err,
        "tagsmith: error: tagsmith.yaml: already exists; `tagsmith init --force` replaces it\n"
    );
    assert_eq!(
        fs::read_to_string(d.join("tagsmith.yaml")).unwrap(),
        "# mine\n"
    );

    let out = ok(d, &["init", "--force"]);
    assert!(out.ends_with("wrote tagsmith.yaml\n"), "{out}");
    assert_eq!(written(d)["registry"], "ghcr.io/acme/blog");

    // --config names where it goes.
    let sub = d.join("sub");
    copy_tree(&fixture("init/docker-compose"), &sub);
    let out = ok(d, &["--config", "sub/tagsmith.yaml", "init"]);
    assert!(out.contains("docker-compose.yml: app, nginx"), "{out}");
    assert!(sub.join("tagsmith.yaml").is_file());
}

#[test]
fn nothing_to_build_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("README.md"), "no images here\n");
    let err = fails(dir.path(), &["init"]);
    assert!(err.contains("found no service to build"), "{err}");
    assert!(!dir.path().join("tagsmith.yaml").exists());
}

/// Writes `name` with `text` next to an `a/` context and expects init to
/// fail with exactly `want`, writing nothing.
fn malformed(name: &str, text: &str, want: &str) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(&d.join("a/Dockerfile"), "FROM scratch\n");
    write(&d.join(name), text);
    let err = fails(d, &["init"]);
    assert_eq!(err, format!("tagsmith: error: {want}\n"), "{text}");
    assert!(!d.join("tagsmith.yaml").exists());
}

#[test]
fn malformed_skaffold_yaml_is_a_located_error() {
    malformed(
        "skaffold.yaml",
        "build:\n  artifacts:\n    - image: x/a\n      context: a\n     docker: {}\n",
        "skaffold.yaml:5:6: while parsing a block collection, did not find expected '-' indicator",
    );
    malformed(
        "skaffold.yaml",
        "build:\n  artifacts:\n    image: x/a\n",
        "skaffold.yaml:3:5: expected a list, e.g. [a, b]",
    );
    malformed(
        "skaffold.yaml",
        "build:\n  artifacts:\n    - context: a\n",
        "skaffold.yaml:3:7: missing field `image`",
    );
    malformed(
        "skaffold.yaml",
        "build:\n  artifacts:\n    - image: x/a\n      context: [a]\n",
        "skaffold.yaml:4:16: expected a string",
    );
    // In a later document.
    malformed(
        "skaffold.yaml",
        "apiVersion: skaffold/v4beta11\nkind: Config\n---\nbuild:\n  artifacts:\n    - image: x/a\n      context: a\n      docker:\n        buildArgs: [A]\n",
        "skaffold.yaml:9:20: expected a mapping of keys to values",
    );
    // Paths that are not there are the source's error, not tagsmith.yaml's.
    malformed(
        "skaffold.yaml",
        "build:\n  artifacts:\n    - image: x/a\n      context: missing\n",
        "skaffold.yaml:4:16: the context \"missing\" of x/a is not a directory",
    );
    malformed(
        "skaffold.yaml",
        "build:\n  artifacts:\n    - image: x/a\n      context: a\n      docker:\n        dockerfile: prod.Dockerfile\n",
        "skaffold.yaml:6:21: the Dockerfile a/prod.Dockerfile of x/a does not exist",
    );
}

#[test]
fn malformed_compose_file_is_a_located_error() {
    malformed(
        "compose.yaml",
        "services:\n  a:\n    build: {context: a\n",
        "compose.yaml:3:12: unclosed bracket '{'",
    );
    malformed(
        "compose.yaml",
        "services:\n  - a\n",
        "compose.yaml:2:3: expected a mapping of keys to values",
    );
    malformed(
        "compose.yaml",
        "services:\n  a:\n    build: 5\n",
        "compose.yaml:3:5: invalid type: integer `5`, expected a context path or a mapping (context, dockerfile, args, target)",
    );
    malformed(
        "compose.yaml",
        "services:\n  a:\n    build:\n      context: [a]\n",
        "compose.yaml:4:16: expected a string",
    );
    malformed(
        "docker-compose.yml",
        "services:\n  a:\n    build:\n      context: a\n      args: 5\n",
        "docker-compose.yml:5:7: invalid type: integer `5`, expected build args as a mapping (KEY: value) or a list (KEY=value)",
    );
    malformed(
        "compose.yaml",
        "services:\n  a:\n    build: ../\n",
        "compose.yaml:3:12: the context \"..\" of a is outside the repository (the directory tagsmith.yaml goes in)",
    );
    malformed(
        "compose.yaml",
        "services:\n  a:\n    build: missing\n",
        "compose.yaml:3:12: the context \"missing\" of a is not a directory",
    );
    malformed(
        "compose.yaml",
        "services:\n  a:\n    build:\n      context: a\n      dockerfile: prod.Dockerfile\n",
        "compose.yaml:4:7: the Dockerfile a/prod.Dockerfile of a does not exist",
    );
}

#[test]
fn compose_build_args_of_any_scalar_type() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(&d.join("a/Dockerfile"), "FROM scratch\n");
    write(
        &d.join("compose.yaml"),
        "services:\n  a:\n    image: registry.example.com/team/a\n    build:\n      context: a\n      args:\n        RETRIES: 3\n        DEBUG: true\n        RATIO: 1.5\n        PRICE: $$5\n        USER_HOME: ${HOME}\n        FROM_ENV:\n",
    );
    let out = ok(d, &["init"]);
    assert_eq!(
        written(d)["services"]["a"]["args"],
        serde_json::json!({"DEBUG": "true", "PRICE": "$5", "RATIO": "1.5", "RETRIES": "3"})
    );
    assert_eq!(
        lines_with(&out, "not mapped: "),
        [
            "not mapped: compose.yaml:5: build arg FROM_ENV of a takes its value from the environment; give it one in tagsmith.yaml",
            "not mapped: compose.yaml:5: build arg USER_HOME of a is filled in from the environment (${HOME}); give it a fixed value in tagsmith.yaml",
        ]
    );
}

#[test]
fn skaffold_requires_become_dependencies() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(&d.join("base/Dockerfile"), "FROM scratch\n");
    write(
        &d.join("app/Dockerfile"),
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n",
    );
    write(&d.join("tool/Dockerfile"), "FROM scratch\n");
    write(
        &d.join("skaffold.yaml"),
        "build:\n  artifacts:\n    - image: r.example/t/base\n      context: base\n    - image: r.example/t/lib\n      ko: {}\n    - image: r.example/t/app\n      context: app\n      requires:\n        - image: r.example/t/base\n          alias: BASE_IMAGE\n    - image: r.example/t/tool\n      context: tool\n      requires:\n        - image: r.example/t/lib\n",
    );
    let out = ok(d, &["init"]);
    // The alias is the build arg tagsmith passes: nothing to say.
    assert!(!out.contains("hint:"), "{out}");
    assert_eq!(
        lines_with(&out, "not mapped: "),
        [
            "not mapped: skaffold.yaml:5: artifact r.example/t/lib uses the ko builder; tagsmith builds Dockerfiles only",
            "not mapped: skaffold.yaml:12: tool requires r.example/t/lib, which is not built here; build it first yourself",
        ]
    );
    let config = written(d);
    assert_eq!(
        config["services"]["app"]["depends_on"],
        serde_json::json!(["base"])
    );
    assert!(config["services"]["tool"]["depends_on"].is_null());
    assert!(
        ok(d, &["graph"])
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["app", "<-", "base"])
    );
}

#[test]
fn no_common_registry_prefix_means_a_placeholder() {
    for images in [
        // Two registries.
        ["ghcr.io/acme/api", "quay.io/acme/web"],
        // One service names no image.
        ["ghcr.io/acme/api", ""],
    ] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let mut compose = String::from("services:\n");
        for (name, image) in ["api", "web"].iter().zip(images) {
            write(&d.join(name).join("Dockerfile"), "FROM scratch\n");
            compose.push_str(&format!("  {name}:\n    build: {name}\n"));
            if !image.is_empty() {
                compose.push_str(&format!("    image: {image}\n"));
            }
        }
        write(&d.join("compose.yaml"), &compose);
        let out = ok(d, &["init"]);
        assert!(out.contains("set `registry:`"), "{images:?}: {out}");
        assert_eq!(written(d)["registry"], "registry.example.com/change-me");
        assert_eq!(tags(d).len(), 2);
    }
}
