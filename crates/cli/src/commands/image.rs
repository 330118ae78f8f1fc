use crate::format::{ago, human_size, table};
use berth_engine::{Engine, ImageSummary, Result, RmiEvent};
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
    /// table, json, or a Go-style template such as '{{.Repository}}:{{.Tag}}'
    #[arg(long)]
    format: Option<String>,
    /// Only images of this repository[:tag]
    reference: Option<String>,
}

#[derive(Subcommand)]
pub enum ImageCommand {
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
        ImageCommand::Ls(a) => images(engine, a),
        ImageCommand::Inspect(a) => inspect(engine, a),
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

/// A small subset of Go templates: `{{.Field}}` and `{{json .}}`.
pub fn render_template(tmpl: &str, fields: &[(&str, String)]) -> String {
    let mut out = tmpl.replace("\\t", "\t").replace("\\n", "\n");
    if out.contains("{{json .}}") {
        let obj: serde_json::Map<String, serde_json::Value> = fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), serde_json::Value::String(v.clone())))
            .collect();
        out = out.replace("{{json .}}", &serde_json::Value::Object(obj).to_string());
    }
    for (k, v) in fields {
        out = out.replace(&format!("{{{{.{k}}}}}"), v);
        out = out.replace(&format!("{{{{ .{k} }}}}"), v);
    }
    out
}

pub fn images(engine: &Engine, a: ImagesArgs) -> Result<i32> {
    let mut list = engine.images(a.reference.as_deref())?;
    list.sort_by_key(|x| std::cmp::Reverse(x.created));
    if a.quiet {
        let mut seen = std::collections::HashSet::new();
        for i in &list {
            let id = id_text(&i.id, a.no_trunc);
            if seen.insert(id.clone()) {
                println!("{id}");
            }
        }
        return Ok(0);
    }
    match a.format.as_deref() {
        Some("json") => {
            for i in &list {
                println!("{}", render_template("{{json .}}", &fields(i, a.no_trunc)));
            }
        }
        Some(t) if t != "table" => {
            let t = t.strip_prefix("table ").unwrap_or(t);
            for i in &list {
                println!("{}", render_template(t, &fields(i, a.no_trunc)));
            }
        }
        _ => {
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
fn print_events(events: &[RmiEvent], capitalised: bool) {
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
    println!("Total reclaimed space: {}", human_size(reclaimed));
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
    image: String,
}

pub fn history(engine: &Engine, a: HistoryArgs) -> Result<i32> {
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
    print!(
        "{}",
        table(
            &["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"],
            &body
        )
    );
    Ok(0)
}

#[derive(Args)]
pub struct InspectArgs {
    /// A Go-style template ({{.Field}} of the top level, or {{json .}})
    #[arg(short, long)]
    format: Option<String>,
    #[arg(required = true)]
    names: Vec<String>,
}

pub fn inspect(engine: &Engine, a: InspectArgs) -> Result<i32> {
    let mut out = Vec::new();
    let mut code = 0;
    for n in &a.names {
        match engine.inspect(n) {
            Ok(v) => out.push(v),
            Err(e) => {
                eprintln!("Error: {}", crate::one_line(&e));
                code = 1;
            }
        }
    }
    match a.format {
        Some(f) => {
            for v in &out {
                let fields: Vec<(&str, String)> = v
                    .as_object()
                    .map(|o| {
                        o.iter()
                            .map(|(k, v)| {
                                let s = match v {
                                    serde_json::Value::String(s) => s.clone(),
                                    other => other.to_string(),
                                };
                                (k.as_str(), s)
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let f2 = f.replace("{{json .}}", &v.to_string());
                println!("{}", render_template(&f2, &fields));
            }
        }
        None => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::Value::Array(out)).unwrap_or_default()
        ),
    }
    Ok(code)
}
