//! The output layer for everything that is not a command's result: status
//! lines, build logs, notes, warnings and errors, all on stderr. It owns
//! verbosity (`--quiet`) and colour (only on a terminal, never with
//! `NO_COLOR`), and can capture what it writes, for tests. Shared by the
//! concurrent tasks of a build, so every method takes `&self`.

use std::fmt;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};

use crate::error::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    /// Build logs hidden.
    Quiet,
    Normal,
}

enum Sink {
    Stderr,
    Capture(Arc<Mutex<Vec<u8>>>),
}

pub struct Shell {
    sink: Mutex<Sink>,
    verbosity: Verbosity,
    color: bool,
}

/// What a capturing shell wrote.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[derive(Clone, Copy)]
enum Style {
    Error,
    Warning,
    Note,
    Dim,
}

impl Style {
    fn code(self) -> &'static str {
        match self {
            Style::Error => "1;31",
            Style::Warning => "1;33",
            Style::Note => "1;36",
            Style::Dim => "2",
        }
    }
}

impl Shell {
    /// Writes to stderr, in colour when stderr is a terminal and `NO_COLOR`
    /// is unset or empty.
    pub fn new(verbosity: Verbosity) -> Shell {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Shell {
            sink: Mutex::new(Sink::Stderr),
            verbosity,
            color: !no_color && std::io::stderr().is_terminal(),
        }
    }

    /// Writes into memory instead, without colour.
    pub fn capture(verbosity: Verbosity) -> (Shell, Captured) {
        let captured = Captured::default();
        let shell = Shell {
            sink: Mutex::new(Sink::Capture(captured.0.clone())),
            verbosity,
            color: false,
        };
        (shell, captured)
    }

    pub fn verbosity(&self) -> Verbosity {
        self.verbosity
    }

    /// Whether colour is on (a terminal, no `NO_COLOR`).
    pub fn is_color(&self) -> bool {
        self.color
    }

    fn write_line(&self, line: &str) {
        let mut sink = self.sink.lock().unwrap_or_else(|p| p.into_inner());
        match &mut *sink {
            // A closed stderr is not worth failing a build for.
            Sink::Stderr => {
                let _ = writeln!(std::io::stderr().lock(), "{line}");
            }
            Sink::Capture(buf) => {
                let mut buf = buf.lock().unwrap();
                buf.extend_from_slice(line.as_bytes());
                buf.push(b'\n');
            }
        }
    }

    fn paint(&self, style: Style, text: &str) -> String {
        if self.color {
            format!("\x1b[{}m{text}\x1b[0m", style.code())
        } else {
            text.to_string()
        }
    }

    /// A progress line: `tagsmith: <msg>`.
    pub fn status(&self, msg: impl fmt::Display) {
        self.write_line(&format!("tagsmith: {msg}"));
    }

    /// A line of a build's output: `<source> | <line>`; hidden when quiet.
    pub fn log(&self, source: &str, line: &str) {
        if self.verbosity == Verbosity::Normal {
            self.write_line(&format!(
                "{} {line}",
                self.paint(Style::Dim, &format!("{source} |"))
            ));
        }
    }

    /// A line of a build's output that is shown even when quiet (a failure).
    pub fn log_always(&self, source: &str, line: &str) {
        self.write_line(&format!(
            "{} {line}",
            self.paint(Style::Dim, &format!("{source} |"))
        ));
    }

    /// Something the user should know, not a problem.
    pub fn note(&self, msg: impl fmt::Display) {
        self.write_line(&format!(
            "tagsmith: {} {msg}",
            self.paint(Style::Note, "note:")
        ));
    }

    pub fn warn(&self, msg: impl fmt::Display) {
        self.write_line(&format!(
            "tagsmith: {} {msg}",
            self.paint(Style::Warning, "warning:")
        ));
    }

    /// A plain line, as it is.
    pub fn line(&self, text: impl fmt::Display) {
        self.write_line(&text.to_string());
    }

    /// The error a run ends with. Several problems come one per line, then
    /// their count and what happened because of them.
    pub fn error(&self, err: &Error) {
        let label = self.paint(Style::Error, "error:");
        if let Error::Many { problems, .. } = err {
            for p in problems {
                self.write_line(&p.to_string());
            }
        }
        self.write_line(&format!("tagsmith: {label} {err}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_hides_logs_but_not_status_or_errors() {
        let (shell, out) = Shell::capture(Verbosity::Quiet);
        shell.log("api", "step 1");
        shell.status("api: built");
        shell.log_always("api", "error: boom");
        shell.error(&Error::user("bad"));
        assert_eq!(
            out.text(),
            "tagsmith: api: built\napi | error: boom\ntagsmith: error: bad\n"
        );
    }

    #[test]
    fn several_problems_come_one_per_line_then_the_count() {
        let (shell, out) = Shell::capture(Verbosity::Normal);
        let err = Error::many(
            vec![Error::user("a:1:1: x"), Error::user("b:2:3: y")],
            "nothing written",
        );
        shell.error(&err);
        assert_eq!(
            out.text(),
            "a:1:1: x\nb:2:3: y\ntagsmith: error: 2 problems, nothing written\n"
        );
    }
}
