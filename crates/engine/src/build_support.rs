//! What `berth build` (crates/builder) needs from the engine: an image's
//! config, running one RUN step in a container, a scratch work area over an
//! image for COPY/ADD/WORKDIR, committing either as a new image whose config
//! the builder wrote, and throwing away what a failed build made.

use crate::containers::{ContainerId, Intent};
use crate::error::{Context, EngineError, Result};
use crate::lifecycle::CreateOptions;
use crate::spec::RunOptions;
use crate::Engine;
use berth_digest::Digest;
use berth_image::db::chain_ids;
use berth_image::{NewImage, NewLayer};
use std::io::Read;
use std::path::{Path, PathBuf};

/// The lease prefix of a build's work areas and journal.
const BUILD_LEASE: &str = "build";

/// Where a RUN step's processes reach the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BuildNetwork {
    /// The default bridge, as Docker's builder.
    #[default]
    Bridge,
    /// Only a loopback interface of its own.
    None,
    /// The host's network namespace.
    Host,
}

impl std::str::FromStr for BuildNetwork {
    type Err = EngineError;
    fn from_str(s: &str) -> Result<BuildNetwork> {
        match s {
            "bridge" | "default" => Ok(BuildNetwork::Bridge),
            "none" => Ok(BuildNetwork::None),
            "host" => Ok(BuildNetwork::Host),
            _ => Err(EngineError::Invalid(format!(
                "network mode {s:?} is not supported for builds: use bridge, none or host"
            ))),
        }
    }
}

/// One RUN step.
#[derive(Debug)]
pub struct BuildRun {
    /// The image the step runs on.
    pub image: Digest,
    /// The full command (the shell form already wrapped in the SHELL).
    pub argv: Vec<String>,
    /// Extra environment (build arguments), under the image's Env.
    pub env: Vec<String>,
    pub network: BuildNetwork,
    /// Where the output goes; None: berth's stdout and stderr.
    pub output: Option<std::fs::File>,
    /// The rest of the step's host config: `build --add-host`, `--ulimit`,
    /// `-m`, and RUN --mount's mounts (bind mounts, so nothing under them
    /// reaches the step's layer). Its `network` is replaced by `network`.
    pub host: crate::options::HostConfig,
}

/// A storage-only container over an image (no process ever runs in it),
/// mounted: files are written into it, then its diff is committed.
/// Dropping it unmounts and removes it.
pub struct Workspace<'a> {
    engine: &'a Engine,
    name: String,
    rootfs: PathBuf,
}

impl Workspace<'_> {
    /// The name to commit it by ([`Engine::build_commit`]).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The mounted root filesystem (read it with symlinks resolved inside).
    pub fn rootfs(&self) -> &Path {
        &self.rootfs
    }

    /// Unpacks `tar` into directory `dir` (inside the rootfs; it must
    /// exist), with the safety of a layer: nothing lands outside.
    pub fn copy_in(&self, dir: &Path, tar: impl Read) -> Result<()> {
        Ok(self.engine.layers.copy_in(&self.name, dir, &[], tar)?)
    }
}

impl Drop for Workspace<'_> {
    fn drop(&mut self) {
        let _ = self.engine.layers.unmount_container(&self.name);
        let _ = self.engine.layers.remove_container(&self.name);
        // A long build makes many: do not keep them all until it ends.
        self.engine
            .layers
            .dispose(self.engine.inline_delete_budget(), |paths| {
                crate::spawn_deleter(paths, None)
            });
    }
}

/// A secret's private copy for one RUN step (`RUN --mount=type=secret`),
/// named by its owner (berth-lease) in `RUN/build-secrets/`: removed when
/// dropped, or by the next command when its build was killed.
pub struct SecretFile {
    path: PathBuf,
}

impl SecretFile {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SecretFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The lease prefix of secret files.
const SECRET_LEASE: &str = "secret";

/// What [`Engine::build_commit`] made.
#[derive(Debug, Clone)]
pub struct Committed {
    pub id: Digest,
    /// The image did not exist before (a failed build removes those).
    pub new: bool,
    /// A layer was added (false: the config changed only).
    pub layer: bool,
}

/// The name prefix of a build's work area in the container store.
pub(crate) const WORKSPACE: &str = "build";

impl Engine {
    /// The ID and config JSON of the image `name` (a reference or an ID).
    pub fn image_config(&self, name: &str) -> Result<(Digest, Vec<u8>)> {
        let img = self.images.resolve(name)?;
        Ok((img.id, img.config_json))
    }

    /// Whether image `id` is registered.
    pub fn image_exists(&self, id: &Digest) -> bool {
        self.images.get(id).is_ok()
    }

    /// Creates a container for a RUN step and runs it in the foreground:
    /// returns the container (to commit, then remove with
    /// [`Engine::build_remove_container`]) and its exit status.
    /// `on_created` is told the container's ID before it starts.
    pub fn build_run(
        &self,
        r: BuildRun,
        on_created: &mut dyn FnMut(&ContainerId),
    ) -> Result<(ContainerId, i32)> {
        let opts = CreateOptions {
            name: None,
            image: r.image.to_string(),
            run: RunOptions {
                cmd: r.argv,
                entrypoint: Some(Vec::new()),
                env: r.env,
                host: crate::options::HostConfig {
                    network: match r.network {
                        BuildNetwork::Bridge => String::new(),
                        BuildNetwork::None => "none".into(),
                        BuildNetwork::Host => "host".into(),
                    },
                    ..r.host
                },
                ..Default::default()
            },
            auto_remove: false,
            interactive: false,
        };
        let mount_points: Vec<String> = opts
            .run
            .host
            .mounts
            .iter()
            .map(|m| m.destination.clone())
            .collect();
        let id = self.create_owned(&opts, true)?;
        on_created(&id);
        let res = (|| {
            let c = self.containers.resolve(id.as_str())?;
            let rootfs = self.layers.mount_container(id.as_str())?;
            // The mount points the runtime makes for the step's mounts are
            // not the step's: what it creates is removed before the commit.
            let stubs = missing_mount_points(&rootfs, &mount_points);
            let res = self
                .write_bundle(&c, &rootfs)
                .and_then(|dir| self.run_bundle(&c, &dir, None, r.output));
            self.network_stop(&c);
            remove_mount_stubs(&rootfs, &stubs);
            let _ = self.layers.unmount_container(id.as_str());
            res
        })();
        match res {
            Ok(code) => Ok((id, code)),
            Err(e) => {
                let _ = self.build_remove_container(&id);
                Err(e)
            }
        }
    }

    fn build_secrets_dir(&self) -> PathBuf {
        self.run.join("build-secrets")
    }

    /// Writes a secret for a RUN step's mount: `data`, owned `uid`:`gid`
    /// with `mode`, in a directory only root reaches.
    pub fn build_secret_file(
        &self,
        data: &[u8],
        uid: u32,
        gid: u32,
        mode: u32,
    ) -> Result<SecretFile> {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let dir = self.build_secrets_dir();
        std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)))
            .context(|| format!("create {}", dir.display()))?;
        let path = dir.join(self.build_owner()?.name(SECRET_LEASE));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .context(|| format!("create {}", path.display()))?;
        let file = SecretFile { path };
        std::io::Write::write_all(&mut f, data)
            .and_then(|()| std::os::unix::fs::fchown(&f, Some(uid), Some(gid)))
            .and_then(|()| f.set_permissions(std::fs::Permissions::from_mode(mode & 0o7777)))
            .context(|| format!("write {}", file.path.display()))?;
        Ok(file)
    }

    /// Where RUN --mount=type=cache directories are kept between builds
    /// (one per cache id).
    pub fn build_cache_dir(&self) -> PathBuf {
        self.root.join("build-cache")
    }

    /// How many cache mounts' directories there are and the bytes they
    /// hold (`system df`'s Build Cache).
    pub fn build_cache_usage(&self) -> (usize, u64) {
        let dir = self.build_cache_dir();
        let count = std::fs::read_dir(&dir).map(|rd| rd.count()).unwrap_or(0);
        (count, berth_lease::disk_usage(&dir))
    }

    /// `builder prune` (and `system prune`): removes the cache mounts'
    /// directories. Returns the bytes they held.
    pub fn build_cache_prune(&self) -> Result<u64> {
        let dir = self.build_cache_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e).context(|| format!("read {}", dir.display())),
        };
        let mut bytes = 0;
        for e in entries {
            let path = e.context(|| format!("read {}", dir.display()))?.path();
            let size = berth_lease::disk_usage(&path);
            std::fs::remove_dir_all(&path).context(|| format!("remove {}", path.display()))?;
            bytes += size;
        }
        Ok(bytes)
    }

    /// The whole filesystem of image `id` as a tar (`build --output`).
    pub fn build_export(&self, id: &Digest, out: impl std::io::Write) -> Result<()> {
        let ws = self.build_workspace(Some(id))?;
        Ok(self.layers.export(ws.name(), out)?)
    }

    /// `build --output type=tar,dest=FILE`: no half archive is left.
    pub fn build_export_file(&self, id: &Digest, path: &Path) -> Result<()> {
        crate::write_file_atomically(path, |w| self.build_export(id, w))
    }

    /// The signal berth received (and passed on to the container) while
    /// the last RUN step ran, if any; taking it clears it.
    pub fn take_forwarded_signal(&self) -> Option<i32> {
        let s = crate::lifecycle::FORWARDED.swap(0, std::sync::atomic::Ordering::Relaxed);
        (s != 0).then_some(s)
    }

    /// Removes a RUN step's container and its anonymous volumes.
    pub fn build_remove_container(&self, id: &ContainerId) -> Result<()> {
        self.rm(id.as_str(), true, true)
    }

    /// A mounted work area over `image` (None: empty, as `FROM scratch`).
    pub fn build_workspace(&self, image: Option<&Digest>) -> Result<Workspace<'_>> {
        let top = match image {
            Some(id) => self.images.get(id)?.top_chain_id().cloned(),
            None => None,
        };
        // The name carries its owner (berth-lease): a work area whose
        // build is gone is garbage at once, whatever its age.
        let owner =
            berth_lease::Owner::current().map_err(|e| crate::EngineError::Other(e.to_string()))?;
        let name = owner.name(WORKSPACE);
        let init = berth_storage::InitFiles::default();
        self.layers.create_container(&name, top.as_ref(), &init)?;
        let mut ws = Workspace {
            engine: self,
            name,
            rootfs: PathBuf::new(),
        };
        ws.rootfs = self.layers.mount_container(&ws.name)?;
        Ok(ws)
    }

    /// Registers a new image on top of `parent`: `config` is its whole
    /// config as the builder made it (its `rootfs` is filled in here), with
    /// `history` appended. With `work` (a RUN container's ID or a
    /// [`Workspace`] name) its changes become a new layer, tar mtimes
    /// clamped to `clamp_mtime`; with `skip_empty` a diff without changes
    /// adds no layer. `history` is marked `empty_layer` when none is added.
    pub fn build_commit(
        &self,
        parent: Option<&Digest>,
        work: Option<&str>,
        config: serde_json::Value,
        mut history: serde_json::Value,
        clamp_mtime: Option<u64>,
        skip_empty: bool,
    ) -> Result<Committed> {
        let parent_img = parent.map(|p| self.images.get(p)).transpose()?;
        let mut layers = parent_layers(parent_img.as_ref());
        let work = match work {
            Some(w) if skip_empty && self.layers.changes(w)?.is_empty() => None,
            w => w,
        };
        if let Some(w) = work {
            let top = parent_img.as_ref().and_then(|i| i.top_chain_id().cloned());
            let layer = self.commit_diff(w, top.as_ref(), &layers, clamp_mtime)?;
            layers.push(layer);
        }
        if work.is_none() {
            history["empty_layer"] = true.into();
        }
        let layer = work.is_some();
        self.build_register(parent, layers, config, history, layer)
    }

    /// `--cache-from`: registers the image a step of `source`'s build made
    /// over `parent` (as Docker's classic builder restores it): `parent`'s
    /// layers plus `source`'s layer number `layer` (None: none), the
    /// builder's `config`, `history` (`source`'s entry for the step).
    pub fn build_commit_from(
        &self,
        parent: Option<&Digest>,
        source: &Digest,
        layer: Option<usize>,
        config: serde_json::Value,
        history: serde_json::Value,
    ) -> Result<Committed> {
        let parent_img = parent.map(|p| self.images.get(p)).transpose()?;
        let mut layers = parent_layers(parent_img.as_ref());
        if let Some(i) = layer {
            let src = self.images.get(source)?;
            let l = src.layers.get(i).ok_or_else(|| {
                EngineError::Other(format!("image {source} has no layer {}", i + 1))
            })?;
            layers.push(NewLayer {
                diff_id: l.diff_id.clone(),
                blob_digest: l.blob_digest.clone(),
                media_type: l.media_type.clone(),
                size: l.size,
            });
        }
        self.build_register(parent, layers, config, history, layer.is_some())
    }

    fn build_register(
        &self,
        parent: Option<&Digest>,
        layers: Vec<NewLayer>,
        mut config: serde_json::Value,
        history: serde_json::Value,
        layer: bool,
    ) -> Result<Committed> {
        let diff_ids: Vec<String> = layers.iter().map(|l| l.diff_id.to_string()).collect();
        config["rootfs"] = serde_json::json!({"type": "layers", "diff_ids": diff_ids});
        match config.get_mut("history").and_then(|h| h.as_array_mut()) {
            Some(h) => h.push(history),
            None => config["history"] = serde_json::json!([history]),
        }
        let config_json =
            serde_json::to_vec(&config).map_err(|e| EngineError::Other(e.to_string()))?;
        let id = Digest::of(&config_json);
        let new = !self.image_exists(&id);
        if new {
            // Noted before it exists: a build killed from here on has it
            // removed by the next command (unless tagged or used by then).
            self.build_journal_note(&id)?;
        }
        let img = NewImage {
            config_json,
            manifest: None,
            layers,
            parent: parent.cloned(),
            tags: Vec::new(),
            digest_refs: Vec::new(),
        };
        let id = self.images.add_image(&img)?;
        Ok(Committed { id, new, layer })
    }

    /// The diff of `work` into the blob store and unpacked as a layer over
    /// `top` (as `commit` does it).
    fn commit_diff(
        &self,
        work: &str,
        top: Option<&Digest>,
        below: &[NewLayer],
        clamp_mtime: Option<u64>,
    ) -> Result<NewLayer> {
        let applied = self.diff_into_blobs(work, clamp_mtime, "build")?;
        let mut diff_ids: Vec<Digest> = below.iter().map(|l| l.diff_id.clone()).collect();
        diff_ids.push(applied.diff_id.clone());
        let chain = chain_ids(&diff_ids)
            .pop()
            .ok_or_else(|| EngineError::Other("empty chain".into()))?;
        if !self.layers.has_layer(&chain) {
            self.layers
                .apply_layer(&chain, top, self.blobs.open(&applied.diff_id)?)?;
        }
        Ok(NewLayer {
            diff_id: applied.diff_id.clone(),
            blob_digest: applied.diff_id,
            media_type: "application/vnd.oci.image.layer.v1.tar".into(),
            size: applied.size,
        })
    }

    /// Removes images a failed build made (newest first) and what only
    /// they used. Images that gained tags or children meanwhile stay.
    pub fn build_discard(&self, ids: &[Digest]) {
        let in_use = self.in_use();
        for id in ids.iter().rev() {
            if let Ok(r) = self.images.remove(&id.to_string(), false, &in_use) {
                self.collect(&r);
            }
        }
    }

    fn build_owner(&self) -> Result<berth_lease::Owner> {
        berth_lease::Owner::current().map_err(|e| EngineError::Other(e.to_string()))
    }

    /// Where running builds keep their journals (`build-<owner>` files:
    /// the images each has made, one `image <id>` line each).
    fn builds_dir(&self) -> PathBuf {
        self.root.join("builds")
    }

    /// Starts a build's journal: from here until [`Engine::build_end`],
    /// what the build makes (work areas, RUN containers, images) is owned by
    /// this process, and removed by the next berth command once it is gone
    /// (killed), as [`Engine::sweep_dead_builds`] does.
    pub fn build_begin(&self) -> Result<()> {
        let dir = self.builds_dir();
        std::fs::create_dir_all(&dir).context(|| format!("create {}", dir.display()))?;
        let path = dir.join(self.build_owner()?.name(BUILD_LEASE));
        std::fs::write(&path, b"").context(|| format!("write {}", path.display()))?;
        if let Ok(mut j) = self.build_journal.lock() {
            *j = Some(path);
        }
        Ok(())
    }

    /// Ends the build's journal: what it made is the user's now (or was
    /// already discarded by the build itself).
    pub fn build_end(&self) {
        let path = self.build_journal.lock().ok().and_then(|mut j| j.take());
        if let Some(p) = path {
            let _ = std::fs::remove_file(p);
        }
    }

    fn build_journal_note(&self, id: &Digest) -> Result<()> {
        let path = self.build_journal.lock().ok().and_then(|j| j.clone());
        let Some(path) = path else { return Ok(()) };
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .context(|| format!("open {}", path.display()))?;
        std::io::Write::write_all(&mut f, format!("image {id}\n").as_bytes())
            .context(|| format!("write {}", path.display()))
    }

    /// What builds killed before their end left: their RUN containers
    /// (stopped and removed), work areas (unmounted and removed) and the
    /// images they made that nothing tagged or used since. Cheap when there
    /// is nothing to do (one directory listing): run by every command.
    pub fn sweep_dead_builds(&self) {
        let Ok(dead) = berth_lease::orphans(&self.builds_dir(), BUILD_LEASE) else {
            return;
        };
        if dead.is_empty() {
            return;
        }
        // Secrets whose build was killed during its RUN step.
        for f in berth_lease::orphans(&self.build_secrets_dir(), SECRET_LEASE).unwrap_or_default() {
            let _ = std::fs::remove_file(f);
        }
        let Ok(me) = self.build_owner() else { return };
        for journal in dead {
            // Taken over (renamed to a name of this process): a concurrent
            // sweeper skips it, and if this one is killed the next takes it.
            let Ok(mine) = me.rename_to(&journal, BUILD_LEASE) else {
                continue;
            };
            for c in self.containers.list().unwrap_or_default() {
                if let Some(Intent::Build(o)) = &c.intent {
                    if !o.is_alive() {
                        let _ = self.finish_removal(&c);
                    }
                }
            }
            self.remove_stale_workspaces(std::time::Duration::from_secs(3600));
            let ids: Vec<Digest> = std::fs::read_to_string(&mine)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.strip_prefix("image "))
                .filter_map(|d| d.parse().ok())
                .collect();
            self.build_discard(&ids);
            let _ = std::fs::remove_file(&mine);
        }
    }

    /// Work areas that a killed build left behind (whose owner is gone; an
    /// older berth's `build-<id>` names when older than `min_age`): their
    /// names.
    pub(crate) fn stale_workspaces(&self, min_age: std::time::Duration) -> Vec<String> {
        let Ok(names) = self.layers.containers() else {
            return Vec::new();
        };
        let dir = self.layers.root().join("containers");
        names
            .into_iter()
            .filter(|n| n.starts_with("build-"))
            .filter(|n| match berth_lease::owner_of(n, WORKSPACE) {
                Some(owner) => !owner.is_alive(),
                None => std::fs::symlink_metadata(dir.join(n))
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age >= min_age),
            })
            .collect()
    }

    /// Unmounts and removes the work areas [`Engine::stale_workspaces`]
    /// finds. Returns the bytes they held (measured before removal).
    pub(crate) fn remove_stale_workspaces(&self, min_age: std::time::Duration) -> u64 {
        let dir = self.layers.root().join("containers");
        let mut bytes = 0;
        for n in self.stale_workspaces(min_age) {
            let _ = self.layers.unmount_container(&n);
            let size = berth_lease::disk_usage(&dir.join(&n));
            if self.layers.remove_container(&n).is_ok() {
                bytes += size;
            }
        }
        bytes
    }

    /// After `rmi` deleted an image: its parents that are untagged, have
    /// no other child and no container go too, as Docker's `rmi` prunes
    /// (a build's intermediate images, above all).
    pub(crate) fn prune_parents(&self, mut parent: Option<Digest>) -> Vec<crate::RmiEvent> {
        let mut events = Vec::new();
        let in_use = self.in_use();
        while let Some(p) = parent {
            let Ok(img) = self.images.get(&p) else {
                break;
            };
            let has_children = self.images.parents().map_or(true, |s| s.contains(&p));
            if !img.repo_tags.is_empty() || has_children || in_use(&p).is_some() {
                break;
            }
            match self.images.remove(&p.to_string(), false, &in_use) {
                Ok(r) => events.extend(self.collect(&r).0),
                Err(_) => break,
            }
            parent = img.parent;
        }
        events
    }
}

/// The mount points (and their parent directories) under `rootfs` that do
/// not exist yet, outermost first: the runtime creates them for the
/// step's mounts. Read without following symlinks.
fn missing_mount_points(rootfs: &Path, dests: &[String]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for d in dests {
        let mut p = PathBuf::new();
        for c in Path::new(d).components() {
            if let std::path::Component::Normal(n) = c {
                p.push(n);
                let full = rootfs.join(&p);
                if std::fs::symlink_metadata(&full).is_err() && !out.contains(&p) {
                    out.push(p.clone());
                }
            }
        }
    }
    out
}

/// Removes the mount points [`missing_mount_points`] found, innermost
/// first, where they are still what the runtime made: an empty directory
/// or an empty file (what the step put there stays).
fn remove_mount_stubs(rootfs: &Path, stubs: &[PathBuf]) {
    for p in stubs.iter().rev() {
        // A step may have made a parent a symlink (out of the rootfs, once
        // resolved here): such a path is left alone.
        let through_link = p.ancestors().skip(1).any(|a| {
            !a.as_os_str().is_empty()
                && std::fs::symlink_metadata(rootfs.join(a)).map_or(true, |m| m.is_symlink())
        });
        if through_link {
            continue;
        }
        let full = rootfs.join(p);
        match std::fs::symlink_metadata(&full) {
            Ok(m) if m.is_dir() => {
                let _ = std::fs::remove_dir(&full);
            }
            Ok(m) if m.is_file() && m.len() == 0 => {
                let _ = std::fs::remove_file(&full);
            }
            _ => {}
        }
    }
}

/// The layers of `parent` (none without one), as the start of a new image's.
fn parent_layers(parent: Option<&berth_image::Image>) -> Vec<NewLayer> {
    parent
        .iter()
        .flat_map(|img| img.layers.iter())
        .map(|l| NewLayer {
            diff_id: l.diff_id.clone(),
            blob_digest: l.blob_digest.clone(),
            media_type: l.media_type.clone(),
            size: l.size,
        })
        .collect()
}
