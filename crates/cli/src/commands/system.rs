use crate::format::{human_size, table};
use berth_engine::{Engine, Result};
use clap::{Args, Subcommand};

#[derive(Subcommand)]
pub enum SystemCommand {
    /// Show disk usage
    Df(DfArgs),
}

#[derive(Args)]
pub struct DfArgs {
    /// table, json, or a Go template such as '{{.Type}} {{.Size}}'
    #[arg(long)]
    format: Option<String>,
}

pub fn dispatch(engine: &Engine, c: SystemCommand) -> Result<i32> {
    match c {
        SystemCommand::Df(a) => df(engine, a),
    }
}

/// Docker's column headers of `system df --format 'table …'`.
const DF_COLUMNS: crate::template::Columns = crate::template::Columns {
    type_name: "*formatter.diskUsageContext",
    headers: &[
        ("Type", "TYPE"),
        ("TotalCount", "TOTAL"),
        ("Active", "ACTIVE"),
        ("Size", "SIZE"),
        ("Reclaimable", "RECLAIMABLE"),
    ],
};

fn df(engine: &Engine, a: DfArgs) -> Result<i32> {
    let format = super::image::list_format(a.format.as_deref())?;
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
    if let crate::template::ListFormat::Default = format {
        print!(
            "{}",
            table(&["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"], &rows)
        );
        return Ok(0);
    }
    let docs: Vec<serde_json::Value> = rows
        .into_iter()
        .map(|r| {
            let names = ["Type", "TotalCount", "Active", "Size", "Reclaimable"];
            let fields: Vec<(&str, String)> = names.into_iter().zip(r).collect();
            super::image::row(&fields)
        })
        .collect();
    let out = format
        .render(&docs, &DF_COLUMNS, None)
        .map_err(|e| berth_engine::EngineError::Invalid(e.to_string()))?;
    print!("{out}");
    Ok(0)
}
