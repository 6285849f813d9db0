//! The manifest template scanner. An action is, on one line:
//!
//! ```text
//! <<  name  "argument"  >>      spaces optional except between name and argument
//! ```
//!
//! where `name` is a lowercase identifier. Everything else passes through byte
//! for byte: YAML merge keys (`<<: *x`), shell heredocs (`<<EOF`, `<<-EOF`,
//! `<<'EOF'`, `<< "EOF"`), `{{ }}` and `{% %}` templates, C++ and Ruby `<<`.
//!
//! * A full action with an unknown name is an error (`<< tga "api" >>`).
//! * A known name and argument without `>>` on the line is an error.
//! * `\<< tag "x" >>` is the literal text `<< tag "x" >>` (the backslash is
//!   dropped only before something that would otherwise be an action).

use std::fmt;

use memchr::memmem;

use crate::registry::ImageRef;
use crate::suggestion::Suggestion;

/// The functions an action may call: each knows its name, whether it needs
/// the image's registry digest, and what it evaluates to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Function {
    /// The tag.
    Tag,
    /// `<registry>/<repository>:<tag>`.
    Image,
    /// `<registry>/<repository>`.
    Repository,
    /// `sha256:…`, the manifest digest in the registry.
    Digest,
    /// `<registry>/<repository>:<tag>@sha256:…`.
    Pinned,
}

impl Function {
    pub const ALL: [Function; 5] = [
        Function::Tag,
        Function::Image,
        Function::Repository,
        Function::Digest,
        Function::Pinned,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Function::Tag => "tag",
            Function::Image => "image",
            Function::Repository => "repository",
            Function::Digest => "digest",
            Function::Pinned => "pinned",
        }
    }

    pub fn from_name(name: &str) -> Option<Function> {
        Function::ALL.into_iter().find(|f| f.name() == name)
    }

    pub fn needs_digest(self) -> bool {
        matches!(self, Function::Digest | Function::Pinned)
    }

    /// The value for `image` (with its tag); `digest` is required when
    /// [`Function::needs_digest`].
    pub fn evaluate(self, image: &ImageRef, digest: Option<&str>) -> String {
        let digest = || digest.expect("a digest for a function that needs one");
        match self {
            Function::Tag => image.tag_or_latest().to_string(),
            Function::Image => image.to_string(),
            Function::Repository => image.repository.to_string(),
            Function::Digest => digest().to_string(),
            Function::Pinned => format!("{image}@{}", digest()),
        }
    }
}

impl fmt::Display for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

fn function_names() -> impl Iterator<Item = &'static str> {
    Function::ALL.into_iter().map(Function::name)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Bytes copied as they are (a range of the input).
    Text(std::ops::Range<usize>),
    Action(Action),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    pub function: Function,
    pub argument: String,
    /// 1-based line and column (in characters) of the opening `<<`.
    pub line: usize,
    pub column: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// What follows a `<<` when it looks like an action.
struct Shape {
    function: String,
    argument: String,
    /// Offset just past the closing `>>`, if it is on the line.
    end: Option<usize>,
}

/// A template split into text and actions, with every syntax error found.
/// The actions are there even when there are errors, so that they can be
/// checked too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub pieces: Vec<Piece>,
    pub errors: Vec<TemplateError>,
}

/// Splits a template into text and actions.
pub fn parse(input: &[u8]) -> Parsed {
    let mut pieces = Vec::new();
    let mut errors = Vec::new();
    let mut copied = 0;
    let finder = memmem::Finder::new(b"<<");
    let mut at = 0;
    let mut cursor = Cursor::default();
    while let Some(found) = finder.find(&input[at..]) {
        let start = at + found;
        let Some(shape) = shape_at(input, start + 2) else {
            at = start + 1;
            continue;
        };
        let (line, column) = cursor.advance(input, start);
        let known = Function::from_name(&shape.function);
        let escaped = start > 0 && input[start - 1] == b'\\';
        match shape.end {
            Some(end) if escaped => {
                // `\<< f "x" >>`: drop the backslash, keep the rest as text.
                pieces.push(Piece::Text(copied..start - 1));
                pieces.push(Piece::Text(start..end));
                copied = end;
                at = end;
            }
            Some(end) if known.is_some() => {
                pieces.push(Piece::Text(copied..start));
                pieces.push(Piece::Action(Action {
                    function: known.expect("a known function"),
                    argument: shape.argument,
                    line,
                    column,
                }));
                copied = end;
                at = end;
            }
            Some(end) => {
                errors.push(TemplateError {
                    line,
                    column,
                    message: format!(
                        "unknown function \"{}\"{}; expected one of: {}",
                        shape.function,
                        Suggestion::closest(&shape.function, function_names()),
                        function_names().collect::<Vec<_>>().join(", ")
                    ),
                });
                at = end;
            }
            None if known.is_some() && !escaped => {
                errors.push(TemplateError {
                    line,
                    column,
                    message: format!(
                        "unterminated action: expected `>>` on the same line after `{} \"{}\"`",
                        shape.function, shape.argument
                    ),
                });
                at = start + 2;
            }
            None => at = start + 2,
        }
    }
    pieces.push(Piece::Text(copied..input.len()));
    pieces.retain(|p| !matches!(p, Piece::Text(r) if r.is_empty()));
    Parsed { pieces, errors }
}

/// Reads `␠* name ␠+ "arg" ␠* >>` from `i`, if the text has that shape up to
/// the closing quote.
fn shape_at(input: &[u8], mut i: usize) -> Option<Shape> {
    let spaces = |i: &mut usize| {
        let start = *i;
        while input.get(*i) == Some(&b' ') {
            *i += 1;
        }
        *i - start
    };
    spaces(&mut i);
    let name_start = i;
    if !input.get(i).is_some_and(u8::is_ascii_lowercase) {
        return None;
    }
    while input
        .get(i)
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
    {
        i += 1;
    }
    let function = String::from_utf8_lossy(&input[name_start..i]).into_owned();
    if spaces(&mut i) == 0 || input.get(i) != Some(&b'"') {
        return None;
    }
    i += 1;
    let arg_start = i;
    while let Some(&b) = input.get(i) {
        match b {
            b'"' => break,
            b'\n' => return None,
            _ => i += 1,
        }
    }
    input.get(i)?;
    let argument = String::from_utf8_lossy(&input[arg_start..i]).into_owned();
    i += 1;
    spaces(&mut i);
    let end = input[i..].starts_with(b">>").then_some(i + 2);
    Some(Shape {
        function,
        argument,
        end,
    })
}

/// Line and column of increasing offsets, each computed from the last one,
/// so that a template with many actions is scanned once, not once per action.
#[derive(Default)]
struct Cursor {
    /// The offset reached, always at a `<<` (ASCII), so that no UTF-8
    /// sequence is split there.
    at: usize,
    /// 0-based line and character column of `at`.
    line: usize,
    column: usize,
}

impl Cursor {
    /// 1-based line and character column of byte offset `to` (>= the last one).
    fn advance(&mut self, input: &[u8], to: usize) -> (usize, usize) {
        let between = &input[self.at..to];
        let rest = match memchr::memrchr(b'\n', between) {
            Some(i) => {
                self.line += memchr::memchr_iter(b'\n', between).count();
                self.column = 0;
                &between[i + 1..]
            }
            None => between,
        };
        self.column += String::from_utf8_lossy(rest).chars().count();
        self.at = to;
        (self.line + 1, self.column + 1)
    }
}

/// Fills every action with `value(action)` and copies the rest.
pub fn render(input: &[u8], pieces: &[Piece], mut value: impl FnMut(&Action) -> String) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() + 64);
    for piece in pieces {
        match piece {
            Piece::Text(range) => out.extend_from_slice(&input[range.clone()]),
            Piece::Action(a) => out.extend_from_slice(value(a).as_bytes()),
        }
    }
    out
}

#[cfg(test)]
mod tests;
