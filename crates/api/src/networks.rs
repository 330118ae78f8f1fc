//! `/networks/...`: list, inspect, create, remove, connect, disconnect,
//! prune, in Docker's shapes and words (compose inspects networks by name
//! and lists them with `name` filters; its labels come back as given).

use crate::http::{self, ApiError, ApiResult};
use crate::router::Ctx;
use berth_engine::{EngineError, Filters, NetworkOptions};
use hyper::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct IpamConfig {
    #[serde(default)]
    subnet: Option<String>,
    #[serde(default, rename = "IPRange")]
    ip_range: Option<String>,
    #[serde(default)]
    gateway: Option<String>,
    #[serde(default)]
    auxiliary_addresses: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Ipam {
    #[serde(default)]
    driver: Option<String>,
    #[serde(default)]
    config: Option<Vec<IpamConfig>>,
}

/// Docker's NetworkCreateRequest (unknown fields ignored, as Go's decoder).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateRequest {
    #[serde(default)]
    name: String,
    #[serde(default)]
    driver: Option<String>,
    #[serde(default)]
    internal: Option<bool>,
    #[serde(default)]
    attachable: Option<bool>,
    #[serde(default)]
    ingress: Option<bool>,
    #[serde(default, rename = "IPAM")]
    ipam: Option<Ipam>,
    #[serde(default, rename = "EnableIPv6")]
    enable_ipv6: Option<bool>,
    #[serde(default)]
    options: Option<BTreeMap<String, String>>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    config_only: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct IpamEndpoint {
    #[serde(default, rename = "IPv4Address")]
    ipv4_address: Option<String>,
    #[serde(default, rename = "IPv6Address")]
    ipv6_address: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EndpointConfig {
    #[serde(default, rename = "IPAMConfig")]
    ipam_config: Option<IpamEndpoint>,
    #[serde(default)]
    aliases: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ConnectRequest {
    #[serde(default)]
    container: String,
    #[serde(default)]
    endpoint_config: Option<EndpointConfig>,
    #[serde(default)]
    force: Option<bool>,
}

/// `/networks`, `/networks/{id}` and `/networks/{id}/{action}`.
pub async fn route(ctx: &mut Ctx, m: &Method, segs: &[&str]) -> ApiResult {
    match (segs, m) {
        ([], &Method::GET) => list(ctx).await,
        (["create"], &Method::POST) => create(ctx).await,
        (["prune"], &Method::POST) => prune(ctx).await,
        ([id], &Method::GET) => inspect(ctx, id).await,
        ([id], &Method::DELETE) => remove(ctx, id).await,
        ([id, "connect"], &Method::POST) => connect(ctx, id, true).await,
        ([id, "disconnect"], &Method::POST) => connect(ctx, id, false).await,
        _ => Err(ApiError::not_found("page not found")),
    }
}

/// Docker's words for a network that is not there.
fn not_found(key: &str) -> ApiError {
    ApiError::not_found(format!("network {key} not found"))
}

/// An engine error about network `key`, a missing one in Docker's words.
fn net_err(key: &str) -> impl Fn(EngineError) -> ApiError + '_ {
    move |e| match e {
        EngineError::NotFound { message: m, .. } if m.contains("network") || m.contains(key) => {
            not_found(key)
        }
        e => e.into(),
    }
}

/// Docker's clients parse Created as a time: the predefined host and none
/// networks (which berth keeps no record of) get Go's zero time.
fn fix_created(v: &mut Value) {
    if v["Created"].as_str().is_none_or(str::is_empty) {
        v["Created"] = json!("0001-01-01T00:00:00Z");
    }
}

fn filters_of(ctx: &Ctx) -> ApiResult<Filters> {
    let mut f = Filters::new();
    for (k, v) in ctx.query.filters()? {
        f.add(&k, &v);
    }
    Ok(f)
}

/// `GET /networks?filters=`: each network as inspect shows it (Docker's
/// list leaves Containers empty).
async fn list(ctx: &mut Ctx) -> ApiResult {
    let filters = filters_of(ctx)?;
    let rows = ctx
        .server
        .engine(move |e| {
            let mut out = Vec::new();
            for n in e.network_list(&filters)? {
                // A network removed meanwhile is left out.
                let key = if berth_engine::PSEUDO_NETWORKS
                    .iter()
                    .any(|(p, _)| *p == n.name)
                {
                    n.name.clone()
                } else {
                    n.id.clone()
                };
                if let Ok(mut v) = e.network_inspect(&key) {
                    fix_created(&mut v);
                    v["Containers"] = json!({});
                    out.push(v);
                }
            }
            Ok(out)
        })
        .await?;
    http::ok_json(&rows)
}

async fn inspect(ctx: &mut Ctx, id: &str) -> ApiResult {
    let key = id.to_owned();
    let v = ctx
        .server
        .engine(move |e| e.network_inspect(&key).map_err(net_err(&key)))
        .await?;
    let mut v = v;
    fix_created(&mut v);
    http::ok_json(&v)
}

/// An IPAM config's gateway of either family (empty: none).
fn parse_gateway<T: std::str::FromStr>(v: &Option<String>) -> ApiResult<Option<T>> {
    v.as_deref()
        .filter(|g| !g.is_empty())
        .map(|g| {
            g.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid gateway: {g}")))
        })
        .transpose()
}

fn parse_net(v: &Option<String>, what: &str) -> ApiResult<Option<ipnet::Ipv4Net>> {
    v.as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse().map_err(|_| {
                if s.contains(':') {
                    // (the IPv4 config's: an IPv6 subnet has its own)
                    ApiError::bad_request(format!(
                        "invalid {what} {s}: an IPv6 {what} goes in an IPAM config of its own, with an IPv6 subnet and EnableIPv6"
                    ))
                } else {
                    ApiError::bad_request(format!(
                        "invalid {what} {s}: expected CIDR, e.g. 10.1.0.0/16"
                    ))
                }
            })
        })
        .transpose()
}

/// `POST /networks/create`: 201 `{"Id","Warning"}`. A name in use is 409
/// (CheckDuplicate is always on from API 1.44).
async fn create(ctx: &mut Ctx) -> ApiResult {
    let req: CreateRequest = ctx.json().await?;
    if req.name.is_empty() {
        return Err(ApiError::bad_request("invalid name: "));
    }
    if req.ingress == Some(true) || req.config_only == Some(true) {
        return Err(ApiError::bad_request(
            "ingress and config-only networks are swarm features, not supported by berth",
        ));
    }
    let driver = req.driver.clone().filter(|d| !d.is_empty());
    if let Some(d) = driver.as_deref() {
        if !berth_network::DRIVERS.contains(&d) {
            return Err(ApiError::not_found(format!("plugin \"{d}\" not found")));
        }
    }
    let ipam = req.ipam.unwrap_or_default();
    if let Some(d) = ipam.driver.as_deref() {
        if !d.is_empty() && d != "default" {
            return Err(ApiError::not_found(format!("plugin \"{d}\" not found")));
        }
    }
    // One IPv4 config and, with EnableIPv6, one IPv6 config.
    let (configs6, configs): (Vec<_>, Vec<_>) = ipam
        .config
        .unwrap_or_default()
        .into_iter()
        .partition(|c| c.subnet.as_deref().is_some_and(|s| s.contains(':')));
    if configs.len() > 1 || configs6.len() > 1 {
        return Err(ApiError::bad_request(
            "berth's networks take one IPAM config per address family (one IPv4 subnet, one IPv6 subnet)",
        ));
    }
    let mut o = NetworkOptions {
        name: req.name.clone(),
        driver,
        internal: req.internal.unwrap_or(false),
        labels: req.labels.unwrap_or_default(),
        ipv6: req.enable_ipv6.unwrap_or(false),
        ..NetworkOptions::default()
    };
    if let Some(c) = configs6.first() {
        let net6 = |v: &Option<String>, what: &str| {
            v.as_deref()
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.parse::<ipnet::Ipv6Net>()
                        .map_err(|_| ApiError::bad_request(format!("invalid {what} {s}")))
                })
                .transpose()
        };
        o.subnet6 = net6(&c.subnet, "subnet")?;
        o.ip_range6 = net6(&c.ip_range, "ip-range")?;
        o.gateway6 = parse_gateway(&c.gateway)?;
    }
    if let Some(c) = configs.first() {
        for (k, v) in c.auxiliary_addresses.iter().flatten() {
            let ip = v.parse().map_err(|_| {
                ApiError::bad_request(format!("invalid auxiliary address {k}={v}: expected IPv4"))
            })?;
            o.aux_addresses.insert(k.clone(), ip);
        }
        o.subnet = parse_net(&c.subnet, "subnet")?;
        o.ip_range = parse_net(&c.ip_range, "ip-range")?;
        o.gateway = parse_gateway(&c.gateway)?;
    }
    let opts = req.options.unwrap_or_default();
    o.apply_driver_options(opts.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let _ = req.attachable;
    let name = req.name;
    let id = ctx
        .server
        .engine(move |e| {
            if e.network_list(&Filters::new())?
                .iter()
                .any(|n| n.name == name)
            {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    format!("network with name {name} already exists"),
                ));
            }
            Ok(e.network_create(&o)?.id)
        })
        .await?;
    Ok(http::json(
        StatusCode::CREATED,
        &json!({"Id": id, "Warning": ""}),
    ))
}

/// `DELETE /networks/{id}`: 204.
async fn remove(ctx: &mut Ctx, id: &str) -> ApiResult {
    let key = id.to_owned();
    ctx.server
        .engine(move |e| {
            if matches!(key.as_str(), "bridge" | "host" | "none") {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    format!("{key} is a pre-defined network and cannot be removed"),
                ));
            }
            e.network_rm(&key).map(drop).map_err(|e| match e {
                // Docker's status for a network containers are on.
                EngineError::Conflict { message: m, .. } if m.contains("active endpoints") => {
                    ApiError::new(StatusCode::FORBIDDEN, m)
                }
                e => net_err(&key)(e),
            })
        })
        .await?;
    http::no_content()
}

/// `POST /networks/{id}/connect|disconnect`: 200.
async fn connect(ctx: &mut Ctx, id: &str, on: bool) -> ApiResult {
    let req: ConnectRequest = ctx.json().await?;
    if req.container.is_empty() {
        return Err(ApiError::bad_request("no container specified"));
    }
    let ep = req.endpoint_config.unwrap_or_default();
    let ipam = ep.ipam_config.unwrap_or_default();
    let ip6 = ipam
        .ipv6_address
        .as_deref()
        .filter(|a| !a.is_empty())
        .map(|a| {
            a.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid IPv6 address: {a}")))
        })
        .transpose()?;
    let ip = ipam
        .ipv4_address
        .as_deref()
        .filter(|a| !a.is_empty())
        .map(|a| {
            a.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid IPv4 address: {a}")))
        })
        .transpose()?;
    let aliases = ep.aliases.unwrap_or_default();
    let _ = req.force;
    let (key, container) = (id.to_owned(), req.container);
    ctx.server
        .engine(move |e| {
            // The network first, in Docker's words; then the container.
            e.network_inspect(&key).map_err(net_err(&key))?;
            e.container(&container)?;
            if on {
                let want = berth_network::Want { ip, ip6 };
                Ok(e.network_connect(&key, &container, want, &aliases)?)
            } else {
                Ok(e.network_disconnect(&key, &container)?)
            }
        })
        .await?;
    Ok(http::empty(StatusCode::OK))
}

/// `POST /networks/prune`: `{"NetworksDeleted":[...]}`.
async fn prune(ctx: &mut Ctx) -> ApiResult {
    for (k, _) in ctx.query.filters()? {
        if k != "until" && k != "label" && k != "label!" {
            return Err(ApiError::bad_request(format!("invalid filter '{k}'")));
        }
    }
    let removed = ctx.server.engine(|e| Ok(e.network_prune()?)).await?;
    let v: Value = if removed.is_empty() {
        json!({"NetworksDeleted": null})
    } else {
        json!({ "NetworksDeleted": removed })
    };
    http::ok_json(&v)
}
