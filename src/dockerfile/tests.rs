use super::*;

fn run(text: &str, args: &[(&str, &str)]) -> Scan {
    let args = args
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let injected = BTreeSet::from(["JVM_BASE_IMAGE".to_string(), "TOOLS_IMAGE".to_string()]);
    scan(text, &args, &injected).unwrap()
}

/// The injected variables each external reference reads.
fn deps(scan: &Scan) -> Vec<String> {
    let mut out: Vec<String> = scan
        .refs
        .iter()
        .filter(|r| !r.stage)
        .flat_map(|r| r.vars.iter().filter(|v| v.ends_with("_IMAGE")).cloned())
        .collect();
    out.sort();
    out.dedup();
    out
}

#[test]
fn plain_from() {
    let s = run("FROM alpine:3.19\nRUN true\n", &[]);
    assert_eq!(s.refs.len(), 1);
    assert_eq!(s.refs[0].expanded, "alpine:3.19");
    assert!(!s.refs[0].stage);
    assert!(deps(&s).is_empty());
}

#[test]
fn injected_image_arg() {
    let s = run("ARG JVM_BASE_IMAGE\nFROM ${JVM_BASE_IMAGE}\n", &[]);
    assert_eq!(deps(&s), ["JVM_BASE_IMAGE"]);
    let s = run("ARG JVM_BASE_IMAGE\nfrom $JVM_BASE_IMAGE as app\n", &[]);
    assert_eq!(deps(&s), ["JVM_BASE_IMAGE"]);
    assert_eq!(s.stages, ["app"]);
}

#[test]
fn default_values_and_overrides() {
    let text = "ARG BASE=${JVM_BASE_IMAGE}\nFROM ${BASE}\n";
    assert_eq!(deps(&run(text, &[])), ["JVM_BASE_IMAGE"]);
    // A build arg overriding BASE cuts the link.
    let s = run(text, &[("BASE", "debian:12")]);
    assert!(deps(&s).is_empty());
    assert_eq!(s.refs[0].expanded, "debian:12");
    // `${VAR:-default}` reads the default only when VAR is unset or empty.
    let text = "ARG IMG\nFROM ${IMG:-${TOOLS_IMAGE}}\n";
    assert_eq!(deps(&run(text, &[])), ["TOOLS_IMAGE"]);
    assert!(deps(&run(text, &[("IMG", "x")])).is_empty());
    let s = run("ARG V=1.2\nFROM busybox:${V}\n", &[]);
    assert_eq!(s.refs[0].expanded, "busybox:1.2");
    let s = run("ARG V=1.2\nFROM busybox:${V}\n", &[("V", "9")]);
    assert_eq!(s.refs[0].expanded, "busybox:9");
    let s = run("ARG V\nFROM busybox${V:+:$V}\n", &[]);
    assert_eq!(s.refs[0].expanded, "busybox");
}

#[test]
fn continuations_comments_and_flags() {
    let text = "# syntax=docker/dockerfile:1\nFROM \\\n  --platform=$BUILDPLATFORM \\\n# a comment inside\n  ${JVM_BASE_IMAGE} \\\n  AS build\nRUN make\n";
    let s = run(text, &[]);
    assert_eq!(deps(&s), ["JVM_BASE_IMAGE"]);
    assert_eq!(s.refs[0].line, 2);
    assert_eq!(s.stages, ["build"]);
}

#[test]
fn escape_directive() {
    let text = "# escape=`\nFROM `\n  ${TOOLS_IMAGE}\nRUN dir c:\\\n";
    let s = run(text, &[]);
    assert_eq!(deps(&s), ["TOOLS_IMAGE"]);
    // After the directive block, `# escape=` is an ordinary comment.
    let text = "FROM a\n# escape=`\nRUN x \\\n  y\nFROM ${TOOLS_IMAGE}\n";
    assert_eq!(deps(&run(text, &[])), ["TOOLS_IMAGE"]);
}

#[test]
fn stages_are_not_images() {
    let text = "FROM ${JVM_BASE_IMAGE} AS base\nFROM base AS test\nFROM scratch\nCOPY --from=test /a /a\nCOPY --from=0 /b /b\nCOPY --from=${TOOLS_IMAGE} /c /c\n";
    let s = run(text, &[]);
    let stage_flags: Vec<bool> = s.refs.iter().map(|r| r.stage).collect();
    assert_eq!(stage_flags, [false, true, false, true, true, false]);
    assert_eq!(deps(&s), ["JVM_BASE_IMAGE", "TOOLS_IMAGE"]);
}

#[test]
fn heredocs_are_skipped() {
    let text =
        "FROM scratch\nRUN <<EOF\nFROM ${TOOLS_IMAGE}\nEOF\nRUN <<-END cat\n\tFROM x\n\tEND\n";
    let s = run(text, &[]);
    assert_eq!(s.refs.len(), 1);
}

#[test]
fn escaped_dollar_is_literal() {
    let s = run("FROM \\$JVM_BASE_IMAGE\n", &[]);
    assert_eq!(s.refs[0].expanded, "$JVM_BASE_IMAGE");
    assert!(deps(&s).is_empty());
}

#[test]
fn errors_name_the_line() {
    let empty = BTreeSet::new();
    let err = scan("FROM a\n\nFROM\n", &BTreeMap::new(), &empty).unwrap_err();
    assert_eq!(err.line, 3);
    let err = scan("FROM ${A\n", &BTreeMap::new(), &empty).unwrap_err();
    assert_eq!(err.line, 1);
    assert!(err.message.contains("unterminated"), "{}", err.message);
    let err = scan("FROM a b c\n", &BTreeMap::new(), &empty).unwrap_err();
    assert!(err.message.contains("expected"), "{}", err.message);
}
