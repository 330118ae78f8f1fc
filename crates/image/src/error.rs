use crate::reference::ReferenceError;
use berth_digest::Digest;
use std::path::Path;

/// Every error of this crate renders as one line naming the file, entry, field or digest.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error("{op} {path}: {source}")]
    Io {
        path: String,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("digest mismatch: expected {expected} got {got} ({what})")]
    DigestMismatch {
        what: String,
        expected: Digest,
        got: Digest,
    },
    #[error("blob {0} is not in the blob store")]
    BlobMissing(Digest),
    #[error("image database {path}: {op}: {source}")]
    Db {
        path: String,
        op: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("No such image: {0}")]
    NoSuchImage(String),
    #[error("ambiguous image ID {prefix}: it matches {count} images")]
    AmbiguousImage { prefix: String, count: usize },
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("{0}")]
    Archive(String),
    #[error("image config {what}: {msg}")]
    Config { what: String, msg: String },
    #[error("invalid --change {line:?}: {msg}")]
    Change { line: String, msg: String },
    #[error("import: {0}")]
    Import(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<berth_db::DbError> for Error {
    fn from(e: berth_db::DbError) -> Error {
        match e {
            berth_db::DbError::Io { path, op, source } => Error::Io { path, op, source },
            berth_db::DbError::Sqlite { path, op, source } => Error::Db { path, op, source },
        }
    }
}

impl Error {
    pub(crate) fn io(path: &Path, op: &'static str, source: std::io::Error) -> Error {
        Error::Io {
            path: path.display().to_string(),
            op,
            source,
        }
    }
    pub(crate) fn archive(msg: impl Into<String>) -> Error {
        Error::Archive(msg.into())
    }
}
