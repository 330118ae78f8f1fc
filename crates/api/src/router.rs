//! Docker's routes: the version prefix stripped, then (method, path) to a
//! handler. Image names hold slashes (`/images/localhost:5000/a/b/json`), so
//! image routes are matched by their last word.

use crate::http::{split_version, ApiError, ApiResult, Query};
use crate::{build, containers, exec, images, networks, system, volumes, Server};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use std::sync::Arc;

/// The largest JSON body accepted (a create request is a few KiB).
const MAX_JSON_BODY: usize = 4 << 20;

/// A request as handlers see it.
pub struct Ctx {
    pub server: Arc<Server>,
    pub query: Query,
    /// The API version the client asked for (None: unversioned path).
    pub version: Option<(u32, u32)>,
    /// The body is taken once (`body`, `json`); the request stays for its
    /// headers and for a hijack.
    pub req: Request<Option<Incoming>>,
}

impl Ctx {
    /// Whether the client speaks an API version older than `v` (an
    /// unversioned path is the newest).
    pub fn api_below(&self, v: (u32, u32)) -> bool {
        self.version.is_some_and(|have| have < v)
    }

    /// The whole body, up to `limit` bytes (Docker answers 400 past its own
    /// limits; a client that stops sending is cut off by the connection).
    pub async fn body(&mut self, limit: usize) -> ApiResult<Bytes> {
        let Some(body) = self.req.body_mut().take() else {
            return Ok(Bytes::new());
        };
        let limited = http_body_util::Limited::new(body, limit);
        match limited.collect().await {
            Ok(c) => Ok(c.to_bytes()),
            Err(e) => {
                if e.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some()
                {
                    Err(ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        format!("request body is larger than {limit} bytes"),
                    ))
                } else {
                    Err(ApiError::bad_request(format!(
                        "reading the request body: {e}"
                    )))
                }
            }
        }
    }

    /// The body decoded as JSON (an empty body is the type's default).
    pub async fn json<T: serde::de::DeserializeOwned + Default>(&mut self) -> ApiResult<T> {
        let b = self.body(MAX_JSON_BODY).await?;
        if b.iter().all(|c| c.is_ascii_whitespace()) {
            return Ok(T::default());
        }
        // Clients send null for unset fields of any type: zero values.
        let mut v: serde_json::Value =
            serde_json::from_slice(&b).map_err(|e| ApiError::bad_request(json_error(&e)))?;
        berth_engine::model::drop_nulls(&mut v);
        serde_json::from_value(v).map_err(|e| ApiError::bad_request(json_error(&e)))
    }
}

/// serde's error as one line in Go's spirit ("invalid JSON: ...").
pub fn json_error(e: &serde_json::Error) -> String {
    format!("invalid JSON: {e}")
}

fn unsupported(what: &str) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again. ({what})"),
    )
}

fn page_not_found() -> ApiError {
    ApiError::not_found("page not found")
}

pub async fn route(server: Arc<Server>, req: Request<Incoming>) -> ApiResult {
    let path = req.uri().path().to_owned();
    let (rest, version) = split_version(&path)?;
    let rest = rest.to_owned();
    let query = Query::parse(req.uri().query());
    let method = req.method().clone();
    let mut ctx = Ctx {
        server,
        query,
        version,
        req: req.map(Some),
    };
    let segs: Vec<&str> = rest.trim_end_matches('/').split('/').skip(1).collect();
    let m = &method;
    let head_or_get = *m == Method::GET || *m == Method::HEAD;
    match segs.as_slice() {
        ["_ping"] if head_or_get => system::ping(m == Method::HEAD),
        ["version"] if *m == Method::GET => system::version(&mut ctx).await,
        ["info"] if *m == Method::GET => system::info(&mut ctx).await,
        ["events"] if *m == Method::GET => system::events(&mut ctx).await,
        ["containers", "create"] if *m == Method::POST => containers::create(&mut ctx).await,
        ["containers", "json"] if *m == Method::GET => containers::list(&mut ctx).await,
        ["containers", "prune"] if *m == Method::POST => containers::prune(&mut ctx).await,
        ["containers", id] if *m == Method::DELETE => containers::remove(&mut ctx, id).await,
        ["containers", id, action] => {
            let (id, action) = (id.to_string(), action.to_string());
            containers::action(&mut ctx, m, &id, &action).await
        }
        ["exec", id, "start"] if *m == Method::POST => {
            let id = id.to_string();
            exec::start(&mut ctx, &id).await
        }
        ["exec", id, "json"] if *m == Method::GET => {
            let id = id.to_string();
            exec::inspect(&mut ctx, &id).await
        }
        ["exec", id, "resize"] if *m == Method::POST => {
            let id = id.to_string();
            exec::resize(&mut ctx, &id).await
        }
        ["images", words @ ..] if !words.is_empty() => images::dispatch(&mut ctx, m, words).await,
        ["build"] if *m == Method::POST => build::build(&mut ctx).await,
        ["build", "prune"] if *m == Method::POST => build::prune(&mut ctx).await,
        ["commit"] if *m == Method::POST => images::commit(&mut ctx).await,
        ["auth"] if *m == Method::POST => images::auth(&mut ctx).await,
        ["networks", rest @ ..] => {
            let rest: Vec<String> = rest.iter().map(|s| s.to_string()).collect();
            let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
            networks::route(&mut ctx, m, &rest).await
        }
        ["volumes", rest @ ..] => {
            let rest: Vec<String> = rest.iter().map(|s| s.to_string()).collect();
            let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
            volumes::route(&mut ctx, m, &rest).await
        }
        ["system", "df"] if *m == Method::GET => volumes::disk_usage(&mut ctx).await,
        ["swarm", ..] | ["nodes", ..] | ["services", ..] | ["tasks", ..] | ["secrets", ..]
        | ["configs", ..] => Err(unsupported(segs[0])),
        ["plugins"] if head_or_get => {
            Ok(crate::http::json(StatusCode::OK, &serde_json::json!([])))
        }
        // `docker inspect X` asks for a plugin last: Docker's 404, not a list.
        ["plugins", name, ..] => Err(ApiError::not_found(format!(
            "plugin \"{name}\" not found"
        ))),
        ["session"] | ["grpc"] => Err(ApiError::bad_request(
            "BuildKit sessions are not supported by berth: use the classic builder (DOCKER_BUILDKIT=0)",
        )),
        _ => Err(page_not_found()),
    }
}
