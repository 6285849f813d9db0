//! The output layer for everything that is not a command's result: status
//! lines, build logs, notes, warnings and errors, all on stderr. It owns
//! verbosity (`--quiet`), colour (only on a terminal, never with
//! `NO_COLOR`) and, on a terminal, a live area that shows each running
//! task, its elapsed time and what it is doing, redrawn in place (plain
//! lines otherwise, or with `--progress plain`); and it can capture what it
//! writes, for tests. Shared by the concurrent tasks of a build, so every
//! method takes `&self`.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::error::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    /// Build logs hidden.
    Quiet,
    Normal,
}

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Live on a terminal, plain lines otherwise.
    Auto,
    Plain,
    /// Live, whatever stderr is.
    Live,
}

enum Sink {
    Stderr,
    Capture(Arc<Mutex<Vec<u8>>>),
}

/// Everything written goes through here, so the live area is cleared
/// before a line and drawn again after it.
struct Out {
    sink: Sink,
    /// Running tasks, when the live area is on.
    live: Option<Live>,
}

#[derive(Default)]
struct Live {
    tasks: BTreeMap<String, Task>,
    /// Lines of the area on screen now.
    drawn: usize,
}

struct Task {
    started: Instant,
    doing: String,
}

/// The live area's lines are cut to this many characters.
const WIDTH: usize = 100;

pub struct Shell {
    out: Mutex<Out>,
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
        Shell::with_progress(verbosity, Progress::Auto)
    }

    pub fn with_progress(verbosity: Verbosity, progress: Progress) -> Shell {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let terminal = std::io::stderr().is_terminal();
        let live = match progress {
            Progress::Auto => terminal,
            Progress::Plain => false,
            Progress::Live => true,
        };
        Shell {
            out: Mutex::new(Out {
                sink: Sink::Stderr,
                live: live.then(Live::default),
            }),
            verbosity,
            color: !no_color && terminal,
        }
    }

    /// Writes into memory instead, without colour; `live` draws the area.
    pub fn capture(verbosity: Verbosity) -> (Shell, Captured) {
        Shell::capture_with(verbosity, false)
    }

    pub fn capture_with(verbosity: Verbosity, live: bool) -> (Shell, Captured) {
        let captured = Captured::default();
        let shell = Shell {
            out: Mutex::new(Out {
                sink: Sink::Capture(captured.0.clone()),
                live: live.then(Live::default),
            }),
            verbosity,
            color: false,
        };
        (shell, captured)
    }

    /// Whether running tasks are shown in a live area.
    pub fn is_live(&self) -> bool {
        self.out
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .live
            .is_some()
    }

    /// A task (a service's build) begins.
    pub fn task_started(&self, name: &str) {
        self.with_area(|live| {
            live.tasks.insert(
                name.to_string(),
                Task {
                    started: Instant::now(),
                    doing: "starting".into(),
                },
            );
        });
    }

    /// A task is over: it leaves the area.
    pub fn task_finished(&self, name: &str) {
        self.with_area(|live| {
            live.tasks.remove(name);
        });
    }

    /// Redraws the area (for the elapsed times).
    pub fn tick(&self) {
        self.with_area(|_| {});
    }

    /// Clears the area for good.
    pub fn end_live(&self) {
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        let drawn = out.live.as_ref().map_or(0, |l| l.drawn);
        if drawn > 0 {
            out.emit(&clear(drawn));
        }
        out.live = None;
    }

    fn with_area(&self, change: impl FnOnce(&mut Live)) {
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        let Some(live) = out.live.as_mut() else {
            return;
        };
        let before = live.drawn;
        change(live);
        let area = live.render();
        live.drawn = area.lines().count();
        out.emit(&format!("{}{area}", clear(before)));
    }

    pub fn verbosity(&self) -> Verbosity {
        self.verbosity
    }

    /// Whether colour is on (a terminal, no `NO_COLOR`).
    pub fn is_color(&self) -> bool {
        self.color
    }

    fn write_line(&self, line: &str) {
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        match &mut out.live {
            None => out.emit(&format!("{line}\n")),
            // Above the area: clear it, write the line, draw it again.
            Some(live) => {
                let before = live.drawn;
                let area = live.render();
                live.drawn = area.lines().count();
                out.emit(&format!("{}{line}\n{area}", clear(before)));
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
    /// In the live area it is what the task is doing now.
    pub fn log(&self, source: &str, line: &str) {
        let mut shown = false;
        self.with_area(|live| {
            if let Some(task) = live.tasks.get_mut(source) {
                task.doing = line.trim().to_string();
                shown = true;
            }
        });
        if shown {
            return;
        }
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

impl Out {
    fn emit(&mut self, text: &str) {
        match &mut self.sink {
            // A closed stderr is not worth failing a build for.
            Sink::Stderr => {
                let mut err = std::io::stderr().lock();
                let _ = err.write_all(text.as_bytes());
                let _ = err.flush();
            }
            Sink::Capture(buf) => buf.lock().unwrap().extend_from_slice(text.as_bytes()),
        }
    }
}

impl Live {
    /// One line per running task: its name, elapsed time and activity.
    fn render(&self) -> String {
        let width = self.tasks.keys().map(String::len).max().unwrap_or(0);
        self.tasks
            .iter()
            .map(|(name, task)| {
                let line = format!(
                    "  {name:<width$}  {:>6.1}s  {}",
                    task.started.elapsed().as_secs_f64(),
                    task.doing
                );
                let cut: String = line.chars().take(WIDTH).collect();
                format!("{cut}\n")
            })
            .collect()
    }
}

/// Moves up over `lines` lines of the area and clears to the end of the screen.
fn clear(lines: usize) -> String {
    if lines == 0 {
        String::new()
    } else {
        format!("\x1b[{lines}F\x1b[J")
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
    fn the_live_area_is_cleared_before_a_line_and_drawn_after() {
        let (shell, out) = Shell::capture_with(Verbosity::Normal, true);
        shell.task_started("api");
        shell.log("api", "#3 [2/3] RUN make");
        shell.status("web: built in 1.0s");
        shell.task_finished("api");
        shell.end_live();
        let text = out.text();
        let frames: Vec<&str> = text.split("\x1b[1F\x1b[J").collect();
        assert_eq!(frames.len(), 4, "{text:?}");
        assert!(
            frames[0].starts_with("  api     0.0s  starting\n"),
            "{text:?}"
        );
        assert!(
            frames[1].starts_with("  api     0.0s  #3 [2/3] RUN make\n"),
            "{text:?}"
        );
        assert!(
            frames[2].starts_with("tagsmith: web: built in 1.0s\n  api "),
            "{text:?}"
        );
        assert_eq!(frames[3], "", "the area is gone at the end: {text:?}");
        assert!(!text.contains("api | "), "logs are the area's, not lines");
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
