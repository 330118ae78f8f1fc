//! The layer drivers: how layers are stacked into a container's root
//! filesystem. One trait, shaped like containerd's Snapshotter (a layer is
//! prepared from a stream, committed, stacked under a container's writable
//! layer, mounted and unmounted), implemented once per driver: `overlay`
//! (layers are shared, a container gets an upper directory) and `vfs` (each
//! layer and container is a whole copy). The store keeps what every driver
//! shares (staging areas and their atomic renames, `l/` links, the trash,
//! names, diffs and tars) and asks its driver, chosen once from the store's
//! `driver` file, for the rest.

mod overlay;
mod vfs;

pub(crate) use overlay::overlay_works;

use crate::layout::Layout;
use crate::{AppliedLayer, DriverKind, GraphDirs, InitFiles, Result};
use berth_digest::Digest;
use std::fmt;
use std::fs::Metadata;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One way of stacking layers. The store calls it with its own directories:
/// a layer's `diff/` while it is staged, a container's directory
/// (`containers/<name>/`, or its staging area while it is made).
pub trait LayerDriver: fmt::Debug + Send + Sync {
    /// Which driver this is.
    fn kind(&self) -> DriverKind;

    /// Its name, as recorded in the store's `driver` file and shown as
    /// Docker's "Storage Driver" and `GraphDriver.Name`.
    fn name(&self) -> &'static str {
        self.kind().as_str()
    }

    /// Whether a layer can be staged before its parent is in place (its
    /// directory holds only its own changes), so that an image's layers can
    /// be unpacked in parallel and committed bottom first.
    fn stages_independently(&self) -> bool;

    /// Prepares layer `id` over `parent` from its (uncompressed) tar into
    /// `diff`, an empty directory of a staging area: overlay unpacks the
    /// layer alone (whiteouts as 0/0 character devices, opaque directories
    /// as the `trusted.overlay.opaque` xattr); vfs copies the parent's tree
    /// first (the parent must be committed) and applies whiteouts as deletions.
    fn unpack_layer(
        &self,
        diff: &Path,
        id: &Digest,
        parent: Option<&Digest>,
        tar: &mut dyn Read,
    ) -> Result<AppliedLayer>;

    /// The directories that make up the image whose top layer is `top`,
    /// top first: overlay, every layer of the chain; vfs, the top layer's
    /// whole tree. Empty for an image without layers.
    fn image_dirs(&self, top: Option<&Digest>) -> Result<Vec<PathBuf>>;

    /// Whether [`image_dirs`](Self::image_dirs) are layers to stack (where
    /// whiteouts hide and opaque directories cut off what is below) rather
    /// than one whole tree; a container's writable directory is then only
    /// its changes, not its whole tree.
    fn stacks_layers(&self) -> bool;

    /// Completes a container being made in `dir` (a staging area holding
    /// `layer`, `init/` with the init files, an empty `diff/`) over the
    /// image whose top layer is `top`; `etc_meta` is the image's `/etc`,
    /// whose metadata a created `etc` keeps. Overlay makes `work/` and
    /// `merged/` and gives `init/` the image root's owner and mode; vfs
    /// copies the image's tree into `diff/` and writes the init files there.
    fn prepare_container(
        &self,
        dir: &Path,
        top: Option<&Digest>,
        init: &InitFiles,
        etc_meta: Option<&Metadata>,
    ) -> Result<()>;

    /// The directory under container directory `dir` whose `etc/` holds
    /// the init files the container starts with (overlay: `init/`; vfs: its tree).
    fn init_dir(&self, dir: &Path) -> PathBuf;

    /// Assembles the root filesystem of container `name` (directory `dir`)
    /// and returns its path; an assembled one is returned as it is. Overlay
    /// mounts `merged/` (with `volatile` if asked and the kernel has it);
    /// vfs mounts nothing: the rootfs is `diff/`.
    fn mount(&self, name: &str, dir: &Path, volatile: bool) -> Result<PathBuf>;

    /// Whether the rootfs of the container in `dir` is mounted now (vfs:
    /// never, there is nothing to mount).
    fn is_mounted(&self, dir: &Path) -> bool;

    /// Unmounts the rootfs of container `name` (directory `dir`) if it is
    /// mounted (lazily when busy).
    fn unmount(&self, name: &str, dir: &Path) -> Result<()>;

    /// Docker's `GraphDriver.Data` of the container in `dir` over the image
    /// whose top layer is `top` (None: the driver reports none, as Docker's vfs).
    fn container_graph(&self, dir: &Path, top: Option<&Digest>) -> Result<Option<GraphDirs>>;

    /// Docker's `GraphDriver.Data` of an image whose top layer is `top`.
    fn layer_graph(&self, top: &Digest) -> Result<Option<GraphDirs>>;
}

impl DriverKind {
    /// The driver of this kind for the store at `layout`.
    pub(crate) fn driver(self, layout: Layout) -> Arc<dyn LayerDriver> {
        match self {
            DriverKind::Overlay => Arc::new(overlay::Overlay { layout }),
            DriverKind::Vfs => Arc::new(vfs::Vfs { layout }),
        }
    }
}
