//! tagsmith: content-addressed image tags for container monorepos.
//!
//! The data flows through the modules in this order:
//! [`config`] → [`context`] (walk + [`dockerignore`]) → [`hash`] →
//! [`graph`] (with [`dockerfile`] inference, in [`project`]) → [`output`] / [`explain`].

pub mod cli;
pub mod config;
pub mod context;
pub mod dockerfile;
pub mod dockerignore;
pub mod error;
pub mod explain;
pub mod graph;
pub mod hash;
pub mod output;
pub mod project;
pub mod render;
pub mod template;
