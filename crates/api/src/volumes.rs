//! `/volumes/...` (list, inspect, create, remove, prune; update answers as
//! Docker does for a volume that is not a cluster volume) and
//! `/system/df`, in Docker's shapes and words.

use crate::http::{self, ApiError, ApiResult};
use crate::router::Ctx;
use berth_engine::{EngineError, Filters, VolumeInfo};
use hyper::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

/// Docker's VolumeCreateOptions (unknown fields ignored, as Go's decoder).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateRequest {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    driver: Option<String>,
    #[serde(default)]
    driver_opts: Option<BTreeMap<String, String>>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    cluster_volume_spec: Option<Value>,
}

/// `/volumes`, `/volumes/{name}`.
pub async fn route(ctx: &mut Ctx, m: &Method, segs: &[&str]) -> ApiResult {
    match (segs, m) {
        ([], &Method::GET) => list(ctx).await,
        (["create"], &Method::POST) => create(ctx).await,
        (["prune"], &Method::POST) => prune(ctx).await,
        ([name], &Method::GET) => inspect(ctx, name).await,
        ([name], &Method::DELETE) => remove(ctx, name).await,
        // Only cluster (swarm) volumes can be updated.
        ([_], &Method::PUT) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.",
        )),
        _ => Err(ApiError::not_found("page not found")),
    }
}

/// Docker's words for a volume that is not there.
fn vol_err(name: &str) -> impl Fn(EngineError) -> ApiError + '_ {
    move |e| match e {
        EngineError::NotFound { .. } => ApiError::not_found(format!("get {name}: no such volume")),
        e => e.into(),
    }
}

/// A volume in Docker's shape (Labels and Options are maps when `volume
/// create` made it, null when a container's mount did).
fn volume_json(v: &VolumeInfo) -> Value {
    json!({
        "CreatedAt": v.created_at,
        "Driver": "local",
        "Labels": if v.created_explicitly { json!(v.labels) } else { Value::Null },
        "Mountpoint": v.mountpoint.display().to_string(),
        "Name": v.name,
        "Options": if v.created_explicitly { json!({}) } else { Value::Null },
        "Scope": "local",
    })
}

fn filters_of(pairs: &[(String, String)]) -> Filters {
    let mut f = Filters::new();
    for (k, v) in pairs {
        f.add(k, v);
    }
    f
}

/// `GET /volumes?filters=`: `{"Volumes":[...],"Warnings":[]}`.
async fn list(ctx: &mut Ctx) -> ApiResult {
    let filters = filters_of(&ctx.query.filters()?);
    let rows = ctx
        .server
        .engine(move |e| Ok(e.volume_list_filtered(&filters)?))
        .await?;
    let vols: Vec<Value> = rows.iter().map(volume_json).collect();
    http::ok_json(&json!({"Volumes": vols, "Warnings": []}))
}

async fn inspect(ctx: &mut Ctx, name: &str) -> ApiResult {
    let key = name.to_owned();
    let v = ctx
        .server
        .engine(move |e| e.volume_inspect(&key).map_err(vol_err(&key)))
        .await?;
    http::ok_json(&volume_json(&v))
}

/// `POST /volumes/create`: 201 with the volume.
async fn create(ctx: &mut Ctx) -> ApiResult {
    let req: CreateRequest = ctx.json().await?;
    let name = req.name.filter(|n| !n.is_empty());
    if let Some(d) = req
        .driver
        .as_deref()
        .filter(|d| !d.is_empty() && *d != "local")
    {
        let n = name.as_deref().unwrap_or("");
        return Err(ApiError::not_found(format!(
            "create {n}: error looking up volume plugin {d}: plugin \"{d}\" not found"
        )));
    }
    if req
        .cluster_volume_spec
        .as_ref()
        .is_some_and(|s| !s.is_null())
    {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.",
        ));
    }
    if let Some((k, _)) = req.driver_opts.as_ref().and_then(|o| o.iter().next()) {
        return Err(ApiError::bad_request(format!(
            "invalid option {k:?}: berth's local volume driver takes no options (a volume is a directory)"
        )));
    }
    let labels = req.labels.unwrap_or_default();
    let v = ctx
        .server
        .engine(move |e| {
            let n = e.volume_create(name.as_deref(), &labels)?;
            Ok(e.volume_inspect(&n)?)
        })
        .await?;
    Ok(http::json(StatusCode::CREATED, &volume_json(&v)))
}

/// `DELETE /volumes/{name}?force=`: 204; 409 while a container uses it.
async fn remove(ctx: &mut Ctx, name: &str) -> ApiResult {
    let key = name.to_owned();
    let force = ctx.query.bool("force");
    ctx.server
        .engine(move |e| match e.volume_rm(&key, force) {
            // `force` also means a missing volume is no error.
            Err(EngineError::NotFound { .. }) if force => Ok(()),
            r => r.map_err(vol_err(&key)),
        })
        .await?;
    http::no_content()
}

/// `POST /volumes/prune?filters=`: unused volumes; from API 1.42 only
/// anonymous ones unless the filter `all` is true (Docker 23's rule).
async fn prune(ctx: &mut Ctx) -> ApiResult {
    let pairs = ctx.query.filters()?;
    let mut all = ctx.api_below((1, 42));
    let mut label_filters = Vec::new();
    for (k, v) in &pairs {
        match k.as_str() {
            "all" => {
                all = match v.as_str() {
                    "1" | "true" | "True" | "TRUE" | "t" => true,
                    "0" | "false" | "False" | "FALSE" | "f" => false,
                    _ => {
                        return Err(ApiError::bad_request(format!(
                            "invalid filter 'all={v}': invalid value"
                        )))
                    }
                }
            }
            "label" | "label!" => label_filters.push((k.clone(), v.clone())),
            _ => return Err(ApiError::bad_request(format!("invalid filter '{k}'"))),
        }
    }
    let (removed, space) = ctx
        .server
        .engine(move |e| {
            Ok(e.volume_prune_matching(all, &|v| {
                label_filters.iter().all(|(k, l)| {
                    let has = match l.split_once('=') {
                        Some((lk, lv)) => v.labels.get(lk).is_some_and(|x| x == lv),
                        None => v.labels.contains_key(l),
                    };
                    has == (k == "label")
                })
            })?)
        })
        .await?;
    let deleted = if removed.is_empty() {
        Value::Null
    } else {
        json!(removed)
    };
    http::ok_json(&json!({"VolumesDeleted": deleted, "SpaceReclaimed": space}))
}

fn unix_secs(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `GET /system/df?type=`: LayersSize, Images, Containers, Volumes,
/// BuildCache in Docker's shape (what `docker system df` sums).
pub async fn disk_usage(ctx: &mut Ctx) -> ApiResult {
    // `type` may repeat (API 1.42): container, image, volume, build-cache.
    let types: Vec<String> = ctx
        .req
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|p| p.strip_prefix("type="))
        .map(str::to_owned)
        .collect();
    for t in &types {
        if !matches!(t.as_str(), "container" | "image" | "volume" | "build-cache") {
            return Err(ApiError::bad_request(format!(
                "type={t} is invalid: must be one of container, image, volume, build-cache"
            )));
        }
    }
    let want = |t: &str| types.is_empty() || types.iter().any(|x| x == t);
    let u = ctx.server.engine(|e| Ok(e.disk_usage()?)).await?;
    let mut out = serde_json::Map::new();
    if want("image") {
        let images: Vec<Value> = u
            .image_rows
            .iter()
            .map(|i| {
                let tags: Vec<String> = if i.repository == "<none>" {
                    Vec::new()
                } else {
                    vec![format!("{}:{}", i.repository, i.tag)]
                };
                json!({
                    "Id": i.id, "ParentId": "", "RepoTags": tags, "RepoDigests": [],
                    "Created": unix_secs(i.created), "Size": i.size,
                    "SharedSize": i.shared_size, "VirtualSize": i.size,
                    "Labels": {}, "Containers": i.containers,
                })
            })
            .collect();
        out.insert("LayersSize".into(), json!(u.images_size));
        out.insert("Images".into(), json!(images));
    }
    if want("container") {
        let rows: Vec<Value> = u
            .container_rows
            .iter()
            .map(|c| {
                let s = &c.summary;
                let size = s.size_rw.unwrap_or(0);
                // Docker's SizeRootFs: the image's size and the writable layer.
                let image_size = u
                    .image_rows
                    .iter()
                    .find(|i| i.id == s.image_id)
                    .map_or(0, |i| i.size);
                // The typed row in Docker's shape, with the sizes df measures.
                let mut v = serde_json::to_value(s).unwrap_or_default();
                v["SizeRw"] = size.into();
                v["SizeRootFs"] = (size + image_size).into();
                v
            })
            .collect();
        out.insert("Containers".into(), json!(rows));
    }
    if want("volume") {
        // Mountpoint, labels and dates as `volume ls` has them.
        let infos = ctx
            .server
            .engine(|e| Ok(e.volume_list()?))
            .await
            .unwrap_or_default();
        let rows: Vec<Value> = u
            .volume_rows
            .iter()
            .map(|v| {
                let mut j = match infos.iter().find(|i| i.name == v.name) {
                    Some(i) => volume_json(i),
                    None => json!({"Name": v.name, "Driver": "local", "Scope": "local",
                                   "Labels": null, "Options": null, "Mountpoint": "",
                                   "CreatedAt": ""}),
                };
                j["UsageData"] = json!({"Size": v.size, "RefCount": v.links});
                j
            })
            .collect();
        out.insert("Volumes".into(), json!(rows));
    }
    if want("build-cache") {
        out.insert("BuildCache".into(), json!([]));
        out.insert("BuilderSize".into(), json!(0));
    }
    http::ok_json(&Value::Object(out))
}
