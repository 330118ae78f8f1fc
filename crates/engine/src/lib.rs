//! berth's engine: the life of containers and images between the CLI and
//! the crates below it (image, storage, the OCI runtime).

pub mod containers;
pub mod error;
pub mod spec;

pub use error::{EngineError, Result};
