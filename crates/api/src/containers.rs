//! `/containers/...`: create, list, inspect, the run sequence (attach,
//! wait, start), stop/kill/restart/rm, logs and the smaller verbs.

use crate::http::{self, ApiError, ApiResult};
use crate::router::Ctx;
use berth_engine::containers::State;
use berth_engine::model::ContainerCreateRequest;
use berth_engine::waiting::WaitCondition;
use berth_engine::{EngineError, Filters, ListOptions, LogOptions};
use bytes::Bytes;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

/// `POST /containers/create?name=`.
pub async fn create(ctx: &mut Ctx) -> ApiResult {
    let raw = ctx.body(4 << 20).await?;
    let body = if raw.iter().all(|c| c.is_ascii_whitespace()) {
        ContainerCreateRequest::default()
    } else {
        ContainerCreateRequest::from_json(&raw)?
    };
    let name = ctx.query.get("name").map(str::to_owned);
    let opts = body.into_create_options(name)?;
    let id = ctx.server.engine(move |e| Ok(e.create(&opts)?)).await?;
    Ok(http::json(
        StatusCode::CREATED,
        &json!({"Id": id.as_str(), "Warnings": []}),
    ))
}

/// `GET /containers/json?all=&limit=&size=&filters=`: the engine's typed
/// rows, which serialize in Docker's ContainerSummary shape.
pub async fn list(ctx: &mut Ctx) -> ApiResult {
    let opts = ListOptions {
        all: ctx.query.bool("all"),
        size: ctx.query.bool("size"),
        limit: ctx
            .query
            .int("limit")?
            .filter(|n| *n > 0)
            .map(|n| n as usize),
        filters: Filters::from_json(ctx.query.get("filters").unwrap_or(""))?,
    };
    let rows = ctx
        .server
        .engine(move |e| Ok(e.container_list(&opts)?))
        .await
        .map_err(|mut err| {
            // dockerd's /containers/json says "Invalid filter 'KEY'" (its
            // CLI's own check, which berth's CLI follows, is lowercase).
            if let Some(rest) = err.message.strip_prefix("invalid filter '") {
                if !rest.contains('=') {
                    err.message = format!("Invalid filter '{rest}");
                }
            }
            err
        })?;
    http::ok_json(&rows)
}

/// `POST /containers/prune`.
pub async fn prune(ctx: &mut Ctx) -> ApiResult {
    let (ids, space) = ctx.server.engine(|e| Ok(e.container_prune()?)).await?;
    http::ok_json(&json!({"ContainersDeleted": ids, "SpaceReclaimed": space}))
}

/// `DELETE /containers/{id}?force=&v=`.
pub async fn remove(ctx: &mut Ctx, id: &str) -> ApiResult {
    let (id, force, volumes) = (id.to_owned(), ctx.query.bool("force"), ctx.query.bool("v"));
    ctx.server
        .engine(move |e| {
            // Docker's words for a running container without force.
            let c = e.container(&id)?;
            if c.state == State::Running && !force {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    format!("You cannot remove a running container {}. Stop the container before attempting removal or force remove", c.id),
                ));
            }
            Ok(e.rm(&id, force, volumes)?)
        })
        .await?;
    http::no_content()
}

/// `/containers/{id}/{action}`.
pub async fn action(ctx: &mut Ctx, m: &Method, id: &str, action: &str) -> ApiResult {
    let post = *m == Method::POST;
    let get = *m == Method::GET;
    match action {
        "json" if get => inspect(ctx, id).await,
        "start" if post => start(ctx, id).await,
        "stop" if post => stop(ctx, id).await,
        "restart" if post => restart(ctx, id).await,
        "kill" if post => kill(ctx, id).await,
        "wait" if post => wait(ctx, id).await,
        "attach" if post => crate::hijack::attach(ctx, id).await,
        "logs" if get => logs(ctx, id).await,
        "pause" | "unpause" if post => pause(ctx, id, action == "pause").await,
        "rename" if post => rename(ctx, id).await,
        "top" if get => top(ctx, id).await,
        "changes" if get => changes(ctx, id).await,
        "export" if get => export(ctx, id).await,
        "update" if post => update(ctx, id).await,
        "resize" if post => resize(ctx, id).await,
        "exec" if post => crate::exec::create(ctx, id).await,
        "archive" => crate::archive::archive(ctx, m, id).await,
        "stats" if get => crate::stats::stats(ctx, id).await,
        _ => Err(ApiError::not_found("page not found")),
    }
}

async fn inspect(ctx: &mut Ctx, id: &str) -> ApiResult {
    let id = id.to_owned();
    let v = ctx
        .server
        .engine(move |e| Ok(e.container_inspect(&id)?))
        .await?;
    http::ok_json(&v)
}

async fn start(ctx: &mut Ctx, id: &str) -> ApiResult {
    let key = id.to_owned();
    let server = ctx.server.clone();
    let started = ctx
        .server
        .engine(move |e| {
            let c = e.container(&key)?;
            if c.state == State::Running {
                return Ok(false);
            }
            // An attach client waiting for this container gets all of its
            // output: the monitor holds the start until it connects.
            let attach_first = server
                .pending_attach
                .lock()
                .map(|mut p| {
                    p.get_mut(c.id.as_str())
                        .map(|counted| *counted = true)
                        .is_some()
                })
                .unwrap_or(false);
            if let Err(err) = e.start_with(c.id.as_str(), attach_first) {
                // Docker removes an --rm container whose start failed: the
                // CLI waits (`wait?condition=removed`) for that before it
                // reports the error.
                if c.config.auto_remove {
                    let _ = e.rm(c.id.as_str(), true, true);
                }
                return Err(err.into());
            }
            Ok(true)
        })
        .await?;
    if started {
        http::no_content()
    } else {
        Ok(http::empty(StatusCode::NOT_MODIFIED))
    }
}

fn timeout_secs(ctx: &Ctx) -> ApiResult<Option<u64>> {
    Ok(ctx.query.int("t")?.filter(|t| *t >= 0).map(|t| t as u64))
}

async fn stop(ctx: &mut Ctx, id: &str) -> ApiResult {
    let (key, t) = (id.to_owned(), timeout_secs(ctx)?);
    let stopped = ctx
        .server
        .engine(move |e| {
            let c = e.container(&key)?;
            if c.state != State::Running {
                return Ok(false);
            }
            e.stop(c.id.as_str(), t)?;
            Ok(true)
        })
        .await?;
    if stopped {
        http::no_content()
    } else {
        Ok(http::empty(StatusCode::NOT_MODIFIED))
    }
}

async fn restart(ctx: &mut Ctx, id: &str) -> ApiResult {
    let (key, t) = (id.to_owned(), timeout_secs(ctx)?);
    ctx.server.engine(move |e| Ok(e.restart(&key, t)?)).await?;
    http::no_content()
}

async fn kill(ctx: &mut Ctx, id: &str) -> ApiResult {
    let key = id.to_owned();
    let signal = ctx
        .query
        .get("signal")
        .filter(|s| !s.is_empty())
        .unwrap_or("KILL")
        .to_owned();
    ctx.server
        .engine(move |e| {
            let c = e.container(&key)?;
            if c.state != State::Running {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    format!(
                        "Cannot kill container: {key}: Container {} is not running",
                        c.id
                    ),
                ));
            }
            Ok(e.kill(c.id.as_str(), &signal)?)
        })
        .await?;
    http::no_content()
}

/// `POST /containers/{id}/wait?condition=`: headers at once (the CLI
/// starts the container only after it has them), the status at the exit.
async fn wait(ctx: &mut Ctx, id: &str) -> ApiResult {
    // Conditions came with API 1.30; older clients always wait for the
    // container to stop.
    let cond = if ctx.api_below((1, 30)) {
        WaitCondition::NotRunning
    } else {
        WaitCondition::parse(ctx.query.get("condition").unwrap_or(""))?
    };
    let key = id.to_owned();
    let start = ctx.server.engine(move |e| Ok(e.wait_start(&key)?)).await?;
    let (resp, tx) = http::stream("application/json");
    let server = ctx.server.clone();
    tokio::spawn(async move {
        let _busy = crate::Busy::new(&server);
        // The docker CLI 28 asks for a wait even with `run -d` and hangs
        // up after the start: a waiter whose client is gone stops (else it
        // holds a blocking thread and the idle exit until the exit).
        let cancel = Arc::new(AtomicBool::new(false));
        let flag = cancel.clone();
        let work = server.engine(move |e| Ok(e.wait_until_or_cancel(&start, cond, &flag)?));
        tokio::pin!(work);
        let res = tokio::select! {
            r = &mut work => r,
            _ = tx.closed() => {
                cancel.store(true, Ordering::SeqCst);
                return;
            }
        };
        let body = match res {
            Ok(code) => json!({"StatusCode": code, "Error": null}),
            Err(err) => {
                eprintln!("berth-api: wait: {}", err.message);
                json!({"StatusCode": -1, "Error": {"Message": err.message}})
            }
        };
        let mut line = body.to_string();
        line.push('\n');
        let _ = tx.send(Bytes::from(line)).await;
    });
    Ok(resp)
}

/// The two writers a log read sends into a streamed response: stdcopy
/// frames (raw bytes with a terminal), or nothing for a stream not asked.
pub(crate) fn log_writers(
    tx: mpsc::Sender<Bytes>,
    stdout: bool,
    stderr: bool,
    tty: bool,
) -> (Box<dyn Write + Send>, Box<dyn Write + Send>) {
    let writer = |tx: mpsc::Sender<Bytes>, wanted: bool, n: u8| -> Box<dyn Write + Send> {
        if wanted {
            Box::new(FrameWriter {
                tx,
                stream: (!tty).then_some(n),
            })
        } else {
            Box::new(Discard)
        }
    };
    (writer(tx.clone(), stdout, 1), writer(tx, stderr, 2))
}

/// A writer into a streamed response: Docker's 8-byte stdcopy header per
/// write when the container has no terminal, raw bytes when it has.
pub(crate) struct FrameWriter {
    pub(crate) tx: mpsc::Sender<Bytes>,
    pub(crate) stream: Option<u8>,
}

impl Write for FrameWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut out = Vec::with_capacity(buf.len() + 8);
        if let Some(s) = self.stream {
            out.extend_from_slice(&[s, 0, 0, 0]);
            out.extend_from_slice(&(buf.len() as u32).to_be_bytes());
        }
        out.extend_from_slice(buf);
        self.tx
            .blocking_send(Bytes::from(out))
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A writer that drops what it is given (`stdout=0`).
pub(crate) struct Discard;

impl Write for Discard {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn query_time(ctx: &Ctx, k: &str) -> ApiResult<Option<SystemTime>> {
    match ctx.query.get(k).filter(|s| !s.is_empty() && *s != "0") {
        None => Ok(None),
        Some(s) => {
            let ns = crate::system::timestamp_ns(s)?;
            Ok(Some(UNIX_EPOCH + Duration::from_nanos(ns.max(0) as u64)))
        }
    }
}

/// `GET /containers/{id}/logs`.
async fn logs(ctx: &mut Ctx, id: &str) -> ApiResult {
    let stdout = ctx.query.bool("stdout");
    let stderr = ctx.query.bool("stderr");
    if !stdout && !stderr {
        return Err(ApiError::bad_request(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let tail = match ctx.query.get("tail") {
        None | Some("") | Some("all") => None,
        Some(t) => Some(
            t.parse::<i64>()
                .map_err(|_| ApiError::bad_request(format!("invalid value for \"tail\": {t:?}")))?,
        ),
    };
    let opts = LogOptions {
        follow: ctx.query.bool("follow"),
        tail: tail.map(|t| t.max(0) as usize),
        timestamps: ctx.query.bool("timestamps"),
        since: query_time(ctx, "since")?,
        until: query_time(ctx, "until")?,
    };
    let key = id.to_owned();
    let c = ctx.server.engine(move |e| Ok(e.container(&key)?)).await?;
    let tty = c.config.tty;
    let ctype = if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    };
    let (resp, tx) = http::stream(ctype);
    let server = ctx.server.clone();
    let id = c.id.as_str().to_owned();
    let gone = tx.clone();
    tokio::spawn(async move {
        let _busy = crate::Busy::new(&server);
        // A client gone from a quiet `logs -f` no longer counts as activity
        // (the blocking reader ends at the next line or the exit).
        let work = server.engine(move |e| {
            let (mut out, mut err) = log_writers(tx, stdout, stderr, tty);
            match e.logs(&id, &opts, &mut out, &mut err) {
                Ok(()) => Ok(()),
                Err(EngineError::Io { .. }) => Ok(()),
                Err(e) => Err(e.into()),
            }
        });
        tokio::select! {
            _ = work => {}
            _ = gone.closed() => {}
        }
    });
    Ok(resp)
}

async fn pause(ctx: &mut Ctx, id: &str, on: bool) -> ApiResult {
    let key = id.to_owned();
    ctx.server.engine(move |e| Ok(e.pause(&key, on)?)).await?;
    http::no_content()
}

async fn rename(ctx: &mut Ctx, id: &str) -> ApiResult {
    let key = id.to_owned();
    let name = ctx.query.str("name");
    ctx.server
        .engine(move |e| Ok(e.rename(&key, &name)?))
        .await?;
    http::no_content()
}

/// `ps` output as Docker's ContainerTopOKBody: titles and rows, the last
/// column taking the rest of the line (the command has spaces).
fn top_table(text: &str) -> Value {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let titles: Vec<&str> = lines
        .next()
        .map(|l| l.split_whitespace().collect())
        .unwrap_or_default();
    let n = titles.len().max(1);
    let rows: Vec<Vec<String>> = lines
        .map(|l| {
            let mut cols = Vec::new();
            let mut rest = l.trim_start();
            for _ in 0..n - 1 {
                let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                cols.push(rest[..end].to_owned());
                rest = rest[end..].trim_start();
            }
            cols.push(rest.to_owned());
            cols
        })
        .collect();
    json!({"Titles": titles, "Processes": rows})
}

async fn top(ctx: &mut Ctx, id: &str) -> ApiResult {
    let key = id.to_owned();
    let args: Vec<String> = ctx
        .query
        .get("ps_args")
        .map(|a| a.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    let text = ctx.server.engine(move |e| Ok(e.top(&key, &args)?)).await?;
    http::ok_json(&top_table(&text))
}

async fn changes(ctx: &mut Ctx, id: &str) -> ApiResult {
    let key = id.to_owned();
    let rows = ctx.server.engine(move |e| Ok(e.diff(&key)?)).await?;
    let v: Vec<Value> = rows
        .iter()
        .map(|(k, p)| {
            let kind = match k {
                'A' => 1,
                'D' => 2,
                _ => 0,
            };
            json!({"Path": p, "Kind": kind})
        })
        .collect();
    http::ok_json(&v)
}

async fn export(ctx: &mut Ctx, id: &str) -> ApiResult {
    let key = id.to_owned();
    // 404 before the stream starts.
    ctx.server
        .engine({
            let key = key.clone();
            move |e| Ok(e.container(&key)?)
        })
        .await?;
    let (resp, tx) = http::stream("application/x-tar");
    let server = ctx.server.clone();
    tokio::spawn(async move {
        let _busy = crate::Busy::new(&server);
        let _ = server
            .engine(move |e| {
                let w = FrameWriter { tx, stream: None };
                Ok(e.export(&key, std::io::BufWriter::with_capacity(64 << 10, w))?)
            })
            .await;
    });
    Ok(resp)
}

async fn update(ctx: &mut Ctx, id: &str) -> ApiResult {
    let body: Value = ctx.json().await?;
    let key = id.to_owned();
    ctx.server
        .engine(move |e| Ok(e.update(&key, &body)?))
        .await?;
    http::ok_json(&json!({"Warnings": []}))
}

async fn resize(ctx: &mut Ctx, id: &str) -> ApiResult {
    let (rows, cols) = crate::exec::size(ctx)?;
    let key = id.to_owned();
    ctx.server
        .engine(move |e| Ok(e.resize(&key, rows, cols)?))
        .await?;
    Ok(http::text(StatusCode::OK, "text/plain; charset=utf-8", ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_keeps_the_command_whole() {
        let v =
            top_table("UID PID PPID C STIME TTY TIME CMD\nroot 1 0 0 10:00 ? 00:00:00 sleep 100\n");
        assert_eq!(v["Titles"].as_array().map(Vec::len), Some(8));
        assert_eq!(v["Processes"][0][7], "sleep 100");
    }
}
