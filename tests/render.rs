//! `render`: golden files for every passthrough case and action form,
//! the stdout stream, `-o`, `--check`, `--prune`, and every error.

mod common;

use std::fs;
use std::path::Path;

use common::*;

/// Replaces `@TAG:svc@` and `@REPO:svc@` in a golden file with real values.
fn expand_golden(golden: &[u8], dir: &Path) -> Vec<u8> {
    let v: serde_json::Value =
        serde_json::from_str(&ok(dir, &["tags", "--format", "json"])).unwrap();
    let mut text = String::from_utf8(golden.to_vec()).unwrap();
    for s in v["services"].as_array().unwrap() {
        let (name, tag, image) = (
            s["name"].as_str().unwrap(),
            s["tag"].as_str().unwrap(),
            s["image"].as_str().unwrap(),
        );
        let repo = image.rsplit_once(':').unwrap().0;
        text = text
            .replace(&format!("@TAG:{name}@"), tag)
            .replace(&format!("@REPO:{name}@"), repo);
    }
    assert!(
        !text.contains("@TAG:") && !text.contains("@REPO:"),
        "unexpanded placeholder"
    );
    text.into_bytes()
}

#[test]
fn golden_files() {
    let root = fixture("render");
    let mut count = 0;
    for entry in fs::read_dir(root.join("templates")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let o = run(&root, &["render", &format!("templates/{name}")]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let golden = fs::read(root.join("golden").join(&name)).unwrap();
        let want = expand_golden(&golden, &root);
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&want),
            "{name}"
        );
        assert_eq!(o.stdout, want, "{name}: bytes");
        count += 1;
    }
    assert!(count >= 8, "only {count} golden cases");
}

#[test]
fn demo_stream_is_multi_document_yaml() {
    let demo = demo();
    let templates = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
    let out = ok(demo.path(), &["render", templates.to_str().unwrap()]);
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&out).unwrap();
    let kinds: Vec<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
    assert_eq!(
        kinds,
        [
            "Deployment",
            "Service",
            "PrometheusRule",
            "Deployment",
            "ConfigMap",
            "Deployment"
        ]
    );
    let tags = tags(demo.path());
    let api = &docs[0]["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        api["image"],
        format!("registry.example.com/demo/api:{}", tags["api"])
    );
    // The merge key was passed through and still works as YAML.
    assert_eq!(
        docs[0]["spec"]["template"]["metadata"]["labels"]["tier"],
        "backend"
    );
    assert_eq!(
        docs[0]["spec"]["template"]["metadata"]["labels"]["app"],
        "api"
    );
    let web = &docs[3]["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        web["image"],
        format!("registry.example.com/demo/frontend/web:{}", tags["web"])
    );
    assert!(!out.contains("<< image") && !out.contains("<< tag"));
    assert!(out.contains("cat <<EOF > /tmp/worker.yaml"));
    assert!(out.contains("{{ $labels.instance }}"));
}

#[test]
fn separators_only_where_missing() {
    let dir = single(None);
    let t = dir.path().join("t");
    write(&t.join("a.yaml"), "a: 1");
    write(&t.join("b.yaml"), "b: 2\n---\n");
    write(&t.join("c.yaml"), "c: 3\n");
    write(&t.join("d.txt"), "plain\n");
    write(&t.join(".hidden.yaml"), "hidden: true\n");
    write(&t.join(".git/x.yaml"), "x: 1\n");
    let out = ok(dir.path(), &["render", "t"]);
    assert_eq!(out, "a: 1\n---\nb: 2\n---\nc: 3\n---\nplain\n");
}

#[test]
fn output_dir_is_written_checked_and_pruned() {
    let dir = single(None);
    let d = dir.path();
    write(&d.join("t/app.yaml"), "image: << image \"app\" >>\n");
    write(&d.join("t/sub/tag.txt"), "<< tag \"app\" >>");
    write(&d.join("single.yaml"), "x: << repository \"app\" >>\n");
    write(&d.join("out/old.yaml"), "stale\n");
    let o = run(d, &["render", "t", "single.yaml", "-o", "out"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
    assert!(
        stderr(&o).contains("out/old.yaml"),
        "stale file reported: {}",
        stderr(&o)
    );
    let tag = &tags(d)["app"];
    assert_eq!(
        fs::read_to_string(d.join("out/app.yaml")).unwrap(),
        format!("image: r.example/t/app:{tag}\n")
    );
    assert_eq!(fs::read_to_string(d.join("out/sub/tag.txt")).unwrap(), *tag);
    assert_eq!(
        fs::read_to_string(d.join("out/single.yaml")).unwrap(),
        "x: r.example/t/app\n"
    );
    assert!(
        d.join("out/old.yaml").exists(),
        "not removed without --prune"
    );

    // --check: stale and changed files are listed, nothing is written.
    let o = run(d, &["render", "t", "single.yaml", "-o", "out", "--check"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("stale:   out/old.yaml"),
        "{}",
        stderr(&o)
    );
    write(&d.join("ctx/new.txt"), "changes the tag");
    fs::remove_file(d.join("out/old.yaml")).unwrap();
    let before = fs::read(d.join("out/app.yaml")).unwrap();
    let o = run(d, &["render", "t", "single.yaml", "-o", "out", "--check"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("differs: out/app.yaml") && err.contains("differs: out/sub/tag.txt"),
        "{err}"
    );
    assert!(!err.contains("single.yaml"), "unchanged file listed: {err}");
    assert_eq!(
        fs::read(d.join("out/app.yaml")).unwrap(),
        before,
        "--check wrote"
    );

    ok(d, &["render", "t", "single.yaml", "-o", "out"]);
    ok(d, &["render", "t", "single.yaml", "-o", "out", "--check"]);

    write(&d.join("out/gone.yaml"), "stale\n");
    let o = run(d, &["render", "t", "single.yaml", "-o", "out", "--prune"]);
    assert!(o.status.success());
    assert!(!d.join("out/gone.yaml").exists());
    let leftovers: Vec<_> = fs::read_dir(d.join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 3, "no temporary files left: {leftovers:?}");
}

#[test]
fn errors_are_all_listed_and_nothing_is_written() {
    let dir = single(None);
    let d = dir.path();
    write(
        &d.join("t/a.yaml"),
        "x: << tga \"app\" >>\ny: << tag \"app\"\n",
    );
    write(
        &d.join("t/b.yaml"),
        "ok: << tag \"app\" >>\nz: << image \"ap\" >>\n",
    );
    write(&d.join("out/keep.yaml"), "previous\n");
    let o = run(d, &["render", "t", "-o", "out"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty());
    let err = stderr(&o);
    for expected in [
        "t/a.yaml:1:4: unknown function \"tga\" (did you mean \"tag\"?)",
        "t/a.yaml:2:4: unterminated action",
        "t/b.yaml:2:4: unknown service \"ap\" (did you mean \"app\"?)",
    ] {
        assert!(
            err.lines().any(|l| l.starts_with(expected)),
            "missing {expected:?} in\n{err}"
        );
    }
    let files: Vec<_> = fs::read_dir(d.join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(files, ["keep.yaml"], "DIR changed");
    assert_eq!(
        fs::read_to_string(d.join("out/keep.yaml")).unwrap(),
        "previous\n"
    );
    // Without -o nothing reaches stdout either.
    let o = run(d, &["render", "t"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty());
}

#[test]
fn only_referenced_services_are_hashed() {
    let demo = demo();
    let d = demo.path();
    write(&d.join("t/web.yaml"), "image: << image \"web\" >>\n");
    // A FIFO in api's context would fail hashing api.
    let fifo = d.join("services/api/pipe");
    mkfifo(&fifo);
    let out = ok(d, &["render", "t"]);
    assert!(out.contains("frontend/web:"), "{out}");
}

#[test]
fn default_templates_from_config_and_bad_paths() {
    let dir = single(None);
    let d = dir.path();
    let err = fails(d, &["render"]);
    assert!(err.contains("templates"), "{err}");
    let cfg = fs::read_to_string(d.join("tagsmith.yaml")).unwrap();
    fs::write(d.join("tagsmith.yaml"), format!("templates: k8s\n{cfg}")).unwrap();
    write(&d.join("k8s/app.yaml"), "tag: << tag \"app\" >>\n");
    let out = ok(&d.join("ctx"), &["render"]);
    assert_eq!(out, format!("tag: {}\n", tags(d)["app"]));
    let err = fails(d, &["render", "missing-dir"]);
    assert!(
        err.contains("missing-dir") && err.contains("not found"),
        "{err}"
    );
    write(&d.join("other/app.yaml"), "x\n");
    let err = fails(d, &["render", "k8s", "other", "-o", "out"]);
    assert!(err.contains("both render to \"app.yaml\""), "{err}");
    let o = run(d, &["render", "--check"]);
    assert_eq!(o.status.code(), Some(1), "a usage error is a user error");
    assert!(stderr(&o).contains("--output"), "{}", stderr(&o));
}

#[test]
fn every_problem_of_a_file_is_reported_and_counted() {
    // An unknown service on line 1 and an unknown function on line 2 of the
    // same file: both kinds come out, in file order, and the count is right.
    let dir = single(None);
    let d = dir.path();
    write(
        &d.join("t/a.yaml"),
        "a: << tag \"nope\" >>\nb: << tga \"app\" >>\n",
    );
    let o = run(d, &["render", "t/a.yaml"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty());
    let err = stderr(&o);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 3, "{err}");
    assert!(
        lines[0].starts_with("t/a.yaml:1:4: unknown service \"nope\""),
        "{err}"
    );
    assert!(
        lines[1].starts_with("t/a.yaml:2:4: unknown function \"tga\""),
        "{err}"
    );
    assert_eq!(lines[2], "tagsmith: error: 2 problems, nothing written");
}

#[test]
fn check_counts_problems_not_its_own_summary() {
    let dir = single(None);
    let d = dir.path();
    write(&d.join("t/a.yaml"), "a: << tag \"app\" >>\n");
    write(&d.join("t/b.yaml"), "b: 1\n");
    ok(d, &["render", "t", "-o", "out"]);
    assert!(ok(d, &["render", "t", "-o", "out", "--check"]).is_empty());
    write(&d.join("t/a.yaml"), "a: changed << tag \"app\" >>\n");
    let o = run(d, &["render", "t", "-o", "out", "--check"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert_eq!(
        err,
        "differs: out/a.yaml\ntagsmith: error: 1 problem, out is not up to date: run `tagsmith render -o out`\n"
    );
    fs::remove_file(d.join("t/b.yaml")).unwrap();
    let err = stderr(&run(d, &["render", "t", "-o", "out", "--check"]));
    assert!(
        err.ends_with(
            "tagsmith: error: 2 problems, out is not up to date: run `tagsmith render -o out`\n"
        ),
        "{err}"
    );
}
