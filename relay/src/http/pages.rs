//! `/tasks` and `/tasks/<id>/hashes` (JSON).

use std::sync::atomic::Ordering;

use super::Server;
use crate::task::Task;

/// Bytes per second pulled from the origin since the task started.
pub(super) fn pull_rate(task: &Task) -> f64 {
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
            let error = state.error().map(String::from);
            serde_json::json!({
                "id": t.id,
                "name": t.name,
                "info_hash": t.torrent().map(|h| h.info_hash().to_hex()),
                // Shown, so never with the URL's credentials.
                "origin": floodgate_engine::http::redact(&t.origin),
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
                "mirrors": t.sources.iter().map(crate::task::Source::json).collect::<Vec<_>>(),
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
