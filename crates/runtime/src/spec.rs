//! Loading and validating an OCI bundle's `config.json`.
//!
//! Validation happens before anything is created on the host, so a bad spec
//! leaves nothing behind; every message names the offending field.

use crate::error::{spec_err, Context, Result, RuntimeError};
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// A spec that has been parsed and checked, with its paths made absolute.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub dir: PathBuf,
    pub rootfs: PathBuf,
    pub spec: Spec,
}

/// Parses `config.json`; a type error names the JSON path of the field
/// (`linux.namespaces[3].type: unknown variant ...`).
pub fn parse_spec(text: &[u8], origin: &Path) -> Result<Spec> {
    let de = &mut serde_json::Deserializer::from_slice(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        // A syntax error (say a truncated file) is the file's fault, not the
        // field's where the parser happened to stop.
        if path == "." || inner.is_syntax() || inner.is_eof() {
            spec_err(origin.display().to_string(), format!("malformed: {inner}"))
        } else {
            spec_err(path, inner.to_string())
        }
    })
}

impl Bundle {
    pub fn load(dir: &Path) -> Result<Bundle> {
        let dir = std::path::absolute(dir).context(|| format!("bundle {}", dir.display()))?;
        let config = dir.join("config.json");
        let text = std::fs::read(&config).context(|| format!("read {}", config.display()))?;
        let spec = parse_spec(&text, &config)?;
        Bundle::from_spec(dir, spec)
    }

    /// The bundle in `dir` whose config.json holds `spec`, as a caller in
    /// this process wrote it (no read and parse again), checked as `load`
    /// checks it.
    pub fn from_spec(dir: PathBuf, spec: Spec) -> Result<Bundle> {
        let dir = std::path::absolute(&dir).context(|| format!("bundle {}", dir.display()))?;
        let root = spec
            .root()
            .as_ref()
            .ok_or_else(|| spec_err("root", "missing"))?;
        let rootfs = if root.path().is_absolute() {
            root.path().clone()
        } else {
            dir.join(root.path())
        };
        match std::fs::metadata(&rootfs) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(spec_err(
                    "root.path",
                    format!("{} is not a directory", rootfs.display()),
                ))
            }
            Err(e) => return Err(spec_err("root.path", format!("{}: {e}", rootfs.display()))),
        }
        let bundle = Bundle { dir, rootfs, spec };
        bundle.validate()?;
        Ok(bundle)
    }

    /// Checks the relations between fields that serde cannot see.
    pub fn validate(&self) -> Result<()> {
        let spec = &self.spec;
        if !spec.version().starts_with("1.") {
            return Err(spec_err(
                "ociVersion",
                format!("{:?} is not supported (1.0 to 1.2 are)", spec.version()),
            ));
        }
        let process = spec
            .process()
            .as_ref()
            .ok_or_else(|| spec_err("process", "missing"))?;
        match process.args() {
            Some(a) if !a.is_empty() && !a[0].is_empty() => {}
            _ => return Err(spec_err("process.args", "must name a program to run")),
        }
        if !process.cwd().is_absolute() {
            return Err(spec_err("process.cwd", "must be an absolute path"));
        }
        let linux = spec
            .linux()
            .as_ref()
            .ok_or_else(|| spec_err("linux", "missing"))?;
        let mut seen = HashSet::new();
        for (i, ns) in linux.namespaces().iter().flatten().enumerate() {
            if !seen.insert(ns.typ()) {
                return Err(spec_err(
                    format!("linux.namespaces[{i}]"),
                    format!("namespace {} listed twice", ns.typ()),
                ));
            }
            if let Some(p) = ns.path() {
                if !p.exists() {
                    return Err(spec_err(
                        format!("linux.namespaces[{i}].path"),
                        format!("{} does not exist", p.display()),
                    ));
                }
            }
            if ns.typ() == LinuxNamespaceType::Time && !Path::new("/proc/self/ns/time").exists() {
                return Err(spec_err(
                    format!("linux.namespaces[{i}]"),
                    "this kernel has no time namespaces",
                ));
            }
        }
        let new_ns = |t: LinuxNamespaceType| {
            linux
                .namespaces()
                .iter()
                .flatten()
                .any(|n| n.typ() == t && n.path().is_none())
        };
        let has_ns =
            |t: LinuxNamespaceType| linux.namespaces().iter().flatten().any(|n| n.typ() == t);
        if new_ns(LinuxNamespaceType::User) {
            if linux.uid_mappings().as_ref().is_none_or(|m| m.is_empty()) {
                return Err(spec_err(
                    "linux.uidMappings",
                    "a new user namespace needs uid mappings",
                ));
            }
            if linux.gid_mappings().as_ref().is_none_or(|m| m.is_empty()) {
                return Err(spec_err(
                    "linux.gidMappings",
                    "a new user namespace needs gid mappings",
                ));
            }
        } else if linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty()) {
            return Err(spec_err(
                "linux.uidMappings",
                "mappings given but no new user namespace",
            ));
        }
        if spec.hostname().as_ref().is_some_and(|h| !h.is_empty())
            && !has_ns(LinuxNamespaceType::Uts)
        {
            return Err(spec_err(
                "hostname",
                "cannot set the hostname without a private uts namespace",
            ));
        }
        if spec.domainname().as_ref().is_some_and(|h| !h.is_empty())
            && !has_ns(LinuxNamespaceType::Uts)
        {
            return Err(spec_err(
                "domainname",
                "cannot set the domainname without a private uts namespace",
            ));
        }
        // Masking needs mounts of the container's own (runc's rule and words);
        // without a mount namespace they would be made on the host.
        if !has_ns(LinuxNamespaceType::Mount) {
            for (field, paths) in [
                ("linux.maskedPaths", linux.masked_paths()),
                ("linux.readonlyPaths", linux.readonly_paths()),
            ] {
                if paths.as_ref().is_some_and(|p| !p.is_empty()) {
                    return Err(spec_err(
                        field,
                        "unable to restrict sys entries without a private MNT namespace",
                    ));
                }
            }
        }
        if linux.time_offsets().is_some() && !new_ns(LinuxNamespaceType::Time) {
            return Err(spec_err(
                "linux.timeOffsets",
                "time offsets need a new time namespace",
            ));
        }
        if linux.net_devices().as_ref().is_some_and(|d| !d.is_empty()) {
            if !has_ns(LinuxNamespaceType::Network) {
                return Err(spec_err(
                    "linux.netDevices",
                    "needs a network namespace of the container's own",
                ));
            }
            crate::netdev::validate(spec)?;
        }
        for key in linux.sysctl().iter().flat_map(|m| m.keys()) {
            let field = format!("linux.sysctl.{key}");
            let needed = sysctl_namespace(key).ok_or_else(|| {
                spec_err(&field, "not namespaced: would change the host, refused")
            })?;
            if !has_ns(needed) {
                return Err(spec_err(
                    &field,
                    format!("needs a private {needed} namespace"),
                ));
            }
        }
        for (i, m) in spec.mounts().iter().flatten().enumerate() {
            if !m.destination().is_absolute() {
                return Err(spec_err(
                    format!("mounts[{i}].destination"),
                    format!("{} must be absolute", m.destination().display()),
                ));
            }
        }
        if let Some(path) = linux.cgroups_path() {
            let s = path.to_string_lossy();
            if !s.starts_with('/') && s.split(':').count() == 3 {
                return Err(spec_err(
                    "linux.cgroupsPath",
                    format!("{s:?} is a systemd slice path; berth-runtime manages cgroupfs directly (--systemd-cgroup is not supported)"),
                ));
            }
        }
        Ok(())
    }

    /// The linux section; `validate` guarantees it is present.
    pub fn linux(&self) -> Result<&oci_spec::runtime::Linux> {
        self.spec
            .linux()
            .as_ref()
            .ok_or_else(|| spec_err("linux", "missing"))
    }

    pub fn process(&self) -> Result<&oci_spec::runtime::Process> {
        self.spec
            .process()
            .as_ref()
            .ok_or_else(|| spec_err("process", "missing"))
    }
}

/// Which namespace makes a sysctl private to the container (runc's rules).
fn sysctl_namespace(key: &str) -> Option<LinuxNamespaceType> {
    const IPC: [&str; 6] = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
    ];
    if IPC.contains(&key)
        || key == "kernel.shmmni"
        || key == "kernel.shm_rmid_forced"
        || key.starts_with("fs.mqueue.")
    {
        Some(LinuxNamespaceType::Ipc)
    } else if key.starts_with("net.") {
        Some(LinuxNamespaceType::Network)
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        Some(LinuxNamespaceType::Uts)
    } else {
        None
    }
}

/// Writes `spec` as `config.json` in `dir` (for `berth-runtime spec`).
pub fn write_spec(dir: &Path, spec: &Spec) -> Result<()> {
    let path = dir.join("config.json");
    if path.exists() {
        return Err(RuntimeError::Other(format!(
            "{} already exists: remove it first",
            path.display()
        )));
    }
    let text = serde_json::to_vec_pretty(spec).map_err(|e| RuntimeError::Other(e.to_string()))?;
    std::fs::write(&path, text).context(|| format!("write {}", path.display()))
}

/// The default spec `berth-runtime spec` writes: runc's default with the
/// program set to `sh` and the rootfs at `rootfs`.
pub fn default_spec() -> Spec {
    let mut spec = Spec::default();
    spec.set_version("1.2.0".to_owned());
    spec.set_hostname(Some("berth".to_owned()));
    if let Some(p) = spec.process_mut() {
        p.set_args(Some(vec!["sh".to_owned()]));
        p.set_terminal(Some(true));
    }
    spec
}

/// Parses a runtime-spec `process` document (`exec --process`).
pub fn parse_process(text: &[u8], origin: &Path) -> Result<oci_spec::runtime::Process> {
    let de = &mut serde_json::Deserializer::from_slice(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        spec_err(format!("{}: {path}", origin.display()), inner.to_string())
    })
}
