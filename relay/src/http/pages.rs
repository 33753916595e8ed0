//! `/tasks` and `/tasks/<id>/hashes` (JSON).

use std::sync::atomic::Ordering;

use super::Server;
use crate::task::{Task, TaskState};

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

/// The piece hashes known so far: every one for a hash-known task, the landed ones (others
/// `null`) for a URL-only task. Clients poll it to verify pieces before the `.torrent` exists.
pub(super) fn hash_list(task: &Task) -> String {
    let hex = |h: &[u8; 20]| floodgate_engine::types::hex(h);
    let hashes: Vec<Option<String>> = match (task.growing(), task.torrent_file()) {
        (Some(g), _) => g.hashes().iter().map(|h| h.as_ref().map(hex)).collect(),
        (None, Some(file)) => floodgate_engine::metainfo::Metainfo::from_bytes(file)
            .map(|m| m.piece_hashes().iter().map(|h| Some(hex(h))).collect())
            .unwrap_or_default(),
        (None, None) => Vec::new(),
    };
    serde_json::json!({
        "id": task.id,
        "length": task.layout.total_length(),
        "piece_length": task.layout.piece_length(),
        "pieces": task.layout.piece_count(),
        "complete": task.is_complete(),
        "hashes": hashes,
    })
    .to_string()
}
