//! The tracker's state: who is in which swarm, answered per request with no I/O.
//!
//! Calling order: `handle` for every request (it expires stale peers of the torrent it touches),
//! and `purge_expired` now and then to drop torrents nobody announces any more.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rand::seq::SliceRandom;

use super::query::{AnnounceQuery, ScrapeQuery};
use super::response::{encode_failure, AnnounceResponse};
use super::Event;
use crate::bencode::Encoder;
use crate::types::{InfoHash, PeerId};

/// Tracker settings.
#[derive(Clone, Debug)]
pub struct TrackerConfig {
    /// The `interval` told to clients; peers expire after twice this without an announce.
    pub interval: Duration,
    /// The `min interval` told to clients.
    pub min_interval: Duration,
    /// Most peers remembered per torrent; announces from new peers beyond it are refused.
    pub max_peers_per_torrent: usize,
    /// Most torrents tracked; announces for new torrents beyond it are refused.
    pub max_torrents: usize,
    /// Peers returned when the client does not say `numwant`.
    pub default_numwant: usize,
    /// Most peers returned to one announce, whatever `numwant` says.
    pub max_numwant: usize,
    /// If set, only these info-hashes are tracked (an announce for any other is refused and
    /// takes no room); [`TrackerServer::allow`] and [`TrackerServer::disallow`] change the list
    /// at run time. `Some` of an empty set tracks nothing until its owner allows torrents.
    pub allowed: Option<HashSet<InfoHash>>,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            interval: Duration::from_secs(120),
            min_interval: Duration::from_secs(5),
            max_peers_per_torrent: 5000,
            max_torrents: 10_000,
            default_numwant: 50,
            max_numwant: 200,
            allowed: None,
        }
    }
}

#[derive(Clone, Debug)]
struct PeerEntry {
    addr: SocketAddr,
    seeder: bool,
    expires: Instant,
}

#[derive(Debug, Default)]
struct Swarm {
    peers: HashMap<PeerId, PeerEntry>,
    /// `completed` events ever seen.
    downloaded: u64,
}

impl Swarm {
    fn counts(&self) -> (u32, u32) {
        let seeders = self.peers.values().filter(|p| p.seeder).count();
        let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        (clamp(seeders), clamp(self.peers.len() - seeders))
    }
}

/// Tracker state: per info-hash swarms of peers with expiry. Answers `/announce` and `/scrape`.
#[derive(Debug)]
pub struct TrackerServer {
    config: TrackerConfig,
    torrents: HashMap<InfoHash, Swarm>,
}

/// `(status, body)` as handed to an HTTP server.
type Reply = (u16, Vec<u8>);

impl TrackerServer {
    /// An empty tracker.
    pub fn new(config: TrackerConfig) -> Self {
        TrackerServer { config, torrents: HashMap::new() }
    }

    /// Torrents currently tracked.
    pub fn torrent_count(&self) -> usize {
        self.torrents.len()
    }

    /// Peers currently in the swarm of `info_hash`.
    pub fn peer_count(&self, info_hash: &InfoHash) -> usize {
        self.torrents.get(info_hash).map_or(0, |s| s.peers.len())
    }

    /// Tracks `info_hash` from now on. A tracker without an allow-list gets one holding just
    /// this hash, so it then tracks only the torrents it was told about.
    pub fn allow(&mut self, info_hash: InfoHash) {
        self.config.allowed.get_or_insert_with(HashSet::new).insert(info_hash);
    }

    /// Stops tracking `info_hash`: it leaves the allow-list (if there is one) and its swarm is
    /// forgotten.
    pub fn disallow(&mut self, info_hash: &InfoHash) {
        if let Some(allowed) = self.config.allowed.as_mut() {
            allowed.remove(info_hash);
        }
        self.torrents.remove(info_hash);
    }

    /// Whether an announce for `info_hash` would be tracked (no allow-list: every hash is).
    pub fn is_allowed(&self, info_hash: &InfoHash) -> bool {
        self.config.allowed.as_ref().is_none_or(|a| a.contains(info_hash))
    }

    /// Answers one request. `target` is the request target (path and query), `peer_ip` the
    /// address the request came from (the only address announced for the peer; an `ip`
    /// parameter is ignored). Returns the HTTP status and a bencoded body: 200 with the answer or
    /// a `failure reason`, 404 for other paths.
    pub fn handle(&mut self, target: &str, peer_ip: IpAddr, now: Instant) -> (u16, Vec<u8>) {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        match path {
            "/announce" => match AnnounceQuery::parse(query) {
                Ok(q) => self.announce(&q, peer_ip, now),
                Err(e) => failure(&e.to_string()),
            },
            "/scrape" => match ScrapeQuery::parse(query) {
                Ok(q) => self.scrape(&q, now),
                Err(e) => failure(&e.to_string()),
            },
            _ => {
                let mut body = Vec::new();
                encode_failure("not found", &mut body);
                (404, body)
            }
        }
    }

    fn announce(&mut self, q: &AnnounceQuery, peer_ip: IpAddr, now: Instant) -> Reply {
        if !self.is_allowed(&q.info_hash) {
            return failure("torrent not allowed here");
        }
        let ip = match peer_ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(peer_ip, IpAddr::V4),
            v4 => v4,
        };
        if !self.torrents.contains_key(&q.info_hash) {
            if q.event == Some(Event::Stopped) {
                return self.reply(q, Vec::new());
            }
            if self.torrents.len() >= self.config.max_torrents {
                return failure("too many torrents");
            }
        }
        let expiry = self.config.interval.saturating_mul(2);
        let swarm = self.torrents.entry(q.info_hash).or_default();
        swarm.peers.retain(|_, p| p.expires > now);
        if q.event == Some(Event::Stopped) {
            swarm.peers.remove(&q.peer_id);
            if swarm.peers.is_empty() && swarm.downloaded == 0 {
                self.torrents.remove(&q.info_hash);
            }
            return self.reply(q, Vec::new());
        }
        if !swarm.peers.contains_key(&q.peer_id) && swarm.peers.len() >= self.config.max_peers_per_torrent {
            return failure("too many peers in this torrent");
        }
        if q.event == Some(Event::Completed) {
            swarm.downloaded += 1;
        }
        let seeder = q.left == Some(0);
        swarm.peers.insert(
            q.peer_id,
            PeerEntry { addr: SocketAddr::new(ip, q.port), seeder, expires: now + expiry },
        );
        let want = q
            .numwant
            .map_or(self.config.default_numwant, |n| usize::try_from(n).unwrap_or(usize::MAX))
            .min(self.config.max_numwant);
        let mut others: Vec<&PeerEntry> = swarm
            .peers
            .iter()
            .filter(|(id, p)| **id != q.peer_id && !(seeder && p.seeder))
            .map(|(_, p)| p)
            .collect();
        others.shuffle(&mut rand::rng());
        let peers = others.into_iter().take(want).map(|p| p.addr).collect();
        self.reply(q, peers)
    }

    fn reply(&self, q: &AnnounceQuery, peers: Vec<SocketAddr>) -> Reply {
        let (complete, incomplete) = self.torrents.get(&q.info_hash).map_or((0, 0), Swarm::counts);
        let resp = AnnounceResponse {
            interval: secs(self.config.interval),
            min_interval: Some(secs(self.config.min_interval)),
            complete: Some(complete),
            incomplete: Some(incomplete),
            warning: None,
            peers,
        };
        let mut body = Vec::new();
        resp.encode(q.compact, &mut body);
        (200, body)
    }

    fn scrape(&mut self, q: &ScrapeQuery, now: Instant) -> Reply {
        for s in self.torrents.values_mut() {
            s.peers.retain(|_, p| p.expires > now);
        }
        let mut hashes: Vec<InfoHash> = if q.info_hashes.is_empty() {
            self.torrents.keys().copied().take(super::query::MAX_SCRAPE_HASHES).collect()
        } else {
            q.info_hashes.clone()
        };
        hashes.sort_unstable();
        hashes.dedup();
        let mut body = Vec::new();
        let mut enc = Encoder::new(&mut body);
        enc.dict(|d| {
            d.entry(b"files", |e| {
                e.dict(|files| {
                    for h in &hashes {
                        let Some(s) = self.torrents.get(h) else { continue };
                        let (complete, incomplete) = s.counts();
                        files.entry(h.as_bytes(), |e| {
                            e.dict(|f| {
                                f.int(b"complete", i64::from(complete));
                                f.int(b"incomplete", i64::from(incomplete));
                                f.int(b"downloaded", i64::try_from(s.downloaded).unwrap_or(i64::MAX));
                            })
                        });
                    }
                })
            })
        });
        // Hashes were deduplicated: no duplicate key is possible.
        let _ = enc.finish();
        (200, body)
    }

    /// Drops peers that have not announced within twice the interval, and torrents left empty.
    pub fn purge_expired(&mut self, now: Instant) {
        for s in self.torrents.values_mut() {
            s.peers.retain(|_, p| p.expires > now);
        }
        self.torrents.retain(|_, s| !s.peers.is_empty());
    }
}

fn secs(d: Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
}

fn failure(reason: &str) -> Reply {
    let mut body = Vec::new();
    encode_failure(reason, &mut body);
    (200, body)
}
