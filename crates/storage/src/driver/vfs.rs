//! The vfs driver: plain copies, so it works on any filesystem. A layer's
//! directory is its parent's tree copied, with the layer's tar applied over
//! it (whiteouts delete); a container's `diff/` is its whole rootfs (the
//! image's tree copied, the init files written into it); nothing is mounted.

use super::LayerDriver;
use crate::copy::copy_tree;
use crate::extract::{self, Whiteouts};
use crate::layout::Layout;
use crate::write_init;
use crate::{AppliedLayer, DriverKind, Error, GraphDirs, InitFiles, Result};
use berth_digest::Digest;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub(crate) struct Vfs {
    pub layout: Layout,
}

impl LayerDriver for Vfs {
    fn kind(&self) -> DriverKind {
        DriverKind::Vfs
    }

    fn stages_independently(&self) -> bool {
        false
    }

    fn unpack_layer(
        &self,
        diff: &Path,
        id: &Digest,
        parent: Option<&Digest>,
        tar: &mut dyn Read,
    ) -> Result<AppliedLayer> {
        if let Some(p) = parent {
            if !self.layout.has_layer(p) {
                return Err(Error::MissingParent {
                    layer: id.clone(),
                    parent: p.clone(),
                });
            }
            let src = self.layout.layer_diff(p);
            copy_tree(&src, diff).map_err(|e| Error::io(&src, e))?;
        }
        extract::unpack(diff, id.short(), Whiteouts::Delete, tar).map(AppliedLayer::from)
    }

    fn image_dirs(&self, top: Option<&Digest>) -> Result<Vec<PathBuf>> {
        match top {
            Some(t) if !self.layout.has_layer(t) => Err(Error::LayerNotFound(t.clone())),
            Some(t) => Ok(vec![self.layout.layer_diff(t)]),
            None => Ok(Vec::new()),
        }
    }

    fn stacks_layers(&self) -> bool {
        false
    }

    fn prepare_container(
        &self,
        dir: &Path,
        top: Option<&Digest>,
        init: &InitFiles,
        etc_meta: Option<&fs::Metadata>,
    ) -> Result<()> {
        let diff = dir.join("diff");
        if let Some(top) = top {
            let src = self.layout.layer_diff(top);
            copy_tree(&src, &diff).map_err(|e| Error::io(&src, e))?;
        }
        write_init(&diff, init, etc_meta, false)
    }

    fn init_dir(&self, dir: &Path) -> PathBuf {
        dir.join("diff")
    }

    fn mount(&self, _name: &str, dir: &Path, _volatile: bool) -> Result<PathBuf> {
        Ok(dir.join("diff"))
    }

    fn is_mounted(&self, _dir: &Path) -> bool {
        false
    }

    fn unmount(&self, _name: &str, _dir: &Path) -> Result<()> {
        Ok(())
    }

    fn container_graph(&self, _dir: &Path, _top: Option<&Digest>) -> Result<Option<GraphDirs>> {
        Ok(None)
    }

    fn layer_graph(&self, _top: &Digest) -> Result<Option<GraphDirs>> {
        Ok(None)
    }
}
