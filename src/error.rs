//! Errors as values. A user error (bad config, bad input file) exits 1; anything
//! else (an I/O failure writing output, a bug) exits 2.

use std::fmt;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Something the user can fix in their files or arguments.
    #[error("{0}")]
    User(String),
    /// Something went wrong that is not the input's fault.
    #[error("{0}")]
    Internal(String),
}

impl Error {
    pub fn user(msg: impl fmt::Display) -> Self {
        Error::User(msg.to_string())
    }

    /// An error located in a file: `path:line:column: message`.
    pub fn at(path: &Path, line: u64, column: u64, msg: impl fmt::Display) -> Self {
        Error::User(format!("{}:{line}:{column}: {msg}", path.display()))
    }

    /// A user error about a file that could not be read.
    pub fn io(path: &Path, err: std::io::Error) -> Self {
        Error::User(format!("{}: {}", path.display(), describe_io(&err)))
    }

    pub fn internal(msg: impl fmt::Display) -> Self {
        Error::Internal(msg.to_string())
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            Error::User(_) => 1,
            Error::Internal(_) => 2,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn describe_io(err: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match err.kind() {
        NotFound => "not found".into(),
        PermissionDenied => "permission denied (cannot read it)".into(),
        _ => err.to_string(),
    }
}

/// `(did you mean "x"?)` for the closest candidate, if any is close enough:
/// a small edit distance (transpositions count once) or a high Jaro-Winkler score.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    let max_edits = (word.chars().count() / 3).max(1);
    let best = candidates
        .into_iter()
        .map(|c| {
            (
                strsim::osa_distance(word, c),
                strsim::jaro_winkler(word, c),
                c,
            )
        })
        .filter(|(edits, jw, _)| *edits <= max_edits || *jw > 0.8)
        .min_by(|a, b| a.0.cmp(&b.0).then(b.1.total_cmp(&a.1)));
    match best {
        Some((_, _, c)) => format!(" (did you mean \"{c}\"?)"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(
            did_you_mean("contxt", ["context", "target"]),
            " (did you mean \"context\"?)"
        );
        assert_eq!(did_you_mean("zzz", ["context", "target"]), "");
        assert_eq!(
            did_you_mean("wbe", ["api", "web"]),
            " (did you mean \"web\"?)"
        );
    }
}
