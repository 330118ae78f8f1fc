//! `berth events`: what happened to containers, from the engine's event log.

use berth_engine::{Engine, EngineError, Result};
use clap::Args;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Args)]
pub struct EventsArgs {
    /// Show events created since a time (RFC 3339, Unix seconds, or a duration such as 10m)
    #[arg(long)]
    since: Option<String>,
    /// Stream events until this time
    #[arg(long)]
    until: Option<String>,
    /// Filter: event=, container=, image=, type=, label=KEY[=VALUE]
    #[arg(short, long)]
    filter: Vec<String>,
    /// json, or a Go template such as '{{.Action}} {{.Actor.ID}}'
    #[arg(long)]
    format: Option<String>,
}

fn nanos(s: &str) -> Result<i64> {
    let t = crate::format::parse_when(s)?;
    Ok(t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0))
}

fn time_text(ns: i64) -> String {
    let t = UNIX_EPOCH + std::time::Duration::from_nanos(ns.max(0) as u64);
    humantime::format_rfc3339_nanos(t).to_string()
}

pub fn events(engine: &Engine, a: EventsArgs) -> Result<i32> {
    let filter = berth_engine::events::EventFilter::from_flags(&a.filter)?;
    let keep = move |e: &berth_engine::Event| filter.matches(e);
    // The template is parsed once, before anything streams.
    let tmpl = match a.format.as_deref() {
        None | Some("json") => None,
        Some(f) => Some(
            berth_gotemplate::Template::parse_list(f)
                .map_err(|e| EngineError::Invalid(e.to_string()))?,
        ),
    };
    let since = a.since.as_deref().map(nanos).transpose()?;
    let until = a.until.as_deref().map(nanos).transpose()?;
    // Without --since, `docker events` shows only what happens from now on.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0);
    let follow = until.is_none() || until.is_some_and(|u| u > now);
    let mut failed: Option<berth_gotemplate::Error> = None;
    let mut each = |e: &berth_engine::Event| {
        let line = match a.format.as_deref() {
            Some(f) => {
                let wire = e.message();
                let actor = wire["Actor"].clone();
                let from = e.attributes.get("image").cloned().unwrap_or_default();
                match &tmpl {
                    None if f == "json" => wire.to_string(),
                    Some(t) => {
                        // …and Go's field names in a template.
                        let fields = serde_json::json!({
                            "Status": e.action, "ID": e.actor, "From": from,
                            "Type": e.typ, "Action": e.action, "Actor": actor, "Scope": "local",
                            "Time": e.time_nano / 1_000_000_000, "TimeNano": e.time_nano,
                        });
                        let env = berth_gotemplate::Env {
                            root_json: Some(&wire),
                            root_type: Some("events.Message"),
                            ..Default::default()
                        };
                        match t.execute(&fields, &env) {
                            Ok(s) => s,
                            Err(err) => {
                                failed = Some(err);
                                return false;
                            }
                        }
                    }
                    None => String::new(),
                }
            }
            None => {
                let attrs: Vec<String> = e
                    .attributes
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                format!(
                    "{} {} {} {} ({})",
                    time_text(e.time_nano),
                    e.typ,
                    e.action,
                    e.actor,
                    attrs.join(", ")
                )
            }
        };
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}").is_ok() && out.flush().is_ok()
    };
    engine.events(since.unwrap_or(now), until, follow, &keep, &mut each)?;
    match failed {
        Some(e) => Err(EngineError::Invalid(e.to_string())),
        None => Ok(0),
    }
}
