//! The built-in tracker: `/announce` and `/scrape` for the relay's tasks, answered by the
//! engine's sans-IO `TrackerServer`, with the relay itself registered as a seed of each task so
//! a client given only the `.torrent` (announce URL: this relay) finds it.
//!
//! Only the relay's own tasks are tracked: the server allows each task's info-hash as the task
//! is added (or gets its torrent) and disallows it when the task is removed; an announce for any
//! other info-hash is refused and takes no room in the table.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use floodgate_engine::tracker::{percent_encode, TrackerConfig, TrackerServer};
use floodgate_engine::types::{InfoHash, PeerId};
use parking_lot::Mutex;

/// How often the relay re-registers itself (peers expire after twice the 120 s interval).
pub(crate) const SELF_ANNOUNCE_EVERY: Duration = Duration::from_secs(60);

/// The relay's tracker.
pub(crate) struct Tracker {
    server: Mutex<TrackerServer>,
}

impl Default for Tracker {
    fn default() -> Self {
        // Only the relay's own tasks are tracked (an empty allow-list until tasks come); keep
        // the table small.
        let config =
            TrackerConfig { max_torrents: 64, allowed: Some(HashSet::new()), ..TrackerConfig::default() };
        Tracker { server: Mutex::new(TrackerServer::new(config)) }
    }
}

impl Tracker {
    /// Answers an `/announce` or `/scrape` request: (status, bencoded body).
    pub(crate) fn handle(&self, target: &str, peer_ip: IpAddr) -> (u16, Vec<u8>) {
        self.server.lock().handle(target, peer_ip, Instant::now())
    }

    /// Tracks `info_hash` (one of the relay's tasks) from now on.
    pub(crate) fn allow(&self, info_hash: InfoHash) {
        self.server.lock().allow(info_hash);
    }

    /// Stops tracking `info_hash` and forgets its swarm (its task was removed).
    pub(crate) fn disallow(&self, info_hash: &InfoHash) {
        self.server.lock().disallow(info_hash);
    }

    /// Registers the relay (at `bt`, its BitTorrent address) as a seed of `info_hash`, which it
    /// tracks from now on.
    pub(crate) fn register_seed(&self, info_hash: InfoHash, peer_id: PeerId, bt: SocketAddr) {
        self.allow(info_hash);
        let mut target = String::from("/announce?info_hash=");
        percent_encode(info_hash.as_bytes(), &mut target);
        target.push_str("&peer_id=");
        percent_encode(&peer_id.0, &mut target);
        target.push_str(&format!("&port={}&uploaded=0&downloaded=0&left=0&compact=1", bt.port()));
        let (status, _) = self.handle(&target, bt.ip());
        if status != 200 {
            tracing::warn!(%info_hash, status, "the built-in tracker refused the relay's own announce");
        }
    }
}
