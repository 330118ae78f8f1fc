use berth_runtime::{Result, Runtime};
use clap::Args;

#[derive(Args)]
pub struct PauseArgs {
    id: String,
}

pub fn pause(rt: &Runtime, a: PauseArgs) -> Result<i32> {
    rt.pause(&a.id)?;
    Ok(0)
}

pub fn resume(rt: &Runtime, a: PauseArgs) -> Result<i32> {
    rt.resume(&a.id)?;
    Ok(0)
}
