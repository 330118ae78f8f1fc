use berth_runtime::{Result, Runtime, RuntimeError};
use clap::Args;
use oci_spec::runtime::LinuxResources;
use std::path::PathBuf;

#[derive(Args)]
pub struct UpdateArgs {
    /// A JSON file of linux.resources ("-" for stdin)
    #[arg(short, long)]
    resources: Option<PathBuf>,
    /// Memory limit in bytes
    #[arg(long)]
    memory: Option<i64>,
    /// CPU CFS quota in microseconds
    #[arg(long)]
    cpu_quota: Option<i64>,
    /// CPU CFS period in microseconds
    #[arg(long)]
    cpu_period: Option<u64>,
    /// Maximum number of processes
    #[arg(long)]
    pids_limit: Option<i64>,
    id: String,
}

pub fn run(rt: &Runtime, a: UpdateArgs) -> Result<i32> {
    let mut r: LinuxResources = match &a.resources {
        Some(p) => {
            let text = if p.as_os_str() == "-" {
                let mut s = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
                    .map_err(|e| RuntimeError::Other(format!("read stdin: {e}")))?;
                s
            } else {
                std::fs::read_to_string(p)
                    .map_err(|e| RuntimeError::Other(format!("read {}: {e}", p.display())))?
            };
            serde_json::from_str(&text)
                .map_err(|e| RuntimeError::Other(format!("--resources: {e}")))?
        }
        None => LinuxResources::default(),
    };
    if let Some(m) = a.memory {
        let mut mem = (*r.memory()).unwrap_or_default();
        mem.set_limit(Some(m));
        r.set_memory(Some(mem));
    }
    if a.cpu_quota.is_some() || a.cpu_period.is_some() {
        let mut cpu = r.cpu().clone().unwrap_or_default();
        if let Some(q) = a.cpu_quota {
            cpu.set_quota(Some(q));
        }
        if let Some(p) = a.cpu_period {
            cpu.set_period(Some(p));
        }
        r.set_cpu(Some(cpu));
    }
    if let Some(p) = a.pids_limit {
        let mut pids = oci_spec::runtime::LinuxPids::default();
        pids.set_limit(p);
        r.set_pids(Some(pids));
    }
    rt.update(&a.id, &r)?;
    Ok(0)
}
