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
        berth_cgroups::open_manager(&format!("/berth-{id}"), id)
            .map_err(|e| EngineError::Other(e.to_string()))
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
