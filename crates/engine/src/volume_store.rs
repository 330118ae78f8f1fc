//! Named volumes as `berth volume` manages them: directories under
//! `ROOT/volumes/NAME/_data` (the local driver), in use while a container's
//! mounts name them.

use crate::error::{ConflictKind, Context, EngineError, Object, Result};
use crate::Engine;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// What `volume ls` / `volume inspect` show.
#[derive(Debug, Clone)]
pub struct VolumeInfo {
    pub name: String,
    pub mountpoint: PathBuf,
    pub created_at: String,
    pub in_use_by: Vec<String>,
    /// `volume create --label`s (Docker's Labels).
    pub labels: BTreeMap<String, String>,
    /// Made by `volume create` (Docker then shows Labels and Options as
    /// maps, empty or not), not on the way by a container's `-v` (null).
    pub created_explicitly: bool,
}

/// Where a volume's labels are kept, beside its `_data`.
const LABELS: &str = "labels.json";

/// The lease prefix of a volume's content being copied from an image,
/// beside its `_data` (see `populate_volume`).
pub(crate) const POPULATING: &str = "populating";

/// The lease prefix of volumes being removed (a volume name cannot start
/// with a dot, so it never collides with one).
const TRASH: &str = ".rm";

fn valid_volume_name(n: &str) -> bool {
    let mut b = n.bytes();
    n.len() >= 2
        && b.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && b.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

impl Engine {
    fn volumes_dir(&self) -> PathBuf {
        self.root().join("volumes")
    }

    /// The containers (short IDs) whose mounts use volume `name`.
    fn volume_users(&self, name: &str) -> Result<Vec<String>> {
        Ok(self
            .containers
            .list()?
            .into_iter()
            .filter(|c| {
                c.config
                    .host
                    .mounts
                    .iter()
                    .any(|m| m.typ == "volume" && m.name.as_deref() == Some(name))
            })
            .map(|c| c.id.short().to_owned())
            .collect())
    }

    /// `volume create [--label K=V]… [NAME]`. Creating a volume that exists
    /// leaves it (and its labels) as it is, as Docker does.
    pub fn volume_create(
        &self,
        name: Option<&str>,
        labels: &BTreeMap<String, String>,
    ) -> Result<String> {
        let name = match name {
            Some(n) if valid_volume_name(n) => n.to_owned(),
            Some(n) => {
                return Err(EngineError::Invalid(format!(
                    "create {n}: \"{n}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed"
                )))
            }
            None => crate::containers::ContainerId::random()?.to_string(),
        };
        self.sweep_volumes();
        let dir = self.volumes_dir().join(&name);
        if !dir.join("_data").is_dir() {
            // The labels first, whole (written aside, then renamed): a
            // create killed before `_data` exists leaves no volume, and the
            // next create of the name writes them again.
            crate::create_private_dir_all(&self.volumes_dir())?;
            std::fs::create_dir_all(&dir).context(|| format!("create volume {name}"))?;
            // Written even when empty: it also records that `volume create`
            // made the volume.
            let file = dir.join(LABELS);
            let json = serde_json::to_vec(labels)
                .map_err(|e| EngineError::Other(format!("create volume {name}: {e}")))?;
            let tmp = dir.join(format!("{LABELS}.tmp"));
            std::fs::write(&tmp, json)
                .and_then(|()| std::fs::rename(&tmp, &file))
                .context(|| format!("create volume {name}"))?;
        }
        self.volume_data(&name)?;
        self.object_event("volume", "create", &name, &[("driver", "local".into())]);
        Ok(name)
    }

    pub fn volume_inspect(&self, name: &str) -> Result<VolumeInfo> {
        let dir = self.volumes_dir().join(name);
        if !valid_volume_name(name) || !dir.join("_data").is_dir() {
            return Err(EngineError::no_such(Object::Volume, name));
        }
        let created_at = std::fs::metadata(&dir)
            .and_then(|m| m.modified())
            .map(|t| humantime::format_rfc3339_seconds(t).to_string())
            .unwrap_or_default();
        let labels: Option<BTreeMap<String, String>> = std::fs::read(dir.join(LABELS))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        Ok(VolumeInfo {
            name: name.to_owned(),
            mountpoint: dir.join("_data"),
            created_at,
            in_use_by: self.volume_users(name)?,
            labels: labels.clone().unwrap_or_default(),
            created_explicitly: labels.is_some(),
        })
    }

    pub fn volume_list(&self) -> Result<Vec<VolumeInfo>> {
        self.sweep_volumes();
        let mut out = Vec::new();
        let Ok(entries) = std::fs::read_dir(self.volumes_dir()) else {
            return Ok(out);
        };
        for e in entries.flatten() {
            if let Some(n) = e.file_name().to_str() {
                if let Ok(v) = self.volume_inspect(n) {
                    out.push(v);
                }
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    pub fn volume_rm(&self, name: &str, force: bool) -> Result<()> {
        self.sweep_volumes();
        let v = self.volume_inspect(name)?;
        if !v.in_use_by.is_empty() && !force {
            return Err(EngineError::conflict(
                ConflictKind::InUse,
                format!(
                    "remove {name}: volume is in use - [{}]",
                    v.in_use_by.join(", ")
                ),
            ));
        }
        let dir = self.volumes_dir().join(name);
        // Renamed aside first, under a name owned by this process: the
        // volume is gone at once and whole, and a removal killed midway
        // leaves a staging tree the next volume command deletes, never a
        // volume with half its files.
        let me = berth_lease::Owner::current().map_err(|e| EngineError::Other(e.to_string()))?;
        let trash = me
            .rename_to(&dir, TRASH)
            .map_err(|e| EngineError::Other(format!("remove {name}: {e}")))?;
        berth_lease::remove(&trash)
            .map(drop)
            .map_err(|e| EngineError::Other(format!("remove {name}: {e}")))?;
        self.object_event("volume", "destroy", name, &[("driver", "local".into())]);
        Ok(())
    }

    /// Removes what volume removals killed midway left (their owner gone);
    /// cheap: one listing of the volumes directory. (A `volume create`
    /// killed midway leaves at most an empty `NAME` without `_data`: not a
    /// volume, and made whole by the next create of that name.)
    pub(crate) fn sweep_volumes(&self) {
        let dir = self.volumes_dir();
        let _ = berth_lease::sweep(&dir, TRASH);
        // Populations a killed `create` left in the volumes' directories.
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                let _ = berth_lease::sweep(&e.path(), POPULATING);
            }
        }
    }

    /// The anonymous volumes (generated names) of a container that is gone:
    /// `rm -v`, and an `--rm` container's end (Docker removes those, never
    /// named ones). One still in use by another container stays.
    pub(crate) fn remove_anonymous_volumes(&self, c: &crate::containers::Container) {
        for m in &c.config.host.mounts {
            if let Some(n) = m.name.as_deref() {
                if m.typ == "volume" && is_anonymous(n) {
                    let _ = self.volume_rm(n, false);
                }
            }
        }
    }

    /// `volume prune`: removes volumes no container uses (anonymous ones
    /// only, unless `all`, as Docker 23+ does). Returns names and bytes freed.
    pub fn volume_prune(&self, all: bool) -> Result<(Vec<String>, u64)> {
        self.volume_prune_matching(all, &|_| true)
    }

    /// `volume prune` of the volumes `keep` selects among those it would
    /// remove (the API's `label`/`label!` filters).
    pub fn volume_prune_matching(
        &self,
        all: bool,
        keep: &dyn Fn(&VolumeInfo) -> bool,
    ) -> Result<(Vec<String>, u64)> {
        let mut removed = Vec::new();
        let mut freed = 0;
        for v in self.volume_list()? {
            if !v.in_use_by.is_empty() || !(all || is_anonymous(&v.name)) || !keep(&v) {
                continue;
            }
            freed += dir_size(&v.mountpoint);
            self.volume_rm(&v.name, false)?;
            removed.push(v.name);
        }
        Ok((removed, freed))
    }
}

/// A generated (anonymous) volume name: 64 hex digits.
pub(crate) fn is_anonymous(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

pub(crate) fn dir_size(p: &std::path::Path) -> u64 {
    let Ok(md) = std::fs::symlink_metadata(p) else {
        return 0;
    };
    if !md.is_dir() {
        return md.len();
    }
    std::fs::read_dir(p)
        .map(|rd| rd.flatten().map(|e| dir_size(&e.path())).sum())
        .unwrap_or(0)
}
