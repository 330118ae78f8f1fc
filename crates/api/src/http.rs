//! What every endpoint shares: the response body (whole or streamed), the
//! headers Docker's clients read on every answer, errors as Docker's
//! `{"message": ...}` with its status codes, and query parsing with Go's
//! lenient booleans.

use berth_engine::EngineError;
use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::mpsc;

/// The API version berth speaks (podman 5 advertises the same).
pub const API_VERSION: &str = "1.44";
/// The oldest version whose paths are accepted.
pub const MIN_API_VERSION: &str = "1.24";

/// A response body: all at once, or chunks as a producer sends them
/// (logs, events, pull progress, wait), each flushed as it comes.
pub enum Body {
    Full(Option<Bytes>),
    Stream(mpsc::Receiver<Bytes>),
}

impl HttpBody for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            Body::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Body::Stream(rx) => rx.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Body::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Body::Full(None) => SizeHint::with_exact(0),
            Body::Stream(_) => SizeHint::default(),
        }
    }
}

pub type Resp = Response<Body>;

/// An error as the API answers it.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> ApiError {
        // moby's errdefs, decided by the engine's error type.
        let status =
            StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        ApiError::new(status, e.to_string())
    }
}

pub type ApiResult<T = Resp> = Result<T, ApiError>;

/// Adds the headers Docker's clients read on every response.
pub fn stamp(resp: &mut Resp) {
    let h = resp.headers_mut();
    h.insert("Api-Version", HeaderValue::from_static(API_VERSION));
    h.insert("Ostype", HeaderValue::from_static("linux"));
    h.insert("Docker-Experimental", HeaderValue::from_static("false"));
    h.insert(
        "Server",
        HeaderValue::from_static(concat!("Berth/", env!("CARGO_PKG_VERSION"), " (linux)")),
    );
}

fn with_status(status: StatusCode, body: Body) -> Resp {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    r
}

pub fn json_bytes(status: StatusCode, bytes: Vec<u8>) -> Resp {
    let mut r = with_status(status, Body::Full(Some(Bytes::from(bytes))));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// A JSON answer (a trailing newline, as Go's encoder writes).
pub fn json<T: serde::Serialize>(status: StatusCode, v: &T) -> Resp {
    match serde_json::to_vec(v) {
        Ok(mut b) => {
            b.push(b'\n');
            json_bytes(status, b)
        }
        Err(e) => error_response(&ApiError::internal(e.to_string())),
    }
}

pub fn ok_json<T: serde::Serialize>(v: &T) -> ApiResult {
    Ok(json(StatusCode::OK, v))
}

pub fn empty(status: StatusCode) -> Resp {
    with_status(status, Body::Full(None))
}

pub fn no_content() -> ApiResult {
    Ok(empty(StatusCode::NO_CONTENT))
}

pub fn text(status: StatusCode, ctype: &'static str, body: impl Into<Bytes>) -> Resp {
    let mut r = with_status(status, Body::Full(Some(body.into())));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(ctype));
    r
}

/// A streamed answer: headers go out at once, then each chunk sent on the
/// returned channel.
pub fn stream(ctype: &'static str) -> (Resp, mpsc::Sender<Bytes>) {
    let (tx, rx) = mpsc::channel(64);
    let mut r = with_status(StatusCode::OK, Body::Stream(rx));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(ctype));
    (r, tx)
}

pub fn error_response(e: &ApiError) -> Resp {
    let body = serde_json::json!({ "message": e.message });
    let mut b = serde_json::to_vec(&body).unwrap_or_default();
    b.push(b'\n');
    json_bytes(e.status, b)
}

/// The query string as Docker's server reads it.
#[derive(Debug, Default)]
pub struct Query(BTreeMap<String, Vec<String>>);

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Query {
    pub fn parse(q: Option<&str>) -> Query {
        let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for pair in q.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            m.entry(percent_decode(k))
                .or_default()
                .push(percent_decode(v));
        }
        Query(m)
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).and_then(|v| v.first()).map(String::as_str)
    }

    pub fn str(&self, k: &str) -> String {
        self.get(k).unwrap_or("").to_owned()
    }

    /// Every value of a repeated key (`names=a&names=b`).
    pub fn all(&self, k: &str) -> Vec<String> {
        self.0.get(k).cloned().unwrap_or_default()
    }

    /// Go's `httputils.BoolValue`: "", 0, no, false, none are false.
    pub fn bool(&self, k: &str) -> bool {
        match self.get(k) {
            None => false,
            Some(v) => !matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "" | "0" | "no" | "false" | "none"
            ),
        }
    }

    pub fn int(&self, k: &str) -> ApiResult<Option<i64>> {
        match self.get(k) {
            None | Some("") => Ok(None),
            Some(v) => v
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| ApiError::bad_request(format!("invalid value for {k}: {v:?}"))),
        }
    }

    /// `filters`: `{"k":{"v":true}}` or `{"k":["v"]}`, as (key, value) pairs.
    pub fn filters(&self) -> ApiResult<Vec<(String, String)>> {
        let Some(raw) = self.get("filters").filter(|f| !f.is_empty()) else {
            return Ok(Vec::new());
        };
        let v: serde_json::Value = serde_json::from_str(raw)
            .map_err(|e| ApiError::bad_request(format!("invalid filter: {e}")))?;
        let mut out = Vec::new();
        let Some(obj) = v.as_object() else {
            return Err(ApiError::bad_request("invalid filter: not an object"));
        };
        for (k, vals) in obj {
            match vals {
                serde_json::Value::Object(m) => {
                    for (val, on) in m {
                        if on.as_bool() != Some(false) {
                            out.push((k.clone(), val.clone()));
                        }
                    }
                }
                serde_json::Value::Array(a) => {
                    for val in a {
                        if let Some(s) = val.as_str() {
                            out.push((k.clone(), s.to_owned()));
                        }
                    }
                }
                _ => return Err(ApiError::bad_request(format!("invalid filter for {k}"))),
            }
        }
        Ok(out)
    }
}

/// Strips `/vX.Y` from the path; returns the path and the version asked
/// for (None: unversioned). A version above berth's own or below the
/// oldest accepted is an error, as Docker's.
pub fn split_version(path: &str) -> ApiResult<(&str, Option<(u32, u32)>)> {
    let Some(rest) = path.strip_prefix("/v") else {
        return Ok((path, None));
    };
    let (ver, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let parsed = ver
        .split_once('.')
        .and_then(|(a, b)| Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?)));
    let Some(v) = parsed else {
        return Ok((path, None));
    };
    let max = (1, 44);
    let min = (1, 24);
    if v > max {
        return Err(ApiError::bad_request(format!(
            "client version {ver} is too new. Maximum supported API version is {API_VERSION}"
        )));
    }
    if v < min {
        return Err(ApiError::bad_request(format!(
            "client version {ver} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"
        )));
    }
    Ok((tail, Some(v)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_stripped_and_checked() {
        assert_eq!(
            split_version("/v1.44/containers/json").ok().map(|x| x.0),
            Some("/containers/json")
        );
        assert_eq!(split_version("/_ping").ok().map(|x| x.0), Some("/_ping"));
        assert_eq!(
            split_version("/v1.41/_ping").ok().map(|x| x.1),
            Some(Some((1, 41)))
        );
        assert!(split_version("/v1.99/info").is_err());
        assert!(split_version("/v1.12/info").is_err());
    }

    #[test]
    fn go_booleans_and_filters() {
        let q = Query::parse(Some(
            "all=1&size=false&x=none&filters=%7B%22label%22%3A%7B%22a%3Db%22%3Atrue%7D%7D",
        ));
        assert!(q.bool("all"));
        assert!(!q.bool("size"));
        assert!(!q.bool("x"));
        assert!(!q.bool("missing"));
        assert_eq!(
            q.filters().ok(),
            Some(vec![("label".to_owned(), "a=b".to_owned())])
        );
        let q = Query::parse(Some("filters=%7B%22name%22%3A%5B%22web%22%5D%7D"));
        assert_eq!(
            q.filters().ok(),
            Some(vec![("name".to_owned(), "web".to_owned())])
        );
        assert!(Query::parse(Some("filters=nope")).filters().is_err());
    }
}
