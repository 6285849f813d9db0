//! Errors as values. The type says who can fix it, and so the exit code:
//! the user (their files, arguments, credentials: exit 1), nobody in
//! particular (an I/O failure writing output, a bug: exit 2), or a signal
//! (128 + its number). Paths are kept as paths and shown relative to the
//! working directory when the error is displayed.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::paths::Shown;

/// A place in a file: `path:line:column` (the column when it is known).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub path: PathBuf,
    pub line: u64,
    pub column: Option<u64>,
}

impl Location {
    pub fn new(path: &Path, line: u64, column: u64) -> Location {
        Location {
            path: path.to_path_buf(),
            line,
            column: Some(column),
        }
    }

    pub fn line(path: &Path, line: u64) -> Location {
        Location {
            path: path.to_path_buf(),
            line,
            column: None,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", Shown(&self.path), self.line)?;
        if let Some(c) = self.column {
            write!(f, ":{c}")?;
        }
        Ok(())
    }
}

/// A registry request that failed; the HTTP status is kept so that callers
/// recognise an authentication failure by status, never by message text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryError {
    pub host: String,
    pub status: Option<u16>,
    pub message: String,
    /// A TLS trust problem (the registry's certificate, or the client's):
    /// every request to the host fails alike.
    pub tls: bool,
}

impl RegistryError {
    pub fn is_auth(&self) -> bool {
        matches!(self.status, Some(401 | 403))
    }

    /// Whether the failure is the host's, not one request's: refused
    /// credentials or a TLS trust problem. A run reports it once.
    pub fn concerns_the_host(&self) -> bool {
        self.is_auth() || self.tls
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Something wrong at a place in an input file.
    #[error("{at}: {message}")]
    Located { at: Location, message: String },
    /// Something wrong with an input file as a whole.
    #[error("{}: {message}", Shown(path))]
    File { path: PathBuf, message: String },
    /// An input file that could not be read (or an output that could not be
    /// written where the user asked for it).
    #[error("{}: {}", Shown(path), describe_io(source))]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Any other problem the user can fix: arguments, services, engines.
    #[error("{0}")]
    User(String),
    /// A registry refused or failed a request.
    #[error("{}", .0.message)]
    Registry(RegistryError),
    /// Several problems found in one pass, each reported on its own line,
    /// then `N problems` and `outcome` (what happened because of them).
    #[error("{} problem{}, {outcome}", problems.len(), if problems.len() == 1 { "" } else { "s" })]
    Many {
        problems: Vec<Error>,
        outcome: String,
    },
    /// Not the input's fault.
    #[error("{0}")]
    Internal(String),
    /// Stopped by SIGINT or SIGTERM (the signal number).
    #[error("interrupted by {}", signal_name(*.0))]
    Interrupted(i32),
}

impl Error {
    pub fn user(msg: impl fmt::Display) -> Self {
        Error::User(msg.to_string())
    }

    /// An error at `path:line:column`.
    pub fn at(path: &Path, line: u64, column: u64, msg: impl fmt::Display) -> Self {
        Error::Located {
            at: Location::new(path, line, column),
            message: msg.to_string(),
        }
    }

    pub fn file(path: &Path, msg: impl fmt::Display) -> Self {
        Error::File {
            path: path.to_path_buf(),
            message: msg.to_string(),
        }
    }

    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub fn internal(msg: impl fmt::Display) -> Self {
        Error::Internal(msg.to_string())
    }

    /// Several problems at once; one problem is just that problem.
    pub fn many(mut problems: Vec<Error>, outcome: impl fmt::Display) -> Self {
        if problems.len() == 1 {
            return problems.pop().expect("one problem");
        }
        Error::Many {
            problems,
            outcome: outcome.to_string(),
        }
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Internal(_) => 2,
            Error::Interrupted(signal) => 128 + signal,
            Error::Many { problems, .. } => {
                problems.iter().map(Error::exit_code).max().unwrap_or(1)
            }
            _ => 1,
        }
    }

    /// The registry failure behind this error, if it is one.
    pub fn registry(&self) -> Option<&RegistryError> {
        match self {
            Error::Registry(e) => Some(e),
            _ => None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error's message with its causes, each once: libraries often put the
/// useful part ("connection refused") in a source.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    text
}

fn describe_io(err: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match err.kind() {
        NotFound => "not found".into(),
        PermissionDenied => "permission denied (cannot read it)".into(),
        _ => err.to_string(),
    }
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        2 => "SIGINT",
        15 => "SIGTERM",
        _ => "a signal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_type() {
        assert_eq!(Error::user("x").exit_code(), 1);
        assert_eq!(Error::internal("x").exit_code(), 2);
        assert_eq!(Error::Interrupted(2).exit_code(), 130);
        assert_eq!(Error::Interrupted(15).exit_code(), 143);
        let many = Error::many(vec![Error::user("a"), Error::user("b")], "nothing written");
        assert_eq!(many.exit_code(), 1);
        assert_eq!(many.to_string(), "2 problems, nothing written");
    }

    #[test]
    fn locations_show_line_and_column() {
        let e = Error::at(Path::new("/nowhere/x.yaml"), 3, 7, "bad");
        assert_eq!(e.to_string(), "/nowhere/x.yaml:3:7: bad");
        let e = Error::Located {
            at: Location::line(Path::new("/nowhere/.dockerignore"), 2),
            message: "bad".into(),
        };
        assert_eq!(e.to_string(), "/nowhere/.dockerignore:2: bad");
    }

    #[test]
    fn auth_failures_are_known_by_status() {
        let e = |status| RegistryError {
            host: "h".into(),
            status,
            message: "m".into(),
            tls: false,
        };
        assert!(e(Some(401)).is_auth() && e(Some(403)).is_auth());
        assert!(!e(Some(500)).is_auth() && !e(None).is_auth());
        assert!(e(Some(401)).concerns_the_host() && !e(Some(500)).concerns_the_host());
        let tls = RegistryError {
            tls: true,
            ..e(None)
        };
        assert!(tls.concerns_the_host() && !tls.is_auth());
    }
}
