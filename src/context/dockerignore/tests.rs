//! Pattern vectors. Where a case is marked "moby", the expectation comes from
//! the test tables of moby/patternmatcher (matching semantics only; the table
//! here is our own). "cli" cases were checked against the docker CLI.

use super::*;

fn excluded(patterns: &[&str], path: &str) -> bool {
    let text = patterns.join("\n");
    Matcher::from_bytes(text.as_bytes())
        .unwrap()
        .is_excluded(path)
}

/// (patterns, path, excluded?)
const CASES: &[(&[&str], &str, bool)] = &[
    // Anchoring: a bare name matches at the root and everything below it.
    (&["foo"], "foo", true),
    (&["foo"], "foo/bar", true),
    (&["foo"], "foo/bar/baz.txt", true),
    (&["foo"], "a/foo", false),
    (&["foo"], "foobar", false),
    (&["foo/"], "foo", true), // cleaned to `foo`, so a file `foo` matches too
    (&["./foo"], "foo", true),
    (&["/foo"], "foo", true),
    (&["foo/bar"], "foo/bar", true),
    (&["foo/bar"], "foo/bar/x", true),
    (&["foo/bar"], "foo/baz", false),
    (&["foo/../bar"], "bar", true),
    // `*` stays within one segment.
    (&["*.go"], "main.go", true),
    (&["*.go"], "cmd/main.go", false),
    (&["*/*.go"], "cmd/main.go", true),
    (&["*"], "anything", true),
    (&["*"], "dir/file", true), // the parent `dir` matches
    (&["fo*"], "foo", true),
    (&["fo*"], "fo", true),
    (&["fo*"], "f", false),
    (&["a*b"], "a/b", false),
    (&["a*b"], "axxb", true),
    // `?` is one non-separator character.
    (&["fo?"], "foo", true),
    (&["fo?"], "fo", false),
    (&["fo?"], "fooo", false),
    (&["a?b"], "a/b", false),
    // `**` spans any number of segments, including none.
    (&["**/foo"], "foo", true),
    (&["**/foo"], "a/foo", true),
    (&["**/foo"], "a/b/c/foo", true),
    (&["**/foo"], "a/foo/bar", true), // via the parent a/foo
    (&["**/foo"], "afoo", false),
    (&["**foo"], "xfoo", true), // moby: suffix match quirk
    (&["**/*.log"], "x.log", true),
    (&["**/*.log"], "a/b/x.log", true),
    (&["**/*.log"], "a/b/x.txt", false),
    (&["a/**/b"], "a/b", true),
    (&["a/**/b"], "a/x/b", true),
    (&["a/**/b"], "a/x/y/b", true),
    (&["a/**/b"], "a/x/y/c", false),
    (&["a/**"], "a/x", true),
    (&["a/**"], "a/x/y", true),
    (&["a/**"], "a", false), // prefix `a/` does not cover `a` itself
    (&["a/**"], "ab/x", false),
    (&["**"], "anything/at/all", true),
    (&["a**b"], "axb", false), // moby: `(.*/)?` needs a separator
    (&["a**b"], "a/x/b", true),
    (&["**/a/*.txt"], "x/a/b.txt", true),
    (&["**/a/*.txt"], "x/a/b/c.txt", false), // `*.txt` is one segment; no parent ends in .txt
    // Character classes.
    (&["[abc].txt"], "a.txt", true),
    (&["[abc].txt"], "d.txt", false),
    (&["[a-c].txt"], "b.txt", true),
    (&["[^a-c].txt"], "b.txt", false),
    (&["[^a-c].txt"], "d.txt", true),
    (&["[!a].txt"], "!.txt", true), // `!` is not negation in a class
    // Escapes and regex metacharacters are literal.
    (&["\\*.txt"], "*.txt", true),
    (&["\\*.txt"], "a.txt", false),
    (&["a.b"], "axb", false),
    (&["a+b"], "a+b", true),
    (&["(x)"], "(x)", true),
    (&["a$"], "a$", true),
    (&["{a,b}"], "a", false),
    (&["{a,b}"], "{a,b}", true),
    // Exceptions: the last matching pattern decides.
    (&["*.md", "!README.md"], "README.md", false),
    (&["*.md", "!README.md"], "CHANGES.md", true),
    (&["*.md", "!README.md", "README*"], "README.md", true),
    (&["docs", "!docs/keep.md"], "docs/keep.md", false),
    (&["docs", "!docs/keep.md"], "docs/other.md", true),
    (&["docs", "!docs"], "docs/x", false),
    (&["!foo", "foo"], "foo", true),
    (&["foo", "!foo/bar", "foo/bar/baz"], "foo/bar/baz", true),
    (&["foo", "!foo/bar", "foo/bar/baz"], "foo/bar/qux", false),
    (&["**", "!src"], "src/main.rs", false),
    (&["**", "!src"], "target/x", true),
    (&["*", "!*.go"], "main.go", false),
    (&["*", "!*.go"], "pkg/main.go", true), // parent `pkg` matches `*`; exception does not
    (&["**/*.tmp", "!keep/**"], "keep/a.tmp", false),
    // Comments, blanks and whitespace.
    (&["# comment"], "# comment", false),
    (&[" #x"], "#x", true), // `#` not in column 0: a pattern
    (&["  foo  "], "foo", true),
    (&["! foo", "foo"], "foo", true),
];

#[test]
fn pattern_table() {
    assert!(CASES.len() >= 60, "only {} cases", CASES.len());
    for (patterns, path, want) in CASES {
        assert_eq!(
            excluded(patterns, path),
            *want,
            "patterns {patterns:?} on {path:?}"
        );
    }
}

#[test]
fn pruning_needs_exception_text_under_the_directory() {
    // cli: `dir` + `!dir/keep` sends dir/keep; `!**/keep` and `!d*/keep` send nothing.
    let m = Matcher::from_bytes(b"dir\n!dir/keep\n").unwrap();
    assert!(m.is_excluded("dir"));
    assert!(m.must_descend("dir"));
    assert!(!m.is_excluded("dir/keep"));
    for text in ["dir\n!**/keep\n", "dir\n!d*/keep\n"] {
        let m = Matcher::from_bytes(text.as_bytes()).unwrap();
        assert!(
            !m.is_excluded("dir/keep"),
            "{text:?}: matcher alone re-includes"
        );
        assert!(
            !m.must_descend("dir"),
            "{text:?}: but the directory is pruned"
        );
    }
    let m = Matcher::from_bytes(b"a\n!a/b/c\n").unwrap();
    assert!(m.must_descend("a"));
    assert!(m.must_descend("a/b"));
    assert!(!m.must_descend("a/x"));
    assert!(!m.must_descend("ab"));
    let m = Matcher::from_bytes(b"a\n!a\n").unwrap();
    assert!(m.must_descend("a"));
}

#[test]
fn keep_adds_an_exception_only_when_needed() {
    let mut m = Matcher::from_bytes(b"*\n").unwrap();
    m.keep("Dockerfile").unwrap();
    assert!(!m.is_excluded("Dockerfile"));
    assert!(m.is_excluded("other"));
    let mut m = Matcher::from_bytes(b"build\n").unwrap();
    m.keep("build/Dockerfile").unwrap();
    assert!(!m.is_excluded("build/Dockerfile"));
    assert!(m.must_descend("build"));
    let mut m = Matcher::from_bytes(b"x\n").unwrap();
    m.keep("Dockerfile").unwrap();
    assert_eq!(m.patterns.len(), 1);
}

#[test]
fn keeping_a_path_that_is_no_valid_pattern_is_an_error() {
    // Docker adds `!Docker[file` as a pattern and its build fails on it.
    let mut m = Matcher::from_bytes(b"*\n").unwrap();
    let err = m.keep("Docker[file").unwrap_err();
    assert!(err.message.contains("\"!Docker[file\""), "{}", err.message);
    // A path that is a valid pattern is kept as Docker keeps it.
    let mut m = Matcher::from_bytes(b"*\n").unwrap();
    m.keep("Docker?file").unwrap();
    assert!(!m.is_excluded("Docker-file"));
}

#[test]
fn classes_and_escapes_read_with_gos_rules() {
    // Docker's expression is Go syntax: inside a class `[`, `&&` and `~~`
    // are plain characters, not this crate's nesting and set operations.
    for (pattern, path, want) in [
        ("[[]", "[", true),
        ("[a&&b]", "&", true),
        ("[a&&b]", "a", true),
        ("[a~~b]", "~", true),
        ("[^&&]x", "ax", true),
        ("[^&&]x", "&x", false),
        ("\\<x", "<x", true),
        ("\\&", "&", true),
        ("[[:digit:]]", "7", true),
        ("[[:digit:]]", "x", false),
        // Docker turns `*` and `?` into `[^/]*` and `[^/]` even inside a
        // class: `[*]` is the class `[[^/]` repeated, then `]`.
        ("[*]", "]", true),
        ("[*]", "[^]", true),
        ("[*]", "x", false),
        ("[?]", "^]", true),
        ("[?]", "x", false),
    ] {
        assert_eq!(excluded(&[pattern], path), want, "{pattern:?} on {path:?}");
    }
    // An escaped letter, digit or non-ASCII character means something else
    // to Docker (`\d` is a digit) or fails its build: an error here.
    for pattern in ["\\d", "a\\w", "[\\d]", "\\é", "\\1"] {
        let err = Matcher::from_bytes(pattern.as_bytes()).unwrap_err();
        assert!(
            err.message.contains("backslash"),
            "{pattern}: {}",
            err.message
        );
    }
    // Docker trims and cleans each line twice: `!/` becomes a bare `!`,
    // `/ *` becomes `*`.
    assert!(Matcher::from_bytes(b"!/..\n").is_err());
    assert!(excluded(&["/ *"], "a"));
}

#[test]
fn file_parsing() {
    let lines =
        parse_lines(b"\xEF\xBB\xBF# c\r\n\n  a/  \r\n!  ./b//c/ \n/d\n#e\n \t\n/\n!/x/../y\n");
    assert_eq!(
        lines,
        vec![
            (3, "a".to_string()),
            (4, "!b/c".to_string()),
            (5, "d".to_string()),
            (8, "/".to_string()),
            (9, "!y".to_string()),
        ]
    );
    // A BOM only counts at the very start.
    assert_eq!(parse_lines(b"a\n\xEF\xBB\xBFb")[1].1, "\u{feff}b");
}

#[test]
fn clean_matches_go() {
    for (input, want) in [
        ("", "."),
        (".", "."),
        ("a/", "a"),
        ("a//b", "a/b"),
        ("./a", "a"),
        ("a/./b", "a/b"),
        ("a/../b", "b"),
        ("../a", "../a"),
        ("a/../..", ".."),
        ("/../a", "/a"),
        ("/", "/"),
        ("a/b/../../c", "c"),
    ] {
        assert_eq!(crate::paths::clean(input), want, "clean({input:?})");
    }
}

#[test]
fn malformed_patterns_are_errors_with_their_line() {
    for (text, line) in [
        ("ok\n!\n", 2),
        ("[abc\n", 1),
        ("x\n\ny\\\n", 3),
        ("[]\n", 1),
        ("[z-a]\n", 1),
        ("[-]\n", 1),
    ] {
        let err = Matcher::from_bytes(text.as_bytes()).unwrap_err();
        assert_eq!(err.line, line, "{text:?}: {}", err.message);
    }
    assert!(Matcher::from_bytes(b"a]b\n[\\]]\n").is_ok());
}

/// Decides `path` the way a walk does: every parent first, top down.
fn decide_walking(m: &Matcher, path: &str) -> bool {
    let mut parent: Option<Vec<bool>> = None;
    let mut prefix = String::new();
    let mut result = false;
    for part in path.split('/') {
        if !prefix.is_empty() {
            prefix.push('/');
        }
        prefix.push_str(part);
        let d = m.decide(&prefix, parent.as_deref());
        let (excluded, info) = (d.excluded, d.matched);
        result = excluded;
        parent = Some(info);
    }
    result
}

#[test]
fn walking_uses_parent_results_like_docker() {
    // cli: `sub`, `!sub/dir/keep`, `sub/dir` sends sub/dir/keep: `sub/dir` was
    // skipped when sub/dir was decided, so it does not count as a parent match.
    let m = Matcher::from_bytes(b"sub\n!sub/dir/keep\nsub/dir\n").unwrap();
    assert!(
        m.is_excluded("sub/dir/keep"),
        "the parent-matching rule alone excludes it"
    );
    assert!(!decide_walking(&m, "sub/dir/keep"));
    assert!(decide_walking(&m, "sub/dir"));
    assert!(decide_walking(&m, "sub/dir/other"));
    // Everywhere else the two rules agree.
    for (patterns, path, want) in CASES {
        let m = Matcher::from_bytes(patterns.join("\n").as_bytes()).unwrap();
        assert_eq!(
            decide_walking(&m, path),
            *want,
            "patterns {patterns:?} on {path:?}"
        );
    }
}

#[test]
fn spec_corner_cases() {
    // Each line of docs/hashing.md section 3's special cases.
    assert!(excluded(&["a**b"], "ab"));
    assert!(excluded(&["a**b"], "a/b"));
    assert!(excluded(&["a**b"], "ax/b"));
    assert!(!excluded(&["a**b"], "axb"));
    assert!(!excluded(&["a/**"], "a"));
    assert!(excluded(&["a/**"], "a/x"));
    assert!(excluded(&["a[/]b"], "a/b"));
    assert!(!excluded(&["/"], "a"));
}
