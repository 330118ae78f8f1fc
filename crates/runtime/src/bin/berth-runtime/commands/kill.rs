use berth_runtime::container::parse_signal;
use berth_runtime::{Result, Runtime};
use clap::Args;

#[derive(Args)]
pub struct KillArgs {
    /// Signal every process in the container's cgroup
    #[arg(short, long)]
    all: bool,
    id: String,
    /// Signal name (TERM, SIGKILL) or number
    #[arg(default_value = "SIGTERM")]
    signal: String,
}

pub fn run(rt: &Runtime, a: KillArgs) -> Result<i32> {
    let sig = parse_signal(&a.signal)?;
    rt.kill(&a.id, sig, a.all)?;
    Ok(0)
}
