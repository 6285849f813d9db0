//! One module per command. Each takes the loaded project, a plain options
//! struct (nothing of clap) and the [`Shell`](crate::shell::Shell) for
//! status lines, and returns a report that renders itself for stdout.

pub mod build;
pub mod cleanup;
pub mod explain;
pub mod graph;
pub mod init;
pub mod lock;
pub mod plan;
pub mod render;
pub mod tags;

use std::path::Path;

use crate::error::{Error, Result};

/// What a command produced.
pub trait Report {
    /// The bytes for stdout, in the format the options asked for.
    fn stdout(&self) -> Vec<u8>;

    /// How the run ends once stdout is written: a report can record a
    /// failure (failed builds, files that differ) after its output.
    fn outcome(&self) -> Result<()> {
        Ok(())
    }
}

/// Reads a JSON file that tagsmith wrote earlier; a bad one is a located error.
pub fn read_json<T: serde::de::DeserializeOwned>(file: &Path, what: &str) -> Result<T> {
    let text = std::fs::read_to_string(file).map_err(|e| Error::io(file, e))?;
    serde_json::from_str(&text).map_err(|e| {
        Error::at(
            file,
            e.line() as u64,
            e.column() as u64,
            format!("not {what}: {e}"),
        )
    })
}

/// The async runtime the engine and registry clients need, with `threads` workers.
pub fn runtime(threads: usize) -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .map_err(|e| Error::internal(format!("starting the async runtime: {e}")))
}

/// Writes `bytes` to `path` through a temporary file and a rename, so that
/// a reader never sees half a file.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tagsmith-{}.tmp", std::process::id()));
    std::fs::write(&tmp, bytes)
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Error::io(path, e)
        })
}
