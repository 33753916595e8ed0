//! `/tasks` (JSON) and `/metrics` (Prometheus text format).

use std::fmt::Write;
use std::sync::atomic::Ordering;

use super::Server;
use crate::task::{Task, TaskState};

/// One metric family: name, type, help, value of a task.
type Family = (&'static str, &'static str, &'static str, fn(&Task) -> f64);

/// Bytes per second pulled from the origin since the task started.
fn pull_rate(task: &Task) -> f64 {
    let secs = task.started.elapsed().as_secs_f64().max(0.001);
    task.counters.origin_bytes.load(Ordering::Relaxed) as f64 / secs
}

/// The task list as a JSON array.
pub(super) fn tasks_json(server: &Server) -> String {
    let list: Vec<serde_json::Value> = server
        .tasks()
        .iter()
        .map(|t| {
            let (bt_bytes, peers) = t.bt_stats();
            let c = &t.counters;
            let state = t.state();
            let error = match &state {
                TaskState::Failed(e) => Some(e.clone()),
                _ => None,
            };
            serde_json::json!({
                "id": t.id,
                "name": t.name,
                "info_hash": t.torrent().map(|h| h.info_hash().to_hex()),
                "origin": t.origin,
                "state": state.name(),
                "error": error,
                "length": t.layout.total_length(),
                "piece_length": t.layout.piece_length(),
                "pieces": t.layout.piece_count(),
                "pieces_verified": t.verified_count(),
                "bytes_verified": t.verified_bytes(),
                "resumed_pieces": c.resumed_pieces.load(Ordering::Relaxed),
                "pulled_pieces": c.pulled_pieces.load(Ordering::Relaxed),
                "origin_bytes": c.origin_bytes.load(Ordering::Relaxed),
                "origin_requests": c.origin_requests.load(Ordering::Relaxed),
                "origin_retries": c.origin_retries.load(Ordering::Relaxed),
                "http_bytes": c.http_bytes.load(Ordering::Relaxed),
                "bt_bytes": bt_bytes,
                "peers": peers,
                "pull_rate": pull_rate(t),
                "data": format!("/tasks/{}/data", t.id),
                "torrent": t.torrent_file().map(|_| format!("/tasks/{}.torrent", t.id)),
                "hashes": format!("/tasks/{}/hashes", t.id),
            })
        })
        .collect();
    serde_json::Value::Array(list).to_string()
}

/// Prometheus metrics of every task.
pub(super) fn metrics(server: &Server) -> String {
    let mut out = String::new();
    let families: [Family; 8] = [
        ("floodgate_relay_origin_bytes_total", "counter", "Body bytes pulled from the origin.", |t| {
            t.counters.origin_bytes.load(Ordering::Relaxed) as f64
        }),
        ("floodgate_relay_origin_requests_total", "counter", "Requests sent to the origin.", |t| {
            t.counters.origin_requests.load(Ordering::Relaxed) as f64
        }),
        ("floodgate_relay_origin_retries_total", "counter", "Origin requests retried.", |t| {
            t.counters.origin_retries.load(Ordering::Relaxed) as f64
        }),
        ("floodgate_relay_pieces_verified", "gauge", "Pieces verified.", |t| f64::from(t.verified_count())),
        ("floodgate_relay_pieces", "gauge", "Pieces in the task.", |t| f64::from(t.layout.piece_count())),
        ("floodgate_relay_peers", "gauge", "Connected BitTorrent peers.", |t| t.bt_stats().1 as f64),
        ("floodgate_relay_pull_rate_bytes", "gauge", "Average origin pull rate, bytes/s.", pull_rate),
        ("floodgate_relay_task_failed", "gauge", "1 if the task failed.", |t| {
            f64::from(u8::from(matches!(t.state(), TaskState::Failed(_))))
        }),
    ];
    for (name, kind, help, value) in families {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for t in &server.tasks() {
            let _ = writeln!(out, "{name}{{task=\"{}\"}} {}", t.id, value(t));
        }
    }
    let name = "floodgate_relay_served_bytes_total";
    let _ = writeln!(out, "# HELP {name} Bytes served to clients, by protocol.\n# TYPE {name} counter");
    for t in &server.tasks() {
        let http = t.counters.http_bytes.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}{{task=\"{}\",protocol=\"http\"}} {http}", t.id);
        let _ = writeln!(out, "{name}{{task=\"{}\",protocol=\"bt\"}} {}", t.id, t.bt_stats().0);
    }
    out
}
