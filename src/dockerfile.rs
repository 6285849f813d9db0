//! A small Dockerfile scanner: just enough to find which images a Dockerfile
//! builds on. It reads `FROM`, `COPY|ADD --from=` and `RUN --mount=…,from=`
//! (and the secrets `RUN --mount=type=secret` asks for), and handles the
//! `# escape=` and `# syntax=` directives, line continuations, comments,
//! heredocs, global `ARG`s (defaults overridden by build args),
//! `${VAR:-default}`, `--platform=`, `AS name` and references to earlier
//! stages. [`rewrite`] replaces references in the text, for the Dockerfile
//! tagsmith sends the builder.
//!
//! Variables are expanded while recording which ones were read, so a
//! reference like `FROM ${JVM_BASE_IMAGE}` (directly, through a default, or
//! through another global `ARG`) shows up in [`FromRef::vars`].

use std::collections::{BTreeMap, BTreeSet};

/// Where a reference stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefKind {
    /// `FROM <ref>`.
    From,
    /// `COPY --from=<ref>` or `ADD --from=<ref>`.
    CopyFrom,
    /// `RUN --mount=…,from=<ref>`.
    MountFrom,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FromRef {
    pub kind: RefKind,
    /// 1-based line of the instruction.
    pub line: usize,
    /// The reference as written.
    pub raw: String,
    /// The reference after variable expansion.
    pub expanded: String,
    /// Whether it names an earlier stage rather than an image.
    pub stage: bool,
    /// Every variable read while expanding it.
    pub vars: BTreeSet<String>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Scan {
    pub refs: Vec<FromRef>,
    pub stages: Vec<String>,
    /// Secrets that `RUN --mount=type=secret` mounts.
    pub secrets: Vec<SecretMount>,
    /// The frontend image a `# syntax=` directive names.
    pub syntax: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretMount {
    pub line: usize,
    pub id: String,
    pub required: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanError {
    pub line: usize,
    pub message: String,
}

/// A global `ARG`'s value and the variables read to compute it.
#[derive(Clone, Default)]
struct Value {
    text: Option<String>,
    vars: BTreeSet<String>,
}

/// Scans a Dockerfile. `args` are the build args; `injected` are args that
/// will be set at build time whatever their value (the `<NAME>_IMAGE` ones).
pub fn scan(
    text: &str,
    args: &BTreeMap<String, String>,
    injected: &BTreeSet<String>,
) -> Result<Scan, ScanError> {
    let lines: Vec<&str> = text.lines().collect();
    let escape = directive(&lines, "escape")
        .filter(|e| e == "`")
        .map_or('\\', |_| '`');
    let mut globals: BTreeMap<String, Value> = BTreeMap::new();
    let mut scan = Scan {
        syntax: directive(&lines, "syntax"),
        ..Scan::default()
    };
    let mut seen_from = false;

    for (line, instruction) in logical_lines(&lines, escape) {
        let err = |message: String| ScanError { line, message };
        let mut words = instruction.split_whitespace();
        let keyword = words.next().unwrap_or_default().to_ascii_uppercase();
        let rest: Vec<&str> = words.collect();
        match keyword.as_str() {
            "ARG" if !seen_from => {
                for decl in &rest {
                    let (name, default) = match decl.split_once('=') {
                        Some((n, d)) => (n, Some(unquote(d))),
                        None => (*decl, None),
                    };
                    let value = if let Some(v) = args.get(name) {
                        Value {
                            text: Some(v.clone()),
                            vars: BTreeSet::from([name.to_string()]),
                        }
                    } else if let Some(d) = default {
                        let (text, vars) =
                            expand(&d, escape, &globals, args, injected).map_err(err)?;
                        Value {
                            text: Some(text),
                            vars,
                        }
                    } else {
                        Value::default()
                    };
                    globals.insert(name.to_string(), value);
                }
            }
            "FROM" => {
                seen_from = true;
                let operands: Vec<&str> = rest
                    .iter()
                    .copied()
                    .filter(|w| !w.starts_with("--"))
                    .collect();
                let Some(raw) = operands.first() else {
                    return Err(err("FROM needs an image".into()));
                };
                let r = reference(
                    line,
                    RefKind::From,
                    raw,
                    escape,
                    &globals,
                    args,
                    injected,
                    &scan.stages,
                )
                .map_err(err)?;
                scan.refs.push(r);
                match operands.get(1..) {
                    Some([as_kw, name]) if as_kw.eq_ignore_ascii_case("as") => {
                        scan.stages.push(name.to_ascii_lowercase())
                    }
                    Some([]) => scan.stages.push(String::new()),
                    _ => {
                        return Err(err(format!(
                            "FROM {} : expected `FROM [--platform=...] IMAGE [AS NAME]`",
                            rest.join(" ")
                        )));
                    }
                }
            }
            "COPY" | "ADD" => {
                for flag in rest.iter().take_while(|w| w.starts_with("--")) {
                    if let Some(raw) = flag.strip_prefix("--from=") {
                        let r = reference(
                            line,
                            RefKind::CopyFrom,
                            raw,
                            escape,
                            &globals,
                            args,
                            injected,
                            &scan.stages,
                        )
                        .map_err(err)?;
                        scan.refs.push(r);
                    }
                }
            }
            "RUN" => {
                for flag in rest.iter().take_while(|w| w.starts_with("--")) {
                    let Some(mount) = flag.strip_prefix("--mount=") else {
                        continue;
                    };
                    let options: Vec<(&str, &str)> = mount
                        .split(',')
                        .map(|o| o.split_once('=').unwrap_or((o, "")))
                        .collect();
                    let get = |k: &str| options.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
                    if let Some(raw) = get("from") {
                        let r = reference(
                            line,
                            RefKind::MountFrom,
                            raw,
                            escape,
                            &globals,
                            args,
                            injected,
                            &scan.stages,
                        )
                        .map_err(err)?;
                        scan.refs.push(r);
                    }
                    if get("type") == Some("secret") {
                        // BuildKit's default id is the target's base name.
                        let id = get("id")
                            .or_else(|| {
                                get("target")
                                    .or(get("dst"))
                                    .map(|t| t.rsplit('/').next().unwrap_or(t))
                            })
                            .unwrap_or_default();
                        let required = get("required").is_some_and(|v| v.is_empty() || v == "true");
                        scan.secrets.push(SecretMount {
                            line,
                            id: id.to_string(),
                            required,
                        });
                    }
                }
            }
            _ => {}
        }
    }
    Ok(scan)
}

#[allow(clippy::too_many_arguments)]
fn reference(
    line: usize,
    kind: RefKind,
    raw: &str,
    escape: char,
    globals: &BTreeMap<String, Value>,
    args: &BTreeMap<String, String>,
    injected: &BTreeSet<String>,
    stages: &[String],
) -> Result<FromRef, String> {
    let (expanded, vars) = expand(raw, escape, globals, args, injected)?;
    let lower = expanded.to_ascii_lowercase();
    let stage = stages.iter().any(|s| !s.is_empty() && *s == lower)
        || lower.parse::<usize>().is_ok_and(|i| i < stages.len());
    Ok(FromRef {
        kind,
        line,
        raw: raw.to_string(),
        expanded,
        stage,
        vars,
    })
}

/// The value of a parser directive (`# escape=`, `# syntax=`): directives
/// are `# key=value` comments at the very top of the file.
fn directive(lines: &[&str], name: &str) -> Option<String> {
    for line in lines {
        let body = line.trim().strip_prefix('#')?;
        let (key, value) = body.split_once('=')?;
        let key = key.trim();
        if key.contains(char::is_whitespace) || key.is_empty() {
            return None;
        }
        if key.eq_ignore_ascii_case(name) {
            return Some(value.trim().to_string());
        }
    }
    None
}

/// A reference to replace in a Dockerfile's text: on the instruction that
/// starts at `line`, the operand `raw` becomes `with`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Substitution {
    pub line: usize,
    pub kind: RefKind,
    pub raw: String,
    pub with: String,
}

/// `text` with each substitution made, everything else byte for byte. The
/// operand is found from the start of its instruction's first line, after
/// `--from=` or `from=` for the references that take one.
pub fn rewrite(text: &str, subs: &[Substitution]) -> String {
    let mut out = text.to_string();
    // Last first, so that earlier offsets stay valid.
    let mut subs: Vec<&Substitution> = subs.iter().collect();
    subs.sort_by_key(|s| std::cmp::Reverse(s.line));
    for sub in subs {
        let start: usize = out
            .split_inclusive('\n')
            .take(sub.line - 1)
            .map(str::len)
            .sum();
        let needle = match sub.kind {
            RefKind::From => sub.raw.clone(),
            RefKind::CopyFrom => format!("--from={}", sub.raw),
            RefKind::MountFrom => format!("from={}", sub.raw),
        };
        let Some(at) = find_operand(&out[start..], &needle) else {
            continue;
        };
        let at = start + at + needle.len() - sub.raw.len();
        out.replace_range(at..at + sub.raw.len(), &sub.with);
    }
    out
}

/// The first occurrence of `needle` that stands alone: preceded by white
/// space, `,` or the start, and followed by white space, `,` or the end.
fn find_operand(hay: &str, needle: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = hay[from..].find(needle) {
        let at = from + i;
        let before = hay[..at].chars().next_back();
        let after = hay[at + needle.len()..].chars().next();
        let edge = |c: Option<char>| c.is_none_or(|c| c.is_whitespace() || c == ',');
        if (edge(before) || before == Some('=')) && edge(after) {
            return Some(at);
        }
        from = at + needle.len();
    }
    None
}

/// Joins continued lines, drops comments and heredoc bodies; yields
/// `(first line number, instruction text)`.
fn logical_lines(lines: &[&str], escape: char) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    let mut heredocs: Vec<(String, bool)> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if let Some((end, strip_tabs)) = heredocs.first() {
            let candidate = if *strip_tabs {
                line.trim_start_matches('\t')
            } else {
                line
            };
            if candidate == end {
                heredocs.remove(0);
            }
            continue;
        }
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_some()) {
            continue;
        }
        if trimmed.is_empty() {
            continue;
        }
        let (text, continues) = match trimmed.strip_suffix(escape) {
            Some(t) => (t, true),
            None => (trimmed, false),
        };
        let (start, mut acc) = current.take().unwrap_or((i + 1, String::new()));
        if !acc.is_empty() {
            acc.push(' ');
        }
        acc.push_str(text);
        if continues {
            current = Some((start, acc));
        } else {
            heredocs = heredoc_markers(&acc);
            out.push((start, acc));
        }
    }
    if let Some(last) = current {
        out.push(last);
    }
    out
}

/// Heredoc terminators opened by an instruction (`<<EOF`, `<<-EOF`, `<<"EOF"`).
fn heredoc_markers(instruction: &str) -> Vec<(String, bool)> {
    let keyword = instruction
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    if !matches!(keyword.as_str(), "RUN" | "COPY" | "ADD") {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut rest = instruction;
    while let Some(i) = rest.find("<<") {
        rest = &rest[i + 2..];
        let strip = rest.starts_with('-');
        let word = rest.trim_start_matches('-');
        let word: String = word
            .trim_start_matches(['"', '\''])
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !word.is_empty() {
            out.push((word, strip));
        }
    }
    out
}

fn unquote(s: &str) -> String {
    let s = s.trim();
    for q in ['"', '\''] {
        if s.len() >= 2 && s.starts_with(q) && s.ends_with(q) {
            return s[1..s.len() - 1].to_string();
        }
    }
    s.to_string()
}

/// Expands `$VAR`, `${VAR}`, `${VAR:-word}`, `${VAR-word}`, `${VAR:+word}`
/// and `${VAR+word}`; the escape character makes the next one literal.
fn expand(
    word: &str,
    escape: char,
    globals: &BTreeMap<String, Value>,
    args: &BTreeMap<String, String>,
    injected: &BTreeSet<String>,
) -> Result<(String, BTreeSet<String>), String> {
    let mut vars = BTreeSet::new();
    let lookup = |name: &str, vars: &mut BTreeSet<String>| -> Option<String> {
        vars.insert(name.to_string());
        if injected.contains(name) {
            return Some(format!("<{name}>"));
        }
        if let Some(v) = args.get(name) {
            return Some(v.clone());
        }
        let value = globals.get(name)?;
        vars.extend(value.vars.iter().cloned());
        value.text.clone()
    };
    let chars: Vec<char> = word.chars().collect();
    let out = expand_chars(&chars, escape, &lookup, &mut vars)?;
    Ok((out, vars))
}

type Lookup<'a> = dyn Fn(&str, &mut BTreeSet<String>) -> Option<String> + 'a;

/// How deep `${A:-${B:-…}}` may nest: far beyond any real Dockerfile, and
/// far below what would exhaust the stack.
pub const MAX_NESTING: usize = 64;

fn expand_chars(
    chars: &[char],
    escape: char,
    lookup: &Lookup,
    vars: &mut BTreeSet<String>,
) -> Result<String, String> {
    expand_nested(chars, escape, lookup, vars, 0)
}

fn expand_nested(
    chars: &[char],
    escape: char,
    lookup: &Lookup,
    vars: &mut BTreeSet<String>,
    nesting: usize,
) -> Result<String, String> {
    if nesting > MAX_NESTING {
        return Err(format!(
            "variable substitutions nested more than {MAX_NESTING} deep"
        ));
    }
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == escape && i + 1 < chars.len() {
            out.push(chars[i + 1]);
            i += 2;
            continue;
        }
        if c != '$' || i + 1 == chars.len() {
            out.push(c);
            i += 1;
            continue;
        }
        if chars[i + 1] == '{' {
            // Find the matching brace, allowing nesting in the word.
            let mut depth = 0;
            let mut end = None;
            for (j, &ch) in chars.iter().enumerate().skip(i + 1) {
                match ch {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            end = Some(j);
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let end = end.ok_or_else(|| {
                format!(
                    "unterminated ${{ in \"{}\"",
                    chars.iter().collect::<String>()
                )
            })?;
            let inner = &chars[i + 2..end];
            let name_len = inner.iter().take_while(|c| is_name(**c)).count();
            let name: String = inner[..name_len].iter().collect();
            if name.is_empty() {
                return Err(format!(
                    "bad substitution in \"{}\"",
                    chars.iter().collect::<String>()
                ));
            }
            let op: String = inner[name_len..].iter().take(2).collect();
            let value = lookup(&name, vars);
            let (colon, rest) = match op.strip_prefix(':') {
                Some(_) => (true, &inner[name_len + 1..]),
                None => (false, &inner[name_len..]),
            };
            let set = value.as_ref().is_some_and(|v| !colon || !v.is_empty());
            match rest.first() {
                None => out.push_str(value.as_deref().unwrap_or_default()),
                Some('-') => {
                    if set {
                        out.push_str(value.as_deref().unwrap_or_default());
                    } else {
                        out.push_str(&expand_nested(
                            &rest[1..],
                            escape,
                            lookup,
                            vars,
                            nesting + 1,
                        )?);
                    }
                }
                Some('+') => {
                    if set {
                        out.push_str(&expand_nested(
                            &rest[1..],
                            escape,
                            lookup,
                            vars,
                            nesting + 1,
                        )?);
                    }
                }
                Some(_) => out.push_str(value.as_deref().unwrap_or_default()),
            }
            i = end + 1;
        } else if is_name(chars[i + 1]) {
            let len = chars[i + 1..].iter().take_while(|c| is_name(**c)).count();
            let name: String = chars[i + 1..i + 1 + len].iter().collect();
            out.push_str(&lookup(&name, vars).unwrap_or_default());
            i += 1 + len;
        } else {
            out.push(c);
            i += 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
