//! cgroup v1 backend (including the hybrid layout with a cgroup2 mount at
//! /sys/fs/cgroup/unified, which is joined too and used for hugetlb when the
//! host enabled that controller in its root).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxNetwork, LinuxResources};

use crate::mountinfo::{self, CgroupMounts};
use crate::stats::{self, HugetlbStats, MemoryEntry, Stats};
use crate::util::{self, read, set, write_ctl};
use crate::v2::V2Manager;
use crate::{devices, CgroupError, CgroupManager, CgroupVersion, FreezerState};

#[derive(Debug)]
struct Hierarchy {
    controllers: Vec<String>,
    mount: PathBuf,
    path: PathBuf,
}

impl Hierarchy {
    /// The cgroup's path below the hierarchy's root.
    fn rel(&self) -> &Path {
        self.path.strip_prefix(&self.mount).unwrap_or(Path::new(""))
    }
}

/// Manager of one cgroup in every mounted cgroup v1 hierarchy.
#[derive(Debug)]
pub struct V1Manager {
    hierarchies: Vec<Hierarchy>,
    /// The cgroup2 hierarchy of a hybrid host.
    unified: Option<V2Manager>,
    /// Directories created by `create()` (outermost first, per hierarchy).
    created: Mutex<Vec<PathBuf>>,
}

fn unsupported(field: &str, reason: impl Into<String>) -> CgroupError {
    CgroupError::Unsupported {
        field: field.to_string(),
        reason: reason.into(),
    }
}

impl V1Manager {
    /// A manager for `cgroups_path` (empty → "/berth/<container_id>"),
    /// discovering hierarchies from /proc/self/mountinfo.
    pub fn new(cgroups_path: &str, container_id: &str) -> Result<Self, CgroupError> {
        Self::with_rel(crate::normalize_cgroups_path(cgroups_path, container_id)?)
    }

    pub(crate) fn with_rel(rel: PathBuf) -> Result<Self, CgroupError> {
        Ok(Self::from_mounts(rel, Self::mounts()?, &BTreeMap::new()))
    }

    /// The cgroup `name` under `parents` (keyed by controller list as
    /// /proc/self/cgroup names them; "" for the cgroup2 hierarchy) in each
    /// hierarchy, under its root where `parents` has no entry.
    pub(crate) fn with_parents(
        name: PathBuf,
        parents: &BTreeMap<String, PathBuf>,
    ) -> Result<Self, CgroupError> {
        Ok(Self::from_mounts(name, Self::mounts()?, parents))
    }

    fn mounts() -> Result<CgroupMounts, CgroupError> {
        let text = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| CgroupError::Detect(format!("cannot read /proc/self/mountinfo: {e}")))?;
        let mounts = mountinfo::parse(&text);
        if mounts.v1.is_empty() {
            return Err(CgroupError::Detect(
                "no cgroup v1 hierarchy is mounted (see /proc/self/mountinfo)".into(),
            ));
        }
        Ok(mounts)
    }

    fn from_mounts(
        rel: PathBuf,
        mounts: CgroupMounts,
        parents: &BTreeMap<String, PathBuf>,
    ) -> Self {
        let parent_of = |controllers: &[String]| -> PathBuf {
            let mut want: Vec<&str> = controllers.iter().map(String::as_str).collect();
            want.sort_unstable();
            parents
                .iter()
                .find(|(k, _)| {
                    let mut have: Vec<&str> = k.split(',').filter(|c| !c.is_empty()).collect();
                    have.sort_unstable();
                    have == want
                })
                .map(|(_, p)| p.clone())
                .unwrap_or_default()
        };
        let hierarchies = mounts
            .v1
            .into_iter()
            .map(|m| Hierarchy {
                path: m.mountpoint.join(parent_of(&m.controllers)).join(&rel),
                mount: m.mountpoint,
                controllers: m.controllers,
            })
            .collect();
        let unified = mounts
            .unified
            .map(|u| V2Manager::with_rel(&u, parent_of(&[]).join(&rel)));
        Self {
            hierarchies,
            unified,
            created: Mutex::new(Vec::new()),
        }
    }

    /// The cgroup directory in the hierarchy holding `controller`.
    pub fn dir(&self, controller: &str) -> Option<&Path> {
        self.hierarchies
            .iter()
            .find(|h| h.controllers.iter().any(|c| c == controller))
            .map(|h| h.path.as_path())
    }

    fn need(&self, controller: &str, field: &str) -> Result<&Path, CgroupError> {
        self.dir(controller).ok_or_else(|| {
            unsupported(
                field,
                format!("the host has no {controller} cgroup controller mounted"),
            )
        })
    }

    /// The hierarchy used to list processes.
    fn primary(&self) -> Option<&Path> {
        ["freezer", "pids", "devices", "memory"]
            .iter()
            .find_map(|c| self.dir(c))
            .or_else(|| self.hierarchies.first().map(|h| h.path.as_path()))
    }

    fn apply_memory(&self, m: &LinuxMemory) -> Result<(), CgroupError> {
        let dir = self.need("memory", "linux.resources.memory")?;
        let set_limit = |v: i64| {
            set(
                dir,
                "memory",
                "memory.limit_in_bytes",
                &v.to_string(),
                "set memory limit",
                "linux.resources.memory.limit",
            )
        };
        let set_swap = |v: i64| {
            set(
                dir,
                "memory",
                "memory.memsw.limit_in_bytes",
                &v.to_string(),
                "set memory+swap limit",
                "linux.resources.memory.swap",
            )
        };
        let limit = m.limit();
        let mut swap = m.swap();
        if limit == Some(-1) && swap.is_none() {
            swap = Some(-1);
        }
        if swap.is_some() && !dir.join("memory.memsw.limit_in_bytes").exists() {
            if swap == Some(-1) {
                swap = None;
            } else {
                return Err(unsupported(
                    "linux.resources.memory.swap",
                    "the host's memory controller has no memory.memsw.limit_in_bytes (swap accounting is disabled)",
                ));
            }
        }
        match (limit, swap) {
            (Some(l), Some(s)) => {
                let cur: i64 = read(dir, "memory.limit_in_bytes")
                    .ok()
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(|v| i64::try_from(v).unwrap_or(i64::MAX))
                    .unwrap_or(i64::MAX);
                // memsw must stay >= limit at every step.
                if s == -1 || cur < s {
                    set_swap(s)?;
                    set_limit(l)?;
                } else {
                    set_limit(l)?;
                    set_swap(s)?;
                }
            }
            (Some(l), None) => set_limit(l)?,
            (None, Some(s)) => set_swap(s)?,
            (None, None) => {}
        }
        if let Some(r) = m.reservation() {
            set(
                dir,
                "memory",
                "memory.soft_limit_in_bytes",
                &r.to_string(),
                "set memory reservation",
                "linux.resources.memory.reservation",
            )?;
        }
        if let Some(s) = m.swappiness() {
            if s > 100 {
                return Err(CgroupError::InvalidValue {
                    field: "linux.resources.memory.swappiness".into(),
                    reason: format!("{s} is above 100"),
                });
            }
            set(
                dir,
                "memory",
                "memory.swappiness",
                &s.to_string(),
                "set swappiness",
                "linux.resources.memory.swappiness",
            )?;
        }
        if m.disable_oom_killer() == Some(true) {
            set(
                dir,
                "memory",
                "memory.oom_control",
                "1",
                "disable the OOM killer",
                "linux.resources.memory.disableOOMKiller",
            )?;
        }
        // kernel / kernelTCP limits are deprecated and ignored.
        Ok(())
    }

    fn apply_cpu(&self, c: &LinuxCpu) -> Result<(), CgroupError> {
        let wants_cpu = c.shares().is_some()
            || c.quota().is_some()
            || c.period().is_some()
            || c.realtime_period().is_some()
            || c.realtime_runtime().is_some()
            || c.burst().is_some()
            || c.idle().is_some();
        if wants_cpu {
            let dir = self.need("cpu", "linux.resources.cpu")?;
            let s = |file: &str, v: String, what: &str, field: &str| {
                set(dir, "cpu", file, &v, what, field)
            };
            if let Some(sh) = c.shares().filter(|v| *v != 0) {
                s(
                    "cpu.shares",
                    sh.to_string(),
                    "set cpu shares",
                    "linux.resources.cpu.shares",
                )?;
            }
            let period = c.period().filter(|v| *v != 0);
            let quota = c.quota().filter(|v| *v != 0);
            if let Some(p) = period {
                let r = s(
                    "cpu.cfs_period_us",
                    p.to_string(),
                    "set cpu period",
                    "linux.resources.cpu.period",
                );
                match (r, quota) {
                    // The new period may conflict with the old quota: quota first.
                    (Err(CgroupError::Io { .. }), Some(q)) => {
                        s(
                            "cpu.cfs_quota_us",
                            q.to_string(),
                            "set cpu quota",
                            "linux.resources.cpu.quota",
                        )?;
                        s(
                            "cpu.cfs_period_us",
                            p.to_string(),
                            "set cpu period",
                            "linux.resources.cpu.period",
                        )?;
                    }
                    (r, _) => r?,
                }
            }
            if let Some(q) = quota {
                s(
                    "cpu.cfs_quota_us",
                    q.to_string(),
                    "set cpu quota",
                    "linux.resources.cpu.quota",
                )?;
            }
            if let Some(b) = c.burst() {
                s(
                    "cpu.cfs_burst_us",
                    b.to_string(),
                    "set cpu burst",
                    "linux.resources.cpu.burst",
                )?;
            }
            if let Some(p) = c.realtime_period().filter(|v| *v != 0) {
                s(
                    "cpu.rt_period_us",
                    p.to_string(),
                    "set realtime period",
                    "linux.resources.cpu.realtimePeriod",
                )?;
            }
            if let Some(r) = c.realtime_runtime().filter(|v| *v != 0) {
                s(
                    "cpu.rt_runtime_us",
                    r.to_string(),
                    "set realtime runtime",
                    "linux.resources.cpu.realtimeRuntime",
                )?;
            }
            if let Some(i) = c.idle() {
                s(
                    "cpu.idle",
                    i.to_string(),
                    "set cpu idle",
                    "linux.resources.cpu.idle",
                )?;
            }
        }
        if let Some(cpus) = c.cpus().as_deref().filter(|v| !v.is_empty()) {
            let dir = self.need("cpuset", "linux.resources.cpu.cpus")?;
            set(
                dir,
                "cpuset",
                "cpuset.cpus",
                cpus,
                "set cpuset cpus",
                "linux.resources.cpu.cpus",
            )?;
        }
        if let Some(mems) = c.mems().as_deref().filter(|v| !v.is_empty()) {
            let dir = self.need("cpuset", "linux.resources.cpu.mems")?;
            set(
                dir,
                "cpuset",
                "cpuset.mems",
                mems,
                "set cpuset mems",
                "linux.resources.cpu.mems",
            )?;
        }
        Ok(())
    }

    fn apply_blkio(&self, b: &LinuxBlockIo) -> Result<(), CgroupError> {
        let dir = self.need("blkio", "linux.resources.blockIO")?;
        // CFQ exposes blkio.weight*, BFQ blkio.bfq.weight*; take what exists.
        let weight = |file: &str, bfq: &str, v: &str, what: &str, field: &str| match set(
            dir, "blkio", file, v, what, field,
        ) {
            Err(CgroupError::Unsupported { .. }) => {
                set(dir, "blkio", bfq, v, what, field).map_err(|e| match e {
                    CgroupError::Unsupported { .. } => unsupported(
                        field,
                        format!("the host's blkio controller has no {file} (nor {bfq})"),
                    ),
                    e => e,
                })
            }
            r => r,
        };
        if let Some(w) = b.weight().filter(|v| *v != 0) {
            weight(
                "blkio.weight",
                "blkio.bfq.weight",
                &w.to_string(),
                "set blkio weight",
                "linux.resources.blockIO.weight",
            )?;
        }
        if let Some(w) = b.leaf_weight().filter(|v| *v != 0) {
            set(
                dir,
                "blkio",
                "blkio.leaf_weight",
                &w.to_string(),
                "set blkio leaf weight",
                "linux.resources.blockIO.leafWeight",
            )?;
        }
        for d in b.weight_device().iter().flatten() {
            if let Some(w) = d.weight() {
                let v = format!("{}:{} {w}", d.major(), d.minor());
                weight(
                    "blkio.weight_device",
                    "blkio.bfq.weight_device",
                    &v,
                    "set device weight",
                    "linux.resources.blockIO.weightDevice",
                )?;
            }
            if let Some(w) = d.leaf_weight() {
                let v = format!("{}:{} {w}", d.major(), d.minor());
                set(
                    dir,
                    "blkio",
                    "blkio.leaf_weight_device",
                    &v,
                    "set device leaf weight",
                    "linux.resources.blockIO.weightDevice.leafWeight",
                )?;
            }
        }
        let lists = [
            (
                b.throttle_read_bps_device(),
                "blkio.throttle.read_bps_device",
                "linux.resources.blockIO.throttleReadBpsDevice",
            ),
            (
                b.throttle_write_bps_device(),
                "blkio.throttle.write_bps_device",
                "linux.resources.blockIO.throttleWriteBpsDevice",
            ),
            (
                b.throttle_read_iops_device(),
                "blkio.throttle.read_iops_device",
                "linux.resources.blockIO.throttleReadIOPSDevice",
            ),
            (
                b.throttle_write_iops_device(),
                "blkio.throttle.write_iops_device",
                "linux.resources.blockIO.throttleWriteIOPSDevice",
            ),
        ];
        for (list, file, field) in lists {
            for d in list.iter().flatten() {
                let v = format!("{}:{} {}", d.major(), d.minor(), d.rate());
                set(dir, "blkio", file, &v, "set blkio throttle", field)?;
            }
        }
        Ok(())
    }

    fn apply_network(&self, n: &LinuxNetwork) -> Result<(), CgroupError> {
        if let Some(id) = n.class_id() {
            let dir = self.need("net_cls", "linux.resources.network.classID")?;
            set(
                dir,
                "net_cls",
                "net_cls.classid",
                &id.to_string(),
                "set network class id",
                "linux.resources.network.classID",
            )?;
        }
        for p in n.priorities().iter().flatten() {
            let field = "linux.resources.network.priorities";
            let dir = self.need("net_prio", field)?;
            if p.name().is_empty() || p.name().contains(char::is_whitespace) {
                return Err(CgroupError::InvalidValue {
                    field: field.into(),
                    reason: format!("bad interface name {:?}", p.name()),
                });
            }
            let v = format!("{} {}", p.name(), p.priority());
            set(
                dir,
                "net_prio",
                "net_prio.ifpriomap",
                &v,
                "set network priority",
                field,
            )?;
        }
        Ok(())
    }

    fn freezer_dir(&self) -> Result<&Path, CgroupError> {
        self.dir("freezer").ok_or_else(|| {
            CgroupError::Detect("the host has no freezer cgroup controller mounted".into())
        })
    }

    fn read_freezer(dir: &Path) -> Result<String, CgroupError> {
        Ok(util::read_ctl(dir, "freezer.state", "read freezer state")?
            .trim()
            .to_string())
    }

    fn create_cpuset(&self, h: &Hierarchy, created: &mut Vec<PathBuf>) -> Result<(), CgroupError> {
        let mut carried = [String::new(), String::new()];
        let files = ["cpuset.cpus", "cpuset.mems"];
        for (i, f) in files.iter().enumerate() {
            carried[i] = util::read_ctl(&h.mount, f, "read cpuset")?
                .trim()
                .to_string();
        }
        util::mkdir_levels(&h.mount, h.rel(), created, |dir, made| {
            for (i, f) in files.iter().enumerate() {
                let cur = if made {
                    String::new()
                } else {
                    util::read_ctl(dir, f, "read cpuset")?.trim().to_string()
                };
                if cur.is_empty() {
                    write_ctl(
                        dir,
                        f,
                        &carried[i],
                        &format!("copy {f} from the parent cgroup"),
                    )?;
                } else {
                    carried[i] = cur;
                }
            }
            Ok(())
        })
    }
}

impl CgroupManager for V1Manager {
    fn version(&self) -> CgroupVersion {
        CgroupVersion::V1
    }

    fn create(&self) -> Result<(), CgroupError> {
        for h in &self.hierarchies {
            let mut created = Vec::new();
            let res = if h.controllers.iter().any(|c| c == "cpuset") {
                self.create_cpuset(h, &mut created)
            } else {
                util::mkdir_levels(&h.mount, h.rel(), &mut created, |_, _| Ok(()))
            };
            // Record what was made even on failure, so destroy cleans up.
            if let Ok(mut all) = self.created.lock() {
                all.extend(created);
            }
            res?;
        }
        if let Some(u) = &self.unified {
            // Joined for tracking only: enabling controllers there would
            // change the host's unified root (and lock hugetlb to it).
            u.create_enabling(&[])?;
        }
        Ok(())
    }

    fn add_task_v1(&self, pid: i32) -> Result<(), CgroupError> {
        let v = pid.to_string();
        let what = format!("add process {pid}");
        for h in &self.hierarchies {
            write_ctl(&h.path, "cgroup.procs", &v, &what)?;
        }
        Ok(())
    }

    fn add_task_unified(&self, pid: i32) -> Result<(), CgroupError> {
        match &self.unified {
            Some(u) => u.add_task_unified(pid),
            None => Ok(()),
        }
    }

    fn unified_dir(&self) -> Option<PathBuf> {
        self.unified.as_ref().and_then(|u| u.unified_dir())
    }

    fn enter_v1_self(&self) -> Result<(), CgroupError> {
        for h in &self.hierarchies {
            write_ctl(&h.path, "tasks", "0", "move this process")?;
        }
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
            let dir = self.need("pids", "linux.resources.pids.limit")?;
            let v = if p.limit() <= 0 {
                "max".to_string()
            } else {
                p.limit().to_string()
            };
            set(
                dir,
                "pids",
                "pids.max",
                &v,
                "set pids limit",
                "linux.resources.pids.limit",
            )?;
        }
        if let Some(b) = r.block_io() {
            self.apply_blkio(b)?;
        }
        if let Some(limits) = r.hugepage_limits().as_ref().filter(|l| !l.is_empty()) {
            let field = "linux.resources.hugepageLimits";
            if let Some(dir) = self.dir("hugetlb") {
                for l in limits {
                    util::check_page_size(l.page_size(), field)?;
                    let rsvd = format!("hugetlb.{}.rsvd.limit_in_bytes", l.page_size());
                    if dir.join(&rsvd).exists() {
                        set(
                            dir,
                            "hugetlb",
                            &rsvd,
                            &l.limit().to_string(),
                            "set hugetlb reservation limit",
                            field,
                        )?;
                    }
                    let file = format!("hugetlb.{}.limit_in_bytes", l.page_size());
                    set(
                        dir,
                        "hugetlb",
                        &file,
                        &l.limit().to_string(),
                        "set hugetlb limit",
                        field,
                    )?;
                }
            } else {
                // As runc and crun on a hybrid host: the limits go to the
                // v1 hierarchy. The unified one is used only where the host
                // itself enabled hugetlb in its root: `+hugetlb` there binds
                // the controller to cgroup2 for the whole host (no v1
                // hugetlb hierarchy can be mounted while it is set, crun
                // refuses the host) and nothing of a container's could take
                // it back safely.
                match &self.unified {
                    Some(u) if u.root_enables("hugetlb") => {
                        u.enable_along_path(&["hugetlb".to_owned()]);
                        u.apply_hugetlb(limits)?
                    }
                    Some(u) if u.root_controllers().iter().any(|c| c == "hugetlb") => {
                        return Err(unsupported(
                            field,
                            "the host has no hugetlb cgroup v1 hierarchy mounted, and hugetlb is not enabled in the unified hierarchy's root (cgroup.subtree_control), which berth leaves to the host",
                        ))
                    }
                    _ => {
                        return Err(unsupported(
                            field,
                            "the host has no hugetlb cgroup controller (neither v1 nor in the unified hierarchy)",
                        ))
                    }
                }
            }
        }
        if let Some(n) = r.network() {
            self.apply_network(n)?;
        }
        if let Some(rdma) = r.rdma().as_ref().filter(|m| !m.is_empty()) {
            let dir = self.need("rdma", "linux.resources.rdma")?;
            crate::v2::apply_rdma(dir, rdma)?;
        }
        if r.unified().as_ref().is_some_and(|u| !u.is_empty()) {
            return Err(unsupported(
                "linux.resources.unified",
                "the host uses cgroup v1; unified (cgroup v2) settings cannot be applied",
            ));
        }
        if let Some(rules) = r.devices() {
            let field = "linux.resources.devices";
            let rules = devices::parse_rules(rules)?;
            let dir = self.need("devices", field)?;
            set(
                dir,
                "devices",
                "devices.deny",
                "a",
                "deny all devices",
                field,
            )?;
            for rule in &rules {
                let file = if rule.allow {
                    "devices.allow"
                } else {
                    "devices.deny"
                };
                set(
                    dir,
                    "devices",
                    file,
                    &rule.v1_line(),
                    "set device rule",
                    field,
                )?;
            }
        }
        Ok(())
    }

    fn freeze(&self) -> Result<(), CgroupError> {
        let dir = self.freezer_dir()?;
        write_ctl(dir, "freezer.state", "FROZEN", "freeze")?;
        let start = Instant::now();
        let mut i = 0u32;
        loop {
            if Self::read_freezer(dir)? == "FROZEN" {
                return Ok(());
            }
            if start.elapsed() > util::FREEZE_TIMEOUT {
                let _ = util::write_raw(dir, "freezer.state", "THAWED");
                return Err(CgroupError::Timeout {
                    what: "freeze".into(),
                    dir: dir.to_path_buf(),
                    ms: util::FREEZE_TIMEOUT.as_millis() as u64,
                });
            }
            i += 1;
            if i.is_multiple_of(10) {
                // Tasks forked mid-freeze may need another kick.
                write_ctl(dir, "freezer.state", "FROZEN", "freeze")?;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn thaw(&self) -> Result<(), CgroupError> {
        write_ctl(self.freezer_dir()?, "freezer.state", "THAWED", "thaw")
    }

    fn freezer_state(&self) -> Result<FreezerState, CgroupError> {
        Ok(if Self::read_freezer(self.freezer_dir()?)? == "FROZEN" {
            FreezerState::Frozen
        } else {
            FreezerState::Thawed
        })
    }

    fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        let mut v = Vec::new();
        if let Some(dir) = self.primary() {
            util::collect_pids(dir, &mut v)
                .map_err(|e| util::io_err("list processes", dir, "read cgroup.procs".into(), e))?;
        }
        Ok(v)
    }

    fn stats(&self) -> Result<Stats, CgroupError> {
        let mut s = Stats::default();
        if let Some(d) = self.dir("cpuacct") {
            s.cpu.usage.total = util::read_u64(d, "cpuacct.usage").unwrap_or(0);
            s.cpu.usage.percpu = read(d, "cpuacct.usage_percpu")
                .map(|t| {
                    t.split_whitespace()
                        .filter_map(|v| v.parse().ok())
                        .collect()
                })
                .unwrap_or_default();
            let st = util::flat_keyed(d, "cpuacct.stat");
            let tck = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
                .ok()
                .flatten()
                .filter(|v| *v > 0)
                .unwrap_or(100) as u64;
            let ns = |k: &str| st.get(k).copied().unwrap_or(0) * (1_000_000_000 / tck);
            s.cpu.usage.user = ns("user");
            s.cpu.usage.kernel = ns("system");
        }
        if let Some(d) = self.dir("cpu") {
            let st = util::flat_keyed(d, "cpu.stat");
            let g = |k: &str| st.get(k).copied().unwrap_or(0);
            s.cpu.throttling.periods = g("nr_periods");
            s.cpu.throttling.throttled_periods = g("nr_throttled");
            s.cpu.throttling.throttled_time = g("throttled_time");
        }
        if let Some(d) = self.dir("memory") {
            let entry = |p: &str| MemoryEntry {
                limit: util::read_u64(d, &format!("{p}.limit_in_bytes")).unwrap_or(u64::MAX),
                usage: util::read_u64(d, &format!("{p}.usage_in_bytes")).unwrap_or(0),
                max: util::read_u64(d, &format!("{p}.max_usage_in_bytes")).unwrap_or(0),
                failcnt: util::read_u64(d, &format!("{p}.failcnt")).unwrap_or(0),
            };
            s.memory.usage = entry("memory");
            s.memory.swap = entry("memory.memsw");
            s.memory.kernel = entry("memory.kmem");
            s.memory.kernel_tcp = entry("memory.kmem.tcp");
            s.memory.raw = util::flat_keyed(d, "memory.stat");
            s.memory.cache = s.memory.raw.get("cache").copied().unwrap_or(0);
        }
        if let Some(d) = self.dir("pids") {
            s.pids.current = util::read_u64(d, "pids.current").unwrap_or(0);
            s.pids.limit = util::read_u64(d, "pids.max").unwrap_or(0);
        }
        if let Some(d) = self.dir("blkio") {
            let pick = |names: [&str; 3]| {
                names
                    .iter()
                    .filter_map(|f| read(d, f).ok())
                    .map(|t| stats::parse_blkio_v1(&t))
                    .find(|v| !v.is_empty())
                    .unwrap_or_default()
            };
            s.blkio.io_service_bytes_recursive = pick([
                "blkio.io_service_bytes_recursive",
                "blkio.bfq.io_service_bytes_recursive",
                "blkio.throttle.io_service_bytes_recursive",
            ]);
            s.blkio.io_serviced_recursive = pick([
                "blkio.io_serviced_recursive",
                "blkio.bfq.io_serviced_recursive",
                "blkio.throttle.io_serviced_recursive",
            ]);
        }
        if let Some(d) = self.dir("hugetlb") {
            for size in util::hugepage_sizes() {
                let f = |k: &str| util::read_u64(d, &format!("hugetlb.{size}.{k}"));
                if let Some(usage) = f("usage_in_bytes") {
                    let h = HugetlbStats {
                        usage,
                        max: f("max_usage_in_bytes").unwrap_or(0),
                        failcnt: f("failcnt").unwrap_or(0),
                    };
                    s.hugetlb.insert(size, h);
                }
            }
        } else if let Some(u) = &self.unified {
            s.hugetlb = u.hugetlb_stats();
        }
        Ok(s)
    }

    fn oom_kill_count(&self) -> Result<u64, CgroupError> {
        Ok(self
            .dir("memory")
            .map(|d| util::flat_keyed(d, "memory.oom_control"))
            .and_then(|m| m.get("oom_kill").copied())
            .unwrap_or(0))
    }

    fn kill_all(&self, signal: Signal) -> Result<(), CgroupError> {
        // With SIGKILL, freeze first so no process can fork a new one unseen.
        let frozen =
            signal == Signal::SIGKILL && self.dir("freezer").is_some() && self.freeze().is_ok();
        let res = self.pids().and_then(|pids| {
            util::signal_all(&pids, signal).map_err(|e| {
                let dir = self.primary().unwrap_or(Path::new("/"));
                util::io_err("signal processes", dir, format!("kill({signal})"), e)
            })
        });
        if frozen {
            self.thaw()?;
        }
        res
    }

    fn destroy(&self) -> Result<(), CgroupError> {
        let deadline = Instant::now() + util::RMDIR_TIMEOUT;
        let mut first_err = None;
        for h in &self.hierarchies {
            if let Err(e) = util::remove_cgroup(&h.path, deadline) {
                first_err.get_or_insert(e);
            }
        }
        if let Some(u) = &self.unified {
            if let Err(e) = u.destroy() {
                first_err.get_or_insert(e);
            }
        }
        if let Ok(created) = self.created.lock() {
            for h in &self.hierarchies {
                let mine: Vec<PathBuf> = created
                    .iter()
                    .filter(|p| p.starts_with(&h.mount))
                    .cloned()
                    .collect();
                util::remove_created_ancestors(&mine, &h.path);
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn paths(&self) -> BTreeMap<String, PathBuf> {
        let mut m: BTreeMap<String, PathBuf> = self
            .hierarchies
            .iter()
            .map(|h| (h.controllers.join(","), h.path.clone()))
            .collect();
        if let Some(u) = &self.unified {
            m.insert("unified".into(), u.path().to_path_buf());
        }
        m
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn comounted() {
        let t = "1 0 0:1 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n";
        let m = V1Manager::from_mounts(
            PathBuf::from("berth/x"),
            mountinfo::parse(t),
            &BTreeMap::new(),
        );
        assert_eq!(
            m.dir("cpuacct").unwrap(),
            Path::new("/sys/fs/cgroup/cpu,cpuacct/berth/x")
        );
        assert_eq!(m.dir("cpu"), m.dir("cpuacct"));
        assert!(m.dir("memory").is_none());
        let e = m.need("memory", "linux.resources.memory").unwrap_err();
        assert_eq!(
            e.to_string(),
            "linux.resources.memory: the host has no memory cgroup controller mounted"
        );
    }
}
