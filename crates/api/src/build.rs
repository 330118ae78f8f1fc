//! `POST /build` (Docker's classic builder's stream) and `POST /build/prune`.
//!
//! The body is the context as a tar (the client applied .dockerignore):
//! it is unpacked whole into a work directory under the run directory
//! before a byte is answered, then the builder runs with a sink that turns
//! its output into `{"stream": ...}` lines and the image into
//! `{"aux":{"ID": ...}}`. A client that goes away cancels the build
//! between steps.

use crate::http::{ApiError, ApiResult, Query};
use crate::images::{lazy_stream, BodyReader};
use crate::router::Ctx;
use berth_builder::{BuildEvent, BuildOptions, BuildSink};
use berth_engine::BuildNetwork;
use serde_json::{json, Value};
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A JSON map of strings in the query (`buildargs`, `labels`); values
/// may be null (a build argument taken from nowhere: unset).
fn json_map(q: &Query, k: &str) -> ApiResult<Vec<(String, Option<String>)>> {
    let Some(raw) = q.get(k).filter(|s| !s.is_empty()) else {
        return Ok(Vec::new());
    };
    let v: Value = serde_json::from_str(raw)
        .map_err(|e| ApiError::bad_request(format!("invalid {k}: {e}")))?;
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Object(m) => m
            .into_iter()
            .map(|(key, val)| match val {
                Value::String(s) => Ok((key, Some(s))),
                Value::Null => Ok((key, None)),
                other => Err(ApiError::bad_request(format!(
                    "invalid {k}: the value of {key:?} is not a string: {other}"
                ))),
            })
            .collect(),
        _ => Err(ApiError::bad_request(format!(
            "invalid {k}: a JSON object is expected"
        ))),
    }
}

/// A JSON array of strings in the query (`cachefrom`).
fn json_list(q: &Query, k: &str) -> ApiResult<Vec<String>> {
    let Some(raw) = q.get(k).filter(|s| !s.is_empty()) else {
        return Ok(Vec::new());
    };
    serde_json::from_str::<Option<Vec<String>>>(raw)
        .map(Option::unwrap_or_default)
        .map_err(|e| ApiError::bad_request(format!("invalid {k}: {e}")))
}

/// Unpacks the context tar (plain or gzip) into `dir`; entries stay inside.
fn unpack_context(body: impl Read, dir: &Path) -> Result<(), ApiError> {
    let mut r = std::io::BufReader::with_capacity(1 << 20, body);
    let head = std::io::BufRead::fill_buf(&mut r)
        .map_err(|e| ApiError::bad_request(format!("reading the build context: {e}")))?;
    let gz = head.starts_with(&[0x1f, 0x8b]);
    let input: Box<dyn Read> = if gz {
        Box::new(flate2::read::GzDecoder::new(r))
    } else {
        Box::new(r)
    };
    let mut ar = tar::Archive::new(input);
    ar.set_preserve_permissions(true);
    ar.set_preserve_mtime(true);
    ar.set_overwrite(true);
    ar.unpack(dir).map_err(|e| {
        ApiError::bad_request(format!("the build context is not a valid tar archive: {e}"))
    })
}

/// The Dockerfile's path inside the context (Docker's `dockerfile=`).
fn dockerfile_in(ctx_dir: &Path, name: &str) -> ApiResult<PathBuf> {
    let rel = Path::new(name);
    let inside = rel
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    let path = ctx_dir.join(rel);
    if !inside || !path.is_file() {
        return Err(ApiError::internal(format!(
            "Cannot locate specified Dockerfile: {name}"
        )));
    }
    Ok(path)
}

/// `POST /build`.
pub async fn build(ctx: &mut Ctx) -> ApiResult {
    let q = &ctx.query;
    if let Some(r) = q.get("remote").filter(|r| !r.is_empty()) {
        return Err(ApiError::bad_request(format!(
            "remote build contexts are not supported by berth ({r}): send the context in the body"
        )));
    }
    let tags: Vec<String> = q.all("t").into_iter().filter(|t| !t.is_empty()).collect();
    for t in &tags {
        berth_builder::executor::check_tag(t)
            .map_err(|e| ApiError::bad_request(format!("invalid tag {t:?}: {e}")))?;
    }
    let network: BuildNetwork = match q.get("networkmode").filter(|n| !n.is_empty()) {
        Some(n) => n.parse()?,
        None => BuildNetwork::default(),
    };
    let build_args = json_map(q, "buildargs")?;
    let labels: Vec<(String, String)> = json_map(q, "labels")?
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect();
    let cache_from = json_list(q, "cachefrom")?;
    let dockerfile = q
        .get("dockerfile")
        .filter(|d| !d.is_empty())
        .unwrap_or("Dockerfile")
        .to_owned();
    let quiet = q.bool("q");
    let opts = BuildOptions {
        tags,
        build_args,
        target: q.get("target").filter(|t| !t.is_empty()).map(str::to_owned),
        no_cache: q.bool("nocache"),
        pull: q.bool("pull"),
        labels,
        quiet,
        platform: q
            .get("platform")
            .filter(|p| !p.is_empty())
            .map(str::to_owned),
        network,
        cache_from,
        ..Default::default()
    };
    let body = BodyReader::take(ctx);
    // The whole context first: nothing is answered before it is here.
    let dir = ctx
        .server
        .engine(move |e| {
            let dir = tempfile::Builder::new()
                .prefix("build-context-")
                .tempdir_in(e.run_dir())
                .map_err(|err| ApiError::internal(format!("build context directory: {err}")))?;
            unpack_context(body, dir.path())?;
            Ok(dir)
        })
        .await?;
    lazy_stream(ctx, "application/json", move |e, lines| {
        let dir = dir;
        let dockerfile = dockerfile_in(dir.path(), &dockerfile)?;
        let cancel = Arc::new(AtomicBool::new(false));
        let (out, stop) = (lines.clone(), cancel.clone());
        let each = move |ev: BuildEvent<'_>| {
            let v = match ev {
                BuildEvent::Output(s) => json!({ "stream": s }),
                // With q Docker sends the ID alone, at the end.
                BuildEvent::Built(_) if quiet => return,
                BuildEvent::Built(id) => json!({"aux": {"ID": id.to_string()}}),
            };
            if !out.json(&v) {
                stop.store(true, Ordering::SeqCst);
            }
        };
        let opts = BuildOptions {
            context: dir.path().to_owned(),
            dockerfile: Some(dockerfile),
            sink: Some(BuildSink {
                each: Arc::new(each),
                cancel,
            }),
            ..opts
        };
        match berth_builder::build(e, &opts) {
            Ok(id) => {
                if quiet {
                    lines.json(&json!({"stream": format!("{id}\n")}));
                }
                Ok(())
            }
            Err(err) if lines.was_sent() => {
                let msg = err.to_string();
                let mut v = json!({"errorDetail": {"message": msg}, "error": msg});
                if let berth_builder::BuildError::RunFailed { code, .. } = err {
                    v["errorDetail"]["code"] = code.into();
                }
                lines.json(&v);
                Ok(())
            }
            Err(berth_builder::BuildError::Engine(e)) => Err(e.into()),
            Err(err @ berth_builder::BuildError::Parse { .. }) => {
                Err(ApiError::bad_request(err.to_string()))
            }
            Err(err) => Err(ApiError::internal(err.to_string())),
        }
    })
    .await
}

/// `POST /build/prune`: empties the classic builder's step cache (the
/// table from a step's key to the image it made) and removes the images
/// only the cache kept (dangling, childless, unused: an untagged build's
/// steps) and the cache mounts' directories; their size is the space
/// reclaimed.
pub async fn prune(ctx: &mut Ctx) -> ApiResult {
    let (keys, space) = ctx
        .server
        .engine(|e| {
            let cache = berth_builder::cache::Cache::open(e.root())
                .map_err(|err| crate::http::ApiError::internal(err.to_string()))?;
            let entries = cache
                .clear()
                .map_err(|err| crate::http::ApiError::internal(err.to_string()))?;
            let cached: std::collections::HashSet<&str> =
                entries.iter().map(|(_, img)| img.as_str()).collect();
            let keep = e
                .images(None, true)?
                .into_iter()
                .map(|i| i.id)
                .filter(|id| !cached.contains(id.as_str()))
                .collect();
            let (_, images) = e.image_prune_except(false, &keep)?;
            // And RUN --mount=type=cache directories, as `berth builder prune`.
            let space = images + e.build_cache_prune()?;
            let keys: Vec<String> = entries
                .into_iter()
                .map(|(k, _)| k.trim_start_matches("sha256:").to_owned())
                .collect();
            Ok((keys, space))
        })
        .await?;
    let deleted = if keys.is_empty() {
        Value::Null
    } else {
        json!(keys)
    };
    crate::http::ok_json(&json!({"CachesDeleted": deleted, "SpaceReclaimed": space}))
}
