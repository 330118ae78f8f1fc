//! `berth stats` and `berth update`: a running container's resource usage
//! from its cgroup, and new limits applied through the runtime.

use crate::containers::State;
use crate::error::{ConflictKind, EngineError, Result};

use crate::Engine;
use std::time::{Duration, Instant};

/// One sample of `docker stats`' columns.
#[derive(Debug, Clone, Default)]
pub struct StatsSample {
    pub id: String,
    pub name: String,
    pub cpu_percent: f64,
    pub mem_usage: u64,
    /// The memory limit, or the host's memory when there is none.
    pub mem_limit: u64,
    pub net_rx: u64,
    pub net_tx: u64,
    pub block_read: u64,
    pub block_write: u64,
    pub pids: u64,
}

fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            let l = t.lines().find(|l| l.starts_with("MemTotal:"))?;
            l.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kb| kb * 1024)
}

/// Received and sent bytes of the network namespace `pid` is in, loopback
/// excluded.
fn net_io(pid: i32) -> (u64, u64) {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/dev")) else {
        return (0, 0);
    };
    text.lines()
        .skip(2)
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            if name.trim() == "lo" {
                return None;
            }
            let f: Vec<u64> = rest
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            Some((*f.first()?, *f.get(8)?))
        })
        .fold((0, 0), |(r, t), (a, b)| (r + a, t + b))
}

impl Engine {
    fn cgroup_of(&self, id: &str) -> Result<Box<dyn berth_cgroups::CgroupManager>> {
        let err = |e: berth_cgroups::CgroupError| EngineError::Other(e.to_string());
        if self.rootless {
            // The cgroup its bundle names (in the subtree delegated to the
            // user when the container was started), else none.
            let path = self.bundle_cgroups_path(id).unwrap_or_default();
            return Ok(berth_cgroups::delegated_manager(&path, id)
                .map_err(err)?
                .unwrap_or_else(|| Box::new(berth_cgroups::NoCgroup)));
        }
        berth_cgroups::open_manager(&format!("/berth-{id}"), id).map_err(err)
    }

    /// `linux.cgroupsPath` of the container's bundle.
    fn bundle_cgroups_path(&self, id: &str) -> Option<String> {
        let id = crate::containers::ContainerId::parse(id)?;
        let text = std::fs::read(self.bundle_dir(&id).join("config.json")).ok()?;
        let spec: oci_spec::runtime::Spec = serde_json::from_slice(&text).ok()?;
        let path = spec.linux().as_ref()?.cgroups_path().as_ref()?;
        Some(path.to_string_lossy().into_owned())
    }

    /// Two samples `interval` apart, so CPU % is over that interval.
    pub fn stats(&self, names: &[String], interval: Duration) -> Result<Vec<StatsSample>> {
        let mut targets = Vec::new();
        for n in names {
            let c = self.container(n)?;
            targets.push(c);
        }
        if names.is_empty() {
            targets = self
                .container_records()?
                .into_iter()
                .filter(|c| c.state == State::Running)
                .collect();
        }
        let first: Vec<(u64, Instant)> = targets
            .iter()
            .map(|c| {
                let total = self
                    .cgroup_of(c.id.as_str())
                    .and_then(|cg| cg.stats().map_err(|e| EngineError::Other(e.to_string())))
                    .map_or(0, |s| s.cpu.usage.total);
                (total, Instant::now())
            })
            .collect();
        std::thread::sleep(interval);
        let host_mem = host_memory();
        let mut out = Vec::new();
        for (c, (cpu0, t0)) in targets.iter().zip(first) {
            let mut s = StatsSample {
                id: c.id.to_string(),
                name: c.name.clone(),
                ..StatsSample::default()
            };
            if c.state == State::Running {
                if let Ok(st) = self
                    .cgroup_of(c.id.as_str())
                    .and_then(|cg| cg.stats().map_err(|e| EngineError::Other(e.to_string())))
                {
                    let elapsed = t0.elapsed().as_nanos().max(1) as f64;
                    s.cpu_percent =
                        st.cpu.usage.total.saturating_sub(cpu0) as f64 / elapsed * 100.0;
                    // Docker's usage excludes the page cache.
                    s.mem_usage = st.memory.usage.usage.saturating_sub(
                        st.memory
                            .raw
                            .get("total_inactive_file")
                            .copied()
                            .unwrap_or(0),
                    );
                    s.mem_limit = if st.memory.usage.limit == 0 || st.memory.usage.limit >= host_mem
                    {
                        host_mem
                    } else {
                        st.memory.usage.limit
                    };
                    s.pids = st.pids.current;
                    for e in &st.blkio.io_service_bytes_recursive {
                        match e.op.as_str() {
                            "Read" | "read" => s.block_read += e.value,
                            "Write" | "write" => s.block_write += e.value,
                            _ => {}
                        }
                    }
                }
                let pid = self.live(c).pid;
                if pid > 0 {
                    (s.net_rx, s.net_tx) = net_io(pid);
                }
            }
            out.push(s);
        }
        Ok(out)
    }

    /// `berth update`: new limits on a (running) container through the
    /// runtime's `update --resources`.
    pub fn update(&self, name: &str, resources: &serde_json::Value) -> Result<String> {
        let c = self.container(name)?;
        if c.state != State::Running {
            return Err(EngineError::conflict(
                ConflictKind::NotRunning,
                format!("Cannot update container {}: container is not running", c.id),
            ));
        }
        if self.rootless && self.delegation().is_none() {
            return Err(EngineError::Unsupported(
                "rootless berth cannot update resource limits: this host delegates no cgroup to the user".into(),
            ));
        }
        match self.runtime(&c).update(c.id.as_str(), resources) {
            Ok(()) => {}
            Err(e @ crate::runtime::RuntimeError::Failed(_)) => {
                return Err(EngineError::Invalid(e.to_string()))
            }
            Err(e) => return Err(e.into()),
        }
        Ok(c.id.to_string())
    }
}

/// One network interface's counters (Docker's `networks.IFACE`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetCounters {
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

/// A container's raw counters at one moment, as Docker's stats API
/// reports them (the client computes the percentages from two).
#[derive(Debug, Clone)]
pub struct RawStats {
    pub id: String,
    pub name: String,
    pub running: bool,
    pub read: std::time::SystemTime,
    /// The cgroup's counters (None when the container does not run).
    pub cgroup: Option<berth_cgroups::Stats>,
    /// The host's CPU time in nanoseconds (/proc/stat's `cpu` line).
    pub system_cpu_usage: u64,
    pub online_cpus: u32,
    /// The memory limit, or the host's memory when there is none.
    pub mem_limit: u64,
    /// Per interface of the container's network namespace (no loopback).
    pub networks: Vec<(String, NetCounters)>,
}

/// The host's CPU time (nanoseconds) and online CPUs, from /proc/stat.
fn system_cpu() -> (u64, u32) {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let tck = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .filter(|t| *t > 0)
        .unwrap_or(100) as u64;
    let mut total = 0;
    let mut cpus = 0;
    for l in text.lines() {
        let mut w = l.split_whitespace();
        match w.next() {
            Some("cpu") => {
                let ticks: u64 = w.take(8).filter_map(|x| x.parse::<u64>().ok()).sum();
                total = ticks.saturating_mul(1_000_000_000 / tck);
            }
            Some(c) if c.starts_with("cpu") => cpus += 1,
            _ => {}
        }
    }
    (total, cpus.max(1))
}

fn net_counters(pid: i32) -> Vec<(String, NetCounters)> {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/dev")) else {
        return Vec::new();
    };
    text.lines()
        .skip(2)
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let name = name.trim();
            if name == "lo" {
                return None;
            }
            let f: Vec<u64> = rest
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            let g = |i: usize| f.get(i).copied().unwrap_or(0);
            Some((
                name.to_owned(),
                NetCounters {
                    rx_bytes: g(0),
                    rx_packets: g(1),
                    rx_errors: g(2),
                    rx_dropped: g(3),
                    tx_bytes: g(8),
                    tx_packets: g(9),
                    tx_errors: g(10),
                    tx_dropped: g(11),
                },
            ))
        })
        .collect()
}

impl Engine {
    /// Container `name`'s raw counters now (Docker's stats API).
    pub fn stats_raw(&self, name: &str) -> Result<RawStats> {
        let c = self.container(name)?;
        let running = c.state == State::Running;
        let cgroup = if running {
            self.cgroup_of(c.id.as_str())
                .and_then(|cg| cg.stats().map_err(|e| EngineError::Other(e.to_string())))
                .ok()
        } else {
            None
        };
        let (system_cpu_usage, online_cpus) = system_cpu();
        let host_mem = host_memory();
        let mem_limit = match &cgroup {
            Some(st) if st.memory.usage.limit != 0 && st.memory.usage.limit < host_mem => {
                st.memory.usage.limit
            }
            _ => host_mem,
        };
        let pid = if running { self.live(&c).pid } else { 0 };
        Ok(RawStats {
            id: c.id.to_string(),
            name: c.name.clone(),
            running,
            read: std::time::SystemTime::now(),
            cgroup,
            system_cpu_usage,
            online_cpus,
            mem_limit,
            networks: if pid > 0 {
                net_counters(pid)
            } else {
                Vec::new()
            },
        })
    }
}
