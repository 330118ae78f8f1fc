//! The overlay driver: a layer's directory holds its own changes (whiteouts
//! as 0/0 character devices, opaque directories marked by an xattr), a
//! container gets an init layer and an upper directory, and its rootfs is an
//! overlay mount of those over the image's layers (lower directories named
//! through the short `l/` links, so that 128+ layers fit in the options).

use super::LayerDriver;
use crate::extract::{self, Whiteouts};
use crate::layout::Layout;
use crate::{is_mounted, mkdir, random_name};
use crate::{AppliedLayer, DriverKind, Error, GraphDirs, InitFiles, Result};
use berth_digest::Digest;
use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub(crate) struct Overlay {
    pub layout: Layout,
}

impl LayerDriver for Overlay {
    fn kind(&self) -> DriverKind {
        DriverKind::Overlay
    }

    fn stages_independently(&self) -> bool {
        true
    }

    fn unpack_layer(
        &self,
        diff: &Path,
        id: &Digest,
        _parent: Option<&Digest>,
        tar: &mut dyn Read,
    ) -> Result<AppliedLayer> {
        extract::unpack(diff, id.short(), Whiteouts::Overlay, tar).map(AppliedLayer::from)
    }

    fn image_dirs(&self, top: Option<&Digest>) -> Result<Vec<PathBuf>> {
        match top {
            Some(top) => self.layout.chain_diffs(top),
            None => Ok(Vec::new()),
        }
    }

    fn stacks_layers(&self) -> bool {
        true
    }

    fn prepare_container(
        &self,
        dir: &Path,
        top: Option<&Digest>,
        _init: &InitFiles,
        _etc_meta: Option<&fs::Metadata>,
    ) -> Result<()> {
        // A skeleton from the pool has them (see crate::fill_pool).
        for (d, mode) in [("work", 0o700), ("merged", 0o755)] {
            let p = dir.join(d);
            if !p.is_dir() {
                mkdir(&p, mode)?;
            }
        }
        // The root directory's own metadata shows through from the top lower layer.
        if let Some(top) = top {
            let init_dir = dir.join("init");
            let src = self.layout.layer_diff(top);
            let m = fs::symlink_metadata(&src).map_err(|e| Error::io(&src, e))?;
            fs::set_permissions(&init_dir, fs::Permissions::from_mode(m.mode() & 0o7777))
                .map_err(|e| Error::io(&init_dir, e))?;
            std::os::unix::fs::chown(&init_dir, Some(m.uid()), Some(m.gid()))
                .map_err(|e| Error::io(&init_dir, e))?;
        }
        Ok(())
    }

    fn init_dir(&self, dir: &Path) -> PathBuf {
        dir.join("init")
    }

    fn mount(&self, name: &str, dir: &Path, volatile: bool) -> Result<PathBuf> {
        let merged = dir.join("merged");
        if is_mounted(&merged) {
            return Ok(merged);
        }
        // Each directory relative to the store root.
        let mut lower = vec![format!("containers/{name}/init")];
        if let Some(top) = crate::container_top(dir)? {
            for l in self.layout.layer_chain(&top)? {
                lower.push(format!("l/{}", self.layout.layer_link(&l)?));
            }
        }
        let options = |base: &str| {
            let lower: Vec<String> = lower.iter().map(|d| format!("{base}{d}")).collect();
            let mut opts = format!(
                "lowerdir={},upperdir={base}containers/{name}/diff,workdir={base}containers/{name}/work",
                lower.join(":")
            );
            if crate::node::userxattr() {
                opts.push_str(",userxattr");
            }
            opts
        };
        let root = self.layout.root.clone();
        // With absolute paths when they fit in the page the kernel reads the
        // options into (with room for `volatile`) and the root's path needs
        // no escaping: mounted from this thread.
        let root_text = root.to_str().filter(|r| !r.contains([',', ':', '\\']));
        let absolute = root_text
            .map(|r| options(&format!("{r}/")))
            .filter(|o| o.len() < 4000);
        let res = if let Some(absolute) = absolute {
            mount_overlay(&merged, &absolute, volatile).map_err(io::Error::from)
        } else {
            // Paths relative to the store root keep the options short enough
            // for 128 layers. The working directory is process-wide, so the
            // mount is made from a thread that unshared it.
            let opts = options("");
            let target = merged.clone();
            std::thread::scope(|s| {
                s.spawn(move || -> io::Result<()> {
                    nix::sched::unshare(nix::sched::CloneFlags::CLONE_FS)?;
                    nix::unistd::chdir(&root)?;
                    Ok(mount_overlay(&target, &opts, volatile)?)
                })
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("mount thread panicked")))
            })
        };
        match res {
            Ok(()) => Ok(merged),
            // Mounted meanwhile by another process.
            Err(_) if is_mounted(&merged) => Ok(merged),
            Err(source) => Err(Error::Mount {
                name: name.to_owned(),
                path: merged,
                source,
            }),
        }
    }

    fn is_mounted(&self, dir: &Path) -> bool {
        is_mounted(&dir.join("merged"))
    }

    fn unmount(&self, name: &str, dir: &Path) -> Result<()> {
        let merged = dir.join("merged");
        let err = |e: Errno| Error::Mount {
            name: name.to_owned(),
            path: merged.clone(),
            source: e.into(),
        };
        while is_mounted(&merged) {
            match nix::mount::umount2(&merged, MntFlags::empty()) {
                Ok(()) | Err(Errno::EINVAL) => {}
                Err(Errno::EBUSY) => {
                    nix::mount::umount2(&merged, MntFlags::MNT_DETACH).map_err(err)?
                }
                Err(e) => return Err(err(e)),
            }
        }
        Ok(())
    }

    fn container_graph(&self, dir: &Path, top: Option<&Digest>) -> Result<Option<GraphDirs>> {
        let mut lower = vec![dir.join("init")];
        lower.extend(self.image_dirs(top)?);
        Ok(Some(GraphDirs {
            lower,
            merged: dir.join("merged"),
            upper: dir.join("diff"),
            work: dir.join("work"),
        }))
    }

    fn layer_graph(&self, top: &Digest) -> Result<Option<GraphDirs>> {
        let dir = self.layout.layer_dir(top);
        let lower = self.layout.chain_diffs(top)?.into_iter().skip(1).collect();
        Ok(Some(GraphDirs {
            lower,
            merged: dir.join("merged"),
            upper: dir.join("diff"),
            work: dir.join("work"),
        }))
    }
}

/// Tries an overlay mount (with a whiteout in its upper directory) in a
/// scratch directory under `root`: whether the overlay driver works there.
/// The filesystem must keep overlay's opaque attribute too (`trusted.*`,
/// rootless `user.*`: ramfs keeps none, yet overlay mounts on it), or
/// no image with an opaque directory could be unpacked.
pub(crate) fn overlay_works(root: &Path) -> bool {
    let dir = root.join(format!(".probe-{}", random_name(10)));
    let ok = (|| -> io::Result<bool> {
        for d in ["lower1", "lower2", "upper/opaque", "work", "merged"] {
            fs::create_dir_all(dir.join(d))?;
        }
        if xattr::set(dir.join("upper/opaque"), crate::node::opaque_xattr(), b"y").is_err() {
            return Ok(false);
        }
        let merged = dir.join("merged");
        let mut opts = format!(
            "lowerdir={}:{},upperdir={},workdir={}",
            dir.join("lower1").display(),
            dir.join("lower2").display(),
            dir.join("upper").display(),
            dir.join("work").display()
        );
        if crate::node::userxattr() {
            opts.push_str(",userxattr");
        }
        if nix::mount::mount(
            Some("overlay"),
            &merged,
            Some("overlay"),
            MsFlags::empty(),
            Some(opts.as_str()),
        )
        .is_err()
        {
            return Ok(false);
        }
        // Whiteouts must work in the upper dir too.
        let w = nix::sys::stat::mknod(
            &dir.join("upper/wh"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .is_ok();
        let u = nix::mount::umount2(&merged, MntFlags::empty()).is_ok();
        Ok(w && u)
    })()
    .unwrap_or(false);
    if is_mounted(&dir.join("merged")) {
        let _ = nix::mount::umount2(&dir.join("merged"), MntFlags::MNT_DETACH);
    }
    let _ = fs::remove_dir_all(&dir);
    ok
}

/// Mounts overlay on `target` with `opts`; with `volatile`, first with
/// overlay's `volatile` option (refused by kernels before 5.10).
fn mount_overlay(target: &Path, opts: &str, volatile: bool) -> nix::Result<()> {
    let mount = |opts: &str| {
        let _t = berth_trace::span("storage", "mount overlay")
            .detail(|| format!("{} ({opts})", target.display()));
        nix::mount::mount(
            Some("overlay"),
            target,
            Some("overlay"),
            MsFlags::empty(),
            Some(opts),
        )
    };
    if volatile && mount(&format!("{opts},volatile")).is_ok() {
        return Ok(());
    }
    mount(opts)
}
