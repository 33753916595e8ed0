//! The growing hash list of a URL-only distribution, read from its relays while they pull
//! (`/tasks/<id>/hashes`, see the relay's `http/hashes.rs`). Every piece a client verifies,
//! writes, serves or announces in the provisional swarm is checked against a hash from here;
//! hashes come only from the relays ctl assigned. A relay whose hash for a piece disagrees
//! with the one already published by another is no longer followed ([`Followed::Conflict`]):
//! the agent stops using it for the distribution altogether and reports it to ctl.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use floodgate_engine::hash::HashConflict;
use floodgate_engine::layout::Layout;
use floodgate_engine::metainfo::{piece_length_for, url_file_name};
use floodgate_engine::swarm::{ImportError, TorrentHandle};
use floodgate_engine::types::{InfoHash, PieceIndex};
use floodgate_fetch::{get_body, Conn, HttpUrl};
use serde::Deserialize;

/// Largest hash list read (a 10 GB file in 256 KiB pieces is ~1.7 MB of JSON).
const MAX_LIST_BYTES: usize = 16 << 20;
/// How long one long poll may wait on the relay.
const LONG_POLL: Duration = Duration::from_secs(5);
/// Bound on each connect, write and read (longer than a long poll).
const IO_TIMEOUT: Duration = Duration::from_secs(15);

/// A relay's answer, whole (`hashes`) or incremental (`seq`, `landed`).
#[derive(Debug, Deserialize)]
pub(super) struct HashList {
    /// The file's name.
    pub name: String,
    /// The file's length.
    pub length: u64,
    /// Bytes per piece.
    pub piece_length: u32,
    /// Whether every piece landed (the `.torrent` is about to be published).
    pub complete: bool,
    /// Every hash as far as known (whole answers).
    #[serde(default)]
    pub hashes: Vec<Option<String>>,
    /// The sequence number to ask from next (incremental answers).
    #[serde(default)]
    pub seq: u64,
    /// `(piece, hash)` landed since the sequence asked for (incremental answers).
    #[serde(default)]
    pub landed: Vec<(u32, String)>,
}

impl HashList {
    /// The file's layout, checked against the rule every relay lays URL-only files out by
    /// (so the final `.torrent` will match it).
    pub(super) fn layout(&self) -> anyhow::Result<Layout> {
        if url_file_name(&format!("/{}", self.name)) != self.name {
            bail!("the relay names the file {:?}, not a plain file name", self.name);
        }
        if self.length == 0 || self.piece_length != piece_length_for(self.length) {
            bail!(
                "the relay lays out {} bytes in pieces of {}, not as every relay does",
                self.length,
                self.piece_length
            );
        }
        Layout::single(self.name.clone(), self.length, self.piece_length).context("bad layout")
    }

    /// The whole list's hashes, decoded (`None`: not landed, or not valid hex).
    pub(super) fn decoded(&self) -> Vec<Option<[u8; 20]>> {
        self.hashes.iter().map(|h| h.as_deref().and_then(unhex)).collect()
    }
}

/// Decodes 40 hex digits (the same 20-byte hex form as an info-hash).
fn unhex(s: &str) -> Option<[u8; 20]> {
    InfoHash::from_hex(s).map(|h| h.0)
}

/// A piece hash as 40 lowercase hex digits (as the relays publish them).
pub(super) fn hex(hash: &[u8; 20]) -> String {
    InfoHash(*hash).to_hex()
}

/// The hash list URL of task `task_id` on the relay at `http_addr` (`HOST:PORT`).
pub(super) fn list_url(http_addr: &str, task_id: &str, query: &str) -> anyhow::Result<HttpUrl> {
    let q = if query.is_empty() { String::new() } else { format!("?{query}") };
    Ok(HttpUrl::parse(&format!("http://{http_addr}/tasks/{task_id}/hashes{q}"))?)
}

/// One GET of a hash list.
pub(super) async fn fetch_list(conn: &mut Option<Conn>, url: &HttpUrl) -> anyhow::Result<HashList> {
    let body = get_body(conn, url, IO_TIMEOUT, None, MAX_LIST_BYTES).await?;
    serde_json::from_slice(&body).with_context(|| format!("{} sent a malformed hash list", url))
}

/// How following one relay's hash list ended.
#[derive(Debug)]
pub(super) enum Followed {
    /// The list is complete and every hash of it read.
    Complete,
    /// The job stopped.
    Stopped,
    /// The relay's hash for a piece disagrees with the one already published (by another
    /// relay): nothing more is taken from its list. The hashes of the same answer before that
    /// piece were published (each new or agreeing).
    Conflict(HashConflict),
}

/// Follows one relay's list from sequence 0, publishing every new hash to `torrent`, until
/// the list is complete and read, `stop` is set, or the relay disagrees with a hash already
/// published (see [`Followed`]). Request errors are retried with backoff; a list that does
/// not fit (another file, malformed hashes) is an error.
pub(super) async fn follow(
    relay: String,
    task_id: String,
    torrent: TorrentHandle,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<Followed> {
    let mut conn = None;
    let mut seq = 0u64;
    let mut errors = 0u32;
    while !stop.load(Ordering::Relaxed) {
        let url = list_url(&relay, &task_id, &format!("since={seq}&wait_ms={}", LONG_POLL.as_millis()))?;
        let list = match fetch_list(&mut conn, &url).await {
            Ok(l) => l,
            Err(e) => {
                tracing::debug!(relay = %relay, error = %e, "hash list request failed");
                tokio::time::sleep(floodgate_fetch::backoff(errors.min(5))).await;
                errors += 1;
                continue;
            }
        };
        errors = 0;
        if stop.load(Ordering::Relaxed) {
            // The job ended while the long poll waited (e.g. it moved to the standard swarm).
            break;
        }
        if list.length != torrent.layout().total_length()
            || list.piece_length != torrent.layout().piece_length()
        {
            bail!(
                "relay {relay} now describes another file ({} bytes in pieces of {})",
                list.length,
                list.piece_length
            );
        }
        let mut new = 0;
        for (piece, hex) in &list.landed {
            let Some(hash) = unhex(hex) else {
                bail!("relay {relay} sent a malformed hash for piece {piece}")
            };
            match torrent.publish_hash(PieceIndex(*piece), hash) {
                Ok(true) => new += 1,
                Ok(false) => {}
                Err(ImportError::HashConflict(c)) => {
                    tracing::error!(relay = %relay, piece = c.piece, "relay's piece hash disagrees with another relay's; not using this relay's hashes");
                    return Ok(Followed::Conflict(c));
                }
                Err(e) => bail!("relay {relay}: {e}"),
            }
        }
        if new > 0 {
            tracing::debug!(relay = %relay, new, seq = list.seq, "piece hashes published");
        }
        seq = list.seq;
        if list.complete && list.landed.is_empty() {
            return Ok(Followed::Complete);
        }
    }
    Ok(Followed::Stopped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_decode_and_layouts_are_checked() {
        let len = 3 * 1024 * 1024u64;
        let pl = piece_length_for(len);
        let h = "00".repeat(19) + "ff";
        let raw = format!(
            r#"{{"id":"x","name":"f.bin","length":{len},"piece_length":{pl},"pieces":1,"complete":false,"hashes":["{h}",null,"zz"]}}"#
        );
        let list: HashList = serde_json::from_str(&raw).expect("parses");
        let d = list.decoded();
        assert_eq!(d[0].map(|x| x[19]), Some(0xff));
        assert_eq!((d[1], d[2]), (None, None));
        assert!(list.layout().is_ok());
        let bad_name = HashList { name: "../etc".into(), ..serde_json::from_str(&raw).expect("parses") };
        assert!(bad_name.layout().is_err());
        let bad_pl = HashList { piece_length: pl * 2, ..serde_json::from_str(&raw).expect("parses") };
        assert!(bad_pl.layout().is_err());
        let inc: HashList = serde_json::from_str(&format!(
            r#"{{"name":"f","length":1,"piece_length":16384,"complete":true,"seq":4,"landed":[[3,"{h}"]]}}"#
        ))
        .expect("parses");
        assert_eq!((inc.seq, inc.landed.len()), (4, 1));
        assert_eq!(unhex("abc"), None);
    }
}
