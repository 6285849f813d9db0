//! The examples under examples/ run: the Makefile's targets on a copy of
//! the demo; the GitHub Actions workflow and the GitLab CI file parsed as
//! YAML, their structure checked, every tagsmith command they run checked
//! against tagsmith's own help, and their jobs' scripts executed in job
//! order against a real registry and engine, as the CI systems would (the
//! parts that need GitHub or GitLab themselves, or a cluster, are not run).

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::infra::{self, Registry};
use common::tools::{self, Built};
use common::*;
use serde_json::Value;

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

fn yaml(name: &str) -> Value {
    serde_saphyr::from_str(&fs::read_to_string(example(name)).unwrap())
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// PATH with the tagsmith binary first, as the examples call `tagsmith`.
fn path_with_tagsmith() -> String {
    format!(
        "{}:{}",
        Path::new(bin()).parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// The demo, its manifest templates (the repository's templates/) named by
/// `templates:` in its config, and the example Makefile.
fn demo_with_templates() -> tempfile::TempDir {
    let demo = demo();
    let d = demo.path();
    copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("templates"),
        &d.join("deploy/templates"),
    );
    let config = fs::read_to_string(d.join("tagsmith.yaml")).unwrap();
    fs::write(
        d.join("tagsmith.yaml"),
        format!("templates: deploy/templates\n{config}"),
    )
    .unwrap();
    demo
}

// ---------------------------------------------------------------------------
// Every tagsmith command an example runs is a real subcommand with real options.

/// `tagsmith <subcommand> <args>` invocations in shell text: tagsmith in a
/// command position (line start, after `|`, `;`, `&&`, `{`, `$(`, or as a
/// script item `- ` of a YAML file that a script writes).
fn tagsmith_commands(script: &str) -> Vec<Vec<String>> {
    let re = regex::Regex::new(
        r"(?m)(?:^\s*|^\s*-\s+|[|;{]\s*|&&\s*|\$\(\s*)tagsmith((?:[ \t]+[^\s|;&>)]+)*)",
    )
    .unwrap();
    re.captures_iter(script)
        .map(|c| c[1].split_whitespace().map(String::from).collect())
        .collect()
}

fn help(args: &[&str]) -> String {
    let o = Command::new(bin())
        .args(args)
        .arg("--help")
        .output()
        .unwrap();
    assert!(o.status.success(), "{args:?} --help");
    String::from_utf8(o.stdout).unwrap()
}

/// Checks each command's subcommand and long options against `--help`.
fn assert_real_commands(what: &str, commands: &[Vec<String>]) {
    let top = help(&[]);
    let subcommands: Vec<&str> = top
        .lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(subcommands.contains(&"plan"), "{top}");
    for args in commands {
        let sub = args
            .first()
            .unwrap_or_else(|| panic!("{what}: a bare `tagsmith`"));
        assert!(
            subcommands.contains(&sub.as_str()),
            "{what}: `tagsmith {}`: no subcommand {sub}",
            args.join(" ")
        );
        let sub_help = help(&[sub]);
        for option in args.iter().filter(|a| a.starts_with("--")) {
            let name = option.split('=').next().unwrap();
            assert!(
                sub_help.contains(&format!("{name} ")) || sub_help.contains(&format!("{name}\n")),
                "{what}: `tagsmith {}`: {sub} has no option {name}",
                args.join(" ")
            );
        }
    }
}

// ---------------------------------------------------------------------------
// The Makefile.

fn make(dir: &Path, cfg: &Path, args: &[&str]) -> Output {
    Command::new("make")
        .args(args)
        .arg(format!("TAGSMITH={}", bin()))
        .current_dir(dir)
        .env("DOCKER_CONFIG", cfg)
        .env_remove("MAKEFLAGS")
        .output()
        .unwrap()
}

fn make_ok(dir: &Path, cfg: &Path, args: &[&str]) -> String {
    let o = make(dir, cfg, args);
    assert!(
        o.status.success(),
        "make {args:?}: {}{}",
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

#[test]
fn makefile_targets_are_one_tagsmith_command_each() {
    if !tools::have(
        "makefile_targets_are_one_tagsmith_command_each",
        "make",
        &["--version"],
        true,
    ) {
        return;
    }
    let demo = demo_with_templates();
    let d = demo.path();
    fs::copy(example("Makefile"), d.join("Makefile")).unwrap();
    let mut commands = Vec::new();
    for target in ["tags", "build", "push", "render", "deploy", "check"] {
        let o = Command::new("make")
            .args(["-n", target])
            .current_dir(d)
            .output()
            .unwrap();
        assert!(o.status.success(), "{target}: {}", stderr(&o));
        let text = stdout(&o);
        assert_eq!(text.lines().count(), 1, "{target} is a one-liner: {text}");
        assert!(text.starts_with("tagsmith "), "{target}: {text}");
        commands.extend(tagsmith_commands(&text));
    }
    assert_real_commands("examples/Makefile", &commands);
    let o = Command::new("make")
        .args(["-n", "deploy"])
        .current_dir(d)
        .output()
        .unwrap();
    assert_eq!(stdout(&o), "tagsmith render  | kubectl apply -f -\n");
}

#[test]
fn makefile_tags_render_and_check_on_the_demo() {
    if !tools::have(
        "makefile_tags_render_and_check_on_the_demo",
        "make",
        &["--version"],
        true,
    ) {
        return;
    }
    let demo = demo_with_templates();
    let d = demo.path();
    fs::copy(example("Makefile"), d.join("Makefile")).unwrap();
    let cfg = infra::docker_config(None);

    let out = make_ok(d, cfg.path(), &["--silent", "tags"]);
    assert_eq!(out, ok(d, &["tags"]));

    make_ok(d, cfg.path(), &["render"]);
    let manifests = d.join("deploy/manifests");
    let api = fs::read_to_string(manifests.join("api.yaml")).unwrap();
    let image = by_name(&ok(d, &["tags", "--format", "json"]), "image")["api"].clone();
    assert!(api.contains(&format!("image: {image}\n")), "{api}");
    assert!(manifests.join("monitoring/alerts.yaml").is_file());
    make_ok(d, cfg.path(), &["check"]);

    // A change re-tags api: check fails and names the stale manifest;
    // render brings it up to date.
    write(&d.join("services/api/config/app.yaml"), "port: 1234\n");
    let o = make(d, cfg.path(), &["check"]);
    assert!(!o.status.success(), "check passed on stale manifests");
    assert!(stderr(&o).contains("api.yaml"), "{}", stderr(&o));
    make_ok(d, cfg.path(), &["render"]);
    make_ok(d, cfg.path(), &["check"]);

    // A manifest no template makes any more is pruned by render.
    write(&manifests.join("old.yaml"), "kind: ConfigMap\n");
    assert!(!make(d, cfg.path(), &["check"]).status.success());
    make_ok(d, cfg.path(), &["render"]);
    assert!(!manifests.join("old.yaml").exists());
    make_ok(d, cfg.path(), &["check"]);

    // Other template paths and output directories through the variables.
    make_ok(
        d,
        cfg.path(),
        &[
            "render",
            "TEMPLATES=deploy/templates/web.yaml",
            "MANIFESTS=web-only",
        ],
    );
    let names: Vec<_> = fs::read_dir(d.join("web-only"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["web.yaml"]);
}

#[test]
fn makefile_build_and_push_against_a_registry() {
    if !infra::available("makefile_build_and_push_against_a_registry")
        || !tools::have(
            "makefile_build_and_push_against_a_registry",
            "make",
            &["--version"],
            true,
        )
    {
        return;
    }
    let reg = Registry::start(false);
    let demo = demo_with_templates();
    let d = demo.path();
    infra::use_registry(d, &format!("{}/demo", reg.host()));
    fs::copy(example("Makefile"), d.join("Makefile")).unwrap();
    let mut built = Built::new(tools::images(d));
    let cfg = infra::docker_config(None);

    make_ok(d, cfg.path(), &["build"]);
    // `push` builds again for the registry: the local images lose their tags.
    built.snapshot();
    assert!(
        reg.tags("demo/api", false).is_empty(),
        "build does not push"
    );
    make_ok(d, cfg.path(), &["push"]);
    let statuses = infra::statuses(&d.join("build-report.json"));
    assert_eq!(statuses.len(), 4);
    assert!(statuses.values().all(|s| s == "pushed"), "{statuses:?}");
    assert_eq!(reg.tags("demo/api", false), [tags(d)["api"].clone()]);
    make_ok(d, cfg.path(), &["push"]);
    let statuses = infra::statuses(&d.join("build-report.json"));
    assert!(statuses.values().all(|s| s == "up-to-date"), "{statuses:?}");
}

// ---------------------------------------------------------------------------
// GitHub Actions.

const WAVES: usize = 5;

fn steps(job: &Value) -> &Vec<Value> {
    job["steps"].as_array().unwrap()
}

fn step<'a>(job: &'a Value, id: &str) -> &'a Value {
    steps(job)
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no step {id}"))
}

fn all_scripts(v: &Value, out: &mut String) {
    match v {
        Value::String(s) => {
            out.push_str(s);
            out.push('\n');
        }
        Value::Array(a) => a.iter().for_each(|x| all_scripts(x, out)),
        Value::Object(o) => o.values().for_each(|x| all_scripts(x, out)),
        _ => {}
    }
}

#[test]
fn github_actions_workflow_structure() {
    let w = yaml("github-actions.yml");
    let jobs = w["jobs"].as_object().unwrap();
    let mut names: Vec<&str> = jobs.keys().map(String::as_str).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "manifests",
            "plan",
            "wave0",
            "wave1",
            "wave2",
            "wave3",
            "wave4"
        ]
    );
    assert_eq!(w["on"]["push"]["branches"], serde_json::json!(["main"]));

    let plan = &jobs["plan"];
    assert_eq!(step(plan, "plan")["run"], "tagsmith plan --format github");
    // More waves than wave jobs fail the run.
    let guard = steps(plan)
        .iter()
        .find(|s| s["if"] == "${{ fromJSON(steps.plan.outputs.waves) > 5 }}")
        .expect("a step that fails on more than five waves");
    assert!(guard["run"].as_str().unwrap().contains("exit 1"));
    for key in ["waves", "any"] {
        assert_eq!(
            plan["outputs"][key],
            format!("${{{{ steps.plan.outputs.{key} }}}}")
        );
    }
    for i in 0..WAVES {
        assert_eq!(
            plan["outputs"][format!("wave{i}")],
            format!("${{{{ steps.plan.outputs.wave{i} }}}}")
        );
        let job = &jobs[&format!("wave{i}")];
        let needs: Vec<String> = serde_json::from_value(job["needs"].clone()).unwrap();
        if i == 0 {
            assert_eq!(needs, ["plan"]);
        } else {
            assert_eq!(needs, ["plan".to_string(), format!("wave{}", i - 1)]);
        }
        assert_eq!(
            job["if"],
            format!("${{{{ needs.plan.outputs.wave{i} != '[]' }}}}")
        );
        assert_eq!(
            job["strategy"]["matrix"]["service"],
            format!("${{{{ fromJSON(needs.plan.outputs.wave{i}) }}}}")
        );
        assert_eq!(
            step(job, "build")["run"],
            "tagsmith build --push --report \"report-${{ matrix.service }}.json\" \"${{ matrix.service }}\""
        );
        assert_eq!(job["permissions"]["packages"], "write");
    }
    let manifests = &jobs["manifests"];
    let needs: Vec<String> = serde_json::from_value(manifests["needs"].clone()).unwrap();
    assert_eq!(needs, ["plan", "wave0", "wave1", "wave2", "wave3", "wave4"]);
    // Runs after skipped waves, not after a failed one.
    assert_eq!(
        manifests["if"],
        "${{ !cancelled() && !contains(needs.*.result, 'failure') }}"
    );
    assert!(
        step(manifests, "render")["run"]
            .as_str()
            .unwrap()
            .contains("tagsmith render -o deploy/manifests --prune --report build-report.json")
    );
    let pr = steps(manifests).last().unwrap()["run"].as_str().unwrap();
    assert!(
        pr.contains("git add deploy/manifests deploy/images"),
        "{pr}"
    );
    assert!(pr.contains("gh pr create"), "{pr}");
    assert_eq!(manifests["permissions"]["pull-requests"], "write");

    let mut text = String::new();
    all_scripts(&w, &mut text);
    let commands = tagsmith_commands(&text);
    assert!(commands.len() >= 5, "{commands:?}");
    assert_real_commands("examples/github-actions.yml", &commands);
    // The install step is the README's install command, from git.
    assert!(text.contains("cargo install --locked --git \"$TAGSMITH_GIT\" tagsmith"));
}

/// Replaces the `${{ … }}` expressions a step uses with their values;
/// any other expression fails the test (it would not be evaluated).
fn substitute(script: &str, values: &BTreeMap<String, String>) -> String {
    let mut out = script.to_string();
    for (expr, value) in values {
        out = out.replace(&format!("${{{{ {expr} }}}}"), value);
    }
    assert!(!out.contains("${{"), "unevaluated expression in {out}");
    out
}

/// Runs a step's `run:` as GitHub does (`bash -e`) in `dir`.
fn run_step(dir: &Path, script: &str, env: &[(&str, &Path)]) {
    let mut cmd = Command::new("bash");
    cmd.args([
        "--noprofile",
        "--norc",
        "-e",
        "-o",
        "pipefail",
        "-c",
        script,
    ])
    .current_dir(dir)
    .env("PATH", path_with_tagsmith())
    .env_remove("GITHUB_OUTPUT");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let o = cmd.output().unwrap();
    assert!(
        o.status.success(),
        "step {script:?}: {}{}",
        stdout(&o),
        stderr(&o)
    );
}

/// One run of the workflow's jobs in order, the way GitHub would schedule
/// them: the plan step's outputs decide which wave jobs run and their
/// matrices; every service of a wave is built by its own step run.
/// Returns the waves that ran.
fn github_run(w: &Value, d: &Path, cfg: &Path) -> Vec<Vec<String>> {
    let jobs = &w["jobs"];
    let scratch = tempfile::tempdir().unwrap();
    let output = scratch.path().join("github_output");
    fs::write(&output, "").unwrap();
    run_step(
        d,
        &substitute(
            step(&jobs["plan"], "plan")["run"].as_str().unwrap(),
            &BTreeMap::new(),
        ),
        &[("DOCKER_CONFIG", cfg), ("GITHUB_OUTPUT", &output)],
    );
    let outputs: BTreeMap<String, String> = fs::read_to_string(&output)
        .unwrap()
        .lines()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (format!("needs.plan.outputs.{k}"), v.to_string())
        })
        .collect();
    let waves: usize = outputs["needs.plan.outputs.waves"].parse().unwrap();
    assert!(waves <= WAVES, "the guard step would fail the run");

    let mut ran = Vec::new();
    for i in 0..WAVES {
        let wave = &outputs[&format!("needs.plan.outputs.wave{i}")];
        // `if: needs.plan.outputs.wave<i> != '[]'`
        if wave == "[]" {
            continue;
        }
        // `matrix.service: fromJSON(needs.plan.outputs.wave<i>)`
        let services: Vec<String> = serde_json::from_str(wave).unwrap();
        let job = &jobs[&format!("wave{i}")];
        for service in &services {
            let mut values = outputs.clone();
            values.insert("matrix.service".into(), service.clone());
            let script = substitute(step(job, "build")["run"].as_str().unwrap(), &values);
            run_step(d, &script, &[("DOCKER_CONFIG", cfg)]);
            let report = d.join(format!("report-{service}.json"));
            assert_eq!(infra::statuses(&report)[service], "pushed", "{service}");
        }
        ran.push(services);
    }

    let manifests = &jobs["manifests"];
    for id in ["digests", "render"] {
        let script = substitute(
            step(manifests, id)["run"].as_str().unwrap(),
            &BTreeMap::new(),
        );
        run_step(d, &script, &[("DOCKER_CONFIG", cfg)]);
    }
    ran
}

#[test]
fn github_actions_workflow_runs_wave_by_wave() {
    if !infra::available("github_actions_workflow_runs_wave_by_wave")
        || !tools::have(
            "github_actions_workflow_runs_wave_by_wave",
            "bash",
            &["--version"],
            true,
        )
    {
        return;
    }
    let w = yaml("github-actions.yml");
    let reg = Registry::start(false);
    let demo = demo_with_templates();
    let d = demo.path();
    infra::use_registry(d, &format!("{}/demo", reg.host()));
    let _built = Built::new(tools::images(d));
    let cfg = infra::docker_config(None);

    let ran = github_run(&w, d, cfg.path());
    assert_eq!(
        ran,
        [
            vec!["base".to_string(), "worker".into()],
            vec!["api".into(), "web".into()]
        ]
    );
    let all = by_name(&ok(d, &["tags", "--format", "json"]), "image");
    let digests = by_name(
        &fs::read_to_string(d.join("build-report.json")).unwrap(),
        "digest",
    );
    let api = fs::read_to_string(d.join("deploy/manifests/api.yaml")).unwrap();
    assert!(api.contains(&format!("image: {}\n", all["api"])), "{api}");
    let component = fs::read_to_string(d.join("deploy/images/kustomization.yaml")).unwrap();
    assert!(
        component.starts_with(
            "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nimages:\n"
        ),
        "{component}"
    );
    for name in all.keys() {
        assert!(
            component.contains(&format!("  digest: {}\n", digests[name])),
            "{name}"
        );
    }
    ok(d, &["render", "-o", "deploy/manifests", "--check"]);

    // The next run, with nothing changed: every wave job is skipped, and
    // the manifests come out the same.
    let before = fs::read_to_string(d.join("deploy/images/kustomization.yaml")).unwrap();
    assert!(github_run(&w, d, cfg.path()).is_empty());
    assert_eq!(
        fs::read_to_string(d.join("deploy/images/kustomization.yaml")).unwrap(),
        before
    );

    // A change to api builds api alone, in wave 0.
    write(&d.join("services/api/config/app.yaml"), "port: 4321\n");
    assert_eq!(github_run(&w, d, cfg.path()), [vec!["api".to_string()]]);
    let _built_api = Built::new(tools::images(d));
}

// ---------------------------------------------------------------------------
// GitLab CI.

fn script_text(job: &Value) -> String {
    job["script"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string() + "\n")
        .collect()
}

#[test]
fn gitlab_ci_structure() {
    let g = yaml("gitlab-ci.yml");
    assert_eq!(
        g["stages"],
        serde_json::json!(["plan", "build", "manifests"])
    );
    let plan = &g["plan"];
    assert_eq!(plan["stage"], "plan");
    let script = script_text(plan);
    assert!(script.contains("tagsmith plan > plan.txt\n"), "{script}");
    assert_eq!(
        plan["artifacts"]["paths"],
        serde_json::json!(["plan.txt", "waves.yml"])
    );

    let build = &g["build"];
    assert_eq!(build["needs"], serde_json::json!(["plan"]));
    assert_eq!(
        build["trigger"],
        serde_json::json!({"include": [{"artifact": "waves.yml", "job": "plan"}], "strategy": "depend"})
    );

    let manifests = &g["manifests"];
    assert_eq!(manifests["needs"], serde_json::json!(["build"]));
    let script = script_text(manifests);
    // The anchor: the same registry login as the plan job.
    assert_eq!(manifests["script"][0], plan["script"][0]);
    assert!(script.contains("tagsmith build --push --quiet --report build-report.json\n"));
    assert!(
        script.contains("tagsmith render -o deploy/manifests --prune --report build-report.json\n")
    );
    assert!(script.contains("-o merge_request.create"), "{script}");

    let mut text = String::new();
    all_scripts(&g, &mut text);
    let commands = tagsmith_commands(&text);
    assert!(commands.len() >= 5, "{commands:?}");
    assert_real_commands("examples/gitlab-ci.yml", &commands);
}

/// Runs a job's script items in one `sh -e`, as the runner does, in `dir`.
fn run_job(dir: &Path, items: &[String], env: &BTreeMap<&str, String>) {
    let script = format!("set -e\n{}", items.join("\n"));
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &script])
        .current_dir(dir)
        .env("PATH", path_with_tagsmith())
        .env_remove("DOCKER_CONFIG")
        .env_remove("GITHUB_OUTPUT");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let o = cmd.output().unwrap();
    assert!(
        o.status.success(),
        "job script {script}: {}{}",
        stdout(&o),
        stderr(&o)
    );
}

fn items(job: &Value) -> Vec<String> {
    job["script"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// `env` with a fresh, empty HOME (kept while the TempDir lives).
fn fresh<'a>(env: &BTreeMap<&'a str, String>) -> (tempfile::TempDir, BTreeMap<&'a str, String>) {
    let home = tempfile::tempdir().unwrap();
    let mut env = env.clone();
    env.insert("HOME", home.path().to_str().unwrap().to_string());
    (home, env)
}

/// The plan job, then the child pipeline it generates (stage by stage, a
/// job per matrix value, each with its own fresh docker config written by
/// its own login lines), then the manifests job up to its git push.
/// Returns the child pipeline's stages and their services.
fn gitlab_run(g: &Value, d: &Path, env: &BTreeMap<&str, String>) -> Vec<(String, Vec<String>)> {
    let (_home, plan_env) = fresh(env);
    run_job(d, &items(&g["plan"]), &plan_env);
    let child: Value = serde_saphyr::from_str(&fs::read_to_string(d.join("waves.yml")).unwrap())
        .unwrap_or_else(|e| panic!("waves.yml: {e}"));
    assert_eq!(child["default"]["image"], env["TAGSMITH_IMAGE"].as_str());
    let stages: Vec<String> = serde_json::from_value(child["stages"].clone()).unwrap();
    let mut ran = Vec::new();
    for stage in &stages {
        let job = &child[stage];
        assert_eq!(job["stage"], stage.as_str());
        if stage == "nothing" {
            ran.push((stage.clone(), Vec::new()));
            continue;
        }
        let services: Vec<String> =
            serde_json::from_value(job["parallel"]["matrix"][0]["SERVICE"].clone()).unwrap();
        assert_eq!(job["services"], serde_json::json!(["docker:27-dind"]));
        for service in &services {
            let (_home, mut job_env) = fresh(env);
            job_env.insert("SERVICE", service.clone());
            run_job(d, &items(job), &job_env);
            let report = d.join(format!("report-{service}.json"));
            assert_eq!(infra::statuses(&report)[service], "pushed", "{service}");
        }
        ran.push((stage.clone(), services));
    }
    // The manifests job, but for its last item (git push to GitLab).
    let (_home, manifests_env) = fresh(env);
    let mut manifests = items(&g["manifests"]);
    let push = manifests.pop().unwrap();
    assert!(push.contains("git push"), "{push}");
    run_job(d, &manifests, &manifests_env);
    ran
}

#[test]
fn gitlab_ci_runs_a_generated_child_pipeline() {
    if !infra::available("gitlab_ci_runs_a_generated_child_pipeline") {
        return;
    }
    let g = yaml("gitlab-ci.yml");
    // A registry that needs the credentials the jobs' login lines write.
    let reg = Registry::start(true);
    let demo = demo_with_templates();
    let d = demo.path();
    infra::use_registry(d, &format!("{}/demo", reg.host()));
    let _built = Built::new(tools::images(d));
    let env: BTreeMap<&str, String> = [
        ("CI_REGISTRY", reg.host()),
        ("CI_REGISTRY_USER", infra::USER.to_string()),
        ("CI_REGISTRY_PASSWORD", infra::PASSWORD.to_string()),
        (
            "TAGSMITH_IMAGE",
            "registry.example.com/tools/tagsmith:1".to_string(),
        ),
    ]
    .into_iter()
    .collect();

    let ran = gitlab_run(&g, d, &env);
    assert_eq!(
        ran,
        [
            (
                "wave0".to_string(),
                vec!["base".to_string(), "worker".into()]
            ),
            ("wave1".to_string(), vec!["api".into(), "web".into()]),
        ]
    );
    assert_eq!(
        reg.tags("demo/frontend/web", true),
        [tags(d)["web"].clone()]
    );
    let statuses = infra::statuses(&d.join("build-report.json"));
    assert!(statuses.values().all(|s| s == "up-to-date"), "{statuses:?}");
    let all = by_name(&ok(d, &["tags", "--format", "json"]), "image");
    let web = fs::read_to_string(d.join("deploy/manifests/web.yaml")).unwrap();
    assert!(web.contains(&format!("image: {}\n", all["web"])), "{web}");
    assert!(d.join("deploy/images/kustomization.yaml").is_file());

    // Nothing to build: the child pipeline is one job that says so.
    assert_eq!(gitlab_run(&g, d, &env), [("nothing".to_string(), vec![])]);
}

// ---------------------------------------------------------------------------
// The CI files against the JSON schemas GitHub and GitLab publish (the
// SchemaStore copies bundled with check-jsonschema, from PyPI).

fn check_jsonschema(schema: &str, file: &Path) {
    let o = Command::new("python3")
        .args(["-m", "check_jsonschema", "--builtin-schema", schema])
        .arg(file)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{} against {schema}: {}{}",
        file.display(),
        stdout(&o),
        stderr(&o)
    );
}

#[test]
fn ci_files_match_the_published_schemas() {
    if !tools::have(
        "ci_files_match_the_published_schemas",
        "python3",
        &["-m", "check_jsonschema", "--version"],
        false,
    ) {
        return;
    }
    check_jsonschema("vendor.github-workflows", &example("github-actions.yml"));
    check_jsonschema("vendor.gitlab-ci", &example("gitlab-ci.yml"));

    // The child pipelines the plan job generates: waves, and nothing to build.
    let g = yaml("gitlab-ci.yml");
    let generator = items(&g["plan"])
        .into_iter()
        .find(|s| s.contains("> waves.yml"))
        .unwrap();
    for plan in [
        "wave 0: base worker\nwave 1: api web\nwave 2: edge\n",
        "nothing to build: every tag is in the registry\n",
    ] {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("plan.txt"), plan).unwrap();
        let env = [(
            "TAGSMITH_IMAGE",
            "registry.example.com/tools/tagsmith:1".to_string(),
        )]
        .into_iter()
        .collect();
        run_job(dir.path(), std::slice::from_ref(&generator), &env);
        check_jsonschema("vendor.gitlab-ci", &dir.path().join("waves.yml"));
    }
}
