//! `/tasks/<id>/hashes`: the piece hashes known so far, which clients of a URL-only
//! distribution verify pieces against before its `.torrent` exists.
//!
//! Without a query: the whole list (`null` for pieces not landed). With `?since=SEQ`: only the
//! pieces that landed after the first `SEQ` (in landing order) and the `seq` to ask from next,
//! so a client polling a 10 GB file does not fetch thousands of hashes each time; with
//! `&wait_ms=MS` as well, the answer waits (at most [`MAX_WAIT`]) until something lands: a
//! long poll, so new hashes reach clients at once without busy polling.

use std::time::Duration;

use floodgate_engine::http::query_number;
use floodgate_engine::types::hex;
use serde_json::json;

use crate::task::Task;

/// Longest a long poll is held.
pub(super) const MAX_WAIT: Duration = Duration::from_secs(10);

/// The hash list of `task` for the query string `query` (after the `?`, possibly empty).
pub(super) async fn hash_list(task: &Task, query: &str) -> String {
    let Some(since) = query_number(query, "since") else { return whole_list(task) };
    let wait = query_number(query, "wait_ms").map_or(Duration::ZERO, Duration::from_millis).min(MAX_WAIT);
    let mut changed = task.subscribe();
    let (mut seq, mut landed) = landed_since(task, since);
    if landed.is_empty() && !task.is_complete() && !wait.is_zero() {
        let deadline = tokio::time::Instant::now() + wait;
        while landed.is_empty()
            && tokio::time::timeout_at(deadline, changed.changed()).await.is_ok_and(|r| r.is_ok())
        {
            (seq, landed) = landed_since(task, since);
        }
    }
    let landed: Vec<_> = landed.iter().map(|(p, h)| json!([p, hex(h)])).collect();
    let mut head = header(task);
    head["seq"] = json!(seq);
    head["landed"] = json!(landed);
    head.to_string()
}

/// What every answer carries: the layout and whether the list is complete.
fn header(task: &Task) -> serde_json::Value {
    json!({
        "id": task.id,
        "name": task.name,
        "length": task.layout.total_length(),
        "piece_length": task.layout.piece_length(),
        "pieces": task.layout.piece_count(),
        "complete": task.is_complete(),
    })
}

/// Every piece's hash as far as known.
fn all_hashes(task: &Task) -> Vec<Option<[u8; 20]>> {
    match (task.growing(), task.torrent_file()) {
        (Some(g), _) => g.hashes(),
        (None, Some(file)) => floodgate_engine::metainfo::Metainfo::from_bytes(file)
            .map(|m| m.piece_hashes().iter().copied().map(Some).collect())
            .unwrap_or_default(),
        (None, None) => Vec::new(),
    }
}

fn whole_list(task: &Task) -> String {
    let hashes: Vec<Option<String>> = all_hashes(task).iter().map(|h| h.as_ref().map(|h| hex(h))).collect();
    let mut head = header(task);
    head["hashes"] = json!(hashes);
    head.to_string()
}

/// Pieces landed after the first `since`, and the next sequence number. A hash-known task's
/// list is complete from the start: its sequence is the piece index order.
fn landed_since(task: &Task, since: u64) -> (u64, Vec<(u32, [u8; 20])>) {
    if let Some(g) = task.growing() {
        return g.landed_since(since);
    }
    let all = all_hashes(task);
    let from = usize::try_from(since).unwrap_or(usize::MAX).min(all.len());
    let landed =
        all[from..].iter().enumerate().filter_map(|(i, h)| h.map(|h| ((from + i) as u32, h))).collect();
    (all.len() as u64, landed)
}
