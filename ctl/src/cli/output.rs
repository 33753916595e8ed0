//! Human and `--json` output of the admin subcommands.

use floodgate_proto::v1 as pb;
use serde_json::{json, Value};
use std::io::Write;

fn state_name(s: i32) -> &'static str {
    match pb::DistState::try_from(s) {
        Ok(pb::DistState::Active) => "active",
        Ok(pb::DistState::Done) => "done",
        Ok(pb::DistState::Cancelled) => "cancelled",
        Ok(pb::DistState::Failed) => "failed",
        _ => "unknown",
    }
}

fn dist_json(d: &pb::Distribution) -> Value {
    let s = d.stats.unwrap_or_default();
    let t = d.targets.clone().unwrap_or_default();
    json!({
        "id": d.id, "origin_url": d.origin_url, "state": state_name(d.state),
        "created_unix_ms": d.created_unix_ms, "finished_unix_ms": d.finished_unix_ms,
        "size": d.size, "has_torrent": d.has_torrent, "relay_ids": d.relay_ids,
        "targets": {"client_ids": t.client_ids, "labels": t.labels, "all": t.all},
        "stats": {
            "targets": s.targets, "pending": s.pending, "running": s.running, "done": s.done,
            "failed": s.failed, "cancelled": s.cancelled, "progress": s.progress, "speed_bps": s.speed_bps,
            "bytes_bt": s.bytes_bt, "bytes_http_relay": s.bytes_http_relay, "bytes_http_origin": s.bytes_http_origin,
            "origin_bytes": s.origin_bytes, "offload_ratio": s.offload_ratio, "min_time_secs": s.min_time_secs,
        }
    })
}

/// One distribution.
pub fn dist(d: &pb::Distribution, as_json: bool) {
    if as_json {
        println!("{}", dist_json(d));
        return;
    }
    let s = d.stats.unwrap_or_default();
    println!(
        "id:        {}\nurl:       {}\nstate:     {}\nrelays:    {}",
        d.id,
        d.origin_url,
        state_name(d.state),
        d.relay_ids.join(", ")
    );
    println!(
        "clients:   {} targets, {} pending, {} running, {} done, {} failed, {} cancelled",
        s.targets, s.pending, s.running, s.done, s.failed, s.cancelled
    );
    println!(
        "progress:  {:.1}%  speed {} B/s\nbytes:     bt {}  http-relay {}  origin {}  (origin total {}, offload {:.1}x)\nmin time:  {:.1} s (Kumar–Ross)",
        s.progress * 100.0, s.speed_bps, s.bytes_bt, s.bytes_http_relay, s.bytes_http_origin, s.origin_bytes, s.offload_ratio, s.min_time_secs
    );
}

/// A list of distributions.
pub fn dists(ds: &[pb::Distribution], as_json: bool) {
    if as_json {
        println!("{}", Value::Array(ds.iter().map(dist_json).collect()));
        return;
    }
    println!("{:<20} {:<10} {:>12} {:>8}  URL", "ID", "STATE", "DONE/TARGETS", "PROGRESS");
    for d in ds {
        let s = d.stats.unwrap_or_default();
        println!(
            "{:<20} {:<10} {:>12} {:>7.1}%  {}",
            d.id,
            state_name(d.state),
            format!("{}/{}", s.done, s.targets),
            s.progress * 100.0,
            d.origin_url
        );
    }
}

/// A live progress line (`--watch`).
pub fn progress_line(d: &pb::Distribution, as_json: bool) {
    if as_json {
        println!("{}", dist_json(d));
        return;
    }
    let s = d.stats.unwrap_or_default();
    print!(
        "\r{} {:<9} {:>5.1}%  {}/{} done  {} failed  {} B/s  offload {:.1}x   ",
        d.id,
        state_name(d.state),
        s.progress * 100.0,
        s.done,
        s.targets,
        s.failed,
        s.speed_bps,
        s.offload_ratio
    );
    let _ = std::io::stdout().flush();
}

fn lim(v: Option<i64>) -> String {
    v.map_or("unlimited".into(), |x| x.to_string())
}

/// Origin limits.
pub fn limits(ls: &[pb::OriginLimits], as_json: bool) {
    if as_json {
        let v: Vec<Value> = ls
            .iter()
            .map(|l| json!({
                "origin": l.origin, "max_conns": l.max_conns, "max_rate_bps": l.max_rate_bps, "max_bytes": l.max_bytes,
                "window_secs": l.window_secs, "used_conns": l.used_conns, "used_rate_bps": l.used_rate_bps,
                "used_bytes_in_window": l.used_bytes_in_window, "live_leases": l.live_leases,
            }))
            .collect();
        println!("{}", Value::Array(v));
        return;
    }
    for l in ls {
        let name = if l.origin.is_empty() { "(global)" } else { &l.origin };
        println!(
            "{name}: conns {} (used {}), rate {} B/s (used {}), bytes {} per {} s (used {}), {} live leases",
            lim(l.max_conns),
            l.used_conns,
            lim(l.max_rate_bps),
            l.used_rate_bps,
            lim(l.max_bytes),
            l.window_secs,
            l.used_bytes_in_window,
            l.live_leases
        );
    }
}

/// Relays.
pub fn relays(rs: &[pb::RelayInfo], as_json: bool) {
    if as_json {
        let v: Vec<Value> = rs
            .iter()
            .map(|r| json!({
                "id": r.id, "addresses": r.addresses, "zone": r.zone, "capacity_bps": r.capacity_bps, "load": r.load,
                "origin_rate_bps": r.origin_rate_bps, "origin_latency_ms": r.origin_latency_ms,
                "bytes_served": r.bytes_served, "last_seen_unix_ms": r.last_seen_unix_ms, "alive": r.alive,
            }))
            .collect();
        println!("{}", Value::Array(v));
        return;
    }
    println!("{:<20} {:<10} {:<6} {:>6}  ADDRESSES", "ID", "ZONE", "ALIVE", "LOAD");
    for r in rs {
        println!("{:<20} {:<10} {:<6} {:>6.2}  {}", r.id, r.zone, r.alive, r.load, r.addresses.join(" "));
    }
}

/// Clients.
pub fn clients(cs: &[pb::ClientInfo], as_json: bool) {
    if as_json {
        let v: Vec<Value> = cs
            .iter()
            .map(|c| json!({"id": c.id, "labels": c.labels, "zone": c.zone, "last_seen_unix_ms": c.last_seen_unix_ms}))
            .collect();
        println!("{}", Value::Array(v));
        return;
    }
    println!("{:<24} {:<10} LABELS", "ID", "ZONE");
    for c in cs {
        println!("{:<24} {:<10} {}", c.id, c.zone, c.labels.join(","));
    }
}
