use crate::format::{human_size, human_size_prec, table};
use berth_engine::{Engine, EngineError, Result};
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
    /// Delete trees set aside in the storage's trash and checkpoint the
    /// database's log (run detached by berth)
    #[command(hide = true)]
    DeleteTrash(DeleteTrashArgs),
    /// Serve Docker's Engine API on a socket (for docker, compose, SDKs)
    Service(ServiceArgs),
}

#[derive(Args)]
pub struct ServiceArgs {
    /// Seconds without a request or stream before the service exits (0: never)
    #[arg(short, long, default_value = "5")]
    time: u64,
    /// Group for the unix socket (default "berth" when it exists; "" for none)
    #[arg(short = 'G', long)]
    group: Option<String>,
    /// Use TLS and verify the client's certificate (with --tlscacert, --tlscert, --tlskey)
    #[arg(long)]
    tlsverify: bool,
    /// Trust client certs signed only by this CA
    #[arg(long, value_name = "FILE")]
    tlscacert: Option<std::path::PathBuf>,
    /// Path to TLS certificate file
    #[arg(long, value_name = "FILE")]
    tlscert: Option<std::path::PathBuf>,
    /// Path to TLS key file
    #[arg(long, value_name = "FILE")]
    tlskey: Option<std::path::PathBuf>,
    /// Where to listen: unix:///PATH or tcp://IP:PORT (default
    /// unix:///run/berth/docker.sock, or ROOT/run/docker.sock with --root;
    /// an address other than loopback needs --tlsverify)
    uri: Option<String>,
}

/// `system service`: becomes the API server (`berth-api`, beside this
/// program), so that the command line itself stays free of async code.
pub fn service(opts: &berth_engine::EngineOptions, a: ServiceArgs) -> Result<i32> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::var_os("BERTH_API")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            let me = std::env::current_exe().ok()?;
            let p = me.parent()?.join("berth-api");
            p.is_file().then_some(p)
        })
        .unwrap_or_else(|| std::path::PathBuf::from("berth-api"));
    let mut cmd = std::process::Command::new(&exe);
    if let Some(r) = &opts.root {
        cmd.arg("--root").arg(r);
    }
    if let Some(d) = &opts.storage_driver {
        cmd.arg("--storage-driver").arg(d);
    }
    cmd.arg("--time").arg(a.time.to_string());
    if let Some(g) = &a.group {
        cmd.arg("--group").arg(g);
    }
    if a.tlsverify {
        cmd.arg("--tlsverify");
    }
    for (flag, file) in [
        ("--tlscacert", &a.tlscacert),
        ("--tlscert", &a.tlscert),
        ("--tlskey", &a.tlskey),
    ] {
        if let Some(f) = file {
            cmd.arg(flag).arg(f);
        }
    }
    if let Some(u) = a.uri {
        cmd.arg(u);
    }
    // exec: systemd's LISTEN_PID stays this process's pid.
    let err = cmd.exec();
    Err(EngineError::Other(format!(
        "cannot run the API server {}: {err}",
        exe.display()
    )))
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
    /// Then checkpoint the write-ahead log of this root's database
    #[arg(long, value_name = "ROOT")]
    checkpoint: Option<std::path::PathBuf>,
    #[arg(required_unless_present = "checkpoint")]
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
    berth_engine::delete_trash(&a.paths, a.checkpoint.as_deref())?;
    Ok(0)
}

#[derive(Args)]
pub struct DfArgs {
    /// table, json, or a Go template such as '{{.Type}} {{.Size}}'
    #[arg(long)]
    format: Option<String>,
    /// Show detailed information on space usage
    #[arg(short, long)]
    verbose: bool,
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
        SystemCommand::Service(a) => service(engine.options(), a),
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
        human_size_prec(c_space + v_space + i_space + b_space, 4)
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

/// Docker's column headers of `system df --format 'table …'` (the rows'
/// type is named after the first, the images').
const DF_COLUMNS: crate::format::Columns = crate::format::Columns {
    type_name: "*formatter.diskUsageImagesContext",
    headers: &[
        ("Type", "TYPE"),
        ("TotalCount", "TOTAL"),
        ("Active", "ACTIVE"),
        ("Size", "SIZE"),
        ("Reclaimable", "RECLAIMABLE"),
    ],
};

/// Docker's RECLAIMABLE cell: the size, and its share of the total when
/// there is a total.
fn reclaimable(r: u64, total: u64) -> String {
    match (r * 100).checked_div(total) {
        Some(p) => format!("{} ({p}%)", human_size_prec(r, 4)),
        None => human_size_prec(r, 4),
    }
}

fn df(engine: &Engine, a: DfArgs) -> Result<i32> {
    let format = super::image::list_format(a.format.as_deref())?;
    let u = engine.disk_usage()?;
    if a.verbose {
        return df_verbose(&u, &format);
    }
    let (cache_count, cache_bytes) = engine.build_cache_usage();
    let row = |t: &str, total: usize, active: usize, size: u64, r: u64| {
        vec![
            t.to_owned(),
            total.to_string(),
            active.to_string(),
            human_size_prec(size, 4),
            reclaimable(r, size),
        ]
    };
    let rows = vec![
        row(
            "Images",
            u.images,
            u.images_active,
            u.images_size,
            u.images_reclaimable,
        ),
        row(
            "Containers",
            u.containers,
            u.containers_active,
            u.containers_size,
            u.containers_reclaimable,
        ),
        row(
            "Local Volumes",
            u.volumes,
            u.volumes_active,
            u.volumes_size,
            u.volumes_reclaimable,
        ),
        // The RUN --mount=type=cache directories (what `builder prune`
        // frees); intermediate images are counted with the images.
        row("Build Cache", cache_count, 0, cache_bytes, cache_bytes),
    ];
    if let crate::format::ListFormat::Default = format {
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

/// `system df -v`: Docker 20.10's four sections; a `--format` template is
/// executed once over the whole usage (Images, Containers, Volumes,
/// BuildCache, LayersSize, shaped as the API's).
fn df_verbose(u: &berth_engine::DiskUsage, format: &crate::format::ListFormat) -> Result<i32> {
    use crate::format::ago;
    use serde_json::json;
    let short =
        |id: &str| -> String { id.trim_start_matches("sha256:").chars().take(12).collect() };
    if !matches!(format, crate::format::ListFormat::Default) {
        let unix = |t: std::time::SystemTime| {
            t.duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        };
        let doc = json!({
            "LayersSize": u.images_size,
            "Images": u.image_rows.iter().map(|i| json!({
                "Id": i.id,
                "RepoTags": if i.repository == "<none>" { Vec::new() } else { vec![format!("{}:{}", i.repository, i.tag)] },
                "Created": unix(i.created),
                "Size": i.size,
                "VirtualSize": i.size,
                "SharedSize": i.shared_size,
                "Containers": i.containers,
            })).collect::<Vec<_>>(),
            "Containers": u.container_rows.iter().map(|c| json!({
                "Id": c.summary.id.as_str(),
                "Names": c.summary.names,
                "Image": c.summary.image,
                "ImageID": c.summary.image_id,
                "Command": c.summary.command,
                "Created": c.summary.created,
                "State": c.summary.state,
                "Status": c.summary.status,
                "SizeRw": c.summary.size_rw.unwrap_or(0),
            })).collect::<Vec<_>>(),
            "Volumes": u.volume_rows.iter().map(|v| json!({
                "Name": v.name,
                "Driver": "local",
                "Scope": "local",
                "UsageData": {"Size": v.size, "RefCount": v.links},
            })).collect::<Vec<_>>(),
            "BuildCache": [],
        });
        let cols = crate::format::Columns {
            type_name: "*formatter.diskUsageContext",
            headers: &[],
        };
        let out = format
            .render(&[doc], &cols, None)
            .map_err(|e| berth_engine::EngineError::Invalid(e.to_string()))?;
        print!("{out}");
        return Ok(0);
    }
    let images: Vec<Vec<String>> = u
        .image_rows
        .iter()
        .map(|i| {
            vec![
                i.repository.clone(),
                i.tag.clone(),
                short(&i.id),
                ago(i.created),
                human_size_prec(i.size, 3),
                human_size_prec(i.shared_size, 4),
                human_size_prec(i.size.saturating_sub(i.shared_size), 4),
                i.containers.to_string(),
            ]
        })
        .collect();
    let containers: Vec<Vec<String>> = u
        .container_rows
        .iter()
        .map(|c| {
            let s = &c.summary;
            let cmd = format!("\"{}\"", s.command);
            let cmd = if cmd.chars().count() <= 20 {
                cmd
            } else {
                cmd.chars().take(19).collect::<String>() + "…"
            };
            vec![
                short(s.id.as_str()),
                s.image.clone(),
                cmd,
                c.local_volumes.to_string(),
                human_size_prec(s.size_rw.unwrap_or(0), 3),
                ago(s.created_time()),
                s.status.clone(),
                s.name().to_owned(),
            ]
        })
        .collect();
    let volumes: Vec<Vec<String>> = u
        .volume_rows
        .iter()
        .map(|v| {
            vec![
                v.name.clone(),
                v.links.to_string(),
                human_size_prec(v.size, 3),
            ]
        })
        .collect();
    print!("Images space usage:\n\n");
    print!(
        "{}",
        table(
            &[
                "REPOSITORY",
                "TAG",
                "IMAGE ID",
                "CREATED",
                "SIZE",
                "SHARED SIZE",
                "UNIQUE SIZE",
                "CONTAINERS",
            ],
            &images
        )
    );
    print!("\nContainers space usage:\n\n");
    print!(
        "{}",
        table(
            &[
                "CONTAINER ID",
                "IMAGE",
                "COMMAND",
                "LOCAL VOLUMES",
                "SIZE",
                "CREATED",
                "STATUS",
                "NAMES",
            ],
            &containers
        )
    );
    print!("\nLocal Volumes space usage:\n\n");
    print!("{}", table(&["VOLUME NAME", "LINKS", "SIZE"], &volumes));
    print!("\nBuild cache usage: 0B\n\n");
    print!(
        "{}",
        table(
            &[
                "CACHE ID",
                "CACHE TYPE",
                "SIZE",
                "CREATED",
                "LAST USED",
                "USAGE",
                "SHARED",
            ],
            &[]
        )
    );
    Ok(0)
}
