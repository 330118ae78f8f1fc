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
    // As runc: an unknown container before a bad signal.
    rt.load(&a.id)?;
    // Signal 0 (only checks the process exists) is valid here, as in runc.
    let sig = match a.signal.as_str() {
        "0" => None,
        s => Some(parse_signal(s)?),
    };
    rt.signal(&a.id, sig, a.all)?;
    Ok(0)
}
