pub mod dockerignore;
pub mod error;
