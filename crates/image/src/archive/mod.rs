//! Image archives, both directions: docker-archive (`docker save`/`load`, classic and
//! Docker 25+ layouts), OCI image layout in a tar (`oci-archive`) and as a directory
//! (`oci-dir`).
//!
//! Loading never touches the database: it fills the blob store and returns
//! [`LoadedImage`]s; the engine applies their layers through storage and then registers
//! them with [`crate::ImageDb::add_image`]. A load that fails removes the blobs it added
//! (blobs that were already in the store stay).

mod load;
mod save;

pub use load::{load_dir, load_path, load_tar, ArchiveFormat, LayerBlob, Loaded, LoadedImage};
pub use save::{save_dir, save_tar, SaveFormat, SaveImage};

use std::io::{self, BufRead, Read};

pub const MEDIA_DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub const MEDIA_DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const MEDIA_DOCKER_FOREIGN_LAYER_GZIP: &str =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
pub const MEDIA_OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const MEDIA_OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const MEDIA_OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const MEDIA_OCI_ND_LAYER: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar";
pub const MEDIA_OCI_ND_LAYER_GZIP: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
pub const MEDIA_OCI_ND_LAYER_ZSTD: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";
pub const MEDIA_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const MEDIA_DOCKER_MANIFEST_LIST: &str =
    "application/vnd.docker.distribution.manifest.list.v2+json";
pub const MEDIA_DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// The compression a layer media type declares; `None` for an unknown media type.
    pub fn of_media_type(mt: &str) -> Option<Compression> {
        Some(match mt {
            MEDIA_DOCKER_LAYER | MEDIA_OCI_LAYER | MEDIA_OCI_ND_LAYER => Compression::None,
            MEDIA_DOCKER_LAYER_GZIP
            | MEDIA_DOCKER_FOREIGN_LAYER_GZIP
            | MEDIA_OCI_LAYER_GZIP
            | MEDIA_OCI_ND_LAYER_GZIP => Compression::Gzip,
            MEDIA_OCI_LAYER_ZSTD | MEDIA_OCI_ND_LAYER_ZSTD => Compression::Zstd,
            _ => return None,
        })
    }

    /// The OCI layer media type for this compression.
    pub fn oci_media_type(self) -> &'static str {
        match self {
            Compression::None => MEDIA_OCI_LAYER,
            Compression::Gzip => MEDIA_OCI_LAYER_GZIP,
            Compression::Zstd => MEDIA_OCI_LAYER_ZSTD,
        }
    }

    /// Recognizes compression by magic bytes. `Err` names a compression berth cannot read.
    pub fn sniff(head: &[u8]) -> Result<Compression, &'static str> {
        if head.starts_with(&[0x1f, 0x8b]) {
            Ok(Compression::Gzip)
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Ok(Compression::Zstd)
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            Err("xz")
        } else if head.starts_with(b"BZh") {
            Err("bzip2")
        } else {
            Ok(Compression::None)
        }
    }
}

/// Wraps `r` in the decompressor its first bytes call for (gzip, zstd, or none).
pub fn decompress<'a, R: BufRead + Send + 'a>(mut r: R) -> io::Result<Box<dyn Read + Send + 'a>> {
    let head = r.fill_buf()?;
    match Compression::sniff(head) {
        Ok(Compression::Gzip) => Ok(Box::new(flate2::bufread::MultiGzDecoder::new(r))),
        Ok(Compression::Zstd) => Ok(Box::new(zstd::stream::read::Decoder::with_buffer(r)?)),
        Ok(Compression::None) => Ok(Box::new(r)),
        Err(name) => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{name}-compressed data is not supported (use gzip, zstd or none)"),
        )),
    }
}
