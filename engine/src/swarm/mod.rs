//! The live engine: torrents whose peers run over io_uring TCP, one runtime per core.
//!
//! A [`Swarm`] owns the runtime threads, the listening port and the choker; each
//! [`TorrentHandle`] is one torrent in it. Connections of one torrent may live on any runtime
//! thread; they share the torrent's lock-free piece map, its store and its verifier. Together
//! with `uring/` this is the engine's I/O edge: the protocol itself lives in `peer` and `wire`.
//!
//! ```no_run
//! # fn demo(meta: floodgate_engine::metainfo::Metainfo) -> Result<(), Box<dyn std::error::Error>> {
//! use floodgate_engine::swarm::{AddTorrent, Swarm, SwarmConfig};
//! let swarm = Swarm::start(SwarmConfig { listen: Some("127.0.0.1:6881".parse()?), ..Default::default() })?;
//! let store = floodgate_engine::store::Store::memory(meta.layout());
//! let torrent = swarm.add_torrent(AddTorrent::new(&meta, store))?;
//! torrent.connect("127.0.0.1:6882".parse()?);
//! while !torrent.is_complete() { std::thread::sleep(std::time::Duration::from_millis(100)); }
//! # Ok(()) }
//! ```

mod choker;
mod cold;
mod connection;
#[cfg(test)]
mod import_tests;
pub mod magnet;
mod runtime;
#[cfg(test)]
mod tests;
mod throttle;
mod torrent;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use tokio::sync::mpsc;

pub use choker::{decide as choke_decision, ChokerConfig, PeerStat};

use crate::hash::PieceHashes;
use crate::layout::Layout;
use crate::metainfo::Metainfo;
use crate::peer::{SessionConfig, OUR_UT_METADATA_ID};
use crate::piece_map::{Bitfield, PieceMap, PieceMapError};
use crate::ratelimit::RateChain;
use crate::store::Store;
use crate::types::{InfoHash, PeerId};
use crate::wire::UT_METADATA;
use runtime::Command;
use torrent::Torrent;
pub use torrent::{HttpClaim, ImportError, ImportOutcome};

/// Why the swarm or a torrent could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SwarmError {
    /// A socket or thread could not be set up.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The torrent description is inconsistent.
    #[error("invalid torrent: {0}")]
    Invalid(&'static str),
    /// The resume bitfield does not fit the torrent.
    #[error("piece map: {0}")]
    PieceMap(PieceMapError),
    /// The store refused a write.
    #[error("store: {0}")]
    Store(crate::store::StoreError),
    /// A torrent with this info-hash is already in the swarm.
    #[error("torrent {0} is already added")]
    Duplicate(InfoHash),
}

/// Settings of a swarm.
#[derive(Clone, Debug)]
pub struct SwarmConfig {
    /// Runtime threads (0 = one per core).
    pub threads: usize,
    /// Address to accept peers on (`None`: outbound connections only).
    pub listen: Option<SocketAddr>,
    /// Our peer id.
    pub peer_id: PeerId,
    /// Upload slot policy.
    pub choker: ChokerConfig,
    /// How often the choker re-ranks peers.
    pub choke_interval: Duration,
    /// Upload limit over all torrents, bytes/s (0: unlimited).
    pub upload_limit: u64,
    /// Download limit over all torrents, bytes/s (0: unlimited).
    pub download_limit: u64,
}

impl Default for SwarmConfig {
    fn default() -> Self {
        SwarmConfig {
            threads: 0,
            listen: None,
            peer_id: PeerId::generate(),
            choker: ChokerConfig::default(),
            choke_interval: Duration::from_secs(10),
            upload_limit: 0,
            download_limit: 0,
        }
    }
}

/// What to add: one torrent's identity, layout, hashes, store and what is already verified.
pub struct AddTorrent {
    /// The info-hash peers must name in their handshake.
    pub info_hash: InfoHash,
    /// Pieces onto files.
    pub layout: Layout,
    /// SHA-1 of every piece, as far as known: pieces without one are withheld until
    /// [`TorrentHandle::publish_hash`] gives it (a URL-only distribution's provisional swarm).
    pub piece_hashes: PieceHashes,
    /// Where data goes.
    pub store: Store,
    /// Pieces already verified in the store (resume, or a full seed).
    pub verified: Option<Bitfield>,
    /// Per-connection settings.
    pub session: SessionConfig,
    /// Most connections at once.
    pub max_peers: usize,
    /// Peers unchoked at once (regular slots; one more rotates optimistically).
    pub upload_slots: usize,
    /// Hashing threads (0 = one per core).
    pub hash_threads: usize,
    /// The raw info dictionary: when known, peers may fetch it with BEP 9 (`ut_metadata`),
    /// which magnet-link downloaders need.
    pub info_bytes: Option<Bytes>,
    /// Upload limit for this torrent, bytes/s (0: unlimited), within the swarm's.
    pub upload_limit: u64,
    /// Download limit for this torrent, bytes/s (0: unlimited), within the swarm's.
    pub download_limit: u64,
}

impl AddTorrent {
    /// A torrent from its metainfo, with nothing verified yet.
    pub fn new(meta: &Metainfo, store: Store) -> Self {
        let hashes = PieceHashes::known(meta.piece_hashes());
        AddTorrent {
            info_bytes: Some(Bytes::copy_from_slice(meta.info_bytes())),
            // A standard swarm: any BitTorrent peer may join.
            session: SessionConfig::default(),
            ..AddTorrent::provisional(meta.info_hash(), meta.layout(), hashes, store)
        }
    }

    /// A torrent known only by its layout and the hashes published so far (a URL-only
    /// distribution while its relays are still pulling), under a provisional `info_hash`.
    /// There is no info dictionary to serve (BEP 9), and the session is fleet-only
    /// ([`SessionConfig::fleet_only`]): only peers that know the info-hash *and* prove they
    /// hold the distribution's fleet key (set `session.fleet`) take part.
    pub fn provisional(info_hash: InfoHash, layout: Layout, piece_hashes: PieceHashes, store: Store) -> Self {
        AddTorrent {
            info_hash,
            layout,
            piece_hashes,
            store,
            verified: None,
            // Only the distribution's peers (who hold its fleet key) may take part.
            session: SessionConfig { fleet_only: true, ..SessionConfig::default() },
            max_peers: 200,
            upload_slots: ChokerConfig::default().slots,
            hash_threads: 0,
            upload_limit: 0,
            download_limit: 0,
            info_bytes: None,
        }
    }

    /// Marks pieces as already verified (a seed passes `Bitfield::full`).
    pub fn with_verified(mut self, verified: Bitfield) -> Self {
        self.verified = Some(verified);
        self
    }
}

/// Live numbers of one torrent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TorrentStats {
    /// Pieces verified.
    pub pieces_verified: u32,
    /// Pieces in the torrent.
    pub piece_count: u32,
    /// Bytes in verified pieces.
    pub bytes_verified: u64,
    /// Bytes in the torrent.
    pub total_length: u64,
    /// Payload bytes received from peers and used (failed pieces included, redundant ones not).
    pub downloaded: u64,
    /// Payload bytes received from peers and dropped: blocks nobody asked for any more, or that
    /// another peer (or HTTP) delivered first (libtorrent's "redundant bytes").
    pub redundant_bytes: u64,
    /// Payload bytes sent to peers.
    pub uploaded: u64,
    /// Connected peers.
    pub peers: usize,
    /// Distinct connections ever made.
    pub peers_seen: u64,
    /// Pieces that failed their hash check.
    pub hash_failures: u64,
    /// The last store error, if writing failed (e.g. a full disk).
    pub store_error: Option<String>,
    /// Pieces assembled from both peers' blocks and an HTTP import.
    pub mixed_pieces: u64,
    /// Pieces read for upload on a blocking thread because they were not in the page cache.
    pub cold_reads: u64,
    /// Bytes of those pieces.
    pub cold_read_bytes: u64,
}

pub(crate) struct SwarmInner {
    torrents: RwLock<HashMap<InfoHash, Arc<Torrent>>>,
    commands: Vec<mpsc::UnboundedSender<Command>>,
    next_thread: AtomicUsize,
    pub(crate) peer_id: PeerId,
    stop: AtomicBool,
    upload: Arc<crate::ratelimit::TokenBucket>,
    download: Arc<crate::ratelimit::TokenBucket>,
}

impl SwarmInner {
    pub(crate) fn torrent(&self, info_hash: &InfoHash) -> Option<Arc<Torrent>> {
        self.torrents.read().get(info_hash).cloned()
    }

    fn dial(&self, torrent: Arc<Torrent>, addr: SocketAddr) {
        let i = self.next_thread.fetch_add(1, Ordering::Relaxed) % self.commands.len();
        let _ = self.commands[i].send(Command::Connect(torrent, addr));
    }
}

/// The runtime threads, listener and choker shared by any number of torrents.
pub struct Swarm {
    inner: Arc<SwarmInner>,
    listen_addr: Option<SocketAddr>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Swarm {
    /// Starts the runtime threads (and the listener, if configured).
    pub fn start(config: SwarmConfig) -> Result<Swarm, SwarmError> {
        let threads = match config.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        // Bind once to learn the port (if 0 was asked), then once more per extra thread.
        let mut listeners = Vec::new();
        let mut listen_addr = None;
        if let Some(addr) = config.listen {
            let first = runtime::bind_reuseport(addr)?;
            let bound = first.local_addr()?;
            listeners.push(Some(first));
            for _ in 1..threads {
                listeners.push(Some(runtime::bind_reuseport(bound)?));
            }
            listen_addr = Some(bound);
        } else {
            listeners.resize_with(threads, || None);
        }
        let mut senders = Vec::new();
        let mut receivers = Vec::new();
        for _ in 0..threads {
            let (tx, rx) = mpsc::unbounded_channel();
            senders.push(tx);
            receivers.push(rx);
        }
        let inner = Arc::new(SwarmInner {
            torrents: RwLock::new(HashMap::new()),
            commands: senders,
            next_thread: AtomicUsize::new(0),
            peer_id: config.peer_id,
            stop: AtomicBool::new(false),
            upload: throttle::bucket(config.upload_limit),
            download: throttle::bucket(config.download_limit),
        });
        let mut handles = Vec::new();
        for (i, (listener, rx)) in listeners.into_iter().zip(receivers).enumerate() {
            let inner = inner.clone();
            handles.push(
                std::thread::Builder::new()
                    .name(format!("fg-net-{i}"))
                    .spawn(move || runtime::run_thread(inner, listener, rx))?,
            );
        }
        let choker_inner = inner.clone();
        let (choker, interval) = (config.choker, config.choke_interval);
        handles.push(
            std::thread::Builder::new()
                .name("fg-choker".into())
                .spawn(move || run_choker(choker_inner, choker, interval))?,
        );
        Ok(Swarm { inner, listen_addr, threads: Mutex::new(handles) })
    }

    /// The address peers can connect to, if listening (the real port when 0 was asked).
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        self.listen_addr
    }

    /// Our peer id.
    pub fn peer_id(&self) -> PeerId {
        self.inner.peer_id
    }

    /// Adds a torrent; peers may connect for it at once.
    pub fn add_torrent(&self, mut spec: AddTorrent) -> Result<TorrentHandle, SwarmError> {
        if let Some(info) = &spec.info_bytes {
            // Serve the metadata (BEP 9): advertise it in our extended handshake.
            let ext = &mut spec.session.extended;
            ext.m.insert(UT_METADATA.to_owned(), OUR_UT_METADATA_ID);
            ext.metadata_size = Some(info.len() as u64);
        }
        let info_hash = spec.info_hash;
        let up = RateChain::new(vec![self.inner.upload.clone(), throttle::bucket(spec.upload_limit)]);
        let down = RateChain::new(vec![self.inner.download.clone(), throttle::bucket(spec.download_limit)]);
        let torrent = Torrent::new(spec, up, down)?;
        let mut torrents = self.inner.torrents.write();
        if torrents.contains_key(&info_hash) {
            torrent.shutdown();
            return Err(SwarmError::Duplicate(info_hash));
        }
        torrents.insert(info_hash, torrent.clone());
        Ok(TorrentHandle { torrent, swarm: self.inner.clone() })
    }

    /// Removes a torrent and closes its connections.
    pub fn remove_torrent(&self, info_hash: &InfoHash) {
        if let Some(t) = self.inner.torrents.write().remove(info_hash) {
            t.shutdown();
        }
    }
}

impl Drop for Swarm {
    fn drop(&mut self) {
        self.inner.stop.store(true, Ordering::Relaxed);
        for t in self.inner.torrents.write().drain() {
            t.1.shutdown();
        }
        // Runtime threads end when the process does; the choker notices `stop`.
        self.threads.lock().clear();
    }
}

/// One torrent in a [`Swarm`].
#[derive(Clone)]
pub struct TorrentHandle {
    torrent: Arc<Torrent>,
    swarm: Arc<SwarmInner>,
}

impl TorrentHandle {
    /// Dials a peer.
    pub fn connect(&self, addr: SocketAddr) {
        self.swarm.dial(self.torrent.clone(), addr);
    }

    /// The torrent's info-hash.
    pub fn info_hash(&self) -> InfoHash {
        self.torrent.info_hash
    }

    /// The shared piece map.
    pub fn piece_map(&self) -> &Arc<PieceMap> {
        &self.torrent.map
    }

    /// Whether every piece is verified.
    pub fn is_complete(&self) -> bool {
        self.torrent.map.is_complete()
    }

    /// A snapshot of the torrent's numbers.
    pub fn stats(&self) -> TorrentStats {
        let t = &self.torrent;
        TorrentStats {
            pieces_verified: t.map.verified_count(),
            piece_count: t.map.piece_count(),
            bytes_verified: t.map.verified_bytes(),
            total_length: t.layout.total_length(),
            downloaded: t.counters.downloaded.load(Ordering::Relaxed),
            uploaded: t.counters.uploaded.load(Ordering::Relaxed),
            peers: t.peer_count(),
            peers_seen: t.counters.peers_seen.load(Ordering::Relaxed),
            hash_failures: t.counters.hash_failures.load(Ordering::Relaxed),
            store_error: t.store_error.lock().clone(),
            mixed_pieces: t.counters.mixed_pieces.load(Ordering::Relaxed),
            redundant_bytes: t.counters.redundant.load(Ordering::Relaxed),
            cold_reads: t.counters.cold_reads.load(Ordering::Relaxed),
            cold_read_bytes: t.counters.cold_read_bytes.load(Ordering::Relaxed),
        }
    }

    /// Adds a whole piece obtained outside BitTorrent (origin pull, HTTP Range): it is checked
    /// against its SHA-1 and, when it supplies every block, written, marked verified and
    /// announced (HAVE) to every peer at once (see [`ImportOutcome`] for the other cases).
    pub fn import_piece(
        &self,
        piece: crate::types::PieceIndex,
        data: &[u8],
    ) -> Result<ImportOutcome, ImportError> {
        self.torrent.import_piece(piece, data)
    }

    /// A whole piece the caller hashed and already wrote to this torrent's files (a relay's
    /// URL-only pull): publishes `hash` and marks it verified without hashing or writing again.
    pub fn adopt_piece(
        &self,
        piece: crate::types::PieceIndex,
        data: &[u8],
        hash: [u8; 20],
    ) -> Result<ImportOutcome, ImportError> {
        self.torrent.adopt_piece(piece, data, hash)
    }

    /// Publishes the hash of a withheld piece, so peers and HTTP may fetch it from now on;
    /// `Ok(true)` if it was new, an error if it disagrees with the one already known.
    pub fn publish_hash(&self, piece: crate::types::PieceIndex, hash: [u8; 20]) -> Result<bool, ImportError> {
        self.torrent.publish_hash(piece, hash)
    }

    /// Whether the hash of `piece` is known.
    pub fn hash_known(&self, piece: crate::types::PieceIndex) -> bool {
        self.torrent.hash_known(piece)
    }

    /// The piece hashes as far as known.
    pub fn piece_hashes(&self) -> &PieceHashes {
        self.torrent.piece_hashes()
    }

    /// Claims a piece for an HTTP fetch, so no peer requests it (see [`HttpClaim`]).
    pub fn claim_for_http(&self, piece: crate::types::PieceIndex, overlap: bool) -> HttpClaim {
        self.torrent.claim_for_http(piece, overlap)
    }

    /// Gives back what an HTTP fetch claimed of `piece` and did not deliver.
    pub fn release_http(&self, piece: crate::types::PieceIndex) {
        self.torrent.release_http(piece)
    }

    /// The torrent's piece store (the relay sends verified ranges from its files).
    pub fn store(&self) -> &crate::store::Store {
        &self.torrent.store
    }

    /// Reads bytes of verified data back (HTTP Range serving); an error if the store fails.
    pub fn read(&self, offset: u64, len: usize) -> Result<bytes::Bytes, crate::store::StoreError> {
        self.torrent.store.read_at(offset, len)
    }

    /// Stops the torrent from downloading any piece from peers (a relay gets its bytes from the
    /// origin through [`TorrentHandle::import_piece`] only): every piece's priority becomes Skip.
    pub fn disable_peer_downloads(&self) {
        for i in 0..self.torrent.map.piece_count() {
            // Indices below piece_count are always valid.
            let _ = self.torrent.picker.set_priority(i, crate::picker::Priority::Skip);
        }
    }

    /// Bans a peer address for this torrent: its connections close, and no connection from
    /// or to `ip` is accepted any more (as after repeated hash failures). For a peer known to
    /// serve other data than ours, e.g. a relay whose piece hashes disagree with another's.
    pub fn ban_ip(&self, ip: std::net::IpAddr) {
        let mut banned = self.torrent.banned.lock();
        if !banned.contains(&ip) {
            banned.push(ip);
        }
        drop(banned);
        for p in self.torrent.peers.lock().iter().filter(|p| p.addr.ip() == ip) {
            p.close.store(true, Ordering::Relaxed);
        }
    }

    /// The torrent's layout.
    pub fn layout(&self) -> &Layout {
        &self.torrent.layout
    }

    /// Flushes the store per its fsync policy.
    pub fn sync(&self) -> Result<(), crate::store::StoreError> {
        self.torrent.store.sync_all()
    }
}

/// Re-ranks every torrent's peers each `interval` and records who should be unchoked.
fn run_choker(swarm: Arc<SwarmInner>, config: ChokerConfig, interval: Duration) {
    let mut round = 0usize;
    while !swarm.stop.load(Ordering::Relaxed) {
        let step = Duration::from_millis(200);
        let mut waited = Duration::ZERO;
        while waited < interval && !swarm.stop.load(Ordering::Relaxed) {
            std::thread::sleep(step);
            waited += step;
        }
        round += 1;
        let torrents: Vec<Arc<Torrent>> = swarm.torrents.read().values().cloned().collect();
        for t in torrents {
            let peers = t.peers.lock().clone();
            let stats: Vec<PeerStat> = peers
                .iter()
                .map(|p| PeerStat {
                    interested: p.interested.load(Ordering::Relaxed),
                    download_rate: p.down_rate.load(Ordering::Relaxed) as f64,
                    upload_rate: p.up_rate.load(Ordering::Relaxed) as f64,
                    unchoked: p.unchoked.load(Ordering::Relaxed),
                    is_seed: p.is_seed.load(Ordering::Relaxed),
                    fleet: p.fleet.load(Ordering::Relaxed),
                })
                .collect();
            let cfg = ChokerConfig { slots: t.upload_slots, ..config };
            // The optimistic slot moves every third round (30 s with the default interval).
            let decision = choker::decide(&stats, t.map.is_complete(), cfg, round / 3);
            // Fleet peers take no slot: only standard peers count against `upload_slots`.
            let mut unchoked = 0;
            for ((p, up), stat) in peers.iter().zip(decision).zip(&stats) {
                p.want_unchoke.store(up, Ordering::Relaxed);
                p.unchoked.store(up, Ordering::Relaxed);
                unchoked += usize::from(up && !stat.fleet);
            }
            t.unchoked.store(unchoked, Ordering::Relaxed);
        }
    }
}
