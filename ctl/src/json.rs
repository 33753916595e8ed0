//! JSON shapes shared by the CLI's `--json` output and the HTTP API, so both say the same.

use floodgate_engine::http::redact;
use floodgate_proto::v1 as pb;
use serde_json::{json, Value};

/// The lower-case name of a distribution state.
pub(crate) fn state_name(s: i32) -> &'static str {
    match pb::DistState::try_from(s) {
        Ok(pb::DistState::Active) => "active",
        Ok(pb::DistState::Done) => "done",
        Ok(pb::DistState::Cancelled) => "cancelled",
        Ok(pb::DistState::Failed) => "failed",
        _ => "unknown",
    }
}

/// One distribution with its statistics.
pub(crate) fn dist(d: &pb::Distribution) -> Value {
    let s = d.stats.clone().unwrap_or_default();
    let t = d.targets.clone().unwrap_or_default();
    json!({
        "id": d.id, "origin_url": redact(&d.origin_url), "state": state_name(d.state),
        "created_unix_ms": d.created_unix_ms, "finished_unix_ms": d.finished_unix_ms,
        "size": d.size, "has_torrent": d.has_torrent, "relay_ids": d.relay_ids,
        "sha256": d.sha256, "failure_reason": d.failure_reason,
        "mirror_urls": d.mirror_urls.iter().map(|u| redact(u)).collect::<Vec<_>>(),
        "hash_conflicts": d.hash_conflicts.iter().map(|c| json!({
            "relay": c.relay, "first_piece": c.first_piece, "clients": c.clients,
            "hash_seen_first": c.hash_seen_first, "hash_from_relay": c.hash_from_relay,
        })).collect::<Vec<_>>(),
        "targets": {"client_ids": t.client_ids, "labels": t.labels, "all": t.all},
        "stats": {
            "targets": s.targets, "pending": s.pending, "running": s.running, "done": s.done,
            "failed": s.failed, "cancelled": s.cancelled, "progress": s.progress, "speed_bps": s.speed_bps,
            "bytes_bt": s.bytes_bt, "bytes_http_relay": s.bytes_http_relay, "bytes_http_origin": s.bytes_http_origin,
            "origin_bytes": s.origin_bytes, "offload_ratio": s.offload_ratio, "min_time_secs": s.min_time_secs,
            "min_time_basis": s.min_time_basis,
        }
    })
}

/// One limits row with its live usage (`origin` "" is the global row).
pub(crate) fn limits(l: &pb::OriginLimits) -> Value {
    json!({
        "origin": l.origin, "max_conns": l.max_conns, "max_rate_bps": l.max_rate_bps, "max_bytes": l.max_bytes,
        "window_secs": l.window_secs, "used_conns": l.used_conns, "used_rate_bps": l.used_rate_bps,
        "used_bytes_in_window": l.used_bytes_in_window, "live_leases": l.live_leases,
    })
}

/// One relay.
pub(crate) fn relay(r: &pb::RelayInfo) -> Value {
    json!({
        "id": r.id, "addresses": r.addresses, "zone": r.zone, "capacity_bps": r.capacity_bps, "load": r.load,
        "origin_rate_bps": r.origin_rate_bps, "origin_latency_ms": r.origin_latency_ms,
        "bytes_served": r.bytes_served, "last_seen_unix_ms": r.last_seen_unix_ms, "alive": r.alive,
    })
}

/// One client.
pub(crate) fn client(c: &pb::ClientInfo) -> Value {
    json!({"id": c.id, "labels": c.labels, "zone": c.zone, "last_seen_unix_ms": c.last_seen_unix_ms})
}

/// One audit log entry.
pub(crate) fn audit(e: &pb::AuditEntry) -> Value {
    json!({
        "at_unix_ms": e.at_unix_ms, "role": e.role, "via": e.via, "peer": e.peer,
        "action": e.action, "target": e.target, "detail": e.detail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_urls_are_shown_without_credentials_or_query() {
        let d = pb::Distribution {
            origin_url: "http://user:pass@origin.example/f?X-Amz-Signature=abc".into(),
            ..Default::default()
        };
        let shown = dist(&d).to_string();
        assert!(shown.contains("http://origin.example/f?…"), "{shown}");
        assert!(!shown.contains("pass") && !shown.contains("Signature"), "{shown}");
    }
}
