//! `GET /containers/{id}/stats?stream=&one-shot=`: the raw counters in
//! Docker's StatsResponse shape (the client computes CPU % from `cpu_stats`
//! and `precpu_stats`, memory from `usage` less the inactive file cache).

use crate::archive::rfc3339_nano;
use crate::http::{self, ApiResult};
use crate::router::Ctx;
use berth_engine::RawStats;
use bytes::Bytes;
use serde_json::{json, Value};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Docker samples once a second.
const INTERVAL: Duration = Duration::from_secs(1);

/// Go's zero time, what Docker sends for a sample it has not taken.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn time_text(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    rfc3339_nano(d.as_secs() as i64, i64::from(d.subsec_nanos()))
}

fn cpu_json(s: Option<&RawStats>) -> Value {
    let Some(s) = s else {
        return json!({
            "cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
        });
    };
    let cg = s.cgroup.clone().unwrap_or_default();
    let mut usage = json!({
        "total_usage": cg.cpu.usage.total,
        "usage_in_kernelmode": cg.cpu.usage.kernel,
        "usage_in_usermode": cg.cpu.usage.user,
    });
    if !cg.cpu.usage.percpu.is_empty() {
        usage["percpu_usage"] = json!(cg.cpu.usage.percpu);
    }
    let mut v = json!({
        "cpu_usage": usage,
        "throttling_data": {
            "periods": cg.cpu.throttling.periods,
            "throttled_periods": cg.cpu.throttling.throttled_periods,
            "throttled_time": cg.cpu.throttling.throttled_time,
        },
    });
    if s.running {
        v["system_cpu_usage"] = json!(s.system_cpu_usage);
        v["online_cpus"] = json!(s.online_cpus);
    }
    v
}

/// One StatsResponse: `cur`, with `pre` as the previous sample.
fn stats_json(cur: &RawStats, pre: Option<&RawStats>) -> Value {
    let cg = cur.cgroup.clone().unwrap_or_default();
    let mut v = json!({
        "name": format!("/{}", cur.name),
        "id": cur.id,
        "read": if cur.running { time_text(cur.read) } else { ZERO_TIME.to_owned() },
        "preread": pre.filter(|p| p.running).map_or_else(|| ZERO_TIME.to_owned(), |p| time_text(p.read)),
        "pids_stats": {},
        "blkio_stats": {
            "io_service_bytes_recursive": null, "io_serviced_recursive": null,
            "io_queue_recursive": null, "io_service_time_recursive": null,
            "io_wait_time_recursive": null, "io_merged_recursive": null,
            "io_time_recursive": null, "sectors_recursive": null,
        },
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": cpu_json(cur.cgroup.as_ref().map(|_| cur)),
        "precpu_stats": cpu_json(pre.filter(|p| p.cgroup.is_some())),
        "memory_stats": {},
    });
    if !cur.running {
        return v;
    }
    v["pids_stats"] = json!({"current": cg.pids.current});
    if cg.pids.limit > 0 {
        v["pids_stats"]["limit"] = json!(cg.pids.limit);
    }
    let io: Vec<Value> = cg
        .blkio
        .io_service_bytes_recursive
        .iter()
        .map(|e| json!({"major": e.major, "minor": e.minor, "op": e.op, "value": e.value}))
        .collect();
    v["blkio_stats"]["io_service_bytes_recursive"] = json!(io);
    let mut mem = json!({
        "usage": cg.memory.usage.usage,
        "stats": cg.memory.raw,
        "limit": cur.mem_limit,
    });
    if cg.memory.usage.max > 0 {
        mem["max_usage"] = json!(cg.memory.usage.max);
    }
    if cg.memory.usage.failcnt > 0 {
        mem["failcnt"] = json!(cg.memory.usage.failcnt);
    }
    v["memory_stats"] = mem;
    if !cur.networks.is_empty() {
        let mut nets = serde_json::Map::new();
        for (name, n) in &cur.networks {
            nets.insert(
                name.clone(),
                json!({
                    "rx_bytes": n.rx_bytes, "rx_packets": n.rx_packets,
                    "rx_errors": n.rx_errors, "rx_dropped": n.rx_dropped,
                    "tx_bytes": n.tx_bytes, "tx_packets": n.tx_packets,
                    "tx_errors": n.tx_errors, "tx_dropped": n.tx_dropped,
                }),
            );
        }
        v["networks"] = Value::Object(nets);
    }
    v
}

fn line(v: &Value) -> Bytes {
    let mut s = v.to_string();
    s.push('\n');
    Bytes::from(s)
}

/// `stream` (default): a sample a second until the container stops or the
/// client goes; `stream=false`: one sample with the previous a second
/// before (`one-shot`: without waiting, no previous).
pub async fn stats(ctx: &mut Ctx, id: &str) -> ApiResult {
    let stream = ctx.query.get("stream").is_none() || ctx.query.bool("stream");
    let one_shot = ctx.query.bool("one-shot");
    let key = id.to_owned();
    let first = ctx
        .server
        .engine({
            let key = key.clone();
            move |e| Ok(e.stats_raw(&key)?)
        })
        .await?;
    if !stream {
        let v = if one_shot || !first.running {
            stats_json(&first, None)
        } else {
            tokio::time::sleep(INTERVAL).await;
            let cur = ctx.server.engine(move |e| Ok(e.stats_raw(&key)?)).await?;
            stats_json(&cur, Some(&first))
        };
        return http::ok_json(&v);
    }
    let (resp, tx) = http::stream("application/json");
    let server = ctx.server.clone();
    tokio::spawn(async move {
        let _busy = crate::Busy::new(&server);
        let mut pre: Option<RawStats> = None;
        let mut cur = first;
        loop {
            if tx
                .send(line(&stats_json(&cur, pre.as_ref())))
                .await
                .is_err()
                || !cur.running
            {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(INTERVAL) => {}
                _ = tx.closed() => return,
            }
            let k = key.clone();
            let next = match server.engine(move |e| Ok(e.stats_raw(&k)?)).await {
                Ok(n) => n,
                Err(_) => return,
            };
            pre = Some(std::mem::replace(&mut cur, next));
        }
    });
    Ok(resp)
}
