//! A client for the OCI distribution API (Docker's registry protocol, v2).
//!
//! - [`Endpoint`]: where a [`Reference`](crate::Reference)'s registry is (`docker.io` →
//!   `registry-1.docker.io`), whether plain HTTP is allowed (localhost, loopback addresses,
//!   registries marked insecure) and which CAs to trust (`certs.d/HOST[:PORT]/*.crt`).
//! - [`auth`]: credentials in `~/.docker/config.json` form (`auths`, `credHelpers`,
//!   `credsStore`), the Bearer token flow from a `WWW-Authenticate` challenge, and Basic.
//! - [`manifest`]: Docker schema 2 and OCI manifests and indexes, platform selection.
//! - [`Client`]: one repository on one registry: every request retried with back-off on
//!   5xx and broken connections, re-authenticated on 401; blob downloads that resume with
//!   `Range` ([`BlobReader`]); uploads (HEAD existence check, cross-repository mount,
//!   monolithic or chunked).
//!
//! Blocking I/O (ureq over rustls): the engine runs one thread per layer.

pub mod auth;
mod client;
mod download;
pub mod manifest;

pub use auth::{AuthConfig, Credentials, DockerConfig};
pub use client::{BlobReader, Client, Endpoint, MountResult, RegistryOptions};
pub use download::{Download, ProgressFn};
pub use manifest::{Descriptor, Manifest, Platform};

/// Every registry failure renders as one line, in Docker's words where Docker has some.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The registry could not be reached (DNS, refused, TLS, a broken connection).
    #[error("{method} \"{url}\": {msg}")]
    Transport {
        method: &'static str,
        url: String,
        msg: String,
    },
    /// The registry answered with an error status; `msg` is its error list.
    #[error("{what}: {msg}")]
    Status {
        what: String,
        status: u16,
        msg: String,
    },
    #[error("manifest for {reference} not found: {msg}")]
    ManifestUnknown { reference: String, msg: String },
    #[error("{what}: unauthorized: {msg}")]
    Unauthorized { what: String, msg: String },
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Credentials(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl RegistryError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> RegistryError {
        RegistryError::Io {
            context: context.into(),
            source,
        }
    }
}

pub type Result<T, E = RegistryError> = std::result::Result<T, E>;
