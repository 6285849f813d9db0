//! tagsmith: content-addressed image tags for container monorepos.
//!
//! The data flows through the modules in this order:
//! [`config`] → [`context`] (walk + [`dockerignore`]) → [`hash`] →
//! [`graph`] (with [`dockerfile`] inference, in [`project`]) → [`output`] / [`explain`].

pub mod build;
pub mod cli;
pub mod config;
pub mod context;
pub mod dockerfile;
pub mod dockerignore;
pub mod engine;
pub mod error;
pub mod explain;
pub mod graph;
pub mod hash;
pub mod output;
pub mod project;
pub mod registry;
pub mod render;
pub mod tarball;
pub mod template;
