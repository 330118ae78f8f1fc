//! Persistent per-container state under the runtime's `--root`.
//!
//! Layout: `ROOT/ID/state.json` (atomically replaced), `ROOT/ID/start.sock`
//! (the created init waits on it for `start`). The directory's creation is the
//! lock on the ID: `mkdir` either creates it or the ID is taken.

use crate::error::{Context, Result, RuntimeError};
use crate::id::ContainerId;
use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

pub const DEFAULT_ROOT: &str = "/run/berth-runtime";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// What the runtime remembers about a container between invocations.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerState {
    pub id: String,
    pub pid: i32,
    /// Start time of `pid` in clock ticks since boot (field 22 of
    /// /proc/PID/stat): tells our process from a later one with a reused pid.
    pub pid_start: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub started: bool,
    pub cgroups_path: String,
    /// Without `cgroupsPath`: the runtime's own cgroup per hierarchy at
    /// create, under which the container's is named after its ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup_parents: Option<std::collections::BTreeMap<String, PathBuf>>,
    pub owner: String,
    pub spec: Spec,
    /// The mount ID of the rootfs bound onto itself without a mount
    /// namespace (`rootfs::bind_in_place`), which `delete` unmounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rootfs_bind: Option<u64>,
}

pub struct StateRoot {
    root: PathBuf,
}

impl StateRoot {
    pub fn new(root: &Path) -> Result<Self> {
        // 0700, as runc's: the state holds the spec, environment included.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)
            .context(|| format!("create state root {}", root.display()))?;
        Ok(Self {
            root: root.to_owned(),
        })
    }

    pub fn dir(&self, id: &ContainerId) -> PathBuf {
        self.root.join(id.as_str())
    }

    /// Compiled seccomp programs (see berth_seccomp::compile_cached); `@`
    /// is in no container ID.
    pub fn seccomp_cache(&self) -> PathBuf {
        self.root.join("@seccomp")
    }

    /// Reserves `id`; fails if a container with that ID exists.
    pub fn reserve(&self, id: &ContainerId) -> Result<PathBuf> {
        let dir = self.dir(id);
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(RuntimeError::Exists(id.to_string()))
            }
            Err(e) => Err(e).context(|| format!("create {}", dir.display())),
        }
    }

    pub fn load(&self, id: &ContainerId) -> Result<ContainerState> {
        let path = self.dir(id).join("state.json");
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(RuntimeError::NotFound(id.to_string()))
            }
            Err(e) => return Err(e).context(|| format!("read {}", path.display())),
        };
        serde_json::from_slice(&text)
            .map_err(|e| RuntimeError::Other(format!("{}: corrupt state: {e}", path.display())))
    }

    pub fn save(&self, state: &ContainerState) -> Result<()> {
        let id = ContainerId::new(&state.id)?;
        let dir = self.dir(&id);
        let tmp = dir.join(".state.json.tmp");
        let text =
            serde_json::to_vec(state).map_err(|e| RuntimeError::Other(format!("state: {e}")))?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .context(|| format!("create {}", tmp.display()))?;
        f.write_all(&text)
            .context(|| format!("write {}", tmp.display()))?;
        // The state lives on tmpfs (/run) normally; the rename is what makes
        // the update atomic for concurrent readers.
        std::fs::rename(&tmp, dir.join("state.json"))
            .context(|| format!("rename {}", tmp.display()))
    }

    pub fn remove(&self, id: &ContainerId) -> Result<()> {
        let dir = self.dir(id);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).context(|| format!("remove {}", dir.display())),
        }
    }

    /// IDs of every container with a state directory.
    pub fn list(&self) -> Result<Vec<ContainerId>> {
        let mut ids = Vec::new();
        for entry in
            std::fs::read_dir(&self.root).context(|| format!("list {}", self.root.display()))?
        {
            let entry = entry.context(|| format!("list {}", self.root.display()))?;
            if let Some(name) = entry.file_name().to_str() {
                if let Ok(id) = ContainerId::new(name) {
                    if entry.path().join("state.json").exists() {
                        ids.push(id);
                    }
                }
            }
        }
        ids.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        Ok(ids)
    }
}

/// Start time (clock ticks after boot) of `pid`, and whether it is a zombie;
/// `None` when no such process exists.
pub fn process_start(pid: i32) -> Option<(u64, bool)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // comm may contain spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?;
    let start = fields.nth(18)?.parse().ok()?;
    Some((start, state == "Z" || state == "X"))
}

impl ContainerState {
    /// Whether the container's init is still the process we started.
    pub fn init_alive(&self) -> bool {
        matches!(process_start(self.pid), Some((start, false)) if start == self.pid_start)
    }

    /// The runtime-spec `state` document.
    pub fn oci_state(&self, status: Status) -> serde_json::Value {
        let pid = if matches!(status, Status::Stopped) {
            0
        } else {
            self.pid
        };
        let mut v = serde_json::json!({
            "ociVersion": "1.2.0",
            "id": self.id,
            "status": status.to_string(),
            "pid": pid,
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
            "owner": self.owner,
        });
        if let Some(a) = self.spec.annotations() {
            v["annotations"] = serde_json::json!(a);
        }
        v
    }
}

pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
}
