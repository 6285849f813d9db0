//! `completions` run in the real shells: bash's completion function is
//! called as bash calls it, fish's with `complete -C`; zsh's script is
//! syntax-checked; `man` renders with man-db without warnings.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::tools;
use common::*;

/// PATH with the tagsmith binary first: the scripts call `tagsmith`.
fn path_with_tagsmith() -> String {
    let dir = PathBuf::from(bin()).parent().unwrap().to_path_buf();
    format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// Runs `shell args…` in `dir` with tagsmith on the PATH; returns stdout.
fn shell(dir: &Path, program: &str, args: &[&str]) -> String {
    let o = Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("PATH", path_with_tagsmith())
        .env_remove("COMPLETE")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// What bash offers for the command line `words` (the last one being
/// completed), as the completion function `complete -F` registered gives
/// it in COMPREPLY.
fn bash_complete(dir: &Path, words: &[&str]) -> Vec<String> {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let script = format!(
        r#"source <(tagsmith completions bash) || exit 1
[[ "$(complete -p tagsmith)" == *"-F _clap_complete_tagsmith tagsmith" ]] || exit 2
COMP_WORDS=({words})
COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))
COMP_LINE="${{COMP_WORDS[*]}}"
COMP_POINT=${{#COMP_LINE}}
COMP_TYPE=9
_clap_complete_tagsmith tagsmith "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
printf '%s\n' "${{COMPREPLY[@]}}"
"#,
        words = quoted.join(" ")
    );
    shell(dir, "bash", &["--norc", "--noprofile", "-c", &script])
        .lines()
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

#[test]
fn bash_completes_subcommands_options_values_and_service_names() {
    if !tools::have(
        "bash_completes_subcommands_options_values_and_service_names",
        "bash",
        &["--version"],
        true,
    ) {
        return;
    }
    let demo = demo();
    let d = demo.path();
    assert_eq!(bash_complete(d, &["tagsmith", "pl"]), ["plan"]);
    let top = bash_complete(d, &["tagsmith", ""]);
    for sub in [
        "tags",
        "explain",
        "render",
        "build",
        "plan",
        "lock",
        "init",
        "completions",
        "man",
        "graph",
    ] {
        assert!(top.contains(&sub.to_string()), "{sub} in {top:?}");
    }
    // Service names come from the tagsmith.yaml found from the working directory.
    assert_eq!(bash_complete(d, &["tagsmith", "build", "a"]), ["api"]);
    assert_eq!(
        bash_complete(d, &["tagsmith", "explain", "w"]),
        ["web", "worker"]
    );
    let tags = bash_complete(d, &["tagsmith", "tags", ""]);
    assert_eq!(tags[..4], ["api", "base", "web", "worker"]);
    assert!(tags.contains(&"--format".to_string()), "{tags:?}");
    assert_eq!(
        bash_complete(&d.join("services/api"), &["tagsmith", "plan", "b"]),
        ["base"],
        "from a subdirectory"
    );
    assert_eq!(
        bash_complete(d, &["tagsmith", "tags", "--format", "k"]),
        ["kustomize"]
    );
    assert_eq!(
        bash_complete(d, &["tagsmith", "plan", "--format", ""]),
        ["text", "json", "github"]
    );
    assert_eq!(
        bash_complete(d, &["tagsmith", "completions", "f"]),
        ["fish"]
    );
    // No tagsmith.yaml here or above: no service names, and no error.
    // (Under the target directory, where no ancestor holds one.)
    let empty = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    assert!(bash_complete(empty.path(), &["tagsmith", "build", "a"]).is_empty());
    // A --config typed before the service names is the one they come from.
    let config = d.join("tagsmith.yaml");
    let config = config.to_str().unwrap();
    assert_eq!(
        bash_complete(
            empty.path(),
            &["tagsmith", "--config", config, "build", "a"]
        ),
        ["api"]
    );
    assert_eq!(
        bash_complete(
            empty.path(),
            &["tagsmith", "explain", &format!("--config={config}"), "w"]
        ),
        ["web", "worker"]
    );
}

#[test]
fn fish_completes_with_its_own_complete_command() {
    if !tools::have(
        "fish_completes_with_its_own_complete_command",
        "fish",
        &["--version"],
        false,
    ) {
        return;
    }
    let demo = demo();
    let d = demo.path();
    let script = d.join("tagsmith.fish");
    std::fs::write(&script, ok(d, &["completions", "fish"])).unwrap();
    shell(d, "fish", &["--no-execute", script.to_str().unwrap()]);
    let complete = |line: &str| -> Vec<String> {
        shell(
            d,
            "fish",
            &[
                "--no-config",
                "-c",
                &format!("source tagsmith.fish; complete -C '{line}'"),
            ],
        )
        .lines()
        // `value<TAB>description`
        .map(|l| l.split('\t').next().unwrap().to_string())
        .collect()
    };
    assert_eq!(complete("tagsmith pl"), ["plan"]);
    assert_eq!(complete("tagsmith build w"), ["web", "worker"]);
    assert_eq!(
        complete("tagsmith tags --format "),
        ["text", "json", "env", "github", "kustomize", "helm"]
    );
}

#[test]
fn zsh_script_is_valid_and_answers_through_the_same_protocol() {
    let demo = demo();
    let d = demo.path();
    let script = ok(d, &["completions", "zsh"]);
    assert!(script.starts_with("#compdef tagsmith\n"), "{script}");
    assert!(script.contains("compdef _clap_dynamic_completer_tagsmith tagsmith"));
    // The script asks `COMPLETE=zsh tagsmith -- <words>` with the index of
    // the word being completed; this is that call.
    let o = Command::new(bin())
        .args(["--", "tagsmith", "build", "a"])
        .current_dir(d)
        .env("COMPLETE", "zsh")
        .env("_CLAP_COMPLETE_INDEX", "2")
        .env("_CLAP_IFS", "\n")
        .output()
        .unwrap();
    assert!(o.status.success());
    assert_eq!(String::from_utf8(o.stdout).unwrap().trim_end(), "api");
    if tools::have(
        "zsh_script_is_valid_and_answers_through_the_same_protocol (zsh -n)",
        "zsh",
        &["--version"],
        false,
    ) {
        let file = d.join("_tagsmith");
        std::fs::write(&file, &script).unwrap();
        shell(d, "zsh", &["-n", file.to_str().unwrap()]);
    }
}

#[test]
fn powershell_script_is_produced() {
    // PowerShell is not installable here (it is not in Debian's archive).
    let demo = demo();
    let script = ok(demo.path(), &["completions", "powershell"]);
    assert!(
        script.contains("Register-ArgumentCompleter -Native -CommandName tagsmith"),
        "{script}"
    );
    assert!(
        script.contains("$env:COMPLETE = \"powershell\""),
        "{script}"
    );
}

#[test]
fn an_unknown_shell_is_a_usage_error() {
    let o = run(Path::new("."), &["completions", "tcsh"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("tcsh"), "{}", stderr(&o));
}

#[test]
fn man_page_renders_with_man_db() {
    if !tools::have("man_page_renders_with_man_db", "man", &["--version"], true) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("tagsmith.1");
    std::fs::write(&page, ok(dir.path(), &["man"])).unwrap();
    let o = Command::new("man")
        .args(["--warnings", "-l", page.to_str().unwrap()])
        .env("MANWIDTH", "80")
        .env("MANPAGER", "cat")
        .env("LC_ALL", "C.UTF-8")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "",
        "groff warnings on the page"
    );
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.starts_with("tagsmith(1)"), "{text}");
    for section in ["NAME", "SYNOPSIS", "OPTIONS", "SUBCOMMANDS"] {
        assert!(text.lines().any(|l| l == section), "{section} in {text}");
    }
    for sub in [
        "plan",
        "init",
        "completions",
        "man",
        "tags",
        "build",
        "render",
    ] {
        assert!(text.contains(&format!("tagsmith-{sub}(1)")), "{sub}");
    }
    assert!(text.contains("List the services whose tag is missing in the registry"));

    // As the help says: `tagsmith man | man -l -`.
    let o = Command::new("sh")
        .args(["-c", &format!("'{}' man | man -l -", bin())])
        .env("MANWIDTH", "80")
        .env("MANPAGER", "cat")
        .output()
        .unwrap();
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("SUBCOMMANDS"));

    // The pages the top page refers to exist: one command's page, and all
    // of them written into a directory.
    let build = ok(dir.path(), &["man", "build"]);
    assert!(build.contains(".TH tagsmith-build 1"), "{build}");
    assert!(build.contains("\\-\\-push"), "{build}");
    let o = run(dir.path(), &["man", "biuld"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("no command \"biuld\" has a manual page (did you mean \"build\"?)"),
        "{}",
        stderr(&o)
    );
    let pages = dir.path().join("pages");
    ok(dir.path(), &["man", "--out-dir", "pages"]);
    for sub in text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("tagsmith-"))
        .filter_map(|l| l.strip_suffix("(1)"))
    {
        let page = pages.join(format!("tagsmith-{sub}.1"));
        let o = Command::new("man")
            .args(["--warnings", "-l", page.to_str().unwrap()])
            .env("MANWIDTH", "80")
            .env("MANPAGER", "cat")
            .env("LC_ALL", "C.UTF-8")
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{sub}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&o.stderr),
            "",
            "{sub}: groff warnings"
        );
        assert!(
            String::from_utf8_lossy(&o.stdout).starts_with(&format!("tagsmith-{sub}(1)")),
            "{sub}"
        );
    }
    assert!(pages.join("tagsmith.1").is_file());
}
