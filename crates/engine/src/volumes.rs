//! What `create` settles once the flags are parsed: volumes get their
//! directories (`ROOT/volumes/NAME/_data`, made on first use; anonymous ones
//! for `-v /path` and the image's `Volumes`), missing `-v` bind sources are
//! made as directories (as Docker does), the image's labels, StopSignal and
//! Healthcheck are merged under the user's, `--init` finds its binary and
//! `--runtime` its executable (both looked up by `binaries.rs`). At start,
//! `container:X` namespaces are resolved to `/proc/PID/ns/…` of X's init.

use crate::binaries::{container_runtime, find_init, resolve_runtime};
use crate::containers::{ContainerId, State};
use crate::error::{Context, EngineError, Result};
use crate::options::{self, MountPoint};
use crate::spec::{ImageDefaults, RunOptions};
use crate::Engine;
use std::collections::BTreeMap;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

fn invalid(msg: impl Into<String>) -> EngineError {
    EngineError::Invalid(msg.into())
}

impl Engine {
    /// `ROOT/volumes/NAME/_data`, created if missing.
    pub(crate) fn volume_data(&self, name: &str) -> Result<PathBuf> {
        let volumes = self.root().join("volumes");
        let data = volumes.join(name).join("_data");
        // Only `volumes` is closed (0700): what a container puts in a volume
        // (a setuid binary, a device node) is then out of other users' reach,
        // while `_data` keeps the mode the container sees at the mount point.
        crate::create_private_dir_all(&volumes)?;
        std::fs::create_dir_all(&data).context(|| format!("create volume {name}"))?;
        Ok(data)
    }

    /// The run options as they are stored: validated, with defaults from the
    /// image and everything on the host that the container will need made.
    pub(crate) fn prepare_run(
        &self,
        run: &RunOptions,
        image: &ImageDefaults,
    ) -> Result<RunOptions> {
        let mut run = run.clone();
        let h = &mut run.host;
        options::validate(h)?;
        if h.uts == "host" {
            if run.hostname.is_some() {
                return Err(invalid("Conflicting options: hostname and the UTS mode"));
            }
            // Docker keeps the generated name as Config.Hostname (HOSTNAME,
            // /etc/hostname); the kernel's is the host's.
        } else if h.network == "host" && run.hostname.is_none() {
            // Docker: a container on the host's network is named as the host.
            run.hostname = Some(
                nix::unistd::gethostname()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            );
        }
        for mode in [&h.ipc, &h.pid] {
            if let Some(x) = mode.strip_prefix("container:") {
                let c = self.containers.resolve(x)?;
                if c.state != State::Running {
                    return Err(invalid(format!(
                        "container:{x} needs a running container: {x} is not running"
                    )));
                }
            }
        }
        for d in &h.devices {
            crate::spec::host_devices(Path::new(&d.host), Path::new(&d.container))?;
        }
        if let Some(rt) = &h.runtime {
            resolve_runtime(Some(rt))?;
        }
        if h.init.as_deref() == Some("") {
            h.init = Some(find_init()?.to_string_lossy().into_owned());
        }
        // The image's Volumes: an anonymous volume each, unless mounted over.
        for v in &image.volumes {
            // Docker cleans an image's volume paths as it does -v destinations.
            let dest = berth_runtime::rootfs::clean_absolute(v);
            if dest == "/" {
                return Err(invalid(format!(
                    "invalid mount config for type \"volume\": invalid specification: destination can't be '/' (the image's volume {v:?})"
                )));
            }
            if !h
                .mounts
                .iter()
                .any(|m| m.destination.trim_end_matches('/') == dest)
            {
                h.mounts.push(MountPoint {
                    typ: "volume".into(),
                    source: String::new(),
                    destination: dest,
                    read_only: false,
                    options: Vec::new(),
                    name: None,
                    create_source: true,
                    no_copy: false,
                });
            }
        }
        let mut seen = std::collections::HashSet::new();
        for m in &h.mounts {
            if !seen.insert(m.destination.trim_end_matches('/').to_owned()) {
                return Err(invalid(format!("Duplicate mount point: {}", m.destination)));
            }
            options::check_proc_mount(m)?;
        }
        for m in &mut h.mounts {
            match m.typ.as_str() {
                "bind" => {
                    let p = Path::new(&m.source);
                    if !p.exists() {
                        if !m.create_source {
                            return Err(invalid(format!(
                                "invalid mount config for type \"bind\": bind source path does not exist: {}",
                                m.source
                            )));
                        }
                        std::fs::create_dir_all(p).map_err(|e| {
                            invalid(format!(
                                "error while creating mount source path '{}': {}",
                                m.source,
                                options::io_reason(&e)
                            ))
                        })?;
                    }
                }
                "volume" => {
                    let name = match &m.name {
                        Some(n) => n.clone(),
                        None => {
                            let n = ContainerId::random()?.to_string();
                            m.name = Some(n.clone());
                            n
                        }
                    };
                    m.source = self.volume_data(&name)?.to_string_lossy().into_owned();
                }
                _ => {}
            }
        }
        let mut labels = image.labels.clone();
        labels.extend(run.labels.clone());
        run.labels = labels;
        if run.stop_signal.is_none() {
            run.stop_signal = image.stop_signal.clone();
        }
        run.healthcheck =
            options::merge_healthcheck(run.healthcheck.as_ref(), image.healthcheck.as_ref());
        Ok(run)
    }

    /// Docker's population of volumes at create: a volume mount (not
    /// `nocopy`) whose directory is empty gets what the image holds at its
    /// destination (contents, then the directory's owner and mode). Binds
    /// never are.
    pub(crate) fn populate_volumes(&self, id: &ContainerId, h: &options::HostConfig) -> Result<()> {
        for m in &h.mounts {
            if m.typ != "volume" || m.no_copy || m.source.is_empty() {
                continue;
            }
            let data = Path::new(&m.source);
            let empty = std::fs::read_dir(data)
                .context(|| format!("read {}", data.display()))?
                .next()
                .is_none();
            if empty {
                self.populate_volume(id, m, data)?;
            }
        }
        Ok(())
    }

    /// Fills the empty volume directory `data` from the image, staged: the
    /// copy is made beside it under a name its owner's death makes garbage
    /// (swept with the volumes), then renamed over the still empty `data`.
    /// A `create` killed halfway leaves the volume empty, never half filled.
    fn populate_volume(
        &self,
        id: &ContainerId,
        m: &options::MountPoint,
        data: &Path,
    ) -> Result<()> {
        let Some(volume_dir) = data.parent() else {
            return Ok(());
        };
        let _ = berth_lease::sweep(volume_dir, crate::volume_store::POPULATING);
        let me = berth_lease::Owner::current().map_err(|e| EngineError::Other(e.to_string()))?;
        let staging = volume_dir.join(me.name(crate::volume_store::POPULATING));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&staging)
            .context(|| format!("create {}", staging.display()))?;
        let filled =
            match self
                .layers
                .populate_volume(id.as_str(), Path::new(&m.destination), &staging)
            {
                Ok(filled) => filled,
                Err(e) => {
                    let _ = berth_lease::remove(&staging);
                    return Err(e.into());
                }
            };
        // rename(2) replaces an empty directory only: a volume that got
        // content meanwhile keeps it, and the copy goes.
        if !filled || std::fs::rename(&staging, data).is_err() {
            let _ = berth_lease::remove(&staging);
        }
        Ok(())
    }

    /// At start: `container:X` namespace modes become the paths of X's
    /// namespaces (X must be running).
    pub(crate) fn namespace_paths(
        &self,
        h: &options::HostConfig,
    ) -> Result<BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        for (kind, mode) in [("ipc", &h.ipc), ("pid", &h.pid)] {
            let Some(x) = mode.strip_prefix("container:") else {
                continue;
            };
            let pid = self.running_init_pid(x)?;
            out.insert(kind.to_owned(), format!("/proc/{pid}/ns/{kind}"));
        }
        Ok(out)
    }

    /// The init pid of running container `x` (whose namespaces another
    /// container joins), from the runtime's state.
    pub(crate) fn running_init_pid(&self, x: &str) -> Result<i64> {
        let c = self.containers.resolve(x)?;
        let not_running = || {
            invalid(format!(
                "container:{x} needs a running container: {x} is not running"
            ))
        };
        if c.state != State::Running {
            return Err(not_running());
        }
        // The runtime it was created with must still resolve.
        container_runtime(&c.config.host)?;
        self.runtime(&c)
            .state(c.id.as_str())
            .map(|st| i64::from(st.pid))
            .filter(|p| *p > 0)
            .ok_or_else(not_running)
    }
}

/// The parts of `inspect` these options make: Config's Labels, StopSignal,
/// StopTimeout, Healthcheck, ExposedPorts; Docker's HostConfig; Mounts.
/// A list as Docker's inspect writes it: `null` when empty (Go's nil slice).
pub(crate) fn list_or_null<T: serde::Serialize>(v: &[T]) -> serde_json::Value {
    if v.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::json!(v)
    }
}

pub(crate) fn inspect_into(v: &mut serde_json::Value, c: &crate::containers::ContainerConfig) {
    use serde_json::json;
    let h = &c.host;
    let ns = |s: &str, default: &str| {
        if s.is_empty() {
            default.to_owned()
        } else {
            s.to_owned()
        }
    };
    let restart = c.restart.as_deref().unwrap_or("no");
    let (rname, rcount) = restart.split_once(':').unwrap_or((restart, "0"));
    let mut security_opt: Vec<String> = Vec::new();
    if h.no_new_privileges {
        security_opt.push("no-new-privileges".into());
    }
    match &h.seccomp {
        options::SeccompMode::Unconfined => security_opt.push("seccomp=unconfined".into()),
        options::SeccompMode::Profile(p) => security_opt.push(format!("seccomp={p}")),
        options::SeccompMode::Default => {}
    }
    let binds: Vec<String> = h
        .mounts
        .iter()
        .filter(|m| m.create_source && m.typ != "tmpfs")
        // Docker lists the anonymous volumes of the image's VOLUMEs and of
        // `-v /path` in Config.Volumes only.
        .filter(|m| {
            let anonymous = m
                .name
                .as_deref()
                .is_some_and(crate::volume_store::is_anonymous);
            !(m.typ == "volume" && anonymous && c.volumes.contains(&m.destination))
        })
        .filter_map(|m| {
            let src = if m.typ == "bind" {
                m.source.clone()
            } else {
                m.name.clone()?
            };
            Some(format!(
                "{src}:{}{}",
                m.destination,
                if m.read_only { ":ro" } else { "" }
            ))
        })
        .collect();
    let tmpfs: serde_json::Map<String, serde_json::Value> = h
        .mounts
        .iter()
        .filter(|m| m.typ == "tmpfs" && m.create_source)
        .map(|m| (m.destination.clone(), json!(m.options.join(","))))
        .collect();
    let mut host = json!({
        "Binds": list_or_null(&binds),
        "AutoRemove": c.auto_remove,
        "Memory": h.memory.unwrap_or(0),
        "MemorySwap": h.memory_swap.unwrap_or(0),
        "MemoryReservation": h.memory_reservation.unwrap_or(0),
        "NanoCpus": h.nano_cpus.unwrap_or(0),
        "CpuShares": h.cpu_shares.unwrap_or(0),
        "CpuQuota": h.cpu_quota.unwrap_or(0),
        "CpuPeriod": h.cpu_period.unwrap_or(0),
        "CpusetCpus": h.cpuset_cpus.clone().unwrap_or_default(),
        "CpusetMems": h.cpuset_mems.clone().unwrap_or_default(),
        "PidsLimit": h.pids_limit,
        "BlkioWeight": h.blkio_weight.unwrap_or(0),
        "CapAdd": list_or_null(&h.cap_add),
        "CapDrop": list_or_null(&h.cap_drop),
        "Privileged": h.privileged,
        "SecurityOpt": list_or_null(&security_opt),
        "Ulimits": h.ulimits.iter().map(|u| json!({"Name": u.name, "Soft": u.soft, "Hard": u.hard})).collect::<Vec<_>>(),
        "Devices": h.devices.iter().map(|d| json!({"PathOnHost": d.host, "PathInContainer": d.container, "CgroupPermissions": d.permissions})).collect::<Vec<_>>(),
        "GroupAdd": list_or_null(&h.group_add),
        "IpcMode": ns(&h.ipc, "private"),
        "PidMode": h.pid,
        "UTSMode": h.uts,
        "UsernsMode": h.userns,
        "RestartPolicy": {"Name": rname, "MaximumRetryCount": rcount.parse::<i64>().unwrap_or(0)},
        "LogConfig": {
            "Type": c.log_driver.as_deref().unwrap_or("json-file"),
            "Config": {},
        },
        "Runtime": h.runtime.clone().unwrap_or_else(|| "berth-runtime".into()),
        "ReadonlyRootfs": c.read_only,
    });
    // Keys Docker leaves out when unset (omitempty).
    if let Some(o) = host.as_object_mut() {
        if !h.sysctls.is_empty() {
            o.insert("Sysctls".into(), json!(h.sysctls));
        }
        if !tmpfs.is_empty() {
            o.insert("Tmpfs".into(), json!(tmpfs));
        }
        if h.init.is_some() {
            o.insert("Init".into(), json!(true));
        }
    }
    let mounts = crate::summary::mount_points(h);
    let hc = c.healthcheck.as_ref().map(|hc| {
        json!({"Test": hc.test, "Interval": hc.interval, "Timeout": hc.timeout,
               "StartPeriod": hc.start_period, "Retries": hc.retries})
    });
    let ports: serde_json::Map<String, serde_json::Value> = c
        .exposed_ports
        .iter()
        .map(|p| (p.clone(), json!({})))
        .collect();
    if let Some(cfg) = v.get_mut("Config").and_then(|x| x.as_object_mut()) {
        cfg.insert("Labels".into(), json!(c.labels));
        if let Some(s) = &c.stop_signal {
            cfg.insert("StopSignal".into(), json!(s));
        }
        if let Some(t) = c.stop_timeout {
            cfg.insert("StopTimeout".into(), json!(t));
        }
        if let Some(hc) = hc {
            cfg.insert("Healthcheck".into(), hc);
        }
        if !ports.is_empty() {
            cfg.insert("ExposedPorts".into(), json!(ports));
        }
    }
    match v.get_mut("HostConfig").and_then(|x| x.as_object_mut()) {
        Some(existing) => {
            if let Some(o) = host.as_object() {
                for (k, val) in o {
                    existing.entry(k.clone()).or_insert_with(|| val.clone());
                }
            }
        }
        None => v["HostConfig"] = host,
    }
    if v.get("Mounts").is_none() {
        v["Mounts"] = json!(mounts);
    }
}
