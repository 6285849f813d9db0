pub mod config;
pub mod context;
pub mod dockerfile;
pub mod dockerignore;
pub mod error;
pub mod graph;
pub mod hash;
