//! `/images/...`, `/commit`, `/auth`: list, inspect, history, tag, remove,
//! prune, save and load, pull (`/images/create`) and import, push, login.
//! Streams (pull, push, load, save) are driven by the engine on a blocking
//! thread; a stream that fails before its first byte answers with a plain
//! error, as Docker's server does.

use crate::http::{self, ApiError, ApiResult};
use crate::router::Ctx;
use berth_engine::registry::{self as reg, AuthConfig, Credentials, ProgressSink};
use berth_engine::units::progress_bar;
use berth_engine::{Engine, EngineError, Progress, RegistryFlags, RmiEvent};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::UNIX_EPOCH;
use tokio::sync::mpsc;

/// `/images/{name}/{action}` and `DELETE /images/{name}`: the name is
/// every path word but the last (names hold slashes).
pub async fn dispatch(ctx: &mut Ctx, m: &hyper::Method, words: &[&str]) -> ApiResult {
    use hyper::Method;
    let get = *m == Method::GET || *m == Method::HEAD;
    let post = *m == Method::POST;
    match words {
        ["json"] if get => list(ctx).await,
        ["get"] if get => save(ctx, ctx.query.all("names")).await,
        ["load"] if post => load(ctx).await,
        ["create"] if post => create(ctx).await,
        ["prune"] if post => prune(ctx).await,
        ["search"] if get => Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "berth has no index to search: images are pulled by name from a registry",
        )),
        [name @ .., last] if !name.is_empty() => {
            let name = name.join("/");
            match *last {
                "json" if get => inspect(ctx, &name).await,
                "history" if get => history(ctx, &name).await,
                "tag" if post => tag(ctx, &name).await,
                "push" if post => push(ctx, &name).await,
                "get" if get => save(ctx, vec![name]).await,
                _ if *m == Method::DELETE => remove(ctx, &words.join("/")).await,
                _ => Err(ApiError::not_found("page not found")),
            }
        }
        [name] if *m == Method::DELETE => remove(ctx, name).await,
        _ => Err(ApiError::not_found("page not found")),
    }
}

/// A JSON message as one line of a stream.
pub fn line(v: &Value) -> Bytes {
    let mut b = v.to_string().into_bytes();
    b.push(b'\n');
    Bytes::from(b)
}

/// Docker's in-stream error.
pub fn error_line(msg: &str) -> Bytes {
    line(&json!({"errorDetail": {"message": msg}, "error": msg}))
}

/// What a streaming job writes with: lines into the response, and whether
/// any went out yet (an error then goes in the stream, else as a status).
#[derive(Clone)]
pub struct Lines {
    tx: mpsc::Sender<Bytes>,
    sent: Arc<AtomicBool>,
}

impl Lines {
    /// Sends one chunk; false when the client went away.
    pub fn send(&self, b: Bytes) -> bool {
        self.sent.store(true, Ordering::SeqCst);
        self.tx.blocking_send(b).is_ok()
    }
    pub fn json(&self, v: &Value) -> bool {
        self.send(line(v))
    }
    pub fn was_sent(&self) -> bool {
        self.sent.load(Ordering::SeqCst)
    }
}

/// A writer into a stream (an archive being saved).
struct LinesWriter<'a>(&'a Lines);

impl Write for LinesWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.0.send(Bytes::copy_from_slice(buf)) {
            Ok(buf.len())
        } else {
            Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe))
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs `job` on the engine and answers with a `ctype` stream of what it
/// writes: headers go out with its first chunk; a job that fails before
/// writing anything answers with its error and status.
pub async fn lazy_stream<F>(ctx: &Ctx, ctype: &'static str, job: F) -> ApiResult
where
    F: FnOnce(&Engine, &Lines) -> Result<(), ApiError> + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel::<Bytes>(64);
    let server = ctx.server.clone();
    let handle = tokio::spawn(async move {
        let _busy = crate::Busy::new(&server);
        server
            .engine(move |e| {
                let lines = Lines {
                    tx,
                    sent: Arc::new(AtomicBool::new(false)),
                };
                match job(e, &lines) {
                    Ok(()) => Ok(()),
                    Err(err) if lines.was_sent() => {
                        if ctype == "application/json" {
                            lines.send(error_line(&err.message));
                        }
                        Ok(())
                    }
                    Err(err) => Err(err),
                }
            })
            .await
    });
    let first = rx.recv().await;
    let (resp, out) = http::stream(ctype);
    match first {
        None => {
            handle
                .await
                .map_err(|e| ApiError::internal(format!("request task failed: {e}")))??;
            Ok(resp)
        }
        Some(b) => {
            let server = ctx.server.clone();
            tokio::spawn(async move {
                let _busy = crate::Busy::new(&server);
                if out.send(b).await.is_err() {
                    return;
                }
                while let Some(b) = rx.recv().await {
                    if out.send(b).await.is_err() {
                        return;
                    }
                }
            });
            Ok(resp)
        }
    }
}

/// The request body as a blocking reader, fed by a task as it arrives.
pub struct BodyReader {
    rx: mpsc::Receiver<Result<Bytes, String>>,
    cur: Bytes,
}

impl BodyReader {
    pub fn take(ctx: &mut Ctx) -> BodyReader {
        let (tx, rx) = mpsc::channel(16);
        if let Some(mut body) = ctx.req.body_mut().take() {
            tokio::spawn(async move {
                while let Some(f) = body.frame().await {
                    let msg = match f {
                        Ok(f) => match f.into_data() {
                            Ok(d) => Ok(d),
                            Err(_) => continue,
                        },
                        Err(e) => Err(format!("reading the request body: {e}")),
                    };
                    let stop = msg.is_err();
                    if tx.send(msg).await.is_err() || stop {
                        return;
                    }
                }
            });
        }
        BodyReader {
            rx,
            cur: Bytes::new(),
        }
    }
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                None => return Ok(0),
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => return Err(std::io::Error::other(e)),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        let _ = self.cur.split_to(n);
        Ok(n)
    }
}

/// `X-Registry-Auth`: base64url JSON of Docker's AuthConfig.
pub fn registry_auth(ctx: &Ctx) -> ApiResult<Option<Credentials>> {
    let Some(h) = ctx.req.headers().get("X-Registry-Auth") else {
        return Ok(None);
    };
    let raw = h.to_str().unwrap_or("").trim();
    if raw.is_empty() {
        return Ok(None);
    }
    let config = AuthConfig::from_header(raw).map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(config.credentials())
}

/// A pull or push progress event as Docker's JSON message.
fn progress_json(p: Progress<'_>) -> Value {
    match p {
        Progress::Line(s) => json!({ "status": s }),
        Progress::Layer {
            id,
            status,
            current,
            total,
        } => {
            if matches!(status, "Downloading" | "Extracting" | "Pushing") && total > 0 {
                json!({
                    "status": status,
                    "progressDetail": {"current": current, "total": total},
                    "progress": progress_bar(current, total),
                    "id": id,
                })
            } else {
                json!({"status": status, "progressDetail": {}, "id": id})
            }
        }
    }
}

fn unix_secs(t: std::time::SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Go's path.Match for `*` and `?` (neither matches `/`).
fn glob(pat: &[u8], s: &[u8]) -> bool {
    match (pat.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            glob(&pat[1..], s) || (s.first().is_some_and(|c| *c != b'/') && glob(pat, &s[1..]))
        }
        (Some(b'?'), Some(c)) if *c != b'/' => glob(&pat[1..], &s[1..]),
        (Some(p), Some(c)) if p == c => glob(&pat[1..], &s[1..]),
        _ => false,
    }
}

/// Docker's `reference` filter: the pattern against each familiar
/// reference (`busybox:latest`), then its name (`busybox`).
fn reference_matches(pattern: &str, tags: &[String]) -> bool {
    tags.iter().any(|t| {
        let name = match t.rfind(':') {
            Some(i) if !t[i..].contains('/') => &t[..i],
            _ => t.as_str(),
        };
        glob(pattern.as_bytes(), t.as_bytes()) || glob(pattern.as_bytes(), name.as_bytes())
    })
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// One image for the list: its inspect document and the list's figures.
struct Listed {
    id: String,
    created: i64,
    size: u64,
    doc: Value,
}

fn label_matches(labels: &Value, want: &str) -> bool {
    match want.split_once('=') {
        Some((k, v)) => labels.get(k).and_then(Value::as_str) == Some(v),
        None => labels.get(want).is_some(),
    }
}

/// `GET /images/json?all=&filters=&filter=`.
async fn list(ctx: &mut Ctx) -> ApiResult {
    let all = ctx.query.bool("all");
    let mut filters = ctx.query.filters()?;
    if let Some(f) = ctx.query.get("filter").filter(|f| !f.is_empty()) {
        filters.push(("reference".into(), f.to_owned()));
    }
    for (k, v) in &filters {
        match k.as_str() {
            "reference" | "label" | "before" | "since" => {}
            "dangling" => {
                if !matches!(v.as_str(), "true" | "false" | "1" | "0") {
                    return Err(ApiError::bad_request(format!(
                        "Invalid filter 'dangling={v}'"
                    )));
                }
            }
            _ => return Err(ApiError::bad_request(format!("invalid filter '{k}'"))),
        }
    }
    let old = ctx.api_below((1, 44));
    let rows = ctx
        .server
        .engine(move |e| {
            let rows = e.images(None, all)?;
            let mut seen = std::collections::HashSet::new();
            let mut out: Vec<Listed> = Vec::new();
            for r in rows {
                if !seen.insert(r.id.clone()) {
                    continue;
                }
                let doc = e.image_inspect(&r.id)?;
                out.push(Listed {
                    id: r.id.clone(),
                    created: unix_secs(r.created),
                    size: r.size,
                    doc,
                });
            }
            // before/since name images; their creation times bound the list.
            let mut bounds = Vec::new();
            for (k, v) in &filters {
                if k == "before" || k == "since" {
                    let id = e.image_inspect(v)?["Id"].as_str().unwrap_or("").to_owned();
                    let t = out.iter().find(|l| l.id == id).map(|l| l.created);
                    let t = match t {
                        Some(t) => t,
                        None => e
                            .images(None, true)?
                            .into_iter()
                            .find(|r| r.id == id)
                            .map(|r| unix_secs(r.created))
                            .unwrap_or(0),
                    };
                    bounds.push((k.clone(), t));
                }
            }
            out.sort_by_key(|l| std::cmp::Reverse(l.created));
            let mut by: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
            for (k, v) in &filters {
                by.entry(k.as_str()).or_default().push(v.as_str());
            }
            let keep = |l: &Listed| {
                let tags = strings(&l.doc["RepoTags"]);
                let labels = &l.doc["Config"]["Labels"];
                by.iter().all(|(k, vals)| match *k {
                    "reference" => vals.iter().any(|p| reference_matches(p, &tags)),
                    "dangling" => vals
                        .iter()
                        .all(|v| tags.is_empty() == matches!(*v, "true" | "1")),
                    "label" => vals.iter().all(|v| label_matches(labels, v)),
                    "before" => bounds
                        .iter()
                        .filter(|(k, _)| k == "before")
                        .all(|(_, t)| l.created < *t),
                    "since" => bounds
                        .iter()
                        .filter(|(k, _)| k == "since")
                        .all(|(_, t)| l.created > *t),
                    _ => true,
                })
            };
            // As Docker, a reference filter shows only the tags it matched.
            let patterns = by.get("reference").cloned().unwrap_or_default();
            let list: Vec<Value> = out
                .iter()
                .filter(|l| keep(l))
                .map(|l| {
                    let mut v = summary(l, old);
                    if !patterns.is_empty() {
                        let tags: Vec<String> = strings(&v["RepoTags"])
                            .into_iter()
                            .filter(|t| {
                                patterns
                                    .iter()
                                    .any(|p| reference_matches(p, std::slice::from_ref(t)))
                            })
                            .collect();
                        v["RepoTags"] = json!(tags);
                    }
                    v
                })
                .collect();
            Ok(list)
        })
        .await?;
    http::ok_json(&rows)
}

/// Docker's ImageSummary.
fn summary(l: &Listed, old: bool) -> Value {
    let tags = strings(&l.doc["RepoTags"]);
    let digests = strings(&l.doc["RepoDigests"]);
    let (repo_tags, repo_digests) = if old {
        // Docker 20.10's placeholders for untagged images.
        let t = match (tags.is_empty(), digests.is_empty()) {
            (true, true) => json!(["<none>:<none>"]),
            // Pulled by digest only.
            (true, false) => Value::Null,
            _ => json!(tags),
        };
        let d = match (tags.is_empty(), digests.is_empty()) {
            (true, true) => json!(["<none>@<none>"]),
            (false, true) => Value::Null,
            _ => json!(digests),
        };
        (t, d)
    } else {
        (json!(tags), json!(digests))
    };
    let labels = match &l.doc["Config"]["Labels"] {
        Value::Object(m) if !m.is_empty() => Value::Object(m.clone()),
        _ if old => Value::Null,
        _ => json!({}),
    };
    let mut v = json!({
        "Containers": -1,
        "Created": l.created,
        "Id": l.id,
        "Labels": labels,
        "ParentId": l.doc["Parent"].as_str().unwrap_or(""),
        "RepoDigests": repo_digests,
        "RepoTags": repo_tags,
        "SharedSize": -1,
        "Size": l.size,
    });
    if old {
        v["VirtualSize"] = l.size.into();
    }
    v
}

/// The 404 of an image that is not here, in Docker's words.
fn no_such_image(name: &str) -> ApiError {
    let shown = if name.contains(':') || name.contains('@') {
        name.to_owned()
    } else {
        format!("{name}:latest")
    };
    ApiError::not_found(format!("No such image: {shown}"))
}

fn image_err(name: &str, e: EngineError) -> ApiError {
    match e {
        EngineError::NotFound { .. } => no_such_image(name),
        e => e.into(),
    }
}

/// `GET /images/{name}/json`.
async fn inspect(ctx: &mut Ctx, name: &str) -> ApiResult {
    let key = name.to_owned();
    let old = ctx.api_below((1, 44));
    let mut v = ctx
        .server
        .engine(move |e| e.image_inspect(&key).map_err(|err| image_err(&key, err)))
        .await?;
    // Go's zero time: the CLI decodes this into a time.
    if v["Metadata"]["LastTagTime"]
        .as_str()
        .unwrap_or("")
        .is_empty()
    {
        v["Metadata"]["LastTagTime"] = "0001-01-01T00:00:00Z".into();
    }
    if !old {
        // Gone from API 1.44 on.
        if let Some(o) = v.as_object_mut() {
            o.remove("VirtualSize");
        }
    }
    http::ok_json(&v)
}

/// `GET /images/{name}/history`.
async fn history(ctx: &mut Ctx, name: &str) -> ApiResult {
    let key = name.to_owned();
    let rows = ctx
        .server
        .engine(move |e| {
            let rows = e.history(&key).map_err(|err| image_err(&key, err))?;
            let mut out = Vec::new();
            for r in rows {
                let tags = match &r.id {
                    Some(id) => {
                        let t = e
                            .image_inspect(id)
                            .map(|d| strings(&d["RepoTags"]))
                            .unwrap_or_default();
                        if t.is_empty() {
                            Value::Null
                        } else {
                            json!(t)
                        }
                    }
                    None => Value::Null,
                };
                out.push(json!({
                    "Comment": r.comment,
                    "Created": r.created.map(unix_secs).unwrap_or(0),
                    "CreatedBy": r.created_by,
                    "Id": r.id.clone().unwrap_or_else(|| "<missing>".into()),
                    "Size": r.size,
                    "Tags": tags,
                }));
            }
            Ok(out)
        })
        .await?;
    http::ok_json(&rows)
}

/// `POST /images/{name}/tag?repo=&tag=`.
async fn tag(ctx: &mut Ctx, name: &str) -> ApiResult {
    let repo = ctx.query.str("repo");
    let tag = ctx.query.str("tag");
    if repo.is_empty() {
        return Err(ApiError::bad_request(
            "repository name must have at least one component",
        ));
    }
    let target = if tag.is_empty() {
        repo
    } else {
        format!("{repo}:{tag}")
    };
    let key = name.to_owned();
    ctx.server
        .engine(move |e| {
            e.image_inspect(&key).map_err(|err| image_err(&key, err))?;
            Ok(e.tag(&key, &target)?)
        })
        .await?;
    Ok(http::empty(StatusCode::CREATED))
}

fn rmi_json(events: &[RmiEvent]) -> Vec<Value> {
    events
        .iter()
        .map(|ev| match ev {
            RmiEvent::Untagged(t) => json!({ "Untagged": t }),
            RmiEvent::Deleted(d) => json!({ "Deleted": d }),
        })
        .collect()
}

/// `DELETE /images/{name}?force=&noprune=`.
async fn remove(ctx: &mut Ctx, name: &str) -> ApiResult {
    let key = name.to_owned();
    let force = ctx.query.bool("force");
    let events = ctx
        .server
        .engine(move |e| {
            e.image_inspect(&key).map_err(|err| image_err(&key, err))?;
            Ok(e.rmi(&key, force)?)
        })
        .await?;
    http::ok_json(&rmi_json(&events))
}

/// A prune's `until`: a Unix time (`secs[.nanos]`), an RFC 3339 time, or
/// a Go duration before now (`24h`, `1h30m`, `90s`), as moby's timetypes.
pub(crate) fn until_time(v: &str) -> ApiResult<std::time::SystemTime> {
    let bad = || ApiError::bad_request(format!("failed to parse value as time or duration: {v:?}"));
    if let Ok(ns) = crate::system::timestamp_ns(v) {
        return Ok(UNIX_EPOCH + std::time::Duration::from_nanos(ns.max(0) as u64));
    }
    if let Some(d) = go_duration(v) {
        return std::time::SystemTime::now().checked_sub(d).ok_or_else(bad);
    }
    let t = v.trim_end_matches('Z');
    let t = t.split('.').next().unwrap_or(t);
    humantime_rfc3339(t).ok_or_else(bad)
}

fn humantime_rfc3339(t: &str) -> Option<std::time::SystemTime> {
    // YYYY-MM-DDTHH:MM:SS (UTC), the form Docker's clients send.
    let (date, time) = t.split_once('T')?;
    let d: Vec<i64> = date
        .split('-')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    let h: Vec<i64> = time
        .split(':')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    if d.len() != 3 || h.len() != 3 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y, m) = if d[1] <= 2 {
        (d[0] - 1, d[1] + 9)
    } else {
        (d[0], d[1] - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d[2] - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h[0] * 3600 + h[1] * 60 + h[2];
    u64::try_from(secs)
        .ok()
        .map(|s| UNIX_EPOCH + std::time::Duration::from_secs(s))
}

/// Go's time.ParseDuration for whole units (h, m, s, ms).
fn go_duration(v: &str) -> Option<std::time::Duration> {
    let mut total = 0f64;
    let mut rest = v;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .filter(|&n| n > 0)?;
        let num: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let mult = match &rest[..u] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            _ => return None,
        };
        total += num * mult;
        rest = &rest[u..];
    }
    Some(std::time::Duration::from_secs_f64(total))
}

/// `POST /images/prune?filters=`: dangling images, or every unused one
/// with `dangling=false`; `until`, `label` and `label!` narrow it as
/// dockerd's do.
async fn prune(ctx: &mut Ctx) -> ApiResult {
    let mut all = false;
    let mut until = Vec::new();
    let mut labels = berth_engine::Filters::new();
    let mut not_labels = berth_engine::Filters::new();
    for (k, v) in ctx.query.filters()? {
        match (k.as_str(), v.as_str()) {
            ("dangling", "false" | "0") => all = true,
            ("dangling", "true" | "1") => {}
            ("dangling", _) => {
                return Err(ApiError::bad_request(format!(
                    "Invalid filter 'dangling={v}'"
                )))
            }
            ("until", _) => until.push(until_time(&v)?),
            ("label", _) => labels.add("label", &v),
            ("label!", _) => not_labels.add("label", &v),
            _ => return Err(ApiError::bad_request(format!("invalid filter '{k}'"))),
        }
    }
    let (events, space) = ctx
        .server
        .engine(move |e| {
            let mut keep = std::collections::HashSet::new();
            if !until.is_empty() || !labels.is_empty() || !not_labels.is_empty() {
                for img in e.images(None, true)? {
                    let prune_it = until.iter().all(|t| img.created < *t) && {
                        let d = e.image_inspect(&img.id)?;
                        let l: std::collections::BTreeMap<String, String> =
                            serde_json::from_value(d["Config"]["Labels"].clone())
                                .unwrap_or_default();
                        labels.labels_match(&l)
                            && (not_labels.is_empty() || !not_labels.labels_match(&l))
                    };
                    if !prune_it {
                        keep.insert(img.id);
                    }
                }
            }
            Ok(e.image_prune_except(all, &keep)?)
        })
        .await?;
    let deleted = if events.is_empty() {
        Value::Null
    } else {
        json!(rmi_json(&events))
    };
    http::ok_json(&json!({"ImagesDeleted": deleted, "SpaceReclaimed": space}))
}

/// `GET /images/{name}/get`, `GET /images/get?names=`: a docker-archive.
async fn save(ctx: &mut Ctx, names: Vec<String>) -> ApiResult {
    if names.is_empty() {
        return Err(ApiError::bad_request("no images given: names= is empty"));
    }
    lazy_stream(ctx, "application/x-tar", move |e, lines| {
        for n in &names {
            e.image_inspect(n).map_err(|err| image_err(n, err))?;
        }
        let w = std::io::BufWriter::with_capacity(64 << 10, LinesWriter(lines));
        e.save(&names, berth_engine::SaveFormat::DockerArchive, w)?;
        Ok(())
    })
    .await
}

/// `POST /images/load?quiet=`: a docker-archive or OCI archive in the body.
async fn load(ctx: &mut Ctx) -> ApiResult {
    let body = BodyReader::take(ctx);
    lazy_stream(ctx, "application/json", move |e, lines| {
        let loaded = e.load(body)?;
        for l in loaded {
            let text = match &l.reference {
                Some(r) => format!("Loaded image: {r}\n"),
                None => format!("Loaded image ID: {}\n", l.id),
            };
            lines.json(&json!({ "stream": text }));
        }
        Ok(())
    })
    .await
}

/// `POST /images/create?fromImage=&tag=` (pull), `?fromSrc=-&repo=&tag=`
/// (import of the body).
async fn create(ctx: &mut Ctx) -> ApiResult {
    let from_src = ctx.query.str("fromSrc");
    if !from_src.is_empty() {
        return import(ctx, &from_src).await;
    }
    let image = ctx.query.str("fromImage");
    if image.is_empty() {
        return Err(ApiError::bad_request("fromImage or fromSrc is required"));
    }
    let tag = ctx.query.str("tag");
    let name = if tag.is_empty() {
        image.clone()
    } else if tag.starts_with("sha256:") {
        format!("{image}@{tag}")
    } else {
        format!("{image}:{tag}")
    };
    let flags = RegistryFlags {
        platform: ctx
            .query
            .get("platform")
            .filter(|p| !p.is_empty())
            .map(str::to_owned),
        tls_verify: None,
        credentials: registry_auth(ctx)?,
    };
    lazy_stream(ctx, "application/json", move |e, lines| {
        // "Pulling from" waits for the next event: a registry that does
        // not know the image then answers with a plain 404, as Docker's.
        let held = std::sync::Mutex::new(None::<Value>);
        let flush = || {
            if let Some(v) = held.lock().ok().and_then(|mut h| h.take()) {
                lines.json(&v);
            }
        };
        let sink = |p: Progress<'_>| {
            if let Progress::Line(l) = p {
                // The CLI's note, not the daemon's.
                if l.starts_with("Using default tag") {
                    return;
                }
                if let Some((tag, repo)) = l.split_once(": Pulling from ") {
                    // dockerd's shape: the tag is the message's id.
                    if let Ok(mut h) = held.lock() {
                        *h = Some(json!({"status": format!("Pulling from {repo}"), "id": tag}));
                    }
                    return;
                }
            }
            flush();
            lines.json(&progress_json(p));
        };
        let res = e.pull(&name, &flags, &sink as ProgressSink<'_>)?;
        flush();
        lines.json(&json!({"status": format!("Digest: {}", res.digest)}));
        let status = if res.downloaded {
            format!("Status: Downloaded newer image for {}", res.familiar)
        } else {
            format!("Status: Image is up to date for {}", res.familiar)
        };
        lines.json(&json!({ "status": status }));
        Ok(())
    })
    .await
}

/// `POST /images/create?fromSrc=-`: the body is a rootfs tarball.
async fn import(ctx: &mut Ctx, src: &str) -> ApiResult {
    if src != "-" {
        return Err(ApiError::bad_request(format!(
            "importing from {src:?} is not supported by berth: send the tarball in the body (fromSrc=-)"
        )));
    }
    let repo = ctx.query.str("repo");
    let tag = ctx.query.str("tag");
    let reference = match (repo.is_empty(), tag.is_empty()) {
        (true, _) => None,
        (false, true) => Some(repo),
        (false, false) => Some(format!("{repo}:{tag}")),
    };
    let changes = ctx.query.all("changes");
    let message = ctx.query.get("message").map(str::to_owned);
    let body = BodyReader::take(ctx);
    lazy_stream(ctx, "application/json", move |e, lines| {
        let id = e.import(body, reference.as_deref(), &changes, message.as_deref())?;
        lines.json(&json!({"status": id.to_string()}));
        Ok(())
    })
    .await
}

/// `POST /images/{name}/push?tag=`.
async fn push(ctx: &mut Ctx, name: &str) -> ApiResult {
    let tag = ctx.query.str("tag");
    let flags = RegistryFlags {
        platform: None,
        tls_verify: None,
        credentials: registry_auth(ctx)?,
    };
    let name = name.to_owned();
    lazy_stream(ctx, "application/json", move |e, lines| {
        // No tag: every tag of the repository here, as Docker pushes.
        let refs: Vec<String> = if !tag.is_empty() {
            vec![format!("{name}:{tag}")]
        } else {
            let mut r: Vec<String> = e
                .images(Some(&name), false)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|s| Some(format!("{}:{}", s.repository?, s.tag?)))
                .collect();
            r.dedup();
            if r.is_empty() {
                r.push(name.clone());
            }
            r
        };
        for r in refs {
            let sink = |p: Progress<'_>| {
                if let Progress::Line(l) = p {
                    if l.starts_with("Using default tag") {
                        return;
                    }
                }
                lines.json(&progress_json(p));
            };
            let res = e.push(&r, &flags, &sink as ProgressSink<'_>)?;
            lines.json(&json!({"status": format!("{}: digest: {} size: {}", res.tag, res.digest, res.size)}));
            lines.json(&json!({
                "progressDetail": {},
                "aux": {"Tag": res.tag, "Digest": res.digest.to_string(), "Size": res.size},
            }));
        }
        Ok(())
    })
    .await
}

/// `POST /auth`: checks credentials with the registry (the client keeps
/// them; nothing is stored here).
pub async fn auth(ctx: &mut Ctx) -> ApiResult {
    let v: Value = ctx.json().await?;
    if !v.is_object() {
        return Err(ApiError::bad_request(
            "invalid JSON: an AuthConfig object is expected",
        ));
    }
    let config = AuthConfig::from_json(&v);
    let server = Some(config.server_address.clone()).filter(|s| !s.is_empty());
    let creds = config
        .credentials()
        .ok_or_else(|| ApiError::bad_request("Username and password are both required"))?;
    ctx.server
        .engine(move |_| {
            let domain = reg::login_domain(server.as_deref())?;
            reg::check_login(&domain, &creds, &RegistryFlags::default()).map_err(|e| {
                let msg = e.to_string();
                let l = msg.to_ascii_lowercase();
                if l.contains("401") || l.contains("unauthorized") || l.contains("denied") {
                    ApiError::new(StatusCode::UNAUTHORIZED, msg)
                } else {
                    ApiError::from(e)
                }
            })
        })
        .await?;
    http::ok_json(&json!({"Status": "Login Succeeded", "IdentityToken": ""}))
}

/// `POST /commit?container=&repo=&tag=&comment=&author=&pause=&changes=`.
pub async fn commit(ctx: &mut Ctx) -> ApiResult {
    let config: Value = ctx.json().await?;
    if !(config.is_null() || config.is_object()) {
        return Err(ApiError::bad_request(
            "invalid JSON: a container config object is expected",
        ));
    }
    let container = ctx.query.str("container");
    if container.is_empty() {
        return Err(ApiError::bad_request("container is required"));
    }
    let repo = ctx.query.str("repo");
    let tag = ctx.query.str("tag");
    let reference = match (repo.is_empty(), tag.is_empty()) {
        (true, _) => None,
        (false, true) => Some(repo),
        (false, false) => Some(format!("{repo}:{tag}")),
    };
    let comment = ctx
        .query
        .get("comment")
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    let author = ctx
        .query
        .get("author")
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    // Docker pauses unless told not to.
    let pause = match ctx.query.get("pause") {
        None | Some("") => true,
        Some(_) => ctx.query.bool("pause"),
    };
    let changes: Vec<String> = ctx
        .query
        .all("changes")
        .into_iter()
        .flat_map(|c| c.lines().map(str::to_owned).collect::<Vec<_>>())
        .filter(|c| !c.trim().is_empty())
        .collect();
    let id = ctx
        .server
        .engine(move |e| {
            e.container(&container).map_err(|err| match err {
                EngineError::NotFound { .. } => {
                    ApiError::not_found(format!("No such container: {container}"))
                }
                err => err.into(),
            })?;
            Ok(e.commit(
                &container,
                reference.as_deref(),
                comment.as_deref(),
                author.as_deref(),
                &changes,
                pause,
            )?)
        })
        .await?;
    Ok(http::json(
        StatusCode::CREATED,
        &json!({"Id": id.to_string()}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_patterns_as_docker() {
        let tags = vec![
            "localhost:5000/a/b:v1".to_owned(),
            "busybox:latest".to_owned(),
        ];
        assert!(reference_matches("busybox", &tags));
        assert!(reference_matches("busybox:*", &tags));
        assert!(reference_matches("localhost:5000/a/*", &tags));
        assert!(!reference_matches("localhost:5000/*", &tags));
        assert!(!reference_matches("busy", &tags));
    }
}
