use berth_runtime::{Result, Runtime};
use clap::Args;

#[derive(Args)]
pub struct StartArgs {
    id: String,
}

pub fn run(rt: &Runtime, a: StartArgs) -> Result<i32> {
    rt.start(&a.id)?;
    Ok(0)
}
