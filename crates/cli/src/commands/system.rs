use crate::format::{human_size, table};
use berth_engine::{Engine, Result};
use clap::{Args, Subcommand};

#[derive(Subcommand)]
#[command(defer = true)]
pub enum SystemCommand {
    /// Show disk usage
    Df(DfArgs),
    /// Remove stopped containers, unused networks and dangling images
    Prune(PruneArgs),
    /// Remove everything of this root: containers, networks (with their
    /// bridges and rules), volumes and images
    Reset(ResetArgs),
    /// Check storage and state for what a crash left, and repair it
    Check(CheckArgs),
    /// Display system-wide information
    Info(super::info::FormatArgs),
    /// Get real time events from berth
    Events(super::events::EventsArgs),
    /// Delete trees set aside in the storage's trash (run detached by berth)
    #[command(hide = true)]
    DeleteTrash(DeleteTrashArgs),
}

#[derive(Args)]
pub struct CheckArgs {
    /// Repair what is found: remove leftovers and damaged images, clean up
    /// containers whose monitor or storage is gone
    #[arg(short, long)]
    repair: bool,
    /// With --repair: also remove containers that use a damaged image
    #[arg(short, long)]
    force: bool,
    /// Skip checks known to be slow (re-hashing every blob)
    #[arg(short, long)]
    quick: bool,
    /// Take a layer that no image uses for a killed load's when older than this
    #[arg(short, long, default_value = "1h", value_parser = parse_age)]
    max: std::time::Duration,
}

#[derive(Args)]
pub struct DeleteTrashArgs {
    #[arg(required = true)]
    paths: Vec<std::path::PathBuf>,
}

/// A duration as Go writes one: `90s`, `1h30m`, `500ms`, `0`.
fn parse_age(s: &str) -> std::result::Result<std::time::Duration, String> {
    let bad = || format!("invalid duration {s:?}: use a number with a unit, e.g. 30m, 1h, 24h");
    if s == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    let mut total = 0f64;
    let mut rest = s;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let value: f64 = rest[..n].parse().map_err(|_| bad())?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..u] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        rest = &rest[u..];
        total += value * unit;
    }
    std::time::Duration::try_from_secs_f64(total).map_err(|_| bad())
}

/// `berth system delete-trash`: runs without an engine (see
/// berth_storage::delete_trash).
pub fn delete_trash(a: DeleteTrashArgs) -> Result<i32> {
    berth_engine::delete_trash(&a.paths)?;
    Ok(0)
}

#[derive(Args)]
pub struct DfArgs {
    /// table, json, or a Go template such as '{{.Type}} {{.Size}}'
    #[arg(long)]
    format: Option<String>,
}

#[derive(Args)]
pub struct PruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short, long)]
    all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    force: bool,
    /// Prune anonymous volumes too
    #[arg(long)]
    volumes: bool,
}

#[derive(Args)]
pub struct ResetArgs {
    /// Do not prompt for confirmation
    #[arg(short, long)]
    force: bool,
}

pub fn dispatch(engine: &Engine, c: SystemCommand) -> Result<i32> {
    match c {
        SystemCommand::Df(a) => df(engine, a),
        SystemCommand::Prune(a) => prune(engine, a),
        SystemCommand::Reset(_) => reset(engine),
        SystemCommand::Check(a) => check(engine, a),
        SystemCommand::DeleteTrash(a) => delete_trash(a),
        SystemCommand::Info(a) => super::info::info(engine, a),
        SystemCommand::Events(a) => super::events::events(engine, a),
    }
}

/// One line per problem; with --repair, what was done. Exit 0 when nothing
/// is left to mend, 1 when problems remain.
fn check(engine: &Engine, a: CheckArgs) -> Result<i32> {
    let opts = berth_engine::CheckOptions {
        repair: a.repair,
        force: a.force,
        quick: a.quick,
        max_age: a.max,
    };
    let report = engine.system_check(&opts)?;
    if report.problems.is_empty() {
        println!("No problems found");
        return Ok(0);
    }
    for p in &report.problems {
        let size = if p.bytes > 0 {
            format!(" ({})", human_size(p.bytes))
        } else {
            String::new()
        };
        let status = match (p.repaired, &p.not_repaired) {
            (true, _) => ": repaired".to_owned(),
            (false, Some(why)) => format!(": not repaired: {why}"),
            (false, None) => String::new(),
        };
        println!("{}{size}{status}", p.message);
    }
    let remaining = report.remaining();
    if a.repair {
        println!(
            "Repaired {} of {} problems, reclaimed {}",
            report.problems.len() - remaining,
            report.problems.len(),
            human_size(report.reclaimed())
        );
    } else {
        println!(
            "{} problems found; run 'berth system check --repair' to repair them",
            report.problems.len()
        );
    }
    Ok(if remaining == 0 { 0 } else { 1 })
}

fn prune(engine: &Engine, a: PruneArgs) -> Result<i32> {
    let (containers, c_space) = engine.container_prune()?;
    super::print_deleted("Containers", &containers);
    // Leases of containers gone without cleanup, bridges and rules as the
    // database says (after a crash or a reboot).
    engine.network_reconcile()?;
    super::print_deleted("Networks", &engine.network_prune()?);
    let mut v_space = 0;
    if a.volumes {
        let (volumes, space) = engine.volume_prune(false)?;
        v_space = space;
        super::print_deleted("Volumes", &volumes);
    }
    let (images, i_space) = engine.image_prune(a.all)?;
    if !images.is_empty() {
        println!("Deleted Images:");
        super::image::print_events(&images, false);
        println!();
    }
    // RUN --mount=type=cache directories, as Docker's prune frees the
    // build cache.
    let b_space = engine.build_cache_prune()?;
    println!(
        "Total reclaimed space: {}",
        human_size(c_space + v_space + i_space + b_space)
    );
    Ok(0)
}

/// Goes on past a failure (a container that cannot be removed must not
/// leave the bridges and rules behind) and reports the first one.
fn reset(engine: &Engine) -> Result<i32> {
    let mut first: Option<berth_engine::EngineError> = None;
    let mut note = |r: Result<()>| {
        if let Err(e) = r {
            first.get_or_insert(e);
        }
    };
    match engine.containers(false) {
        Ok(list) => {
            for c in list {
                note(engine.rm(c.id.as_str(), true, true));
            }
        }
        Err(e) => note(Err(e)),
    }
    note(engine.network_reset());
    note(engine.volume_prune(true).map(|_| ()));
    note(engine.image_prune(true).map(|_| ()));
    // Staging areas, trash, temporary files and partial downloads, and
    // whatever storage no record names.
    note(engine.storage_reset().map(|_| ()));
    match first {
        Some(e) => Err(e),
        None => Ok(0),
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
