use crate::format::{human_size, table};
use berth_engine::{Engine, Result};
use clap::Subcommand;

#[derive(Subcommand)]
pub enum SystemCommand {
    /// Show disk usage
    Df,
}

pub fn dispatch(engine: &Engine, c: SystemCommand) -> Result<i32> {
    match c {
        SystemCommand::Df => df(engine),
    }
}

fn df(engine: &Engine) -> Result<i32> {
    let u = engine.disk_usage()?;
    let pct = |r: u64, t: u64| {
        (r * 100)
            .checked_div(t)
            .map(|p| format!(" ({p}%)"))
            .unwrap_or_default()
    };
    let rows = vec![
        vec![
            "Images".into(),
            u.images.to_string(),
            u.images_active.to_string(),
            human_size(u.images_size),
            format!(
                "{}{}",
                human_size(u.images_reclaimable),
                pct(u.images_reclaimable, u.images_size)
            ),
        ],
        vec![
            "Containers".into(),
            u.containers.to_string(),
            u.containers_active.to_string(),
            human_size(u.containers_size),
            format!(
                "{}{}",
                human_size(u.containers_reclaimable),
                pct(u.containers_reclaimable, u.containers_size)
            ),
        ],
        vec![
            "Local Volumes".into(),
            "0".into(),
            "0".into(),
            "0B".into(),
            "0B".into(),
        ],
        vec![
            "Build Cache".into(),
            "0".into(),
            "0".into(),
            "0B".into(),
            "0B".into(),
        ],
    ];
    print!(
        "{}",
        table(&["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"], &rows)
    );
    Ok(0)
}
