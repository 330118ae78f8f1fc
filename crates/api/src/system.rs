//! `/_ping`, `/version`, `/info`, `/events`.

use crate::http::{self, ApiError, ApiResult, Resp};
use crate::router::Ctx;
use bytes::Bytes;
use hyper::header::HeaderValue;
use hyper::StatusCode;

/// `GET|HEAD /_ping`: what the CLI negotiates its version from.
pub fn ping(head: bool) -> ApiResult {
    let mut r: Resp = if head {
        http::empty(StatusCode::OK)
    } else {
        http::text(StatusCode::OK, "text/plain; charset=utf-8", "OK")
    };
    let h = r.headers_mut();
    h.insert("Builder-Version", HeaderValue::from_static("1"));
    h.insert("Swarm", HeaderValue::from_static("inactive"));
    h.insert(
        "Cache-Control",
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    h.insert("Pragma", HeaderValue::from_static("no-cache"));
    Ok(r)
}

/// `GET /version`: berth's version, the API this server speaks.
pub async fn version(_ctx: &mut Ctx) -> ApiResult {
    let mut v = serde_json::to_value(berth_engine::system::server_version())
        .map_err(|e| ApiError::internal(e.to_string()))?;
    v["ApiVersion"] = http::API_VERSION.into();
    v["MinAPIVersion"] = http::MIN_API_VERSION.into();
    if let Some(c) = v["Components"].as_array_mut() {
        for comp in c {
            if comp["Name"] == "Engine" {
                comp["Details"]["ApiVersion"] = http::API_VERSION.into();
                comp["Details"]["MinAPIVersion"] = http::MIN_API_VERSION.into();
            }
        }
    }
    http::ok_json(&v)
}

/// `GET /info`.
pub async fn info(ctx: &mut Ctx) -> ApiResult {
    let info = ctx.server.engine(|e| Ok(e.info(false)?)).await?;
    http::ok_json(&info)
}

/// Docker's timestamps in a query: `SECONDS[.NANOS]` (the CLI turns
/// durations and dates into these before it sends them).
pub fn timestamp_ns(s: &str) -> ApiResult<i64> {
    let bad = || ApiError::bad_request(format!("failed to parse value as time or duration: {s:?}"));
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = secs.parse().map_err(|_| bad())?;
    let mut nanos: i64 = 0;
    if !frac.is_empty() {
        let digits: String = frac.chars().take(9).collect();
        let scale = 10i64.pow(9 - digits.len() as u32);
        nanos = digits.parse::<i64>().map_err(|_| bad())? * scale;
    }
    // A time past 2262 does not fit: an error, not an overflow.
    secs.checked_mul(1_000_000_000)
        .and_then(|n| n.checked_add(nanos))
        .ok_or_else(bad)
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// `GET /events?since=&until=&filters=`: one JSON message a line, flushed
/// as each happens; `until` ends the stream.
pub async fn events(ctx: &mut Ctx) -> ApiResult {
    let filter = berth_engine::events::EventFilter::new(&ctx.query.filters()?)?;
    let since = match ctx.query.get("since").filter(|s| !s.is_empty()) {
        Some(s) => timestamp_ns(s)?,
        None => now_ns(),
    };
    let until = match ctx.query.get("until").filter(|s| !s.is_empty()) {
        Some(s) => Some(timestamp_ns(s)?),
        None => None,
    };
    let follow = until.is_none_or(|u| u > now_ns());
    let (resp, tx) = http::stream("application/json");
    let server = ctx.server.clone();
    tokio::spawn(async move {
        let _busy = crate::Busy::new(&server);
        let _ = server
            .engine(move |e| {
                let keep = |ev: &berth_engine::Event| filter.matches(ev);
                let mut each = |ev: &berth_engine::Event| {
                    let mut line = ev.message().to_string();
                    line.push('\n');
                    tx.blocking_send(Bytes::from(line)).is_ok()
                };
                // A client that went away ends the follow even while
                // nothing happens.
                let gone = tx.clone();
                e.events_while(since, until, follow, &keep, &mut each, &|| {
                    !gone.is_closed()
                })?;
                Ok(())
            })
            .await;
    });
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_with_and_without_nanos() {
        assert_eq!(timestamp_ns("12").ok(), Some(12_000_000_000));
        assert_eq!(timestamp_ns("12.5").ok(), Some(12_500_000_000));
        assert_eq!(timestamp_ns("12.000000001").ok(), Some(12_000_000_001));
        assert!(timestamp_ns("10m").is_err());
    }
}
