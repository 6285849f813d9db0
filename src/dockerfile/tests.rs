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

#[test]
fn mounts_secrets_and_syntax() {
    let text = "# syntax=docker/dockerfile:1.4\nFROM alpine AS build\nRUN --mount=type=cache,target=/c \\\n    --mount=type=bind,from=${TOOLS_IMAGE},source=/bin,target=/t \\\n    --mount=type=secret,id=npm,required=true \\\n    --mount=type=secret,target=/run/secrets/pip.conf make\nRUN --mount=type=bind,from=build,target=/b true\n";
    let s = run(text, &[]);
    assert_eq!(s.syntax.as_deref(), Some("docker/dockerfile:1.4"));
    let mounts: Vec<(RefKind, &str, bool)> = s
        .refs
        .iter()
        .map(|r| (r.kind, r.raw.as_str(), r.stage))
        .collect();
    assert_eq!(
        mounts,
        [
            (RefKind::From, "alpine", false),
            (RefKind::MountFrom, "${TOOLS_IMAGE}", false),
            (RefKind::MountFrom, "build", true)
        ]
    );
    assert_eq!(deps(&s), ["TOOLS_IMAGE"]);
    assert_eq!(
        s.secrets,
        [
            SecretMount {
                line: 3,
                id: "npm".into(),
                required: true
            },
            SecretMount {
                line: 3,
                id: "pip.conf".into(),
                required: false
            }
        ]
    );
    assert_eq!(run("FROM a\n# syntax=x\n", &[]).syntax, None);
}

#[test]
fn rewriting_replaces_operands_only() {
    let text = "ARG BASE_IMAGE\nFROM ${BASE_IMAGE} AS base\nCOPY --from=${BASE_IMAGE} /a /b\nRUN echo '--from=${BASE_IMAGE}' && \\\n  true\nRUN --mount=type=bind,from=${BASE_IMAGE},target=/x true\n";
    let args = BTreeMap::from([("BASE_IMAGE".to_string(), "r.example/base:1".to_string())]);
    let s = scan(text, &args, &BTreeSet::new()).unwrap();
    let subs: Vec<Substitution> = s
        .refs
        .iter()
        .filter(|r| r.kind != RefKind::From)
        .map(|r| Substitution {
            line: r.line,
            kind: r.kind,
            raw: r.raw.clone(),
            with: r.expanded.clone(),
        })
        .collect();
    assert_eq!(
        rewrite(text, &subs),
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE} AS base\nCOPY --from=r.example/base:1 /a /b\nRUN echo '--from=${BASE_IMAGE}' && \\\n  true\nRUN --mount=type=bind,from=r.example/base:1,target=/x true\n"
    );
    let from = Substitution {
        line: 2,
        kind: RefKind::From,
        raw: "${BASE_IMAGE}".into(),
        with: "x@sha256:1".into(),
    };
    assert!(rewrite(text, &[from]).contains("\nFROM x@sha256:1 AS base\n"));
    // CRLF and text after the last line stay as they were.
    assert_eq!(
        rewrite(
            "FROM a\r\nCOPY --from=b / /\r\n",
            &[Substitution {
                line: 2,
                kind: RefKind::CopyFrom,
                raw: "b".into(),
                with: "c".into()
            }]
        ),
        "FROM a\r\nCOPY --from=c / /\r\n"
    );
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let n = 100_000;
    let text = format!("ARG A\nFROM {}x{}\n", "${A:-".repeat(n), "}".repeat(n));
    let err = scan(&text, &BTreeMap::new(), &BTreeSet::new()).unwrap_err();
    assert_eq!(err.line, 2);
    assert!(
        err.message.contains("nested more than 64 deep"),
        "{}",
        err.message
    );
    // 64 levels are fine.
    let text = format!("ARG A\nFROM {}x{}\n", "${A:-".repeat(64), "}".repeat(64));
    assert_eq!(run(&text, &[]).refs[0].expanded, "x");
}
