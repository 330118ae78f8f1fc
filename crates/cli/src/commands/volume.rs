//! `berth volume`, `berth stats`, `berth update`, `berth port`.

use crate::format::{human_size, table};
use berth_engine::{Engine, EngineError, Result};
use clap::{Args, Subcommand};

#[derive(Subcommand)]
#[command(defer = true)]
pub enum VolumeCommand {
    /// Create a volume
    Create(VolumeCreateArgs),
    /// List volumes
    #[command(alias = "list")]
    Ls(VolumeLsArgs),
    /// Display detailed information on volumes
    Inspect(VolumeNames),
    /// Remove volumes
    #[command(alias = "remove")]
    Rm(VolumeRmArgs),
    /// Remove unused volumes
    Prune(VolumePruneArgs),
}

#[derive(Args)]
pub struct VolumeCreateArgs {
    /// Volume driver (only "local")
    #[arg(short, long, default_value = "local")]
    driver: String,
    /// Set metadata for a volume (KEY=VALUE, or KEY for an empty value)
    #[arg(long)]
    label: Vec<String>,
    name: Option<String>,
}

#[derive(Args)]
pub struct VolumeLsArgs {
    /// Only display volume names
    #[arg(short, long)]
    quiet: bool,
    /// Filter: dangling=true|false, name=, driver=, label=KEY[=VALUE]
    #[arg(short, long)]
    filter: Vec<String>,
    /// table, json, or a Go template such as '{{.Name}} {{.Mountpoint}}'
    #[arg(long)]
    format: Option<String>,
}

#[derive(Args)]
pub struct VolumeNames {
    /// Format the output with a Go template ('{{.Mountpoint}}'), or json
    #[arg(short, long)]
    format: Option<String>,
    #[arg(required = true)]
    names: Vec<String>,
}

/// Docker's column headers of `volume ls --format 'table …'`.
const VOLUME_COLUMNS: crate::format::Columns = crate::format::Columns {
    type_name: "*formatter.volumeContext",
    headers: &[
        ("Name", "VOLUME NAME"),
        ("Driver", "DRIVER"),
        ("Scope", "SCOPE"),
        ("Mountpoint", "MOUNTPOINT"),
        ("Labels", "LABELS"),
        ("Links", "LINKS"),
        ("Size", "SIZE"),
    ],
};

/// Docker's column headers of `stats --format 'table …'`.
const STATS_COLUMNS: crate::format::Columns = crate::format::Columns {
    type_name: "*container.statsContext",
    headers: &[
        ("ID", "CONTAINER ID"),
        ("Container", "CONTAINER"),
        ("Name", "NAME"),
        ("CPUPerc", "CPU %"),
        ("MemUsage", "MEM USAGE / LIMIT"),
        ("MemPerc", "MEM %"),
        ("NetIO", "NET I/O"),
        ("BlockIO", "BLOCK I/O"),
        ("PIDs", "PIDS"),
    ],
};

#[derive(Args)]
pub struct VolumeRmArgs {
    /// Force the removal of volumes in use
    #[arg(short, long)]
    force: bool,
    #[arg(required = true)]
    names: Vec<String>,
}

#[derive(Args)]
pub struct VolumePruneArgs {
    /// Remove all unused volumes, not just anonymous ones
    #[arg(short, long)]
    all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    force: bool,
}

pub fn volume(engine: &Engine, c: VolumeCommand) -> Result<i32> {
    match c {
        VolumeCommand::Create(a) => {
            if a.driver != "local" {
                return Err(EngineError::Invalid(format!(
                    "create volume: driver {:?} not found: berth has the local driver only",
                    a.driver
                )));
            }
            let labels = a
                .label
                .iter()
                .map(|l| match l.split_once('=') {
                    Some((k, v)) => (k.to_owned(), v.to_owned()),
                    None => (l.clone(), String::new()),
                })
                .collect();
            println!("{}", engine.volume_create(a.name.as_deref(), &labels)?);
            Ok(0)
        }
        VolumeCommand::Ls(a) => {
            let format = super::image::list_format(a.format.as_deref())?;
            let filters = match super::parse_filters(&a.filter, "volume ls") {
                Ok(f) => f,
                Err(code) => return Ok(code),
            };
            let list = engine.volume_list_filtered(&filters)?;
            if a.quiet {
                for v in &list {
                    println!("{}", v.name);
                }
                return Ok(0);
            }
            match format {
                crate::format::ListFormat::Default => {
                    let rows: Vec<Vec<String>> = list
                        .iter()
                        .map(|v| vec!["local".to_owned(), v.name.clone()])
                        .collect();
                    print!("{}", table(&["DRIVER", "VOLUME NAME"], &rows));
                }
                f => {
                    let rows: Vec<serde_json::Value> = list
                        .iter()
                        .map(|v| {
                            super::image::row(&[
                                ("Driver", "local".into()),
                                ("Labels", berth_engine::labels_text(&v.labels)),
                                ("Links", "N/A".into()),
                                ("Mountpoint", v.mountpoint.display().to_string()),
                                ("Name", v.name.clone()),
                                ("Scope", "local".into()),
                                ("Size", "N/A".into()),
                            ])
                        })
                        .collect();
                    let labels = |i: usize| list[i].labels.clone();
                    let out = f
                        .render(&rows, &VOLUME_COLUMNS, Some(&labels))
                        .map_err(|e| EngineError::Invalid(e.to_string()))?;
                    print!("{out}");
                }
            }
            Ok(0)
        }
        VolumeCommand::Inspect(a) => {
            let format = match super::image::InspectFormat::parse(a.format.as_deref()) {
                Ok(f) => f,
                Err(code) => return Ok(code),
            };
            let mut out = Vec::new();
            let mut code = 0;
            for n in &a.names {
                match engine.volume_inspect(n) {
                    Ok(v) => out.push(serde_json::json!({
                        "CreatedAt": v.created_at,
                        "Driver": "local",
                        "Labels": v.created_explicitly.then_some(&v.labels),
                        "Mountpoint": v.mountpoint,
                        "Name": v.name,
                        // (berth's local driver takes no --opt.)
                        "Options": v.created_explicitly.then(serde_json::Map::new),
                        "Scope": "local",
                    })),
                    Err(e) => {
                        eprintln!("Error: {e}");
                        code = 1;
                    }
                }
            }
            Ok(code.max(format.print(out)))
        }
        VolumeCommand::Rm(a) => {
            let mut code = 0;
            for n in &a.names {
                match engine.volume_rm(n, a.force) {
                    Ok(()) => println!("{n}"),
                    Err(e) => {
                        eprintln!("Error: {e}");
                        code = 1;
                    }
                }
            }
            Ok(code)
        }
        VolumeCommand::Prune(a) => {
            let (names, freed) = engine.volume_prune(a.all)?;
            super::print_deleted("Volumes", &names);
            println!(
                "Total reclaimed space: {}",
                crate::format::human_size_prec(freed, 4)
            );
            Ok(0)
        }
    }
}

#[derive(Args)]
pub struct StatsArgs {
    /// Disable streaming stats and only pull the first result
    #[arg(long)]
    no_stream: bool,
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    all: bool,
    /// Don't truncate output
    #[arg(long)]
    no_trunc: bool,
    /// table, json, or a Go template such as '{{.Name}} {{.CPUPerc}}'
    #[arg(long)]
    format: Option<String>,
    containers: Vec<String>,
}

/// Binary units, as `docker stats` prints memory: 1.5MiB.
fn bytes_binary(b: u64) -> String {
    const U: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < U.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{b}B")
    } else {
        format!("{v:.4}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .chars()
            .take(5)
            .collect::<String>()
            .trim_end_matches('.')
            .to_owned()
            + U[i]
    }
}

pub fn stats(engine: &Engine, a: StatsArgs) -> Result<i32> {
    let format = super::image::list_format(a.format.as_deref())?;
    loop {
        let samples = engine.stats(&a.containers, std::time::Duration::from_millis(500))?;
        let rows: Vec<Vec<(&str, String)>> = samples
            .iter()
            .map(|s| {
                let mem_pct = if s.mem_limit > 0 {
                    s.mem_usage as f64 / s.mem_limit as f64 * 100.0
                } else {
                    0.0
                };
                vec![
                    (
                        "ID",
                        if a.no_trunc {
                            s.id.clone()
                        } else {
                            s.id.chars().take(12).collect()
                        },
                    ),
                    (
                        "Container",
                        if a.no_trunc {
                            s.id.clone()
                        } else {
                            s.id.chars().take(12).collect()
                        },
                    ),
                    ("Name", s.name.clone()),
                    ("CPUPerc", format!("{:.2}%", s.cpu_percent)),
                    (
                        "MemUsage",
                        format!(
                            "{} / {}",
                            bytes_binary(s.mem_usage),
                            bytes_binary(s.mem_limit)
                        ),
                    ),
                    ("MemPerc", format!("{mem_pct:.2}%")),
                    (
                        "NetIO",
                        format!("{} / {}", human_size(s.net_rx), human_size(s.net_tx)),
                    ),
                    (
                        "BlockIO",
                        format!(
                            "{} / {}",
                            human_size(s.block_read),
                            human_size(s.block_write)
                        ),
                    ),
                    ("PIDs", s.pids.to_string()),
                ]
            })
            .collect();
        match &format {
            crate::format::ListFormat::Default => {
                let body: Vec<Vec<String>> = rows
                    .iter()
                    .map(|r| {
                        [
                            "ID", "Name", "CPUPerc", "MemUsage", "MemPerc", "NetIO", "BlockIO",
                            "PIDs",
                        ]
                        .iter()
                        .map(|k| {
                            r.iter()
                                .find(|(n, _)| n == k)
                                .map(|(_, v)| v.clone())
                                .unwrap_or_default()
                        })
                        .collect()
                    })
                    .collect();
                if !a.no_stream {
                    // Clear the screen and go home, as docker stats does.
                    print!("\x1b[2J\x1b[H");
                }
                print!(
                    "{}",
                    table(
                        &[
                            "CONTAINER ID",
                            "NAME",
                            "CPU %",
                            "MEM USAGE / LIMIT",
                            "MEM %",
                            "NET I/O",
                            "BLOCK I/O",
                            "PIDS"
                        ],
                        &body
                    )
                );
            }
            f => {
                let docs: Vec<serde_json::Value> =
                    rows.iter().map(|r| super::image::row(r)).collect();
                let out = f
                    .render(&docs, &STATS_COLUMNS, None)
                    .map_err(|e| EngineError::Invalid(e.to_string()))?;
                if !a.no_stream
                    && matches!(f, crate::format::ListFormat::Template { table: true, .. })
                {
                    print!("\x1b[2J\x1b[H");
                }
                print!("{out}");
            }
        }
        if a.no_stream {
            return Ok(0);
        }
    }
}

#[derive(Args)]
pub struct UpdateArgs {
    /// Memory limit (e.g. 64m)
    #[arg(short, long)]
    memory: Option<String>,
    /// Number of CPUs
    #[arg(long)]
    cpus: Option<f64>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long)]
    cpu_shares: Option<u64>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long)]
    cpuset_cpus: Option<String>,
    /// Tune container pids limit (-1 for unlimited)
    #[arg(long)]
    pids_limit: Option<i64>,
    #[arg(required = true)]
    containers: Vec<String>,
}

/// `64m`, `1g`, `512k`, `100` (bytes) → bytes.
fn parse_bytes(s: &str) -> Result<i64> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    num.parse::<f64>()
        .ok()
        .filter(|n| *n >= 0.0)
        .map(|n| (n * mult as f64) as i64)
        .ok_or_else(|| EngineError::Invalid(format!("invalid size: {s:?}")))
}

pub fn update(engine: &Engine, a: UpdateArgs) -> Result<i32> {
    let mut r = serde_json::Map::new();
    let mut cpu = serde_json::Map::new();
    if let Some(m) = &a.memory {
        r.insert(
            "memory".into(),
            serde_json::json!({"limit": parse_bytes(m)?}),
        );
    }
    if let Some(c) = a.cpus {
        if c <= 0.0 {
            return Err(EngineError::Invalid(format!(
                "invalid --cpus {c}: must be positive"
            )));
        }
        cpu.insert("period".into(), 100_000.into());
        cpu.insert("quota".into(), ((c * 100_000.0) as i64).into());
    }
    if let Some(s) = a.cpu_shares {
        cpu.insert("shares".into(), s.into());
    }
    if let Some(s) = &a.cpuset_cpus {
        cpu.insert("cpus".into(), s.clone().into());
    }
    if !cpu.is_empty() {
        r.insert("cpu".into(), cpu.into());
    }
    if let Some(p) = a.pids_limit {
        r.insert("pids".into(), serde_json::json!({"limit": p}));
    }
    if r.is_empty() {
        return Err(EngineError::Invalid(
            "you must provide one or more flags when using this command".into(),
        ));
    }
    let resources = serde_json::Value::Object(r);
    let mut code = 0;
    for c in &a.containers {
        match engine.update(c, &resources) {
            Ok(_) => println!("{c}"),
            Err(e) => {
                eprintln!("Error: {e}");
                code = 1;
            }
        }
    }
    Ok(code)
}

#[derive(Args)]
pub struct PortArgs {
    container: String,
    /// PRIVATE_PORT[/PROTO]
    port: Option<String>,
}

/// `berth port`: published ports come with networking (a later issue);
/// until then no container has any, as with `--network none` in Docker.
pub fn port(engine: &Engine, a: PortArgs) -> Result<i32> {
    let bindings = engine.published_ports(&a.container)?;
    let line = |b: &berth_engine::PortBinding| b.host_addr_text();
    if let Some(p) = a.port {
        // Docker's message: the port with its protocol (tcp by default),
        // and the container as the user named it.
        let p = match p.split_once('/') {
            Some((n, proto)) if !proto.is_empty() => format!("{n}/{proto}"),
            Some((n, _)) => format!("{n}/tcp"),
            None => format!("{p}/tcp"),
        };
        let found: Vec<_> = bindings
            .iter()
            .filter(|b| format!("{}/{}", b.container_port, b.proto) == p)
            .collect();
        if found.is_empty() {
            return Err(EngineError::not_found(
                berth_engine::Object::Port,
                format!("No public port '{p}' published for {}", a.container),
            ));
        }
        for b in found {
            println!("{}", line(b));
        }
        return Ok(0);
    }
    for b in &bindings {
        println!("{}/{} -> {}", b.container_port, b.proto, line(b));
    }
    Ok(0)
}

#[derive(Args)]
pub struct CpArgs {
    /// Always follow symbol links in SRC_PATH (accepted; links are copied as links)
    #[arg(short = 'L', long)]
    follow_link: bool,
    /// Archive mode (accepted: ownership is kept)
    #[arg(short, long)]
    archive: bool,
    /// CONTAINER:SRC_PATH, a local path, or - (a tar on stdin)
    src: String,
    /// CONTAINER:DEST_PATH, a local path, or - (a tar on stdout)
    dest: String,
}

pub fn cp(engine: &Engine, a: CpArgs) -> Result<i32> {
    let from = berth_engine::CopyEnd::parse(&a.src);
    let to = berth_engine::CopyEnd::parse(&a.dest);
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    engine.copy(&from, &to, &mut stdin.lock(), &mut stdout.lock())?;
    Ok(0)
}
