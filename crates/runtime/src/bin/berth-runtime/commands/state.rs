use berth_runtime::{Result, Runtime};
use clap::Args;

#[derive(Args)]
pub struct StateArgs {
    id: String,
}

pub fn run(rt: &Runtime, a: StateArgs) -> Result<i32> {
    let s = rt.state(&a.id)?;
    println!("{}", serde_json::to_string_pretty(&s).unwrap_or_default());
    Ok(0)
}
