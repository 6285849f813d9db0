//! `.dockerignore` rules exactly as Docker applies them (moby/patternmatcher
//! and docker/cli), which differ from `.gitignore`:
//!
//! * every pattern is anchored at the context root; `foo` matches `foo` and
//!   everything below it, never `a/foo`;
//! * `*` and `?` stay within one segment, `**` spans any number of segments
//!   (including none), `[...]` is a class (`[^...]` negated), `\` escapes;
//! * a path is excluded when the last pattern matching it *or one of its
//!   parent directories* is not an exception (`!`); while walking, "matched a
//!   parent" means "matched when the parent was decided" ([`Matcher::decide`]);
//! * an excluded directory is pruned with everything below it unless the text
//!   of some exception starts with the directory's path followed by `/`
//!   ([`Matcher::must_descend`]).
//!
//! Each pattern is classified the way patternmatcher does (exact, prefix,
//! suffix or regular expression) because the classes have observable quirks:
//! `**foo` matches `xfoo`, and `a**b` does not match `axb`.

use regex::Regex;

use crate::paths::clean;

/// One line of an ignore file, after Docker's line processing.
#[derive(Debug, Clone)]
pub struct Pattern {
    /// The cleaned pattern text, without the `!`.
    text: String,
    exception: bool,
    kind: Kind,
    /// 1-based line in the ignore file (0 for patterns tagsmith adds).
    line: usize,
}

#[derive(Debug, Clone)]
enum Kind {
    Exact,
    /// `text` minus its trailing `**`.
    Prefix(String),
    /// `text` minus its leading `**`.
    Suffix(String),
    Regex(Regex),
}

/// How [`Matcher::decide`] decided a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub excluded: bool,
    /// The index of the pattern that decided (the last one that matched the
    /// path or, in the walking sense, one of its parents); `None` when no
    /// pattern matched.
    pub by: Option<usize>,
    /// Which patterns matched, for deciding this path's children.
    pub matched: Vec<bool>,
}

/// A malformed pattern, with the 1-based line it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError {
    pub line: usize,
    pub message: String,
}

/// Splits an ignore file into pattern lines as docker/cli does: a UTF-8 BOM
/// is stripped, `#` in column 0 starts a comment, lines are trimmed, empty
/// lines skipped, and each pattern is cleaned like Go's `filepath.Clean`
/// with a leading `/` dropped. Returns `(line, pattern)` with `!` kept.
pub fn parse_lines(content: &[u8]) -> Vec<(usize, String)> {
    let content = content.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(content);
    let text = String::from_utf8_lossy(content);
    let mut out = Vec::new();
    for (i, raw) in text.split('\n').enumerate() {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        if raw.starts_with('#') {
            continue;
        }
        let mut pattern = raw.trim();
        if pattern.is_empty() {
            continue;
        }
        let exception = pattern.starts_with('!');
        if exception {
            pattern = pattern[1..].trim();
        }
        let mut cleaned = String::new();
        if !pattern.is_empty() {
            cleaned = clean(pattern);
            if cleaned.len() > 1 && cleaned.starts_with('/') {
                cleaned.remove(0);
            }
        }
        out.push((
            i + 1,
            if exception {
                format!("!{cleaned}")
            } else {
                cleaned
            },
        ));
    }
    out
}

impl Pattern {
    /// Compiles one pattern line (as produced by [`parse_lines`]).
    pub fn new(line: usize, spec: &str) -> Result<Pattern, PatternError> {
        let err = |message: String| PatternError { line, message };
        // Docker trims and cleans the line once more with its `!`
        // (patternmatcher's New): `!/` becomes a bare `!`, and `/ *`, which
        // lost its `/`, becomes `*`.
        let spec = clean(spec.trim());
        let spec = spec.as_str();
        let (exception, body) = match spec.strip_prefix('!') {
            Some("") => {
                return Err(err(
                    "illegal exclusion pattern \"!\": nothing to re-include".into(),
                ));
            }
            Some(rest) => (true, rest),
            None => (false, spec),
        };
        let text = clean(body);
        validate_glob(&text).map_err(|m| err(format!("malformed pattern \"{spec}\": {m}")))?;
        let kind =
            classify(&text).map_err(|m| err(format!("malformed pattern \"{spec}\": {m}")))?;
        Ok(Pattern {
            text,
            exception,
            kind,
            line,
        })
    }

    pub fn is_exception(&self) -> bool {
        self.exception
    }

    /// The cleaned pattern, without the `!` of an exception.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The 1-based line in the ignore file; 0 for the exceptions that keep
    /// the Dockerfile and `.dockerignore` ([`Matcher::keep`]).
    pub fn line(&self) -> usize {
        self.line
    }

    fn matches(&self, path: &str) -> bool {
        match &self.kind {
            Kind::Exact => path == self.text,
            Kind::Prefix(prefix) => path.starts_with(prefix.as_str()),
            Kind::Suffix(suffix) => {
                path.ends_with(suffix.as_str())
                    || suffix.strip_prefix('/').is_some_and(|s| path == s)
            }
            Kind::Regex(re) => re.is_match(path),
        }
    }
}

/// The checks Go's `filepath.Match` makes before Docker accepts a pattern:
/// a trailing `\`, an unclosed or empty `[...]`, and a misplaced `-` or `]`
/// are errors.
fn validate_glob(p: &str) -> Result<(), String> {
    let mut chars = p.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            // The guard consumes the escaped character either way.
            '\\' if chars.next().is_none() => {
                return Err("trailing \\ escapes nothing".into());
            }
            '[' => {
                if chars.peek() == Some(&'^') {
                    chars.next();
                }
                let mut ranges = 0;
                loop {
                    match chars.peek() {
                        None => return Err("unclosed [ character class".into()),
                        Some(']') if ranges > 0 => {
                            chars.next();
                            break;
                        }
                        _ => {}
                    }
                    // Go does not check here that a range is in order; the
                    // regular expression does (see `go_class`), as in Docker.
                    class_char(&mut chars)?;
                    if chars.peek() == Some(&'-') {
                        chars.next();
                        class_char(&mut chars)?;
                    }
                    ranges += 1;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn class_char(chars: &mut std::iter::Peekable<std::str::Chars>) -> Result<char, String> {
    match chars.next() {
        None => Err("unclosed [ character class".into()),
        Some('-') | Some(']') => Err("empty range or misplaced - or ] in a character class".into()),
        Some('\\') => chars
            .next()
            .ok_or_else(|| "unclosed [ character class".to_string()),
        Some(c) => Ok(c),
    }
}

/// Turns a cleaned pattern into its match kind, as patternmatcher's compile does.
fn classify(pattern: &str) -> Result<Kind, String> {
    #[derive(PartialEq)]
    enum T {
        Exact,
        Prefix,
        Suffix,
        Regex,
    }
    let mut kind = T::Exact;
    let mut re = String::from("^");
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    let mut first = true;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '*' if chars.get(i) == Some(&'*') => {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                if i == chars.len() {
                    if kind == T::Exact {
                        kind = T::Prefix;
                    } else {
                        re.push_str(".*");
                        kind = T::Regex;
                    }
                } else {
                    re.push_str("(.*/)?");
                    kind = T::Regex;
                }
                if first {
                    kind = T::Suffix;
                }
            }
            '*' => {
                re.push_str("[^/]*");
                kind = T::Regex;
            }
            '?' => {
                re.push_str("[^/]");
                kind = T::Regex;
            }
            '\\' => {
                // Docker copies the escape into its Go expression as it is.
                re.push('\\');
                if let Some(&next) = chars.get(i) {
                    i += 1;
                    re.push(next);
                    kind = T::Regex;
                }
            }
            '[' | ']' => {
                re.push(c);
                kind = T::Regex;
            }
            c if ".+()|{}$".contains(c) => {
                re.push('\\');
                re.push(c);
            }
            c => re.push(c),
        }
        first = false;
    }
    Ok(match kind {
        T::Exact => Kind::Exact,
        T::Prefix => Kind::Prefix(pattern[..pattern.len() - 2].to_string()),
        T::Suffix => Kind::Suffix(pattern[2..].to_string()),
        T::Regex => {
            re.push('$');
            Kind::Regex(Regex::new(&go_to_rust(&re)?).map_err(|e| {
                e.to_string()
                    .lines()
                    .last()
                    .unwrap_or("invalid pattern")
                    .trim()
                    .to_string()
            })?)
        }
    })
}

/// Docker's expression is Go syntax, which the `regex` crate reads
/// differently in places: inside `[...]`, Go takes `[`, `&&` and `~~` as
/// plain characters (this crate nests classes and intersects them), and `\<`
/// is `<` in Go but a word boundary here. So the expression is rewritten with
/// Go's rules: every literal, in a class or not, escaped for this crate, and
/// Docker's own syntax (`^`, `$`, `(.*/)?`, `[^/]*`) kept. Escapes Go gives
/// another meaning (`\d`, `\pL`, `\Q`) or rejects (`\é`) are errors.
fn go_to_rust(go: &str) -> Result<String, String> {
    let c: Vec<char> = go.chars().collect();
    let mut out = String::with_capacity(go.len() + 16);
    let mut i = 0;
    while i < c.len() {
        match c[i] {
            '\\' => {
                let ch = go_escape(&c, &mut i)?;
                out.push_str(&regex::escape(ch.encode_utf8(&mut [0; 4])));
            }
            '[' => {
                i += 1;
                out.push_str(&go_class(&c, &mut i)?);
            }
            ch if "^$().*?|".contains(ch) => {
                out.push(ch);
                i += 1;
            }
            ch => {
                out.push_str(&regex::escape(ch.encode_utf8(&mut [0; 4])));
                i += 1;
            }
        }
    }
    Ok(out)
}

/// The character a Go escape at `c[*i]` (the `\`) stands for, if it is one.
fn go_escape(c: &[char], i: &mut usize) -> Result<char, String> {
    let ch = *c.get(*i + 1).ok_or("trailing \\ escapes nothing")?;
    *i += 2;
    if ch.is_ascii() && !ch.is_ascii_alphanumeric() {
        Ok(ch)
    } else if ch.is_ascii() {
        Err(format!(
            "\\{ch} is a regular-expression escape to Docker, not the character {ch}; remove the backslash"
        ))
    } else {
        Err(format!(
            "Docker rejects the escape \\{ch}; remove the backslash"
        ))
    }
}

/// A Go character class from just after its `[`, as a class of this crate.
fn go_class(c: &[char], i: &mut usize) -> Result<String, String> {
    let mut out = String::from("[");
    if c.get(*i) == Some(&'^') {
        out.push('^');
        *i += 1;
    }
    let one = |i: &mut usize| -> Result<char, String> {
        match c.get(*i) {
            None => Err("unclosed [ character class".to_string()),
            Some('\\') => go_escape(c, i),
            Some(&ch) => {
                *i += 1;
                Ok(ch)
            }
        }
    };
    let mut first = true;
    loop {
        match c.get(*i) {
            None => return Err("unclosed [ character class".into()),
            Some(']') if !first => {
                *i += 1;
                out.push(']');
                return Ok(out);
            }
            _ => {}
        }
        first = false;
        // `[:alpha:]` and the like: the same names in both syntaxes.
        if c.get(*i) == Some(&'[')
            && c.get(*i + 1) == Some(&':')
            && let Some(end) =
                (*i + 2..c.len().saturating_sub(1)).find(|&j| c[j] == ':' && c[j + 1] == ']')
        {
            out.extend(&c[*i..end + 2]);
            *i = end + 2;
            continue;
        }
        let lo = one(i)?;
        out.push_str(&regex::escape(lo.encode_utf8(&mut [0; 4])));
        if c.get(*i) == Some(&'-') && c.get(*i + 1).is_some_and(|&n| n != ']') {
            *i += 1;
            let hi = one(i)?;
            if hi < lo {
                return Err(format!("range {lo}-{hi} is reversed"));
            }
            out.push('-');
            out.push_str(&regex::escape(hi.encode_utf8(&mut [0; 4])));
        }
    }
}

/// An ordered list of patterns: the last one that matches decides.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    patterns: Vec<Pattern>,
}

impl Matcher {
    /// Compiles the lines of an ignore file; the first malformed one is an error.
    pub fn new(lines: &[(usize, String)]) -> Result<Matcher, PatternError> {
        let patterns = lines
            .iter()
            .map(|(line, spec)| Pattern::new(*line, spec))
            .collect::<Result<_, _>>()?;
        Ok(Matcher { patterns })
    }

    /// Parses and compiles an ignore file's bytes.
    pub fn from_bytes(content: &[u8]) -> Result<Matcher, PatternError> {
        Matcher::new(&parse_lines(content))
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The pattern a [`Decision`] names.
    pub fn pattern(&self, index: usize) -> &Pattern {
        &self.patterns[index]
    }

    /// Appends an exception for `path` if it would be excluded, which is how
    /// docker/cli keeps the Dockerfile and `.dockerignore` in every context.
    /// Docker adds `!<path>` as a pattern, so a path holding `[`, `\\`, `*`
    /// or `?` is read as one; an invalid pattern fails Docker's build, and is
    /// an error here.
    pub fn keep(&mut self, path: &str) -> Result<(), PatternError> {
        if self.is_excluded(path) {
            let p = Pattern::new(0, &format!("!{path}")).map_err(|e| PatternError {
                line: 0,
                message: format!(
                    "Docker keeps \"{path}\" by adding the pattern \"!{path}\", which is malformed: {}; rename the file",
                    e.message.rsplit(": ").next().unwrap_or(&e.message)
                ),
            })?;
            self.patterns.push(p);
        }
        Ok(())
    }

    /// Whether `path` (relative to the context, `/`-separated) is excluded:
    /// the last pattern that matches it or one of its parents is not an exception.
    pub fn is_excluded(&self, path: &str) -> bool {
        let parents: Vec<usize> = path.match_indices('/').map(|(i, _)| i).collect();
        let mut excluded = false;
        for pattern in &self.patterns {
            // Only a pattern that can flip the current answer needs testing.
            if pattern.exception != excluded {
                continue;
            }
            let matched =
                pattern.matches(path) || parents.iter().any(|&end| pattern.matches(&path[..end]));
            if matched {
                excluded = !pattern.exception;
            }
        }
        excluded
    }

    /// The rule Docker's context walkers apply (moby's
    /// `MatchesUsingParentResults`): like [`Matcher::is_excluded`], but a
    /// parent directory counts as matched by a pattern only if that pattern
    /// matched when the parent itself was decided. A pattern skipped there
    /// (because it could not change the parent's answer) does not count, so
    /// `sub`, `!sub/dir/keep`, `sub/dir` sends `sub/dir/keep`.
    ///
    /// `parent` is the [`Decision::matched`] of the parent directory (`None`
    /// at the top level).
    pub fn decide(&self, path: &str, parent: Option<&[bool]>) -> Decision {
        let mut matched_by = vec![false; self.patterns.len()];
        let mut excluded = false;
        let mut by = None;
        for (i, pattern) in self.patterns.iter().enumerate() {
            let mut matched = parent.is_some_and(|p| p[i]);
            if !matched {
                if pattern.exception != excluded {
                    continue;
                }
                matched = pattern.matches(path)
                    || (parent.is_none()
                        && path
                            .match_indices('/')
                            .any(|(end, _)| pattern.matches(&path[..end])));
            }
            matched_by[i] = matched;
            if matched {
                excluded = !pattern.exception;
                by = Some(i);
            }
        }
        Decision {
            excluded,
            by,
            matched: matched_by,
        }
    }

    /// Whether Docker walks into the excluded directory `dir` anyway: only
    /// when the text of an exception starts with `dir/`. So `!dir/keep`
    /// rescues `dir/keep`, but `!**/keep` or `!d*/keep` do not.
    pub fn must_descend(&self, dir: &str) -> bool {
        let dir_slash = format!("{dir}/");
        self.patterns
            .iter()
            .filter(|p| p.exception)
            .any(|p| format!("{}/", p.text).starts_with(&dir_slash))
    }
}

#[cfg(test)]
mod tests;
