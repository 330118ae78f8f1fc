use crate::format::{ago, human_size, table};
use berth_engine::{Engine, EngineError, ImageSummary, Result, RmiEvent};
use clap::{Args, Subcommand};

#[derive(Args)]
pub struct ImagesArgs {
    /// Show all images (default hides intermediate images)
    #[arg(short, long)]
    all: bool,
    /// Only show image IDs
    #[arg(short, long)]
    quiet: bool,
    /// Show digests
    #[arg(long)]
    digests: bool,
    /// Don't truncate output
    #[arg(long)]
    no_trunc: bool,
    /// table, json, or a Go template such as '{{.Repository}}:{{.Tag}}'
    #[arg(long)]
    format: Option<String>,
    /// Filter: dangling=true|false, reference=PATTERN, before=IMAGE, since=IMAGE, label=KEY[=VALUE]
    #[arg(short, long)]
    filter: Vec<String>,
    /// Only images of this repository[:tag]
    reference: Option<String>,
}

#[derive(Subcommand)]
#[command(defer = true)]
pub enum ImageCommand {
    /// Build an image from a Dockerfile
    Build(Box<super::build::BuildArgs>),
    /// List images
    #[command(alias = "list")]
    Ls(ImagesArgs),
    /// Show low-level information about images
    Inspect(InspectArgs),
    /// Remove unused images
    Prune(PruneArgs),
    /// Remove images
    Rm(RmiArgs),
    /// Add a name to an image
    Tag(TagArgs),
    /// Show an image's history
    History(HistoryArgs),
    /// Load images from a tar archive
    Load(super::archive::LoadArgs),
    /// Save images to a tar archive
    Save(super::archive::SaveArgs),
    /// Import a root filesystem tarball
    Import(super::archive::ImportArgs),
    /// Download an image from a registry
    Pull(super::registry::PullArgs),
    /// Upload an image to a registry
    Push(super::registry::PushArgs),
}

pub fn dispatch(engine: &Engine, c: ImageCommand) -> Result<i32> {
    match c {
        ImageCommand::Build(a) => super::build::build(engine, *a),
        ImageCommand::Ls(a) => images(engine, a),
        ImageCommand::Inspect(a) => inspect_with(engine, a, Engine::image_inspect),
        ImageCommand::Prune(a) => prune(engine, a),
        ImageCommand::Rm(a) => rmi(engine, a),
        ImageCommand::Tag(a) => tag(engine, a),
        ImageCommand::History(a) => history(engine, a),
        ImageCommand::Load(a) => super::archive::load(engine, a),
        ImageCommand::Save(a) => super::archive::save(engine, a),
        ImageCommand::Import(a) => super::archive::import(engine, a),
        ImageCommand::Pull(a) => super::registry::pull(engine, a),
        ImageCommand::Push(a) => super::registry::push(engine, a),
    }
}

fn id_text(id: &str, no_trunc: bool) -> String {
    let hex = id.trim_start_matches("sha256:");
    if no_trunc {
        format!("sha256:{hex}")
    } else {
        hex.chars().take(12).collect()
    }
}

/// The fields `docker images --format` knows, by name.
fn fields(i: &ImageSummary, no_trunc: bool) -> Vec<(&'static str, String)> {
    vec![
        ("Containers", "N/A".to_owned()),
        ("CreatedAt", i.created_at.clone()),
        ("CreatedSince", ago(i.created)),
        (
            "Digest",
            i.digest.clone().unwrap_or_else(|| "<none>".into()),
        ),
        ("ID", id_text(&i.id, no_trunc)),
        (
            "Repository",
            i.repository.clone().unwrap_or_else(|| "<none>".into()),
        ),
        ("SharedSize", "N/A".to_owned()),
        ("Size", human_size(i.size)),
        ("Tag", i.tag.clone().unwrap_or_else(|| "<none>".into())),
        ("UniqueSize", "N/A".to_owned()),
        ("VirtualSize", human_size(i.size)),
    ]
}

/// Docker's column headers of `images --format 'table …'`.
const IMAGE_COLUMNS: crate::format::Columns = crate::format::Columns {
    type_name: "formatter.imageContext",
    headers: &[
        ("Containers", "CONTAINERS"),
        ("CreatedAt", "CREATED AT"),
        ("CreatedSince", "CREATED"),
        ("Digest", "DIGEST"),
        ("ID", "IMAGE ID"),
        ("Repository", "REPOSITORY"),
        ("SharedSize", "SHARED SIZE"),
        ("Size", "SIZE"),
        ("Tag", "TAG"),
        ("UniqueSize", "UNIQUE SIZE"),
        ("VirtualSize", "SIZE"),
    ],
};

/// A row of a list command as the object its `--format` sees.
pub fn row(fields: &[(&str, String)]) -> serde_json::Value {
    serde_json::Value::Object(
        fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), serde_json::Value::String(v.clone())))
            .collect(),
    )
}

/// A bad `--format` fails the command (exit 1, as Docker's list commands).
pub fn list_format(f: Option<&str>) -> Result<crate::format::ListFormat> {
    crate::format::ListFormat::parse(f).map_err(|e| EngineError::Invalid(e.to_string()))
}

pub fn images(engine: &Engine, a: ImagesArgs) -> Result<i32> {
    let format = list_format(a.format.as_deref())?;
    let filters = match super::parse_filters(&a.filter, "images") {
        Ok(f) => f,
        Err(code) => return Ok(code),
    };
    let mut list = engine.images_filtered(a.reference.as_deref(), a.all, &filters)?;
    list.sort_by_key(|x| std::cmp::Reverse(x.created));
    if a.quiet {
        // One line per row, as in Docker: an image with two tags is listed twice.
        for i in &list {
            println!("{}", id_text(&i.id, a.no_trunc));
        }
        return Ok(0);
    }
    match format {
        crate::format::ListFormat::Default => {
            let mut header = vec!["REPOSITORY", "TAG"];
            if a.digests {
                header.push("DIGEST");
            }
            header.extend(["IMAGE ID", "CREATED", "SIZE"]);
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|i| {
                    let f = fields(i, a.no_trunc);
                    let get = |k: &str| {
                        f.iter()
                            .find(|(n, _)| *n == k)
                            .map(|(_, v)| v.clone())
                            .unwrap_or_default()
                    };
                    let mut r = vec![get("Repository"), get("Tag")];
                    if a.digests {
                        r.push(get("Digest"));
                    }
                    r.extend([get("ID"), get("CreatedSince"), get("Size")]);
                    r
                })
                .collect();
            print!("{}", table(&header, &rows));
        }
        f => {
            let rows: Vec<serde_json::Value> =
                list.iter().map(|i| row(&fields(i, a.no_trunc))).collect();
            let out = f
                .render(&rows, &IMAGE_COLUMNS, None)
                .map_err(|e| EngineError::Invalid(e.to_string()))?;
            print!("{out}");
        }
    }
    Ok(0)
}

#[derive(Args)]
pub struct TagArgs {
    source: String,
    target: String,
}

pub fn tag(engine: &Engine, a: TagArgs) -> Result<i32> {
    engine.tag(&a.source, &a.target)?;
    Ok(0)
}

#[derive(Args)]
pub struct RmiArgs {
    /// Force removal of the image
    #[arg(short, long)]
    force: bool,
    /// Do not delete untagged parents (accepted; berth keeps no parent chain)
    #[arg(long)]
    no_prune: bool,
    #[arg(required = true)]
    images: Vec<String>,
}

/// `rmi` capitalises its lines, `image prune` does not: Docker's shapes.
pub fn print_events(events: &[RmiEvent], capitalised: bool) {
    let (u, d) = if capitalised {
        ("Untagged", "Deleted")
    } else {
        ("untagged", "deleted")
    };
    for e in events {
        match e {
            RmiEvent::Untagged(r) => println!("{u}: {r}"),
            RmiEvent::Deleted(id) => println!("{d}: {id}"),
        }
    }
}

pub fn rmi(engine: &Engine, a: RmiArgs) -> Result<i32> {
    let mut code = 0;
    for name in &a.images {
        match engine.rmi(name, a.force) {
            Ok(events) => print_events(&events, true),
            Err(e) => {
                eprintln!("Error: {}", crate::one_line(&e));
                code = 1;
            }
        }
    }
    Ok(code)
}

#[derive(Args)]
pub struct PruneArgs {
    /// Remove all images without containers, not just dangling ones
    #[arg(short, long)]
    all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    force: bool,
}

pub fn prune(engine: &Engine, a: PruneArgs) -> Result<i32> {
    let (events, reclaimed) = engine.image_prune(a.all)?;
    if !events.is_empty() {
        println!("Deleted Images:");
        print_events(&events, false);
        println!();
    }
    println!(
        "Total reclaimed space: {}",
        crate::format::human_size_prec(reclaimed, 4)
    );
    Ok(0)
}

#[derive(Args)]
pub struct HistoryArgs {
    /// Don't truncate output
    #[arg(long)]
    no_trunc: bool,
    /// Only show image IDs
    #[arg(short, long)]
    quiet: bool,
    /// Print sizes and dates in human readable format
    #[arg(short = 'H', long, default_value_t = true)]
    human: bool,
    /// table, json, or a Go template such as '{{.ID}} {{.CreatedBy}}'
    #[arg(long)]
    format: Option<String>,
    image: String,
}

/// Docker's column headers of `history --format 'table …'`.
const HISTORY_COLUMNS: crate::format::Columns = crate::format::Columns {
    type_name: "*formatter.historyContext",
    headers: &[
        ("ID", "IMAGE"),
        ("CreatedSince", "CREATED"),
        ("CreatedAt", "CREATED AT"),
        ("CreatedBy", "CREATED BY"),
        ("Size", "SIZE"),
        ("Comment", "COMMENT"),
    ],
};

pub fn history(engine: &Engine, a: HistoryArgs) -> Result<i32> {
    let format = list_format(a.format.as_deref())?;
    let rows = engine.history(&a.image)?;
    if a.quiet {
        for r in &rows {
            println!(
                "{}",
                r.id.as_deref()
                    .map(|i| id_text(i, a.no_trunc))
                    .unwrap_or_else(|| "<missing>".into())
            );
        }
        return Ok(0);
    }
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let by = r.created_by.replace('\n', " ");
            let by = if a.no_trunc || by.chars().count() <= 45 {
                by
            } else {
                by.chars().take(44).collect::<String>() + "…"
            };
            vec![
                r.id.as_deref()
                    .map(|i| id_text(i, a.no_trunc))
                    .unwrap_or_else(|| "<missing>".into()),
                r.created.map(ago).unwrap_or_else(|| "N/A".into()),
                by,
                human_size(r.size),
                r.comment.clone(),
            ]
        })
        .collect();
    if let crate::format::ListFormat::Default = format {
        print!(
            "{}",
            table(
                &["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"],
                &body
            )
        );
        return Ok(0);
    }
    let docs: Vec<serde_json::Value> = rows
        .iter()
        .zip(body)
        .map(|(r, b)| {
            let created_at = r
                .created
                .map(|t| humantime::format_rfc3339_seconds(t).to_string())
                .unwrap_or_else(|| "N/A".into());
            row(&[
                ("ID", b[0].clone()),
                ("CreatedSince", b[1].clone()),
                ("CreatedAt", created_at),
                ("CreatedBy", b[2].clone()),
                ("Size", b[3].clone()),
                ("Comment", b[4].clone()),
            ])
        })
        .collect();
    let out = format
        .render(&docs, &HISTORY_COLUMNS, None)
        .map_err(|e| EngineError::Invalid(e.to_string()))?;
    print!("{out}");
    Ok(0)
}

#[derive(Args)]
pub struct InspectArgs {
    /// Format the output with a Go template ('{{.State.Status}}', '{{json .Config}}'), or json
    #[arg(short, long)]
    format: Option<String>,
    #[arg(required = true)]
    names: Vec<String>,
}

/// What `inspect -f` asks for.
pub enum InspectFormat {
    Pretty,
    Json,
    Template(berth_gotemplate::Template),
}

impl InspectFormat {
    /// Parsed before anything is looked up: a bad template is Docker's
    /// status 64 (the `Err`), with nothing printed on stdout.
    pub fn parse(f: Option<&str>) -> std::result::Result<InspectFormat, i32> {
        Ok(match f {
            None | Some("") => InspectFormat::Pretty,
            Some("json") => InspectFormat::Json,
            Some(f) => match berth_gotemplate::Template::parse(f) {
                Ok(t) => InspectFormat::Template(t),
                Err(e) => {
                    eprintln!("Error: {}", crate::one_line(&e));
                    return Err(64);
                }
            },
        })
    }

    /// Prints the documents; 1 if a template failed on one of them.
    pub fn print(&self, docs: Vec<serde_json::Value>) -> i32 {
        let mut code = 0;
        match self {
            InspectFormat::Template(t) => {
                use std::io::Write;
                let mut stdout = std::io::stdout().lock();
                for v in &docs {
                    match t.execute(v, &berth_gotemplate::Env::default()) {
                        Ok(text) => {
                            let _ = writeln!(stdout, "{text}");
                        }
                        Err(e) => {
                            // Docker's words, for an execution error too.
                            eprintln!("Error: template parsing error: {}", crate::one_line(&e));
                            code = 1;
                        }
                    }
                }
            }
            InspectFormat::Json => println!("{}", serde_json::Value::Array(docs)),
            InspectFormat::Pretty => println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::Value::Array(docs)).unwrap_or_default()
            ),
        }
        code
    }
}

pub fn inspect(engine: &Engine, a: InspectArgs) -> Result<i32> {
    inspect_with(engine, a, Engine::inspect)
}

/// `inspect` with the lookup of `image inspect` (images only), `container inspect`
/// (containers only) or `inspect` (either).
pub fn inspect_with(
    engine: &Engine,
    a: InspectArgs,
    lookup: fn(&Engine, &str) -> berth_engine::Result<serde_json::Value>,
) -> Result<i32> {
    let format = match InspectFormat::parse(a.format.as_deref()) {
        Ok(f) => f,
        Err(code) => return Ok(code),
    };
    let mut out = Vec::new();
    let mut code = 0;
    for n in &a.names {
        match lookup(engine, n) {
            Ok(v) => out.push(v),
            Err(e) => {
                eprintln!("Error: {}", crate::one_line(&e));
                code = 1;
            }
        }
    }
    Ok(code.max(format.print(out)))
}
