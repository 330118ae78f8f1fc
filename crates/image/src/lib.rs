//! Images for berth: Docker-compatible references, the content-addressed blob store,
//! image metadata in SQLite (tags, layers with reference counts), docker-archive and OCI
//! layout load/save, `import` of a rootfs tarball and the configs of `commit`.
//!
//! This crate never mounts or unpacks a layer: it hands the engine uncompressed layer
//! streams ([`archive::LayerBlob::open_uncompressed`]) for the storage crate to apply,
//! and returns the layers that no image needs any more ([`db::RemovedImage`]).

pub mod archive;
pub mod blobs;
pub mod config;
pub mod db;
mod error;
pub mod reference;
pub mod registry;

pub use blobs::BlobStore;
pub use db::{Image, ImageDb, ImageSummary, LayerRecord, NewImage, NewLayer, RemovedImage};
pub use error::{Error, Result};
pub use reference::Reference;

pub use berth_digest::Digest;
/// An image ID: the digest of its config.
pub type ImageId = Digest;
