//! The engine's errors. Each renders as the one line the user sees; the CLI
//! maps them to Docker's exit codes (125 for the engine's own failures).

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// The container's program does not exist (exit 127).
    #[error("{0}")]
    CommandNotFound(String),
    /// The container's program cannot be executed (exit 126).
    #[error("{0}")]
    CannotExecute(String),
    #[error("{0}")]
    Other(String),
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;

pub trait Context<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, std::io::Error> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| EngineError::Io {
            context: what(),
            source,
        })
    }
}
