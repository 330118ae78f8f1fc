//! `berth system check [--repair] [--force] [--quick] [--max AGE]`: finds what
//! a crash (a SIGKILL at any moment, a reboot) can leave, as podman 5's
//! `system check` does for its storage, and with `--repair` mends it.
//!
//! Each problem is one line. Repairs: leftovers (staging areas, trash,
//! temporary files, dangling links, unregistered layers older than `--max`,
//! writable layers without a record, mounts of nothing) are removed; a
//! running container whose monitor is gone is cleaned up as exited; a
//! container record whose storage is gone is removed (as podman removes a
//! container whose layer is damaged); an image whose layer or blob is
//! missing or corrupt is removed, unless containers use it (`--force`:
//! those containers are removed too).

use crate::containers::{Container, State};
use crate::error::Result;
use crate::Engine;
use berth_digest::Digest;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What `system check` looks at and may do.
#[derive(Clone, Debug)]
pub struct CheckOptions {
    /// Mend what is found.
    pub repair: bool,
    /// With `repair`: also remove containers that use a damaged image.
    pub force: bool,
    /// Skip re-hashing every blob.
    pub quick: bool,
    /// A layer no image names is taken for a killed load's when older than this.
    pub max_age: Duration,
}

impl Default for CheckOptions {
    fn default() -> CheckOptions {
        CheckOptions {
            repair: false,
            force: false,
            quick: false,
            max_age: Duration::from_secs(3600),
        }
    }
}

/// The kinds of damage a check finds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ProblemKind {
    /// A staging area, trash entry or temporary file whose owner is gone.
    Leftover,
    /// An `l/` symlink whose layer never came.
    DanglingLink,
    /// A layer directory that no image record names.
    UnreferencedLayer,
    /// An image whose layer directory is missing.
    MissingLayer,
    /// An image whose blob is missing.
    MissingBlob,
    /// An image whose blob's content does not match its digest.
    CorruptBlob,
    /// A container record whose writable layer is gone.
    ContainerWithoutStorage,
    /// A writable layer (or a build's work area) without a container.
    StorageWithoutContainer,
    /// A mount under the root that belongs to no container.
    OrphanMount,
    /// A container recorded as running whose monitor is gone.
    MonitorGone,
    /// A network endpoint (address, veth, namespace) of no container.
    StaleEndpoint,
    /// A cgroup of a container that does not run.
    OrphanCgroup,
}

/// One thing found, and whether it was mended.
#[derive(Clone, Debug)]
pub struct Problem {
    pub kind: ProblemKind,
    /// One line, naming the thing.
    pub message: String,
    /// Disk it holds (0 when not measured).
    pub bytes: u64,
    pub repaired: bool,
    /// Why it was left as it is (with `--repair`).
    pub not_repaired: Option<String>,
}

/// What a check found.
#[derive(Clone, Debug, Default)]
pub struct CheckReport {
    pub problems: Vec<Problem>,
}

impl CheckReport {
    /// Problems still there after the check.
    pub fn remaining(&self) -> usize {
        self.problems.iter().filter(|p| !p.repaired).count()
    }

    /// Bytes freed by the repairs.
    pub fn reclaimed(&self) -> u64 {
        self.problems
            .iter()
            .filter(|p| p.repaired)
            .map(|p| p.bytes)
            .sum()
    }

    fn add(&mut self, kind: ProblemKind, message: String, bytes: u64) -> &mut Problem {
        self.problems.push(Problem {
            kind,
            message,
            bytes,
            repaired: false,
            not_repaired: None,
        });
        let last = self.problems.len() - 1;
        &mut self.problems[last]
    }
}

fn note(p: &mut Problem, r: Result<()>) {
    match r {
        Ok(()) => p.repaired = true,
        Err(e) => p.not_repaired = Some(e.to_string()),
    }
}

fn rel<'a>(root: &Path, p: &'a Path) -> std::borrow::Cow<'a, str> {
    match p.strip_prefix(root) {
        Ok(r) => std::borrow::Cow::Owned(r.display().to_string()),
        Err(_) => p.to_string_lossy(),
    }
}

/// Mount points listed in /proc/self/mountinfo (octal escapes undone).
fn mount_points() -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(unescape(m)))
        .collect()
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            let v = b[i + 1..i + 4]
                .iter()
                .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Engine {
    /// `berth system check`.
    pub fn system_check(&self, o: &CheckOptions) -> Result<CheckReport> {
        let mut r = CheckReport::default();
        let records = self.containers.list()?;
        self.check_monitors(o, &records, &mut r);
        // Records again: repairs above may have changed states.
        let records = self.containers.list()?;
        self.check_mounts(o, &records, &mut r);
        self.check_cgroups(o, &records, &mut r);
        self.check_container_storage(o, &records, &mut r)?;
        self.check_endpoints(o, &mut r);
        self.check_images(o, &mut r)?;
        self.check_layers(o, &mut r)?;
        self.check_leftovers(o, &mut r)?;
        Ok(r)
    }

    fn check_monitors(&self, o: &CheckOptions, records: &[Container], r: &mut CheckReport) {
        for c in records {
            if c.state != State::Running || self.monitor_alive(&c.id) {
                continue;
            }
            if let Some(st) = self.runtime_status(c) {
                if matches!(
                    st.status,
                    crate::runtime::RuntimeStatus::Running | crate::runtime::RuntimeStatus::Paused
                ) {
                    // Its processes run on without a monitor: stop them too.
                    let p = r.add(
                        ProblemKind::MonitorGone,
                        format!(
                            "container {}: running, but its monitor is gone",
                            c.id.short()
                        ),
                        0,
                    );
                    if o.repair {
                        let _ = self.runtime_kill(c, "SIGKILL", true);
                        note(p, self.cleanup(c.id.as_str()));
                    }
                    continue;
                }
            }
            let p = r.add(
                ProblemKind::MonitorGone,
                format!(
                    "container {}: recorded as running, but its monitor and processes are gone",
                    c.id.short()
                ),
                0,
            );
            if o.repair {
                note(p, self.cleanup(c.id.as_str()));
            }
        }
    }

    fn check_mounts(&self, o: &CheckOptions, records: &[Container], r: &mut CheckReport) {
        let ids: HashSet<&str> = records.iter().map(|c| c.id.as_str()).collect();
        let running: HashSet<&str> = records
            .iter()
            .filter(|c| c.state == State::Running)
            .map(|c| c.id.as_str())
            .collect();
        let live_ws: HashSet<String> = {
            let stale: HashSet<String> = self.stale_workspaces(o.max_age).into_iter().collect();
            self.layers
                .containers()
                .unwrap_or_default()
                .into_iter()
                .filter(|n| n.starts_with("build-") && !stale.contains(n))
                .collect()
        };
        let storage = self.layers.root().to_path_buf();
        let containers = storage.join("containers");
        let netns = self.run.join("netns");
        let mut seen = BTreeSet::new();
        for m in mount_points() {
            if !seen.insert(m.clone()) {
                continue;
            }
            let orphan = if let Ok(rest) = m.strip_prefix(&containers) {
                let mut parts = rest.components();
                let name = parts
                    .next()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .unwrap_or_default();
                let is_merged = parts.next().is_some_and(|c| c.as_os_str() == "merged")
                    && parts.next().is_none();
                !(is_merged && (ids.contains(name.as_str()) || live_ws.contains(&name)))
            } else if let Ok(rest) = m.strip_prefix(&netns) {
                let id = rest.to_string_lossy();
                !running.contains(id.as_ref())
            } else {
                // Nothing else under the storage is ever mounted.
                m.starts_with(&storage)
            };
            if !orphan {
                continue;
            }
            let p = r.add(
                ProblemKind::OrphanMount,
                format!("{}: mounted, but no container uses it", m.display()),
                0,
            );
            if o.repair {
                note(
                    p,
                    berth_storage::unmount_all(&m).map_err(crate::EngineError::from),
                );
            }
        }
    }

    fn check_cgroups(&self, o: &CheckOptions, records: &[Container], r: &mut CheckReport) {
        // Cgroups are shared by every root: only those of this root's
        // containers that do not run are this check's business.
        for c in records {
            if c.state == State::Running {
                continue;
            }
            let path = format!("/berth-{}", c.id.as_str());
            let Ok(m) = berth_cgroups::open_manager(&path, c.id.as_str()) else {
                continue;
            };
            if !m.exists() {
                continue;
            }
            let p = r.add(
                ProblemKind::OrphanCgroup,
                format!(
                    "container {}: cgroup {path} left, but it does not run",
                    c.id.short()
                ),
                0,
            );
            if o.repair {
                let _ = m.kill_all(nix::sys::signal::Signal::SIGKILL);
                note(
                    p,
                    m.destroy().map_err(|e| {
                        crate::EngineError::Other(format!("remove cgroup {path}: {e}"))
                    }),
                );
            }
        }
    }

    fn check_container_storage(
        &self,
        o: &CheckOptions,
        records: &[Container],
        r: &mut CheckReport,
    ) -> Result<()> {
        let on_disk: BTreeSet<String> = self.layers.containers()?.into_iter().collect();
        for c in records {
            if on_disk.contains(c.id.as_str()) {
                continue;
            }
            let p = r.add(
                ProblemKind::ContainerWithoutStorage,
                format!(
                    "container {} ({}): its storage is gone",
                    c.id.short(),
                    c.name
                ),
                0,
            );
            if o.repair {
                // Gone by the time rm looked: the record's dead creator or
                // remover had its removal finished (`reconcile`).
                let res = match self.rm(c.id.as_str(), true, false) {
                    Err(crate::EngineError::NotFound { .. })
                        if self.containers.resolve(c.id.as_str()).is_err() =>
                    {
                        Ok(())
                    }
                    res => res,
                };
                note(p, res);
            }
        }
        let ids: HashSet<&str> = records.iter().map(|c| c.id.as_str()).collect();
        let stale_ws: HashSet<String> = self.stale_workspaces(o.max_age).into_iter().collect();
        let dir = self.layers.root().join("containers");
        for name in on_disk {
            if ids.contains(name.as_str())
                || (name.starts_with("build-") && !stale_ws.contains(&name))
            {
                continue;
            }
            let bytes = berth_lease::disk_usage(&dir.join(&name));
            let what = if name.starts_with("build-") {
                "a build's work area whose build is gone"
            } else {
                "a container's storage without a container"
            };
            let p = r.add(
                ProblemKind::StorageWithoutContainer,
                format!("{}: {what}", rel(self.layers.root(), &dir.join(&name))),
                bytes,
            );
            if o.repair {
                let _ = self.layers.unmount_container(&name);
                note(p, self.layers.remove_container(&name).map_err(Into::into));
            }
        }
        Ok(())
    }

    fn check_endpoints(&self, o: &CheckOptions, r: &mut CheckReport) {
        let Ok(records) = self.containers.list() else {
            return;
        };
        let known: BTreeSet<String> = records.iter().map(|c| c.id.to_string()).collect();
        let stale = self.with_net(|m| {
            Ok(m.db()
                .all_endpoints()?
                .into_iter()
                .filter(|ep| !known.contains(&ep.container_id))
                .map(|ep| (ep.container_id, ep.network_id, ep.ip))
                .collect::<Vec<_>>())
        });
        let Ok(stale) = stale else { return };
        let mut first = true;
        for (cid, net, ip) in stale {
            let short: String = cid.chars().take(12).collect();
            let short_net: String = net.chars().take(12).collect();
            let p = r.add(
                ProblemKind::StaleEndpoint,
                format!(
                    "network {short_net}: endpoint {ip} of container {short}, which does not exist"
                ),
                0,
            );
            if o.repair {
                // One reconcile releases them all and rewrites the rules.
                let res = if first {
                    self.network_reconcile().map(drop)
                } else {
                    Ok(())
                };
                first = false;
                note(p, res);
            }
        }
    }

    /// Images whose layers or blobs are missing or corrupt: removed with
    /// `--repair` (and their containers with `--force`).
    fn check_images(&self, o: &CheckOptions, r: &mut CheckReport) -> Result<()> {
        let present: BTreeSet<Digest> = self.blobs.list()?.into_iter().collect();
        let mut damaged: BTreeMap<Digest, Vec<(ProblemKind, String)>> = BTreeMap::new();
        let mut verified: BTreeMap<Digest, bool> = BTreeMap::new();
        let mut ids: Vec<Digest> = self.images.list()?.into_iter().map(|s| s.id).collect();
        ids.dedup();
        let ids: BTreeSet<Digest> = ids.into_iter().collect();
        for id in &ids {
            let Ok(img) = self.images.get(id) else {
                continue;
            };
            let mut found = Vec::new();
            for (i, l) in img.layers.iter().enumerate() {
                if !self.layers.has_layer(&l.chain_id) {
                    found.push((
                        ProblemKind::MissingLayer,
                        format!("layer {} ({}) is missing", i + 1, l.chain_id),
                    ));
                }
            }
            // The config lives in the database (`config_json`): only a
            // loaded or pulled image also has it as a blob, so a missing
            // config blob is no damage (built and committed images have
            // none).
            let blobs = img
                .layers
                .iter()
                .map(|l| l.blob_digest.clone())
                .chain(img.manifest_digest.clone());
            for b in blobs {
                if !present.contains(&b) {
                    found.push((ProblemKind::MissingBlob, format!("blob {b} is missing")));
                } else if !o.quick {
                    let ok = *verified
                        .entry(b.clone())
                        .or_insert_with(|| self.blobs.verify(&b).is_ok());
                    if !ok {
                        found.push((
                            ProblemKind::CorruptBlob,
                            format!("blob {b} does not match its digest"),
                        ));
                    }
                }
            }
            if !found.is_empty() {
                damaged.insert(id.clone(), found);
            }
        }
        for (id, found) in damaged {
            let users: Vec<Container> = self
                .containers
                .list()?
                .into_iter()
                .filter(|c| c.image_id == id.to_string())
                .collect();
            let start = r.problems.len();
            for (kind, what) in found {
                r.add(kind, format!("image {}: {what}", id.short()), 0);
            }
            if !o.repair {
                continue;
            }
            let res = if !users.is_empty() && !o.force {
                Err(crate::EngineError::conflict(
                    crate::ConflictKind::InUse,
                    format!(
                    "image is in use by container {} (use --force to remove the containers too)",
                    users[0].id.short()
                ),
                ))
            } else {
                self.remove_damaged_image(&id, &users)
            };
            for p in &mut r.problems[start..] {
                note(
                    p,
                    res.as_ref()
                        .map(|_| ())
                        .map_err(|e| crate::EngineError::Other(e.to_string())),
                );
            }
        }
        Ok(())
    }

    fn remove_damaged_image(&self, id: &Digest, users: &[Container]) -> Result<()> {
        for c in users {
            self.rm(c.id.as_str(), true, false)?;
        }
        let in_use = self.in_use();
        let removed = self.images.remove(&id.to_string(), true, &in_use)?;
        self.collect(&removed);
        Ok(())
    }

    /// Layer directories no image names (older than `--max`), and `l/`
    /// links to nothing.
    fn check_layers(&self, o: &CheckOptions, r: &mut CheckReport) -> Result<()> {
        let known: HashSet<Digest> = self
            .images
            .layers()?
            .into_iter()
            .map(|l| l.chain_id)
            .collect();
        // Layers under a container's writable layer are in use whatever the
        // records say.
        let mut used: HashSet<Digest> = HashSet::new();
        for name in self.layers.containers()? {
            if let Ok(Some(top)) = self.layers.container_top_layer(&name) {
                used.extend(self.layers.layer_chain(&top).unwrap_or_default());
            }
        }
        let old = |p: &Path| {
            std::fs::symlink_metadata(p)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age >= o.max_age)
        };
        let mut orphans: Vec<Digest> = self
            .layers
            .layers()?
            .into_iter()
            .filter(|id| !known.contains(id) && !used.contains(id))
            .filter(|id| old(&self.layers.layer_diff(id)))
            .collect();
        // Children first.
        orphans.sort_by_key(|id| {
            std::cmp::Reverse(self.layers.layer_chain(id).map(|c| c.len()).unwrap_or(0))
        });
        for id in orphans {
            let bytes = self.layers.layer_size(&id).unwrap_or(0);
            let p = r.add(
                ProblemKind::UnreferencedLayer,
                format!("layer {}: in storage, but no image uses it", id.short()),
                bytes,
            );
            if o.repair {
                note(p, self.layers.remove_layer(&id).map_err(Into::into));
            }
        }
        for l in self.layers.dangling_links(o.max_age)? {
            let p = r.add(
                ProblemKind::DanglingLink,
                format!(
                    "{}: link to a layer that does not exist",
                    rel(self.layers.root(), &l)
                ),
                0,
            );
            if o.repair {
                note(
                    p,
                    std::fs::remove_file(&l).map_err(|e| {
                        crate::EngineError::Other(format!("remove {}: {e}", l.display()))
                    }),
                );
            }
        }
        Ok(())
    }

    /// Staging areas, trash and temporary files whose owner is gone.
    fn check_leftovers(&self, o: &CheckOptions, r: &mut CheckReport) -> Result<()> {
        for l in self.layers.leftovers()? {
            let bytes = berth_lease::disk_usage(&l.path);
            let what = match l.kind {
                berth_storage::LeftoverKind::Staging => "staging area of a process that is gone",
                berth_storage::LeftoverKind::Trash => "deletion left unfinished",
                berth_storage::LeftoverKind::OldTemp => {
                    "temporary directory of an interrupted operation"
                }
            };
            let p = r.add(
                ProblemKind::Leftover,
                format!("{}: {what}", rel(&self.root, &l.path)),
                bytes,
            );
            if o.repair {
                note(
                    p,
                    self.layers
                        .remove_leftovers(std::slice::from_ref(&l))
                        .map(drop)
                        .map_err(Into::into),
                );
            }
        }
        let temp = self.blobs.clean_temp(Some(o.max_age), false)?;
        for path in temp.paths {
            let bytes = std::fs::symlink_metadata(&path)
                .map(|m| std::os::unix::fs::MetadataExt::blocks(&m) * 512)
                .unwrap_or(0);
            let p = r.add(
                ProblemKind::Leftover,
                format!(
                    "{}: temporary file of an interrupted download or load",
                    rel(&self.root, &path)
                ),
                bytes,
            );
            if o.repair {
                note(
                    p,
                    match std::fs::remove_file(&path) {
                        Ok(()) => Ok(()),
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                        Err(e) => Err(crate::EngineError::Other(format!(
                            "remove {}: {e}",
                            path.display()
                        ))),
                    },
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn mountinfo_escapes() {
        assert_eq!(super::unescape(r"/a\040b"), "/a b");
        assert_eq!(super::unescape(r"/plain"), "/plain");
        assert_eq!(super::unescape(r"/x\134"), "/x\\");
    }
}
