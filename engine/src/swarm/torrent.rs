//! One torrent's shared state: piece map, picker, store, verifier, partial pieces, the peer
//! registry, and the event channel its connections listen on.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::broadcast;

use super::{AddTorrent, SwarmError};
use crate::hash::{Verdict, Verifier, VerifierConfig};
use crate::layout::Layout;
use crate::peer::SessionConfig;
use crate::picker::Picker;
use crate::piece_map::{PeerSlot, PieceMap};
use crate::ratelimit::RateChain;
use crate::store::Store;
use crate::types::{BlockRef, InfoHash, PieceIndex};

/// The slot that pieces from outside BitTorrent (origin pulls, HTTP) are recorded under.
pub(crate) const IMPORT_SLOT: PeerSlot = PeerSlot(u16::MAX);

/// A peer that sent this many pieces failing their hash is banned.
const BAN_AFTER_HASH_FAILURES: u32 = 3;

/// Something every connection of a torrent must hear about.
#[derive(Clone, Debug)]
pub(crate) enum TorrentEvent {
    /// A piece passed its hash: send HAVE.
    Verified(PieceIndex),
    /// A piece failed its hash and is missing again.
    Failed(PieceIndex),
    /// Endgame: these slots should cancel their request for `block`.
    Cancel(BlockRef, Arc<[PeerSlot]>),
}

/// What a connection shares with the torrent (choker input and output, stats, bans).
#[derive(Debug)]
pub(crate) struct PeerShared {
    pub slot: PeerSlot,
    pub addr: SocketAddr,
    pub interested: AtomicBool,
    pub unchoked: AtomicBool,
    /// The choker's latest decision, applied by the connection on its next tick.
    pub want_unchoke: AtomicBool,
    pub is_seed: AtomicBool,
    pub down_rate: AtomicU64,
    pub up_rate: AtomicU64,
    pub hash_failures: AtomicU32,
    /// Set to make the connection close itself (banned, or the torrent is going away).
    pub close: AtomicBool,
}

impl PeerShared {
    fn new(slot: PeerSlot, addr: SocketAddr) -> Self {
        PeerShared {
            slot,
            addr,
            interested: AtomicBool::new(false),
            unchoked: AtomicBool::new(false),
            want_unchoke: AtomicBool::new(false),
            is_seed: AtomicBool::new(false),
            down_rate: AtomicU64::new(0),
            up_rate: AtomicU64::new(0),
            hash_failures: AtomicU32::new(0),
            close: AtomicBool::new(false),
        }
    }

    /// Stores a rate (bytes/s) in an atomic.
    pub fn set_rate(cell: &AtomicU64, rate: f64) {
        cell.store(rate.max(0.0) as u64, Ordering::Relaxed);
    }
}

/// Counters of one torrent, readable at any time.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub downloaded: AtomicU64,
    pub uploaded: AtomicU64,
    pub hash_failures: AtomicU64,
    pub peers_seen: AtomicU64,
}

/// Blocks of a piece received so far, with the slot that sent each (for blame).
type Partial = Vec<(u32, PeerSlot, Bytes)>;

/// One torrent in a swarm.
pub(crate) struct Torrent {
    pub info_hash: InfoHash,
    pub layout: Arc<Layout>,
    hashes: Vec<[u8; 20]>,
    pub map: Arc<PieceMap>,
    pub picker: Arc<Picker>,
    pub store: Arc<Store>,
    pub session: SessionConfig,
    /// The raw info dictionary, served to `ut_metadata` requests when known.
    pub info_bytes: Option<Bytes>,
    verifier: Mutex<Option<Verifier>>,
    partial: Box<[Mutex<Partial>]>,
    /// Contributors of pieces being hashed, for blame on a mismatch.
    hashing: Mutex<Vec<(PieceIndex, Vec<PeerSlot>)>>,
    pub events: broadcast::Sender<TorrentEvent>,
    free_slots: Mutex<Vec<u16>>,
    next_slot: AtomicU32,
    pub peers: Mutex<Vec<Arc<PeerShared>>>,
    pub banned: Mutex<Vec<std::net::IpAddr>>,
    pub unchoked: AtomicUsize,
    pub max_peers: usize,
    pub upload_slots: usize,
    pub counters: Counters,
    /// Upload limits (swarm, then torrent) every connection waits on before writing.
    pub up: RateChain,
    /// Download limits (swarm, then torrent) every connection waits on after reading.
    pub down: RateChain,
    pub store_error: Mutex<Option<String>>,
    /// Super-seeding: how many peers each piece was revealed to (spreads the reveals).
    pub reveals: Box<[AtomicU32]>,
}

impl std::fmt::Debug for Torrent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Torrent").field("info_hash", &self.info_hash).finish_non_exhaustive()
    }
}

/// What [`Torrent::import_piece`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportOutcome {
    /// Written, verified and announced.
    Imported,
    /// It was verified already; nothing changed.
    AlreadyVerified,
    /// The bytes do not match the piece hash; nothing was written.
    HashMismatch,
    /// Peers are downloading blocks of it right now; written, left for them to finish.
    Busy,
}

impl Torrent {
    /// Builds the shared state and starts the torrent's verifier threads. `up` and `down` are
    /// the rate limits (swarm, then torrent) its connections wait on.
    pub fn new(parts: AddTorrent, up: RateChain, down: RateChain) -> Result<Arc<Torrent>, SwarmError> {
        let layout = Arc::new(parts.layout);
        if parts.piece_hashes.len() != layout.piece_count() as usize {
            return Err(SwarmError::Invalid("piece hash count does not match the layout"));
        }
        let map = Arc::new(match &parts.verified {
            Some(bits) => PieceMap::with_verified(&layout, bits.view()).map_err(SwarmError::PieceMap)?,
            None => PieceMap::new(&layout),
        });
        let picker = Arc::new(Picker::new(map.clone()));
        let (events, _) = broadcast::channel(4096);
        let torrent = Arc::new(Torrent {
            info_hash: parts.info_hash,
            partial: (0..layout.piece_count()).map(|_| Mutex::new(Vec::new())).collect(),
            reveals: (0..layout.piece_count()).map(|_| AtomicU32::new(0)).collect(),
            layout,
            hashes: parts.piece_hashes,
            map,
            picker,
            store: Arc::new(parts.store),
            session: parts.session,
            info_bytes: parts.info_bytes,
            verifier: Mutex::new(None),
            hashing: Mutex::new(Vec::new()),
            events,
            free_slots: Mutex::new(Vec::new()),
            next_slot: AtomicU32::new(0),
            peers: Mutex::new(Vec::new()),
            banned: Mutex::new(Vec::new()),
            unchoked: AtomicUsize::new(0),
            max_peers: parts.max_peers.min(u16::MAX as usize),
            upload_slots: parts.upload_slots,
            counters: Counters::default(),
            up,
            down,
            store_error: Mutex::new(None),
        });
        let weak: Weak<Torrent> = Arc::downgrade(&torrent);
        let verifier =
            Verifier::with_callback(VerifierConfig { threads: parts.hash_threads, queue: 64 }, move |v| {
                if let Some(t) = weak.upgrade() {
                    t.on_verdict(v);
                }
            })
            .map_err(SwarmError::Io)?;
        *torrent.verifier.lock() = Some(verifier);
        Ok(torrent)
    }

    /// Registers a new connection: a free slot, or `None` when the torrent is full, the
    /// address is banned, or a connection with this exact address exists (a second dial of the
    /// same peer, e.g. given by the user and by a tracker).
    pub fn register_peer(&self, addr: SocketAddr) -> Option<Arc<PeerShared>> {
        if self.banned.lock().contains(&addr.ip()) {
            return None;
        }
        let mut peers = self.peers.lock();
        if peers.len() >= self.max_peers || peers.iter().any(|p| p.addr == addr) {
            return None;
        }
        let slot = match self.free_slots.lock().pop() {
            Some(s) => s,
            None => {
                let s = self.next_slot.fetch_add(1, Ordering::Relaxed);
                u16::try_from(s).ok().filter(|&s| s != IMPORT_SLOT.0)?
            }
        };
        let shared = Arc::new(PeerShared::new(PeerSlot(slot), addr));
        peers.push(shared.clone());
        self.counters.peers_seen.fetch_add(1, Ordering::Relaxed);
        Some(shared)
    }

    /// Forgets a closed connection (its session must already be dropped, releasing its claims).
    pub fn unregister_peer(&self, shared: &PeerShared) {
        self.peers.lock().retain(|p| p.slot != shared.slot);
        if shared.unchoked.swap(false, Ordering::Relaxed) {
            self.unchoked.fetch_sub(1, Ordering::Relaxed);
        }
        self.free_slots.lock().push(shared.slot.0);
    }

    /// Number of live connections.
    pub fn peer_count(&self) -> usize {
        self.peers.lock().len()
    }

    /// Takes an upload slot for a newly interested peer if one is free.
    pub fn try_unchoke_slot(&self) -> bool {
        self.unchoked
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < self.upload_slots).then_some(n + 1))
            .is_ok()
    }

    /// A received block, kept until its piece is complete; the delivery that completes the piece
    /// writes it with one vectored write and submits it to the verifier. Unverified bytes are
    /// on disk only briefly and never served: serving reads only verified pieces.
    pub fn on_block(&self, from: PeerSlot, block: BlockRef, data: Bytes) {
        self.counters.downloaded.fetch_add(data.len() as u64, Ordering::Relaxed);
        let complete = {
            let mut part = self.partial[block.piece.get()].lock();
            part.push((block.offset, from, data));
            if part.len() as u32 == self.map.block_count(block.piece) {
                Some(std::mem::take(&mut *part))
            } else {
                None
            }
        };
        let Some(mut blocks) = complete else { return };
        blocks.sort_unstable_by_key(|b| b.0);
        let contributors: Vec<PeerSlot> = blocks.iter().map(|b| b.1).collect();
        let data: Vec<Bytes> = blocks.into_iter().map(|b| b.2).collect();
        if let Err(e) = self.store.write_piece(block.piece, &data) {
            tracing::error!(info_hash = %self.info_hash, "store write failed: {e}");
            *self.store_error.lock() = Some(e.to_string());
            return;
        }
        self.hashing.lock().push((block.piece, contributors));
        if let Err(e) = self.map.begin_verify(block.piece) {
            tracing::error!("piece {} cannot be verified: {e}", block.piece.0);
            return;
        }
        let expected = self.hashes[block.piece.get()];
        if let Some(v) = self.verifier.lock().as_ref() {
            if let Err(e) = v.submit(block.piece, data, expected) {
                tracing::error!("verifier stopped: {e}");
            }
        }
    }

    fn on_verdict(&self, verdict: Verdict) {
        let piece = verdict.piece();
        let contributors = {
            let mut h = self.hashing.lock();
            h.iter().position(|(p, _)| *p == piece).map(|i| h.swap_remove(i).1).unwrap_or_default()
        };
        match verdict {
            Verdict::Verified(_) => {
                if let Err(e) = self.map.mark_verified(piece) {
                    tracing::error!("mark verified {}: {e}", piece.0);
                    return;
                }
                if let Err(e) = self.store.piece_verified(piece) {
                    tracing::warn!("sync of piece {} failed: {e}", piece.0);
                }
                let _ = self.events.send(TorrentEvent::Verified(piece));
            }
            Verdict::Mismatch(_) => {
                self.counters.hash_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(info_hash = %self.info_hash, "piece {} failed its hash check", piece.0);
                if let Err(e) = self.map.mark_failed(piece) {
                    tracing::error!("mark failed {}: {e}", piece.0);
                }
                self.blame(&contributors);
                let _ = self.events.send(TorrentEvent::Failed(piece));
            }
        }
    }

    /// Counts a hash failure against every peer that sent a block of the piece; bans repeat
    /// offenders (their connection closes and the address is refused from then on).
    fn blame(&self, contributors: &[PeerSlot]) {
        let peers = self.peers.lock();
        for p in peers.iter().filter(|p| contributors.contains(&p.slot)) {
            if p.hash_failures.fetch_add(1, Ordering::Relaxed) + 1 >= BAN_AFTER_HASH_FAILURES {
                tracing::warn!(peer = %p.addr, "banned after repeated hash failures");
                p.close.store(true, Ordering::Relaxed);
                self.banned.lock().push(p.addr.ip());
            }
        }
    }

    /// A whole piece obtained outside BitTorrent: checked against its hash, written, marked
    /// verified and announced to every peer.
    pub fn import_piece(&self, piece: PieceIndex, data: &[u8]) -> Result<ImportOutcome, SwarmError> {
        let piece = self.map.piece(piece.0).map_err(SwarmError::PieceMap)?;
        if data.len() != self.map.piece_size(piece) as usize {
            return Err(SwarmError::Invalid("imported piece has the wrong length"));
        }
        if self.map.verified().has(piece) {
            return Ok(ImportOutcome::AlreadyVerified);
        }
        if crate::hash::sha1(data) != self.hashes[piece.get()] {
            return Ok(ImportOutcome::HashMismatch);
        }
        self.store.write_at(self.layout.piece_offset(piece), data).map_err(SwarmError::Store)?;
        let mut cancels = Vec::new();
        while let Some(block) = self.map.claim_block(piece, IMPORT_SLOT) {
            self.map.receive_block(block, IMPORT_SLOT, &mut cancels).map_err(SwarmError::PieceMap)?;
        }
        if self.map.piece_state(piece) != crate::piece_map::PieceState::Complete {
            // Peers hold some blocks of it; they will deliver them.
            return Ok(ImportOutcome::Busy);
        }
        // Blocks of this piece kept from peers are superseded.
        self.partial[piece.get()].lock().clear();
        self.map.begin_verify(piece).map_err(SwarmError::PieceMap)?;
        self.map.mark_verified(piece).map_err(SwarmError::PieceMap)?;
        if let Err(e) = self.store.piece_verified(piece) {
            tracing::warn!("sync of piece {} failed: {e}", piece.0);
        }
        let _ = self.events.send(TorrentEvent::Verified(piece));
        Ok(ImportOutcome::Imported)
    }

    /// Reads a whole verified piece for upload (callers slice blocks out of it).
    pub fn read_piece(&self, piece: PieceIndex) -> Option<Bytes> {
        match self.store.read_piece(piece) {
            Ok(b) => Some(b),
            Err(e) => {
                tracing::warn!("read for upload failed: {e}");
                None
            }
        }
    }

    /// Stops the verifier and asks every connection to close.
    pub fn shutdown(&self) {
        for p in self.peers.lock().iter() {
            p.close.store(true, Ordering::Relaxed);
        }
        drop(self.verifier.lock().take());
    }
}
