//! Property tests of the four readers of what users write: the template
//! scanner, the `.dockerignore` matcher (against a reference of Docker's
//! semantics written here, independent of `src/`), the Dockerfile scanner
//! and the config parser.
//!
//! The normal run tries [`CASES`] cases per property (a few seconds in all).
//! The ignored `long_*` tests try [`LONG`] cases per property:
//!
//! ```sh
//! cargo test --release --test properties -- --ignored --nocapture
//! ```
//!
//! A failure prints the smallest failing input proptest could shrink to.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::path::Path;
use std::time::Instant;

use proptest::prelude::*;
use proptest::test_runner::{Config as RunConfig, TestCaseError, TestError, TestRunner};

const CASES: u32 = 256;
const LONG: u32 = 100_000;

/// Runs one property for `cases` cases and reports the time on stderr.
fn check<S: Strategy>(
    name: &str,
    cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S::Value: Debug,
{
    let mut runner = TestRunner::new(RunConfig {
        cases,
        failure_persistence: None,
        max_global_rejects: cases,
        ..RunConfig::default()
    });
    let start = Instant::now();
    match runner.run(&strategy, test) {
        Ok(()) => eprintln!(
            "property {name}: {cases} cases passed in {:.2?}",
            start.elapsed()
        ),
        Err(TestError::Fail(why, value)) => {
            panic!("property {name} failed: {why}\nsmallest failing input: {value:#?}")
        }
        Err(TestError::Abort(why)) => panic!("property {name} aborted: {why}"),
    }
}

// ---------------------------------------------------------------------------
// Template scanner
// ---------------------------------------------------------------------------

mod templates {
    use super::*;
    use tagsmith::template::{Function, Piece, parse, render};

    /// Bits of text that look like, but are not, actions: YAML merge keys,
    /// heredocs, C++ streams, Helm and Jinja, CRLF, non-ASCII and invalid UTF-8.
    const NOISE: &[&[u8]] = &[
        b"<<",
        b"<",
        b">>",
        b">",
        b"\"",
        b" ",
        b"  ",
        b"\n",
        b"\r\n",
        b"\\",
        b"tag",
        b"image",
        b"pinned",
        b"tga",
        b"EOF",
        b"-",
        b"'",
        b":",
        b"*",
        b"{{",
        b"}}",
        b"{%",
        b"%}",
        "é".as_bytes(),
        "日本".as_bytes(),
        b"\xff",
        b"\xc3",
        b"\xe2\x82",
        b"a",
        b"x",
        b"_",
        b"1",
        b"\t",
        b"cat ",
        b"<<: *",
        b"<<-",
        b"<<<",
        b"\0",
    ];

    pub fn noise() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(prop::sample::select(NOISE), 0..24).prop_map(|t| t.concat())
    }

    /// Any bytes at all, or noise.
    fn bytes() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![prop::collection::vec(any::<u8>(), 0..200), noise()]
    }

    /// Where the text has the shape of an action up to its closing quote
    /// (`<<`, spaces, a lowercase name, spaces, a quoted argument on one
    /// line): the positions of its `<<`. Written as a regular expression,
    /// independently of the scanner.
    pub fn shapes(input: &[u8]) -> Vec<usize> {
        let re = regex::bytes::Regex::new(r#"(?-u)\A<< *[a-z][a-z0-9_]* +"[^"\n]*""#).unwrap();
        (0..input.len())
            .filter(|&i| input[i..].starts_with(b"<<") && re.is_match(&input[i..]))
            .collect()
    }

    /// 1-based line and character column of `at`.
    fn position(input: &[u8], at: usize) -> (usize, usize) {
        let before = &input[..at];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let column = String::from_utf8_lossy(&before[start..]).chars().count() + 1;
        (line, column)
    }

    fn check_any_bytes(input: Vec<u8>) -> Result<(), TestCaseError> {
        let parsed = parse(&input);
        // Text pieces lie inside the input, in order, without overlaps.
        let mut end = 0;
        for piece in &parsed.pieces {
            match piece {
                Piece::Text(r) => {
                    prop_assert!(r.start >= end && r.start < r.end && r.end <= input.len());
                    end = r.end;
                }
                Piece::Action(a) => prop_assert!(a.line >= 1 && a.column >= 1),
            }
        }
        for e in &parsed.errors {
            prop_assert!(e.line >= 1 && e.column >= 1 && !e.message.contains('\n'));
        }
        let actions = parsed
            .pieces
            .iter()
            .filter(|p| matches!(p, Piece::Action(_)))
            .count();
        let out = render(&input, &parsed.pieces, |_| String::new());
        prop_assert!(out.len() <= input.len());
        if shapes(&input).is_empty() {
            // Text without actions renders to itself, byte for byte.
            prop_assert_eq!(actions, 0);
            prop_assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
            prop_assert_eq!(out, input);
        }
        Ok(())
    }

    #[derive(Debug, Clone)]
    pub enum Kind {
        Known(Function),
        /// A full action whose function does not exist: an error.
        Unknown(&'static str),
        /// `\<< … >>`: literal text without the backslash.
        Escaped(&'static str),
    }

    #[derive(Debug, Clone)]
    pub struct Act {
        kind: Kind,
        spaces: (usize, usize, usize),
        argument: String,
    }

    impl Act {
        fn name(&self) -> &'static str {
            match &self.kind {
                Kind::Known(f) => f.name(),
                Kind::Unknown(n) | Kind::Escaped(n) => n,
            }
        }

        /// The action's text, without the backslash of an escaped one.
        fn text(&self) -> Vec<u8> {
            let (a, b, c) = self.spaces;
            format!(
                "<<{}{}{}\"{}\"{}>>",
                " ".repeat(a),
                self.name(),
                " ".repeat(b),
                self.argument,
                " ".repeat(c)
            )
            .into_bytes()
        }
    }

    fn act() -> impl Strategy<Value = Act> {
        let kind = prop_oneof![
            6 => prop::sample::select(Function::ALL.to_vec()).prop_map(Kind::Known),
            1 => prop::sample::select(vec!["tga", "imag", "tags", "x", "digests", "pin_ned", "a1"])
                .prop_map(Kind::Unknown),
            1 => prop::sample::select(vec!["tag", "image", "tga", "pinned"]).prop_map(Kind::Escaped),
        ];
        (
            kind,
            (0..3usize, 1..3usize, 0..3usize),
            "[a-z0-9./:@_ é>{}'\\\\\r\t-]{0,12}",
        )
            .prop_map(|(kind, spaces, argument)| Act {
                kind,
                spaces,
                argument,
            })
    }

    /// Noise and actions, alternating, starting and ending with noise.
    fn template() -> impl Strategy<Value = (Vec<Vec<u8>>, Vec<Act>)> {
        prop::collection::vec(act(), 0..6).prop_flat_map(|acts| {
            let n = acts.len() + 1;
            (prop::collection::vec(noise(), n..=n), Just(acts))
        })
    }

    fn check_actions((mut noise, acts): (Vec<Vec<u8>>, Vec<Act>)) -> Result<(), TestCaseError> {
        // A backslash in the noise right before an action would escape it.
        for n in noise.iter_mut().take(acts.len()) {
            if n.last() == Some(&b'\\') {
                n.push(b' ');
            }
        }
        let mut input = Vec::new();
        let mut starts = Vec::new();
        let mut want_out = Vec::new();
        let mut want_actions = Vec::new();
        let mut want_errors = Vec::new();
        for (i, act) in acts.iter().enumerate() {
            input.extend_from_slice(&noise[i]);
            want_out.extend_from_slice(&noise[i]);
            if let Kind::Escaped(_) = act.kind {
                input.push(b'\\');
            }
            let at = input.len();
            starts.push(at);
            input.extend_from_slice(&act.text());
            let (line, column) = position(&input, at);
            match &act.kind {
                Kind::Known(f) => {
                    want_actions.push((f.name(), act.argument.clone(), line, column));
                    want_out.extend_from_slice(
                        format!("\u{1}{}:{}\u{2}", f.name(), act.argument).as_bytes(),
                    );
                }
                Kind::Unknown(_) => {
                    want_errors.push((line, column));
                    want_out.extend_from_slice(&act.text());
                }
                Kind::Escaped(_) => want_out.extend_from_slice(&act.text()),
            }
        }
        input.extend_from_slice(noise.last().unwrap());
        want_out.extend_from_slice(noise.last().unwrap());
        // Only when the noise made no action shape of its own (rare).
        prop_assume!(shapes(&input) == starts);

        let parsed = parse(&input);
        let actions: Vec<_> = parsed
            .pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Action(a) => Some((a.function.name(), a.argument.clone(), a.line, a.column)),
                Piece::Text(_) => None,
            })
            .collect();
        prop_assert_eq!(actions, want_actions);
        let errors: Vec<_> = parsed.errors.iter().map(|e| (e.line, e.column)).collect();
        prop_assert_eq!(errors, want_errors);
        // Every action found is rendered, and the rest is copied.
        let out = render(&input, &parsed.pieces, |a| {
            format!("\u{1}{}:{}\u{2}", a.function, a.argument)
        });
        prop_assert_eq!(out, want_out);
        Ok(())
    }

    pub fn run(cases: u32) {
        check("template: any bytes", cases, bytes(), check_any_bytes);
        check(
            "template: actions among noise",
            cases,
            template(),
            check_actions,
        );
    }
}

#[test]
fn template_scanner() {
    templates::run(CASES);
}

#[test]
#[ignore = "long run: cargo test --release --test properties -- --ignored"]
fn long_template_scanner() {
    templates::run(LONG);
}

// ---------------------------------------------------------------------------
// .dockerignore matcher, against a reference of Docker's semantics
// ---------------------------------------------------------------------------

/// Docker's `.dockerignore` semantics, written from the Go sources of
/// docker/cli (`ReadAll`), moby/patternmatcher (`New`, `compile`, `match`,
/// `MatchesOrParentMatches`, `MatchesUsingParentResults`), Go's
/// `filepath.Match` (the syntax check Docker runs on each pattern) and
/// moby's archive walker (when an excluded directory is still walked).
/// The regular expression Docker builds is interpreted here by a small
/// matcher with Go's semantics (a `.` does not match a newline; a class,
/// negated or not, can match one), not by the `regex` crate.
mod docker {
    /// Go's `filepath.Clean` for `/`-separated paths.
    pub fn clean(path: &str) -> String {
        if path.is_empty() {
            return ".".into();
        }
        let rooted = path.starts_with('/');
        let mut out: Vec<&str> = Vec::new();
        for part in path.split('/') {
            match part {
                "" | "." => {}
                ".." => match out.last() {
                    Some(&p) if p != ".." => {
                        out.pop();
                    }
                    _ if rooted => {}
                    _ => out.push(".."),
                },
                p => out.push(p),
            }
        }
        let joined = out.join("/");
        if rooted {
            format!("/{joined}")
        } else if joined.is_empty() {
            ".".into()
        } else {
            joined
        }
    }

    /// docker/cli's `ReadAll`: the pattern lines of an ignore file.
    pub fn read_all(content: &[u8]) -> Vec<String> {
        let text = String::from_utf8_lossy(content);
        let mut out = Vec::new();
        for (i, line) in text.split('\n').enumerate() {
            let mut line = line.strip_suffix('\r').unwrap_or(line);
            if i == 0 {
                line = line.strip_prefix('\u{feff}').unwrap_or(line);
            }
            if line.starts_with('#') {
                continue;
            }
            let mut p = line.trim();
            if p.is_empty() {
                continue;
            }
            let invert = p.starts_with('!');
            if invert {
                p = p[1..].trim();
            }
            let mut p = p.to_string();
            if !p.is_empty() {
                p = clean(&p);
                if p.len() > 1 && p.starts_with('/') {
                    p.remove(0);
                }
            }
            out.push(if invert { format!("!{p}") } else { p });
        }
        out
    }

    /// Whether Go's `filepath.Match(pattern, ".")` reports a bad pattern:
    /// Go checks every chunk's syntax.
    pub fn bad_glob(pattern: &str) -> bool {
        let mut rest = pattern.as_bytes();
        while !rest.is_empty() {
            while rest.first() == Some(&b'*') {
                rest = &rest[1..];
            }
            // scanChunk: up to the next `*` outside [...].
            let mut i = 0;
            let mut inrange = false;
            while i < rest.len() {
                match rest[i] {
                    b'\\' if i + 1 < rest.len() => i += 1,
                    b'[' => inrange = true,
                    b']' => inrange = false,
                    b'*' if !inrange => break,
                    _ => {}
                }
                i += 1;
            }
            let (chunk, after) = rest.split_at(i);
            if bad_chunk(std::str::from_utf8(chunk).unwrap_or("\u{fffd}")) {
                return true;
            }
            rest = after;
        }
        false
    }

    fn bad_chunk(chunk: &str) -> bool {
        let c: Vec<char> = chunk.chars().collect();
        let mut i = 0;
        // getEsc: one class character, `\`-escaped or not; the chunk must go on.
        let esc = |i: &mut usize| -> bool {
            match c.get(*i) {
                None | Some('-') | Some(']') => return false,
                Some('\\') => {
                    *i += 1;
                    if *i >= c.len() {
                        return false;
                    }
                }
                _ => {}
            }
            *i += 1;
            *i < c.len()
        };
        while i < c.len() {
            match c[i] {
                '[' => {
                    i += 1;
                    if c.get(i) == Some(&'^') {
                        i += 1;
                    }
                    let mut ranges = 0;
                    loop {
                        if c.get(i) == Some(&']') && ranges > 0 {
                            i += 1;
                            break;
                        }
                        if !esc(&mut i) {
                            return true;
                        }
                        if c[i] == '-' {
                            i += 1;
                            if !esc(&mut i) {
                                return true;
                            }
                        }
                        ranges += 1;
                    }
                }
                '\\' => {
                    if i + 1 >= c.len() {
                        return true;
                    }
                    i += 2;
                }
                _ => i += 1,
            }
        }
        false
    }

    #[derive(Debug, Clone, PartialEq)]
    enum Type {
        Exact,
        Prefix,
        Suffix,
        Regexp,
    }

    /// patternmatcher's `compile`: the match type and the Go regular expression.
    fn compile(pattern: &str) -> (Type, String) {
        let c: Vec<char> = pattern.chars().collect();
        let mut re = String::from("^");
        let mut ty = Type::Exact;
        let mut i = 0;
        let mut n = 0;
        while i < c.len() {
            let ch = c[i];
            i += 1;
            if ch == '*' {
                if c.get(i) == Some(&'*') {
                    i += 1;
                    if c.get(i) == Some(&'/') {
                        i += 1;
                    }
                    if i == c.len() {
                        if ty == Type::Exact {
                            ty = Type::Prefix;
                        } else {
                            re.push_str(".*");
                            ty = Type::Regexp;
                        }
                    } else {
                        re.push_str("(.*/)?");
                        ty = Type::Regexp;
                    }
                    if n == 0 {
                        ty = Type::Suffix;
                    }
                } else {
                    re.push_str("[^/]*");
                    ty = Type::Regexp;
                }
            } else if ch == '?' {
                re.push_str("[^/]");
                ty = Type::Regexp;
            } else if ".+()|{}$".contains(ch) {
                re.push('\\');
                re.push(ch);
            } else if ch == '\\' {
                if i < c.len() {
                    re.push('\\');
                    re.push(c[i]);
                    i += 1;
                    ty = Type::Regexp;
                } else {
                    re.push('\\');
                }
            } else if ch == '[' || ch == ']' {
                re.push(ch);
                ty = Type::Regexp;
            } else {
                re.push(ch);
            }
            n += 1;
        }
        re.push('$');
        (ty, re)
    }

    /// A node of the Go regular expressions `compile` produces.
    #[derive(Debug, Clone)]
    enum Node {
        Char(char),
        /// `.`: any character but a newline.
        Any,
        /// `[...]`: (lo, hi) ranges; a class can match `/` and a newline.
        Class(bool, Vec<(char, char)>),
        Group(Vec<(Node, Rep)>),
        Begin,
        End,
    }

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Rep {
        One,
        Star,
        Optional,
    }

    /// Parses the subset of Go's syntax that `compile` can produce. An
    /// escaped letter, digit or non-ASCII character means something else in
    /// Go (`\d`, `\pL`) or is invalid; this reference does not model it and
    /// calls it an error, as does a POSIX class.
    fn parse(re: &[char], i: &mut usize, group: bool) -> Result<Vec<(Node, Rep)>, String> {
        let mut out = Vec::new();
        loop {
            let Some(&c) = re.get(*i) else {
                return if group {
                    Err("missing )".into())
                } else {
                    Ok(out)
                };
            };
            *i += 1;
            let node = match c {
                ')' if group => return Ok(out),
                '(' => Node::Group(parse(re, i, true)?),
                '[' => class(re, i)?,
                '.' => Node::Any,
                '^' => Node::Begin,
                '$' => Node::End,
                '\\' => Node::Char(escaped(re, i)?),
                '*' | '?' | '+' => return Err("missing argument to repetition operator".into()),
                c => Node::Char(c),
            };
            let mut rep = Rep::One;
            match re.get(*i) {
                Some('*') => rep = Rep::Star,
                Some('?') => rep = Rep::Optional,
                _ => {}
            }
            if rep != Rep::One {
                *i += 1;
                match re.get(*i) {
                    // `*?` and `??` are non-greedy: the same for matching.
                    Some('?') => *i += 1,
                    Some('*') | Some('+') => return Err("invalid nested repetition".into()),
                    _ => {}
                }
            }
            out.push((node, rep));
        }
    }

    fn escaped(re: &[char], i: &mut usize) -> Result<char, String> {
        let c = *re.get(*i).ok_or("trailing backslash")?;
        *i += 1;
        if c.is_ascii() && !c.is_ascii_alphanumeric() {
            Ok(c)
        } else {
            Err(format!("escape \\{c} is not a literal"))
        }
    }

    fn class(re: &[char], i: &mut usize) -> Result<Node, String> {
        let mut negated = false;
        if re.get(*i) == Some(&'^') {
            negated = true;
            *i += 1;
        }
        let mut ranges = Vec::new();
        let mut first = true;
        loop {
            let c = *re.get(*i).ok_or("missing ]")?;
            if c == ']' && !first {
                *i += 1;
                return Ok(Node::Class(negated, ranges));
            }
            if c == '[' && re.get(*i + 1) == Some(&':') {
                return Err("POSIX class (not modelled)".into());
            }
            *i += 1;
            let lo = if c == '\\' { escaped(re, i)? } else { c };
            let mut hi = lo;
            if re.get(*i) == Some(&'-') && re.get(*i + 1).is_some_and(|&c| c != ']') {
                *i += 1;
                let c = re[*i];
                *i += 1;
                hi = if c == '\\' { escaped(re, i)? } else { c };
                if hi < lo {
                    return Err("invalid character class range".into());
                }
            }
            ranges.push((lo, hi));
            first = false;
        }
    }

    /// The positions reachable after `nodes` from any of `from`.
    fn step(nodes: &[(Node, Rep)], s: &[char], from: Vec<bool>) -> Vec<bool> {
        let mut cur = from;
        for (node, rep) in nodes {
            let once = |set: &Vec<bool>| -> Vec<bool> {
                let mut next = vec![false; s.len() + 1];
                for (p, _) in set.iter().enumerate().filter(|(_, on)| **on) {
                    let ch = s.get(p).copied();
                    let hit = match node {
                        Node::Char(c) => ch == Some(*c),
                        Node::Any => ch.is_some_and(|c| c != '\n'),
                        Node::Class(neg, ranges) => ch.is_some_and(|c| {
                            ranges.iter().any(|(lo, hi)| *lo <= c && c <= *hi) != *neg
                        }),
                        Node::Begin => {
                            next[p] |= p == 0;
                            false
                        }
                        Node::End => {
                            next[p] |= p == s.len();
                            false
                        }
                        Node::Group(inner) => {
                            let mut only = vec![false; s.len() + 1];
                            only[p] = true;
                            for (q, on) in step(inner, s, only).into_iter().enumerate() {
                                next[q] |= on;
                            }
                            false
                        }
                    };
                    if hit {
                        next[p + 1] = true;
                    }
                }
                next
            };
            cur = match rep {
                Rep::One => once(&cur),
                Rep::Optional => {
                    let more = once(&cur);
                    cur.iter().zip(more).map(|(a, b)| *a || b).collect()
                }
                Rep::Star => {
                    let mut all = cur.clone();
                    loop {
                        let more = once(&all);
                        let grown: Vec<bool> =
                            all.iter().zip(&more).map(|(a, b)| *a || *b).collect();
                        if grown == all {
                            break all;
                        }
                        all = grown;
                    }
                }
            };
        }
        cur
    }

    #[derive(Debug)]
    pub struct Pattern {
        pub text: String,
        pub exclusion: bool,
        ty: Type,
        re: Result<Vec<(Node, Rep)>, String>,
    }

    impl Pattern {
        fn matches(&self, path: &str) -> bool {
            match self.ty {
                Type::Exact => path == self.text,
                Type::Prefix => path.starts_with(&self.text[..self.text.len() - 2]),
                Type::Suffix => {
                    let suffix = &self.text[2..];
                    path.ends_with(suffix) || suffix.strip_prefix('/').is_some_and(|s| path == s)
                }
                Type::Regexp => {
                    let s: Vec<char> = path.chars().collect();
                    let nodes = self.re.as_ref().expect("checked by new");
                    // Go's MatchString searches: start anywhere (`^` anchors).
                    step(nodes, &s, vec![true; s.len() + 1]).contains(&true)
                }
            }
        }
    }

    /// patternmatcher's `New` on `ReadAll`'s lines, with every pattern
    /// compiled: an error when Go's `filepath.Match` or `regexp.Compile`
    /// would reject one (Docker compiles lazily and fails the build then).
    pub fn new(lines: &[String]) -> Result<Vec<Pattern>, String> {
        let mut out = Vec::new();
        for line in lines {
            let p = clean(line.trim());
            let (exclusion, p) = match p.strip_prefix('!') {
                Some("") => return Err("illegal exclusion pattern: \"!\"".into()),
                Some(rest) => (true, rest.to_string()),
                None => (false, p),
            };
            if bad_glob(&p) {
                return Err(format!("bad pattern {p:?}"));
            }
            let (ty, re) = compile(&p);
            let chars: Vec<char> = re.chars().collect();
            let re = parse(&chars, &mut 0, false);
            if ty == Type::Regexp
                && let Err(e) = &re
            {
                return Err(format!("{p:?}: {e}"));
            }
            out.push(Pattern {
                text: p,
                exclusion,
                ty,
                re,
            });
        }
        Ok(out)
    }

    /// `MatchesOrParentMatches`.
    pub fn matches_or_parent_matches(patterns: &[Pattern], file: &str) -> bool {
        let parent_dirs: Vec<&str> = match file.rfind('/') {
            Some(i) => file[..i].split('/').collect(),
            None => Vec::new(),
        };
        let mut matched = false;
        for p in patterns {
            if p.exclusion != matched {
                continue;
            }
            let mut hit = p.matches(file);
            if !hit {
                for i in 0..parent_dirs.len() {
                    if p.matches(&parent_dirs[..=i].join("/")) {
                        hit = true;
                        break;
                    }
                }
            }
            if hit {
                matched = !p.exclusion;
            }
        }
        matched
    }

    /// `MatchesUsingParentResults`: `parent` is the parent directory's
    /// per-pattern results (empty at the top).
    pub fn matches_using_parent_results(
        patterns: &[Pattern],
        file: &str,
        parent: &[bool],
    ) -> (bool, Vec<bool>) {
        let mut matched = false;
        let mut info = vec![false; patterns.len()];
        for (i, p) in patterns.iter().enumerate() {
            let mut hit = !parent.is_empty() && parent[i];
            if !hit {
                if p.exclusion != matched {
                    continue;
                }
                hit = p.matches(file);
                if !hit
                    && parent.is_empty()
                    && let Some(end) = file.rfind('/')
                {
                    let dirs: Vec<&str> = file[..end].split('/').collect();
                    hit = (0..dirs.len()).any(|i| p.matches(&dirs[..=i].join("/")));
                }
            }
            info[i] = hit;
            if hit {
                matched = !p.exclusion;
            }
        }
        (matched, info)
    }

    /// The archive walker: an excluded directory is walked anyway when the
    /// text of an exception, followed by `/`, starts with `dir/`.
    pub fn walks_excluded_dir(patterns: &[Pattern], dir: &str) -> bool {
        let dir_slash = format!("{dir}/");
        patterns
            .iter()
            .filter(|p| p.exclusion)
            .any(|p| format!("{}/", p.text).starts_with(&dir_slash))
    }
}

mod ignores {
    use super::*;
    use tagsmith::context::dockerignore::Matcher;

    /// One piece of a pattern segment.
    fn atom() -> impl Strategy<Value = String> {
        let lit = prop::sample::select(vec![
            "a", "b", "ab", "x", ".", "-", "é", "&", "~", "^", "$", "+", "(", ")", "{", "}", "|",
            "]", "_", "<", "#", " ",
        ]);
        let escape = prop::sample::select(vec![
            ".", "*", "?", "[", "]", "&", "~", "-", "^", "$", "\\", "<", ">", "!", "#", " ", "a",
            "d", "b", "1", "é",
        ])
        .prop_map(|c| format!("\\{c}"));
        let class_item = prop::sample::select(vec![
            "a", "b", "x", "é", "&", "&&", "~", "~~", "[", "^", ".", "*", "?", "/", "$", "(",
            "\\]", "\\-", "\\\\", "\\[", "\\&", "a-c", "&-~", "/-z", "z-a", "\\a", "<",
        ]);
        let class = (
            any::<bool>(),
            prop::collection::vec(class_item, 1..4),
            any::<bool>(),
        )
            .prop_map(|(neg, items, closed)| {
                format!(
                    "[{}{}{}",
                    if neg { "^" } else { "" },
                    items.concat(),
                    if closed { "]" } else { "" }
                )
            });
        prop_oneof![
            8 => lit.prop_map(str::to_string),
            3 => Just("*".to_string()),
            2 => Just("?".to_string()),
            2 => Just("**".to_string()),
            2 => escape,
            3 => class,
        ]
    }

    fn pattern_line() -> impl Strategy<Value = String> {
        let segment = prop::collection::vec(atom(), 1..4).prop_map(|a| a.concat());
        (
            prop::sample::select(vec!["", "", "", "!", "! ", "#", " ", "\t", " !"]),
            prop::sample::select(vec!["", "", "", "/", "./", "**/", "../"]),
            prop::collection::vec(
                prop_oneof![8 => segment, 1 => Just("..".to_string()), 1 => Just(".".to_string())],
                1..4,
            ),
            prop::sample::select(vec!["", "", "", "/", "/**", "**", " ", "\r"]),
        )
            .prop_map(|(lead, start, segments, end)| {
                format!("{lead}{start}{}{end}", segments.join("/"))
            })
    }

    fn ignore_file() -> impl Strategy<Value = Vec<u8>> {
        (
            any::<bool>(),
            prop::collection::vec(pattern_line(), 0..6),
            any::<bool>(),
        )
            .prop_map(|(bom, lines, crlf)| {
                let mut text = if bom {
                    "\u{feff}".to_string()
                } else {
                    String::new()
                };
                text.push_str(&lines.join(if crlf { "\r\n" } else { "\n" }));
                text.into_bytes()
            })
    }

    fn path() -> impl Strategy<Value = String> {
        let name = prop::collection::vec(
            prop::sample::select(vec![
                "a", "b", "ab", "x", ".", "-", "é", "&", "~", "[", "]", "^", "\n", "_", "$", "(",
                "{", "*", "<", "#", " ",
            ]),
            1..4,
        )
        .prop_map(|p| p.concat())
        .prop_filter("a real name", |n| n != "." && n != "..");
        prop::collection::vec(name, 1..5).prop_map(|p| p.join("/"))
    }

    fn check_file((file, paths): (Vec<u8>, Vec<String>)) -> Result<(), TestCaseError> {
        let ours = Matcher::from_bytes(&file);
        let theirs = docker::new(&docker::read_all(&file));
        let (m, reference) = match (ours, theirs) {
            (Ok(m), Ok(r)) => (m, r),
            (Err(_), Err(_)) => return Ok(()),
            (Ok(_), Err(why)) => {
                return Err(TestCaseError::fail(format!(
                    "accepted, but Docker rejects it: {why}"
                )));
            }
            (Err(e), Ok(_)) => {
                return Err(TestCaseError::fail(format!(
                    "rejected ({}), but Docker accepts it",
                    e.message
                )));
            }
        };
        for path in &paths {
            prop_assert_eq!(
                m.is_excluded(path),
                docker::matches_or_parent_matches(&reference, path),
                "is_excluded({:?})",
                path
            );
            // The walk: each parent decided first, top down.
            let mut ours: Option<Vec<bool>> = None;
            let mut theirs: Vec<bool> = Vec::new();
            let mut prefix = String::new();
            for (i, part) in path.split('/').enumerate() {
                if i > 0 {
                    prefix.push('/');
                }
                prefix.push_str(part);
                let d = m.decide(&prefix, ours.as_deref());
                let (excluded, info) =
                    docker::matches_using_parent_results(&reference, &prefix, &theirs);
                prop_assert_eq!(d.excluded, excluded, "decide({:?})", prefix);
                prop_assert_eq!(
                    m.must_descend(&prefix),
                    docker::walks_excluded_dir(&reference, &prefix),
                    "must_descend({:?})",
                    prefix
                );
                ours = Some(d.matched);
                theirs = info;
            }
        }
        Ok(())
    }

    fn check_any_bytes(bytes: Vec<u8>) -> Result<(), TestCaseError> {
        if let Ok(m) = Matcher::from_bytes(&bytes) {
            for path in ["a", "a/b", "\u{fffd}/x", ""] {
                let _ = m.is_excluded(path);
                let _ = m.decide(path, None);
                let _ = m.must_descend(path);
            }
        }
        Ok(())
    }

    pub fn run(cases: u32) {
        check(
            "dockerignore: any bytes",
            cases,
            prop::collection::vec(any::<u8>(), 0..120),
            check_any_bytes,
        );
        check(
            "dockerignore: agrees with Docker",
            cases,
            (ignore_file(), prop::collection::vec(path(), 1..6)),
            check_file,
        );
    }
}

#[test]
fn dockerignore_matcher() {
    ignores::run(CASES);
}

#[test]
#[ignore = "long run: cargo test --release --test properties -- --ignored"]
fn long_dockerignore_matcher() {
    ignores::run(LONG);
}

#[test]
fn docker_reference_vectors() {
    // The reference itself, on cases checked against Docker.
    let excluded = |patterns: &str, path: &str| {
        let p = docker::new(&docker::read_all(patterns.as_bytes())).unwrap();
        docker::matches_or_parent_matches(&p, path)
    };
    assert!(excluded("foo", "foo/bar"));
    assert!(!excluded("foo", "a/foo"));
    assert!(excluded("**foo", "xfoo"));
    assert!(!excluded("a**b", "axb"));
    assert!(excluded("a**b", "ax/b"));
    assert!(!excluded("a/**", "a"));
    assert!(excluded("a[/]b", "a/b"));
    assert!(excluded("*.md\n!README.md\nREADME*", "README.md"));
    assert!(!excluded("*.md\n!README.md", "README.md"));
    assert!(excluded("[a&&b]", "&"), "a Go class is a plain set");
    assert!(excluded("[[]", "["));
    assert!(!excluded("a/**/b", "a/x\ny/b"), "`.` stops at a newline");
    assert!(excluded("**/b", "a/x\ny/b"), "a suffix match does not");
    assert!(excluded("[*]", "]"), "Docker's `[^/]*` inside a class");
    assert!(docker::new(&["\\d".to_string()]).is_err());
    assert!(docker::new(&["[z-a]".to_string()]).is_err());
    assert!(docker::new(&["[]".to_string()]).is_err());
    assert!(docker::new(&["a\\".to_string()]).is_err());
}

// ---------------------------------------------------------------------------
// Dockerfile scanner
// ---------------------------------------------------------------------------

mod dockerfiles {
    use super::*;
    use tagsmith::dockerfile::{RefKind, Substitution, rewrite, scan};

    /// A reference as the scanner reports it: kind, line, raw, expanded, stage?
    type Found = (RefKind, usize, String, String, bool);

    /// What an operand is: an image (raw, expanded) or an earlier stage.
    #[derive(Debug, Clone)]
    enum Operand {
        Image(&'static str, &'static str),
        Stage(usize),
        /// `COPY --from=0`: a stage by index.
        Index(usize),
    }

    #[derive(Debug, Clone)]
    enum Line {
        From {
            operand: Operand,
            platform: bool,
            name: Option<String>,
        },
        CopyFrom(Operand),
        MountFrom(Operand),
        Run(&'static str),
        Comment,
        Blank,
        Continued,
        Heredoc,
    }

    const IMAGES: &[(&str, &str)] = &[
        ("alpine:3.19", "alpine:3.19"),
        ("debian", "debian"),
        ("ghcr.io/o/r:1@sha256:ab", "ghcr.io/o/r:1@sha256:ab"),
        ("img:${VER}", "img:1.2"),
        ("${BASE_IMAGE}", "<BASE_IMAGE>"),
        ("${NOPE:-busybox}", "busybox"),
        ("reg:5000/x$VER", "reg:5000/x1.2"),
        ("scratch", "scratch"),
    ];

    fn operand(stages: usize) -> BoxedStrategy<Operand> {
        let image = prop::sample::select(IMAGES).prop_map(|(r, e)| Operand::Image(r, e));
        if stages == 0 {
            image.boxed()
        } else {
            prop_oneof![
                2 => image,
                2 => (0..stages).prop_map(Operand::Stage),
                1 => (0..stages).prop_map(Operand::Index),
            ]
            .boxed()
        }
    }

    fn body_line(stages: usize) -> BoxedStrategy<Line> {
        prop_oneof![
            2 => operand(stages).prop_map(Line::CopyFrom),
            1 => operand(stages).prop_map(Line::MountFrom),
            2 => prop::sample::select(vec!["RUN true", "run echo FROM x", "ENV A=b", "WORKDIR /w"]).prop_map(Line::Run),
            1 => Just(Line::Comment),
            1 => Just(Line::Blank),
            1 => Just(Line::Continued),
            1 => Just(Line::Heredoc),
        ]
        .boxed()
    }

    /// A Dockerfile as lines, each stage a FROM and a few instructions.
    fn dockerfile() -> impl Strategy<Value = (Vec<Line>, bool)> {
        let stage_count = 1..4usize;
        stage_count
            .prop_flat_map(|n| {
                let stages: Vec<_> = (0..n)
                    .map(|i| {
                        (
                            operand(i),
                            any::<bool>(),
                            prop::option::of(prop::sample::select(vec!["build", "Run", "s2", "x"])),
                            prop::collection::vec(body_line(i + 1), 0..4),
                        )
                    })
                    .collect();
                (stages, any::<bool>())
            })
            .prop_map(|(stages, crlf)| {
                let mut lines = Vec::new();
                for (i, (operand, platform, name, body)) in stages.into_iter().enumerate() {
                    lines.push(Line::From {
                        operand,
                        platform,
                        name: name.map(|n| format!("{n}{i}")),
                    });
                    lines.extend(body);
                }
                (lines, crlf)
            })
    }

    /// The Dockerfile's text and the references the scanner must find:
    /// (kind, line, raw, expanded, stage?). `with` replaces image operands.
    fn render(
        lines: &[Line],
        crlf: bool,
        with: &dyn Fn(usize, &str) -> String,
    ) -> (String, Vec<Found>) {
        let nl = if crlf { "\r\n" } else { "\n" };
        let mut text = format!("# syntax=docker/dockerfile:1{nl}ARG VER=1.2{nl}ARG BASE_IMAGE{nl}");
        let mut line = 4;
        let mut refs = Vec::new();
        let mut stages: Vec<Option<String>> = Vec::new();
        let mut op = |operand: &Operand, kind: RefKind, line: usize, stages: &[Option<String>]| {
            let (raw, expanded, stage) = match operand {
                Operand::Image(r, e) => {
                    let raw = with(refs.len(), r);
                    let expanded = if raw == *r {
                        e.to_string()
                    } else {
                        raw.clone()
                    };
                    (raw, expanded, false)
                }
                Operand::Stage(i) => match &stages[*i] {
                    Some(name) => (name.clone(), name.clone(), true),
                    None => (i.to_string(), i.to_string(), true),
                },
                Operand::Index(i) => (i.to_string(), i.to_string(), true),
            };
            refs.push((kind, line, raw.clone(), expanded, stage));
            raw
        };
        for l in lines {
            let chunk = match l {
                Line::From {
                    operand,
                    platform,
                    name,
                } => {
                    let raw = op(operand, RefKind::From, line, &stages);
                    stages.push(name.clone());
                    format!(
                        "FROM {}{raw}{}",
                        if *platform {
                            "--platform=$BUILDPLATFORM "
                        } else {
                            ""
                        },
                        name.as_ref()
                            .map(|n| format!(" AS {n}"))
                            .unwrap_or_default()
                    )
                }
                Line::CopyFrom(o) => {
                    let raw = op(o, RefKind::CopyFrom, line, &stages);
                    format!("COPY --chown=1 --from={raw} /a /b")
                }
                Line::MountFrom(o) => {
                    let raw = op(o, RefKind::MountFrom, line, &stages);
                    format!("RUN --mount=type=bind,from={raw},target=/m true")
                }
                Line::Run(t) => t.to_string(),
                Line::Comment => "# FROM commented:out".to_string(),
                Line::Blank => "   ".to_string(),
                Line::Continued => format!("RUN echo \\{nl}    FROM not:an-instruction"),
                Line::Heredoc => format!("RUN <<EOF{nl}FROM in:heredoc{nl}EOF"),
            };
            line += chunk.matches('\n').count() + 1;
            text.push_str(&chunk);
            text.push_str(nl);
        }
        (text, refs)
    }

    fn found(text: &str) -> Vec<Found> {
        let injected = BTreeSet::from(["BASE_IMAGE".to_string()]);
        scan(text, &BTreeMap::new(), &injected)
            .unwrap()
            .refs
            .into_iter()
            .map(|r| (r.kind, r.line, r.raw, r.expanded, r.stage))
            .collect()
    }

    fn check_generated((lines, crlf): (Vec<Line>, bool)) -> Result<(), TestCaseError> {
        let (text, want) = render(&lines, crlf, &|_, r| r.to_string());
        prop_assert_eq!(found(&text), want.clone(), "{}", text);
        // Rewriting every image reference changes exactly those operands.
        let new = |i: usize, _: &str| format!("new.example/r{i}:t");
        let subs: Vec<Substitution> = want
            .iter()
            .enumerate()
            .filter(|(_, r)| !r.4)
            .map(|(i, r)| Substitution {
                line: r.1,
                kind: r.0,
                raw: r.2.clone(),
                with: new(i, &r.2),
            })
            .collect();
        let (expected_text, expected_refs) = render(&lines, crlf, &new);
        let rewritten = rewrite(&text, &subs);
        prop_assert_eq!(&rewritten, &expected_text);
        prop_assert_eq!(found(&rewritten), expected_refs);
        prop_assert_eq!(rewrite(&text, &[]), text);
        Ok(())
    }

    fn check_any_text(text: String) -> Result<(), TestCaseError> {
        let args = BTreeMap::from([("A".to_string(), "${A}".to_string())]);
        let injected = BTreeSet::from(["X_IMAGE".to_string()]);
        if let Ok(s) = scan(&text, &args, &injected) {
            let lines = text.lines().count().max(1);
            for r in &s.refs {
                prop_assert!(r.line >= 1 && r.line <= lines);
            }
            let subs: Vec<Substitution> = s
                .refs
                .iter()
                .map(|r| Substitution {
                    line: r.line,
                    kind: r.kind,
                    raw: r.raw.clone(),
                    with: "x".into(),
                })
                .collect();
            rewrite(&text, &subs);
        }
        Ok(())
    }

    fn any_text() -> impl Strategy<Value = String> {
        let token = prop::sample::select(vec![
            "FROM ",
            "from ",
            "COPY ",
            "RUN ",
            "ARG ",
            "--from=",
            "--mount=",
            "type=secret,",
            "from=",
            "id=",
            "AS ",
            "${",
            "}",
            "$",
            ":-",
            ":+",
            "-",
            "+",
            "\\",
            "`",
            "\n",
            "\r\n",
            " ",
            "\t",
            "#",
            "# escape=`\n",
            "# syntax=x\n",
            "<<",
            "EOF",
            "\"",
            "'",
            "=",
            ",",
            "a",
            "A",
            "_IMAGE",
            "X",
            "0",
            "é",
            "\u{0}",
            "{",
            "stage",
        ]);
        prop_oneof![
            prop::collection::vec(token, 0..40).prop_map(|t| t.concat()),
            any::<String>(),
        ]
    }

    pub fn run(cases: u32) {
        check(
            "dockerfile: generated files",
            cases,
            dockerfile(),
            check_generated,
        );
        check("dockerfile: any text", cases, any_text(), check_any_text);
    }
}

#[test]
fn dockerfile_scanner() {
    dockerfiles::run(CASES);
}

#[test]
#[ignore = "long run: cargo test --release --test properties -- --ignored"]
fn long_dockerfile_scanner() {
    dockerfiles::run(LONG);
}

// ---------------------------------------------------------------------------
// Config parser
// ---------------------------------------------------------------------------

mod configs {
    use super::*;
    use tagsmith::project::config;

    /// A repository with two contexts, shared by every case of a run.
    pub fn repo() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for ctx in ["c1", "c2/sub"] {
            std::fs::create_dir_all(dir.path().join(ctx)).unwrap();
            std::fs::write(dir.path().join(ctx).join("Dockerfile"), "FROM scratch\n").unwrap();
        }
        dir
    }

    /// Parse errors are one line, name the file, and exit with 1.
    fn check_error(result: tagsmith::error::Result<config::Config>) -> Result<(), TestCaseError> {
        if let Err(e) = result {
            let msg = e.to_string();
            prop_assert!(!msg.contains('\n'), "a multi-line message: {:?}", msg);
            prop_assert!(
                msg.contains("tagsmith.yaml"),
                "the file is not named: {:?}",
                msg
            );
            prop_assert_eq!(e.exit_code(), 1, "{}", msg);
        }
        Ok(())
    }

    fn yamlish() -> impl Strategy<Value = String> {
        let token = prop::sample::select(vec![
            "registry: r.example/t\n",
            "services:\n",
            "  app:\n",
            "    context: c1\n",
            "    args:\n",
            "      A: 1\n",
            "    depends_on: [app]\n",
            "tag_length: 20\n",
            "&a ",
            "*a",
            "<<: *a\n",
            "[",
            "]",
            "{",
            "}",
            ",",
            ": ",
            "- ",
            "\"",
            "'",
            "#",
            "\n",
            "  ",
            "\t",
            "!!str ",
            "!!binary ",
            "!include x.yaml\n",
            "---\n",
            "...\n",
            "%YAML 1.2\n",
            "key",
            "1",
            "~",
            "null",
            "\\u0000",
            "\u{feff}",
            "é",
            ">\n",
            "|\n",
            "? ",
            "registry: r.example/t\n",
        ]);
        prop_oneof![
            4 => prop::collection::vec(token, 0..40).prop_map(|t| t.concat()),
            1 => prop::collection::vec(any::<u8>(), 0..200).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        ]
    }

    /// A YAML double-quoted scalar holding exactly `s`.
    fn quoted(s: &str) -> String {
        let mut out = String::from("\"");
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if c.is_control()
                    || matches!(
                        c,
                        '\u{85}' | '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}'
                    ) =>
                {
                    out.push_str(&format!("\\u{:04x}", c as u32))
                }
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }

    /// A value written plain, single-quoted or double-quoted, and what it must read as.
    fn value() -> impl Strategy<Value = (String, String)> {
        let tricky = prop::sample::select(vec![
            "1.0",
            "010",
            "0x10",
            "1e3",
            "yes",
            "no",
            "on",
            "off",
            "true",
            "False",
            ".inf",
            "-.5",
            "1_000",
            "+1",
            "0o17",
            "2024-01-01",
            "12:30:00",
            "v1.2.3",
            "a b",
            "é",
            "-x",
            "=",
            "0.",
            "1__0",
            "0b11",
        ])
        .prop_map(|v| (v.to_string(), v.to_string()));
        let single = "[a-zA-Z0-9 #:,.{}\\[\\]&*!|>'\"%@`é-]{0,16}"
            .prop_map(|v| (format!("'{}'", v.replace('\'', "''")), v));
        let double = any::<String>().prop_map(|v| (quoted(&v), v));
        prop_oneof![tricky, single, double]
    }

    #[derive(Debug, Clone)]
    struct Svc {
        name: String,
        context: &'static str,
        args: Vec<(String, (String, String))>,
        target: Option<(String, String)>,
        depends: bool,
    }

    fn service() -> impl Strategy<Value = Svc> {
        (
            "[a-z][a-z0-9]{0,5}([._-][a-z0-9]{1,3})?",
            prop::sample::select(vec!["c1", "c2/sub", "./c1", "c2/sub/"]),
            prop::collection::vec(("[A-Z_][A-Z0-9_]{0,6}", value()), 0..4),
            prop::option::of(value()),
            any::<bool>(),
        )
            .prop_map(|(name, context, args, target, depends)| Svc {
                name,
                context,
                args,
                target,
                depends,
            })
    }

    fn check_valid(
        root: &Path,
        (services, tag_length, duplicate): (Vec<Svc>, Option<usize>, Option<usize>),
    ) -> Result<(), TestCaseError> {
        let mut seen = BTreeSet::new();
        let services: Vec<Svc> = services
            .into_iter()
            .filter(|s| seen.insert(tagsmith::registry::reference::env_name(&s.name)))
            .collect();
        let mut text = String::from("registry: r.example/team/\n");
        if let Some(n) = tag_length {
            text.push_str(&format!("tag_length: {n}\n"));
        }
        text.push_str("services:\n");
        let first = services[0].name.clone();
        for s in &services {
            text.push_str(&format!(
                "  {}:\n    context: {}\n",
                quoted(&s.name),
                s.context
            ));
            if let Some((t, _)) = &s.target {
                text.push_str(&format!("    target: {t}\n"));
            }
            if s.depends && s.name != first {
                text.push_str(&format!("    depends_on: [{first}]\n"));
            }
            if !s.args.is_empty() {
                text.push_str("    args:\n");
            }
            for (k, (written, _)) in &s.args {
                text.push_str(&format!("      {k}: {written}\n"));
            }
        }
        let path = root.join("tagsmith.yaml");
        // A key written twice anywhere is an error, never a silent choice.
        if let Some(at) = duplicate {
            let lines: Vec<&str> = text.lines().collect();
            let at = at % lines.len();
            // A line that opens a block would first give its key an empty value.
            if lines[at].ends_with(':') {
                return Ok(());
            }
            let mut doubled: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
            doubled.insert(at + 1, lines[at].to_string());
            let doubled = doubled.join("\n") + "\n";
            let err = config::parse(&path, &doubled);
            prop_assert!(
                err.is_err(),
                "duplicate line {} accepted:\n{}",
                at + 1,
                doubled
            );
            let msg = err.err().unwrap().to_string();
            prop_assert!(msg.contains("duplicate"), "{}", msg);
            return Ok(());
        }
        let config = match config::parse(&path, &text) {
            Ok(c) => c,
            Err(e) => return Err(TestCaseError::fail(format!("{e}\n{text}"))),
        };
        prop_assert_eq!(&config.registry, "r.example/team");
        prop_assert_eq!(config.tag_length, tag_length.unwrap_or(32));
        prop_assert_eq!(config.services.len(), services.len());
        for s in &services {
            let got = &config.services[&s.name];
            let want: BTreeMap<String, String> = s
                .args
                .iter()
                .map(|(k, (_, v))| (k.clone(), v.clone()))
                .collect();
            prop_assert_eq!(&got.args, &want, "{}", text);
            prop_assert_eq!(
                &got.target,
                &s.target.as_ref().map(|t| t.1.clone()),
                "{}",
                text
            );
            prop_assert_eq!(
                &got.context,
                &root.join(s.context.trim_start_matches("./").trim_end_matches('/'))
            );
            let deps: Vec<String> = if s.depends && s.name != first {
                vec![first.clone()]
            } else {
                Vec::new()
            };
            prop_assert_eq!(&got.depends_on, &deps);
        }
        Ok(())
    }

    pub fn run(cases: u32) {
        let dir = repo();
        let path = dir.path().join("tagsmith.yaml");
        check("config: any text", cases, yamlish(), |text| {
            check_error(config::parse(&path, &text))
        });
        // Arguments without duplicate names: a repeated one is an error (below).
        let valid = (
            prop::collection::vec(service(), 1..4).prop_map(|mut v| {
                for s in &mut v {
                    let mut seen = BTreeSet::new();
                    s.args.retain(|(k, _)| seen.insert(k.clone()));
                }
                v
            }),
            prop::option::of(12..=64usize),
            prop::option::weighted(0.2, any::<usize>()),
        );
        check("config: valid files round-trip", cases, valid, |v| {
            check_valid(dir.path(), v)
        });
    }
}

#[test]
fn config_parser() {
    configs::run(CASES);
}

#[test]
#[ignore = "long run: cargo test --release --test properties -- --ignored"]
fn long_config_parser() {
    configs::run(LONG);
}
