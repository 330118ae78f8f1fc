use berth_runtime::{Result, Runtime};
use clap::Args;

#[derive(Args)]
pub struct DeleteArgs {
    /// Kill the container first if it is still running
    #[arg(short, long)]
    force: bool,
    id: String,
}

pub fn run(rt: &Runtime, a: DeleteArgs) -> Result<i32> {
    rt.delete(&a.id, a.force)?;
    Ok(0)
}
