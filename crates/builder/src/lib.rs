//! `berth build`: Dockerfiles built into images with Docker's classic
//! builder's behaviour and output.
//!
//! - [`parser`]: the Dockerfile's text into typed instructions (pure);
//! - [`shell`]: word splitting and variable substitution (pure);
//! - [`ignore`]: `.dockerignore` matching (pure);
//! - [`context`]: the files COPY and ADD take, their digest, their tar;
//! - [`cache`]: the step cache in berth.db;
//! - [`executor`]: the build itself, through `berth_engine::Engine` (COPY, ADD and
//!   WORKDIR in `executor/copy.rs`).

pub mod cache;
pub mod context;
pub mod executor;
pub mod ignore;
pub mod parser;
pub mod shell;

pub use executor::{
    build, BuildError, BuildEvent, BuildOptions, BuildSecret, BuildSink, SecretSource,
};
