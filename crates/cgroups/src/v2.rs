//! cgroup v2 (unified hierarchy) backend.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxDeviceCgroup, LinuxHugepageLimit, LinuxMemory, LinuxRdma,
    LinuxResources,
};

use crate::stats::{self, HugetlbStats, MemoryEntry, Stats};
use crate::util::{self, read, set, write_ctl};
use crate::{devices, sys, CgroupError, CgroupManager, CgroupVersion, FreezerState};

/// Manager of one cgroup in a cgroup2 hierarchy.
#[derive(Debug)]
pub struct V2Manager {
    mount: PathBuf,
    path: PathBuf,
    /// Directories created by `create()` (outermost first).
    created: Mutex<Vec<PathBuf>>,
    /// In a subtree delegated to a rootless user (see `delegation`): the
    /// parent's controllers are enabled first, and device rules are left
    /// to the user namespace (no eBPF device filter can be attached there;
    /// no device node can be made in it either).
    delegated: bool,
}

/// `"max"` for negative values (unlimited), the number otherwise.
fn num_or_max(v: i64) -> String {
    if v < 0 {
        "max".to_string()
    } else {
        v.to_string()
    }
}

/// runc's cpu.shares → cpu.weight conversion.
pub fn shares_to_weight(shares: u64) -> u64 {
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
}

/// runc's blkio weight (10..1000) → io.weight (1..10000) conversion.
pub fn blkio_weight_to_io_weight(weight: u64) -> u64 {
    let weight = weight.clamp(10, 1000);
    1 + (weight - 10) * 9999 / 990
}

/// OCI memory.swap (memory+swap) → memory.swap.max; `None` = leave alone.
fn swap_max(swap: Option<i64>, memory: Option<i64>) -> Result<Option<String>, CgroupError> {
    let field = "linux.resources.memory.swap";
    let invalid = |reason: &str| CgroupError::InvalidValue {
        field: field.to_string(),
        reason: reason.to_string(),
    };
    let mem = memory.unwrap_or(0);
    let swap = swap.unwrap_or(0);
    if mem == -1 && swap == 0 {
        return Ok(Some("max".into()));
    }
    if swap == -1 {
        return Ok(Some("max".into()));
    }
    if swap == 0 {
        return Ok(None);
    }
    if swap < -1 {
        return Err(invalid(&format!("{swap}")));
    }
    if mem == 0 || mem == -1 {
        return Err(invalid(
            "a swap limit needs a memory limit (linux.resources.memory.limit)",
        ));
    }
    if swap < mem {
        return Err(invalid(&format!(
            "memory+swap limit {swap} is below the memory limit {mem}"
        )));
    }
    Ok(Some((swap - mem).to_string()))
}

impl V2Manager {
    /// A manager for `cgroups_path` inside the cgroup2 hierarchy mounted at
    /// `mountpoint` (normally /sys/fs/cgroup; /sys/fs/cgroup/unified on a
    /// hybrid host).
    pub fn new(
        mountpoint: impl Into<PathBuf>,
        cgroups_path: &str,
        container_id: &str,
    ) -> Result<Self, CgroupError> {
        let rel = crate::normalize_cgroups_path(cgroups_path, container_id)?;
        Ok(Self::with_rel(&mountpoint.into(), rel))
    }

    pub(crate) fn with_rel(mount: &Path, rel: PathBuf) -> Self {
        Self {
            path: mount.join(rel),
            mount: mount.to_path_buf(),
            created: Mutex::new(Vec::new()),
            delegated: false,
        }
    }

    /// A manager for a container cgroup in a delegated subtree (rootless).
    pub(crate) fn delegated(mount: &Path, rel: PathBuf) -> Self {
        Self {
            delegated: true,
            ..Self::with_rel(mount, rel)
        }
    }

    /// Creates the cgroup, enabling `ctrls` in the subtree_control of the
    /// hierarchy's root and of every ancestor on the way.
    pub(crate) fn create_enabling(&self, ctrls: &[String]) -> Result<(), CgroupError> {
        let ctrls = ctrls.to_vec();
        self.enable_controllers(&self.mount, &ctrls);
        let leaf = self.path.clone();
        let rel = self.path.strip_prefix(&self.mount).unwrap_or(Path::new(""));
        let mut created = Vec::new();
        let res = util::mkdir_levels(&self.mount, rel, &mut created, |dir, _| {
            if dir != leaf {
                self.enable_controllers(dir, &ctrls);
            }
            Ok(())
        });
        if let Ok(mut c) = self.created.lock() {
            c.extend(created);
        }
        res
    }

    /// Enables `ctrls` below the hierarchy's root down to the cgroup's
    /// parent (the root is left as it is): on a hybrid host the unified
    /// hierarchy is joined without controllers, and hugetlb is enabled
    /// there only when a limit needs it and the host enabled it in the root.
    pub(crate) fn enable_along_path(&self, ctrls: &[String]) {
        let rel = self.path.strip_prefix(&self.mount).unwrap_or(Path::new(""));
        let mut dir = self.mount.clone();
        let comps: Vec<_> = rel.components().collect();
        for c in comps.iter().take(comps.len().saturating_sub(1)) {
            dir.push(c);
            self.enable_controllers(&dir, ctrls);
        }
    }

    /// The cgroup directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the hierarchy's root has `ctrl` enabled for its children
    /// (root `cgroup.subtree_control`).
    pub(crate) fn root_enables(&self, ctrl: &str) -> bool {
        read(&self.mount, "cgroup.subtree_control")
            .is_ok_and(|s| s.split_whitespace().any(|c| c == ctrl))
    }

    /// Controllers the hierarchy offers (root `cgroup.controllers`).
    pub(crate) fn root_controllers(&self) -> Vec<String> {
        read(&self.mount, "cgroup.controllers")
            .map(|s| s.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default()
    }

    fn enable_controllers(&self, dir: &Path, ctrls: &[String]) {
        if ctrls.is_empty() {
            return;
        }
        let all: Vec<String> = ctrls.iter().map(|c| format!("+{c}")).collect();
        if util::write_raw(dir, "cgroup.subtree_control", &all.join(" ")).is_err() {
            // Some controller could not be enabled: enable what we can; a limit
            // needing a missing controller fails later naming its field.
            for c in &all {
                let _ = util::write_raw(dir, "cgroup.subtree_control", c);
            }
        }
    }

    fn set(
        &self,
        controller: &str,
        file: &str,
        value: &str,
        what: &str,
        field: &str,
    ) -> Result<(), CgroupError> {
        set(&self.path, controller, file, value, what, field)
    }

    fn apply_memory(&self, m: &LinuxMemory) -> Result<(), CgroupError> {
        if let Some(l) = m.limit() {
            if l < -1 {
                return Err(CgroupError::InvalidValue {
                    field: "linux.resources.memory.limit".into(),
                    reason: l.to_string(),
                });
            }
        }
        let swap = swap_max(m.swap(), m.limit())?;
        if let Some(l) = m.limit() {
            self.set(
                "memory",
                "memory.max",
                &num_or_max(l),
                "set memory limit",
                "linux.resources.memory.limit",
            )?;
        }
        if let Some(s) = swap {
            let r = self.set(
                "memory",
                "memory.swap.max",
                &s,
                "set swap limit",
                "linux.resources.memory.swap",
            );
            match r {
                // Unlimited swap on a host without swap accounting: nothing to do.
                Err(CgroupError::Unsupported { .. }) if s == "max" => {}
                r => r?,
            }
        }
        if let Some(r) = m.reservation() {
            self.set(
                "memory",
                "memory.low",
                &num_or_max(r),
                "set memory reservation",
                "linux.resources.memory.reservation",
            )?;
        }
        if m.swappiness().is_some() {
            return Err(CgroupError::Unsupported {
                field: "linux.resources.memory.swappiness".into(),
                reason: "cgroup v2 has no memory.swappiness".into(),
            });
        }
        // kernel, kernelTCP: ignored (deprecated); disableOOMKiller: not
        // available in cgroup v2, ignored like runc does.
        Ok(())
    }

    fn apply_cpu(&self, c: &LinuxCpu) -> Result<(), CgroupError> {
        if let Some(s) = c.shares().filter(|s| *s != 0) {
            self.set(
                "cpu",
                "cpu.weight",
                &shares_to_weight(s).to_string(),
                "set cpu weight",
                "linux.resources.cpu.shares",
            )?;
        }
        let quota = c.quota().unwrap_or(0);
        let period = c.period().unwrap_or(0);
        if quota != 0 || period != 0 {
            let mut v = if quota > 0 {
                quota.to_string()
            } else {
                "max".to_string()
            };
            if period != 0 {
                v.push(' ');
                v.push_str(&period.to_string());
            }
            self.set(
                "cpu",
                "cpu.max",
                &v,
                "set cpu quota",
                "linux.resources.cpu.quota",
            )?;
        }
        if let Some(b) = c.burst() {
            self.set(
                "cpu",
                "cpu.max.burst",
                &b.to_string(),
                "set cpu burst",
                "linux.resources.cpu.burst",
            )?;
        }
        if let Some(i) = c.idle() {
            self.set(
                "cpu",
                "cpu.idle",
                &i.to_string(),
                "set cpu idle",
                "linux.resources.cpu.idle",
            )?;
        }
        if c.realtime_runtime().is_some_and(|v| v != 0)
            || c.realtime_period().is_some_and(|v| v != 0)
        {
            return Err(CgroupError::Unsupported {
                field: "linux.resources.cpu.realtimeRuntime".into(),
                reason: "cgroup v2 has no realtime cpu controls".into(),
            });
        }
        if let Some(s) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
            self.set(
                "cpuset",
                "cpuset.cpus",
                s,
                "set cpuset cpus",
                "linux.resources.cpu.cpus",
            )?;
        }
        if let Some(s) = c.mems().as_deref().filter(|s| !s.is_empty()) {
            self.set(
                "cpuset",
                "cpuset.mems",
                s,
                "set cpuset mems",
                "linux.resources.cpu.mems",
            )?;
        }
        Ok(())
    }

    fn apply_io(&self, b: &LinuxBlockIo) -> Result<(), CgroupError> {
        if let Some(w) = b.weight().filter(|w| *w != 0) {
            let v = format!("default {}", blkio_weight_to_io_weight(u64::from(w)));
            match self.set(
                "io",
                "io.weight",
                &v,
                "set io weight",
                "linux.resources.blockIO.weight",
            ) {
                Err(CgroupError::Unsupported { .. }) => self
                    .set(
                        "io",
                        "io.bfq.weight",
                        &w.to_string(),
                        "set io weight",
                        "linux.resources.blockIO.weight",
                    )
                    .map_err(|_| CgroupError::Unsupported {
                        field: "linux.resources.blockIO.weight".into(),
                        reason: "the host's io controller has neither io.weight nor io.bfq.weight"
                            .into(),
                    })?,
                r => r?,
            }
        }
        if b.leaf_weight().is_some_and(|w| w != 0) {
            return Err(CgroupError::Unsupported {
                field: "linux.resources.blockIO.leafWeight".into(),
                reason: "cgroup v2 has no leaf weight".into(),
            });
        }
        for d in b.weight_device().iter().flatten() {
            if d.leaf_weight().is_some_and(|w| w != 0) {
                return Err(CgroupError::Unsupported {
                    field: "linux.resources.blockIO.weightDevice.leafWeight".into(),
                    reason: "cgroup v2 has no leaf weight".into(),
                });
            }
            if let Some(w) = d.weight() {
                let v = format!(
                    "{}:{} {}",
                    d.major(),
                    d.minor(),
                    blkio_weight_to_io_weight(u64::from(w))
                );
                self.set(
                    "io",
                    "io.weight",
                    &v,
                    "set device io weight",
                    "linux.resources.blockIO.weightDevice",
                )?;
            }
        }
        let mut max: BTreeMap<(i64, i64), Vec<String>> = BTreeMap::new();
        let lists = [
            (b.throttle_read_bps_device(), "rbps"),
            (b.throttle_write_bps_device(), "wbps"),
            (b.throttle_read_iops_device(), "riops"),
            (b.throttle_write_iops_device(), "wiops"),
        ];
        for (list, key) in lists {
            for d in list.iter().flatten() {
                max.entry((d.major(), d.minor()))
                    .or_default()
                    .push(format!("{key}={}", d.rate()));
            }
        }
        for ((ma, mi), kv) in max {
            let v = format!("{ma}:{mi} {}", kv.join(" "));
            self.set(
                "io",
                "io.max",
                &v,
                "set io throttle",
                "linux.resources.blockIO.throttle*Device",
            )?;
        }
        Ok(())
    }

    /// Writes hugetlb limits (also used by the v1 backend on hybrid hosts).
    pub(crate) fn apply_hugetlb(&self, limits: &[LinuxHugepageLimit]) -> Result<(), CgroupError> {
        for l in limits {
            let field = "linux.resources.hugepageLimits";
            util::check_page_size(l.page_size(), field)?;
            // The limit is of reservations where the kernel has them
            // (runtime-spec 1.2, as runc), and of page faults as well.
            let rsvd = format!("hugetlb.{}.rsvd.max", l.page_size());
            if self.path.join(&rsvd).exists() {
                self.set(
                    "hugetlb",
                    &rsvd,
                    &num_or_max(l.limit()),
                    "set hugetlb reservation limit",
                    field,
                )?;
            }
            let file = format!("hugetlb.{}.max", l.page_size());
            self.set(
                "hugetlb",
                &file,
                &num_or_max(l.limit()),
                "set hugetlb limit",
                field,
            )?;
        }
        Ok(())
    }

    pub(crate) fn apply_rdma(
        &self,
        rdma: &std::collections::HashMap<String, LinuxRdma>,
    ) -> Result<(), CgroupError> {
        apply_rdma(&self.path, rdma)
    }

    /// Compiles `rules` to an eBPF device filter and attaches it to the cgroup,
    /// replacing device filters attached earlier to the same cgroup.
    pub(crate) fn apply_devices(&self, rules: &[LinuxDeviceCgroup]) -> Result<(), CgroupError> {
        let rules = devices::parse_rules(rules)?;
        let insns = devices::bpf_program(&rules);
        let bpf_err = |action: &str, source: io::Error, log: String| CgroupError::Bpf {
            action: action.to_string(),
            dir: self.path.clone(),
            source,
            log,
        };
        let prog = sys::prog_load_cgroup_device(&insns)
            .map_err(|(e, log)| bpf_err("load the eBPF device filter", e, log))?;
        let dir = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY)
            .open(&self.path)
            .map_err(|e| bpf_err("open the cgroup directory", e, String::new()))?;
        let old = sys::prog_query(dir.as_fd()).unwrap_or_default();
        sys::prog_attach(dir.as_fd(), prog.as_fd())
            .map_err(|e| bpf_err("attach the eBPF device filter", e, String::new()))?;
        for id in old {
            if let Ok(p) = sys::prog_get_fd_by_id(id) {
                let _ = sys::prog_detach(dir.as_fd(), p.as_fd());
            }
        }
        Ok(())
    }

    /// Hugetlb statistics (usage and failcnt from hugetlb.<size>.events max).
    pub(crate) fn hugetlb_stats(&self) -> BTreeMap<String, HugetlbStats> {
        let mut out = BTreeMap::new();
        for size in util::hugepage_sizes() {
            let Some(usage) = util::read_u64(&self.path, &format!("hugetlb.{size}.current")) else {
                continue;
            };
            let failcnt = util::flat_keyed(&self.path, &format!("hugetlb.{size}.events"))
                .get("max")
                .copied()
                .unwrap_or(0);
            out.insert(
                size,
                HugetlbStats {
                    usage,
                    max: 0,
                    failcnt,
                },
            );
        }
        out
    }

    fn is_frozen(&self) -> Result<bool, CgroupError> {
        let ev = util::read_ctl(&self.path, "cgroup.events", "read freezer state")?;
        Ok(util::parse_flat_keyed(&ev).get("frozen") == Some(&1))
    }
}

/// Writes rdma.max (same format in v1 and v2).
pub(crate) fn apply_rdma(
    dir: &Path,
    rdma: &std::collections::HashMap<String, LinuxRdma>,
) -> Result<(), CgroupError> {
    let mut devs: Vec<_> = rdma.iter().collect();
    devs.sort_by(|a, b| a.0.cmp(b.0));
    for (dev, r) in devs {
        if dev.is_empty() || dev.contains(char::is_whitespace) {
            return Err(CgroupError::InvalidValue {
                field: "linux.resources.rdma".into(),
                reason: format!("bad device name {dev:?}"),
            });
        }
        let mut v = dev.clone();
        if let Some(h) = r.hca_handles() {
            v.push_str(&format!(" hca_handle={h}"));
        }
        if let Some(o) = r.hca_objects() {
            v.push_str(&format!(" hca_object={o}"));
        }
        set(
            dir,
            "rdma",
            "rdma.max",
            &v,
            "set rdma limit",
            "linux.resources.rdma",
        )?;
    }
    Ok(())
}

impl CgroupManager for V2Manager {
    fn version(&self) -> CgroupVersion {
        CgroupVersion::V2
    }

    fn create(&self) -> Result<(), CgroupError> {
        if self.delegated {
            if let Some(parent) = self.path.parent() {
                crate::delegation::prepare(parent)?;
            }
            // Above the subtree's top nothing is the user's to write.
            return self.create_enabling(&[]);
        }
        self.create_enabling(&self.root_controllers())
    }

    fn add_task_v1(&self, _pid: i32) -> Result<(), CgroupError> {
        Ok(())
    }

    fn add_task_unified(&self, pid: i32) -> Result<(), CgroupError> {
        write_ctl(
            &self.path,
            "cgroup.procs",
            &pid.to_string(),
            &format!("add process {pid}"),
        )
    }

    fn unified_dir(&self) -> Option<PathBuf> {
        Some(self.path.clone())
    }

    fn enter_v1_self(&self) -> Result<(), CgroupError> {
        Ok(())
    }

    fn apply(&self, r: &LinuxResources) -> Result<(), CgroupError> {
        if let Some(m) = r.memory() {
            self.apply_memory(m)?;
        }
        if let Some(c) = r.cpu() {
            self.apply_cpu(c)?;
        }
        if let Some(p) = r.pids() {
            self.set(
                "pids",
                "pids.max",
                &num_or_max(if p.limit() <= 0 { -1 } else { p.limit() }),
                "set pids limit",
                "linux.resources.pids.limit",
            )?;
        }
        if let Some(b) = r.block_io() {
            self.apply_io(b)?;
        }
        if let Some(h) = r.hugepage_limits() {
            self.apply_hugetlb(h)?;
        }
        if let Some(rdma) = r.rdma() {
            self.apply_rdma(rdma)?;
        }
        if let Some(n) = r.network() {
            if n.class_id().is_some() || n.priorities().as_ref().is_some_and(|p| !p.is_empty()) {
                return Err(CgroupError::Unsupported {
                    field: "linux.resources.network".into(),
                    reason: "cgroup v2 has no net_cls/net_prio controllers".into(),
                });
            }
        }
        if let Some(u) = r.unified() {
            let mut keys: Vec<_> = u.iter().collect();
            keys.sort_by(|a, b| a.0.cmp(b.0));
            for (k, v) in keys {
                let field = format!("linux.resources.unified[{k:?}]");
                if k.is_empty() || k.contains('/') || k.starts_with('.') || !k.contains('.') {
                    return Err(CgroupError::InvalidValue {
                        field,
                        reason: "not a cgroup interface file name".into(),
                    });
                }
                let ctrl = k.split('.').next().unwrap_or("");
                self.set(ctrl, k, v, "set unified value", &field)?;
            }
        }
        if let Some(d) = r.devices().as_ref().filter(|_| !self.delegated) {
            self.apply_devices(d)?;
        }
        Ok(())
    }

    fn freeze(&self) -> Result<(), CgroupError> {
        write_ctl(&self.path, "cgroup.freeze", "1", "freeze")?;
        let start = Instant::now();
        loop {
            if self.is_frozen()? {
                return Ok(());
            }
            if start.elapsed() > util::FREEZE_TIMEOUT {
                let _ = util::write_raw(&self.path, "cgroup.freeze", "0");
                return Err(CgroupError::Timeout {
                    what: "freeze".into(),
                    dir: self.path.clone(),
                    ms: util::FREEZE_TIMEOUT.as_millis() as u64,
                });
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn thaw(&self) -> Result<(), CgroupError> {
        write_ctl(&self.path, "cgroup.freeze", "0", "thaw")
    }

    fn freezer_state(&self) -> Result<FreezerState, CgroupError> {
        Ok(if self.is_frozen()? {
            FreezerState::Frozen
        } else {
            FreezerState::Thawed
        })
    }

    fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        let mut v = Vec::new();
        util::collect_pids(&self.path, &mut v).map_err(|e| {
            util::io_err("list processes", &self.path, "read cgroup.procs".into(), e)
        })?;
        Ok(v)
    }

    fn stats(&self) -> Result<Stats, CgroupError> {
        let p = &self.path;
        let mut s = Stats::default();
        let cpu = util::flat_keyed(p, "cpu.stat");
        let g = |k: &str| cpu.get(k).copied().unwrap_or(0);
        s.cpu.usage.total = g("usage_usec") * 1000;
        s.cpu.usage.user = g("user_usec") * 1000;
        s.cpu.usage.kernel = g("system_usec") * 1000;
        s.cpu.throttling.periods = g("nr_periods");
        s.cpu.throttling.throttled_periods = g("nr_throttled");
        s.cpu.throttling.throttled_time = g("throttled_usec") * 1000;

        let limit = |f: &str| util::read_u64(p, f).unwrap_or(u64::MAX);
        let events = util::flat_keyed(p, "memory.events");
        s.memory.usage = MemoryEntry {
            limit: limit("memory.max"),
            usage: util::read_u64(p, "memory.current").unwrap_or(0),
            max: util::read_u64(p, "memory.peak").unwrap_or(0),
            failcnt: events.get("max").copied().unwrap_or(0),
        };
        s.memory.swap = MemoryEntry {
            limit: limit("memory.swap.max"),
            usage: util::read_u64(p, "memory.swap.current").unwrap_or(0),
            max: util::read_u64(p, "memory.swap.peak").unwrap_or(0),
            failcnt: util::flat_keyed(p, "memory.swap.events")
                .get("max")
                .copied()
                .unwrap_or(0),
        };
        s.memory.raw = util::flat_keyed(p, "memory.stat");
        s.memory.cache = s.memory.raw.get("file").copied().unwrap_or(0);
        s.memory.kernel.usage = s.memory.raw.get("kernel").copied().unwrap_or(0);
        s.memory.kernel_tcp.usage = s.memory.raw.get("sock").copied().unwrap_or(0);

        s.pids.current = util::read_u64(p, "pids.current").unwrap_or(0);
        s.pids.limit = util::read_u64(p, "pids.max").unwrap_or(0);

        if let Ok(io) = read(p, "io.stat") {
            let (bytes, ios) = stats::parse_io_stat(&io);
            s.blkio.io_service_bytes_recursive = bytes;
            s.blkio.io_serviced_recursive = ios;
        }
        s.hugetlb = self.hugetlb_stats();
        Ok(s)
    }

    fn oom_kill_count(&self) -> Result<u64, CgroupError> {
        Ok(util::flat_keyed(&self.path, "memory.events")
            .get("oom_kill")
            .copied()
            .unwrap_or(0))
    }

    fn kill_all(&self, signal: Signal) -> Result<(), CgroupError> {
        if signal == Signal::SIGKILL {
            match util::write_raw(&self.path, "cgroup.kill", "1") {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(util::io_err(
                        "kill processes",
                        &self.path,
                        "write cgroup.kill".into(),
                        e,
                    ))
                }
            }
        }
        let pids = self.pids()?;
        util::signal_all(&pids, signal)
            .map_err(|e| util::io_err("signal processes", &self.path, format!("kill({signal})"), e))
    }

    fn destroy(&self) -> Result<(), CgroupError> {
        util::remove_cgroup(&self.path, Instant::now() + util::RMDIR_TIMEOUT)?;
        if let Ok(c) = self.created.lock() {
            util::remove_created_ancestors(&c, &self.path);
        }
        Ok(())
    }

    fn paths(&self) -> BTreeMap<String, PathBuf> {
        BTreeMap::from([("unified".to_string(), self.path.clone())])
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(262_144), 10000);
        assert_eq!(blkio_weight_to_io_weight(10), 1);
        assert_eq!(blkio_weight_to_io_weight(1000), 10000);
        assert_eq!(blkio_weight_to_io_weight(500), 1 + 490 * 9999 / 990);
        assert_eq!(swap_max(Some(200), Some(100)).unwrap(), Some("100".into()));
        assert_eq!(swap_max(Some(-1), Some(100)).unwrap(), Some("max".into()));
        assert_eq!(swap_max(None, Some(-1)).unwrap(), Some("max".into()));
        assert_eq!(swap_max(None, Some(100)).unwrap(), None);
        assert_eq!(swap_max(Some(100), Some(100)).unwrap(), Some("0".into()));
        assert!(swap_max(Some(50), Some(100)).is_err());
        assert!(swap_max(Some(50), None).is_err());
    }
}
