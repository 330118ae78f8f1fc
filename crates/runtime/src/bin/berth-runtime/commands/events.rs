use berth_runtime::{Result, Runtime};
use clap::Args;
use std::time::Duration;

#[derive(Args)]
pub struct EventsArgs {
    /// Print the statistics once and exit
    #[arg(long)]
    stats: bool,
    /// How often to print statistics (e.g. 5s, 500ms)
    #[arg(long, default_value = "5s")]
    interval: humantime::Duration,
    id: String,
}

pub fn run(rt: &Runtime, a: EventsArgs) -> Result<i32> {
    loop {
        println!("{}", rt.stats(&a.id)?);
        if a.stats {
            return Ok(0);
        }
        std::thread::sleep(Duration::from(a.interval));
        let st = rt.state(&a.id)?;
        if st["status"] == "stopped" {
            return Ok(0);
        }
    }
}
