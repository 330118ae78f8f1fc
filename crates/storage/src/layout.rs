//! Where things are under the store root (the layout the crate docs draw),
//! shared by the store and its drivers.

use crate::{Error, Result};
use berth_digest::Digest;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The store's directories: `layers/<id hex>/` (diff, link, parent, size),
/// `l/<short>`, `containers/<name>/`.
#[derive(Clone, Debug)]
pub(crate) struct Layout {
    pub root: PathBuf,
}

impl Layout {
    pub fn layer_dir(&self, id: &Digest) -> PathBuf {
        self.root.join("layers").join(id.hex())
    }

    /// The unpacked directory of layer `id`.
    pub fn layer_diff(&self, id: &Digest) -> PathBuf {
        self.layer_dir(id).join("diff")
    }

    pub fn container_dir(&self, name: &str) -> PathBuf {
        self.root.join("containers").join(name)
    }

    pub fn has_layer(&self, id: &Digest) -> bool {
        self.layer_diff(id).is_dir()
    }

    /// The short name of layer `id`'s symlink under `l/`.
    pub fn layer_link(&self, id: &Digest) -> Result<String> {
        read_trimmed(&self.layer_dir(id).join("link"))
    }

    /// The chain `id`, parent, grandparent... down to the base layer.
    pub fn layer_chain(&self, id: &Digest) -> Result<Vec<Digest>> {
        let mut chain = vec![id.clone()];
        let mut cur = id.clone();
        loop {
            if !self.has_layer(&cur) {
                return Err(Error::LayerNotFound(cur));
            }
            let p = self.layer_dir(&cur).join("parent");
            match fs::read_to_string(&p) {
                Ok(s) => {
                    let parent = Digest::from_hex(s.trim()).map_err(|e| {
                        Error::io(&p, io::Error::new(io::ErrorKind::InvalidData, e))
                    })?;
                    if chain.contains(&parent) || chain.len() > 1000 {
                        return Err(Error::io(
                            &p,
                            io::Error::new(io::ErrorKind::InvalidData, "layer parents form a loop"),
                        ));
                    }
                    chain.push(parent.clone());
                    cur = parent;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(chain),
                Err(e) => return Err(Error::io(&p, e)),
            }
        }
    }

    /// The diff directories of the chain below (and including) `top`, top first.
    pub fn chain_diffs(&self, top: &Digest) -> Result<Vec<PathBuf>> {
        Ok(self
            .layer_chain(top)?
            .iter()
            .map(|l| self.layer_diff(l))
            .collect())
    }
}

pub(crate) fn read_trimmed(p: &Path) -> Result<String> {
    fs::read_to_string(p)
        .map(|s| s.trim().to_owned())
        .map_err(|e| Error::io(p, e))
}
