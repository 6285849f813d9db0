//! tagsmith: content-addressed image tags for container monorepos.
//!
//! The data flows through the modules in this order:
//!
//! [`project`] (its [`project::config`], each Dockerfile scanned by
//! [`dockerfile`], the dependency [`graph`]) → [`context`] (the walk with
//! [`context::dockerignore`]) → [`hash`] → one of [`commands`] (`tags`,
//! `explain`, `graph`, `render` with the [`template`] scanner, `build` with
//! the [`engine`] and the [`registry`]) → a report on stdout and status
//! lines through the [`shell`]. [`cli`] maps arguments to commands;
//! [`error`], [`paths`] and [`suggestion`] serve every layer.

pub mod cli;
pub mod commands;
pub mod context;
pub mod dockerfile;
pub mod engine;
pub mod error;
pub mod graph;
pub mod hash;
pub mod paths;
pub mod project;
pub mod registry;
pub mod secrets;
pub mod shell;
pub mod suggestion;
pub mod template;
pub mod tls;
pub mod tree;
