//! One torrent's shared state: piece map, picker, store, verifier, partial pieces, the peer
//! registry, and the event channel its connections listen on.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::broadcast;

use super::cold::ColdReads;
use super::{AddTorrent, SwarmError};
use crate::hash::{HashConflict, PieceHashes, Verdict, Verifier, VerifierConfig};
use crate::layout::Layout;
use crate::peer::{first_not_out, SessionConfig, SuperSeeding};
use crate::picker::Picker;
use crate::piece_map::{
    PeerSlot, PieceMap, PieceMapError, PieceState, Receipt, FIRST_RESERVED_SLOT, IMPORT_SLOT,
};
use crate::ratelimit::RateChain;
use crate::store::Store;
use crate::types::{BlockRef, InfoHash, PieceIndex};

/// A peer that sent this many pieces failing their hash is banned.
const BAN_AFTER_HASH_FAILURES: u32 = 3;

/// Something every connection of a torrent must hear about.
#[derive(Clone, Debug)]
pub(crate) enum TorrentEvent {
    /// A piece passed its hash: send HAVE.
    Verified(PieceIndex),
    /// A piece failed its hash and is missing again.
    Failed(PieceIndex),
    /// A withheld piece's hash was published: peers that have it may be asked for it now.
    Available(PieceIndex),
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
    /// The peer proved it belongs to our fleet (served without tit-for-tat).
    pub fleet: AtomicBool,
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
            fleet: AtomicBool::new(false),
            down_rate: AtomicU64::new(0),
            up_rate: AtomicU64::new(0),
            hash_failures: AtomicU32::new(0),
            close: AtomicBool::new(false),
        }
    }

    /// Stores a rate (bytes/s) in an atomic.
    pub(crate) fn set_rate(cell: &AtomicU64, rate: f64) {
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
    /// Pieces made of blocks from both peers and an HTTP import.
    pub mixed_pieces: AtomicU64,
    /// Payload bytes received from peers and dropped (unrequested, cancelled, or a block
    /// another peer delivered first).
    pub redundant: AtomicU64,
    /// Pieces read for upload off the runtime because they were not in the page cache.
    pub cold_reads: AtomicU64,
    /// Bytes of those pieces.
    pub cold_read_bytes: AtomicU64,
}

/// Blocks of a piece received so far, with the slot that sent each (for blame).
type Partial = Vec<(u32, PeerSlot, Bytes)>;

/// One torrent in a swarm.
pub(crate) struct Torrent {
    pub info_hash: InfoHash,
    pub layout: Arc<Layout>,
    hashes: PieceHashes,
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
    /// Automatic super-seeding has seen one copy of every piece leave us: new connections
    /// announce everything, open ones do at their next reveal (never set back).
    pub first_copy_out: AtomicBool,
    /// The bound on pieces read for upload off the runtime (cold pieces).
    pub cold: ColdReads,
    /// Automatic super-seeding: every piece below this one is out (see [`first_not_out`]).
    first_copy_cursor: AtomicU32,
}

impl std::fmt::Debug for Torrent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Torrent").field("info_hash", &self.info_hash).finish_non_exhaustive()
    }
}

/// What [`Torrent::import_piece`] did with a whole piece from outside BitTorrent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportOutcome {
    /// Written, verified and announced (HAVE) — by this import.
    Verified,
    /// It was verified already, or peers delivered every block of it first; nothing changed.
    AlreadyHad,
    /// The bytes do not match the piece hash; nothing was written.
    HashMismatch,
    /// Peers delivered some blocks of it first: the rest were taken from the import and the
    /// piece is hashed as a whole when the peers' last blocks are in (their blocks decide).
    Busy,
}

/// Why [`Torrent::import_piece`] could not take a piece.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The piece index is not one of the torrent's.
    #[error("piece map: {0}")]
    PieceMap(#[from] PieceMapError),
    /// The bytes are not as long as the piece.
    #[error("piece {piece} is {want} bytes, got {got}")]
    WrongLength {
        /// The piece.
        piece: u32,
        /// Bytes given.
        got: usize,
        /// Bytes in the piece.
        want: u32,
    },
    /// The store refused the write (e.g. a full disk).
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    /// The piece's hash is not published yet, so it cannot be checked.
    #[error("piece {0} has no published hash yet")]
    HashUnknown(u32),
    /// The hash given for the piece disagrees with the one already published.
    #[error("{0}")]
    HashConflict(#[from] HashConflict),
}

/// What [`Torrent::claim_for_http`] got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpClaim {
    /// No peer had asked for any block: every block is now HTTP's, no peer will request it.
    Claimed,
    /// Peers are downloading blocks of it (endgame overlap): HTTP may fetch it too; whichever
    /// finishes first wins and the other is cancelled.
    Overlap,
    /// Verified, being hashed, or (without overlap) in flight over BitTorrent.
    Unavailable,
}

impl Torrent {
    /// The super-seeding mode a connection opened now runs in: the torrent's, except that an
    /// automatic one whose first copy is out is a plain seed, and a one-piece torrent is never
    /// super-seeded (its only reveal would make us a seed to a peer not yet interested, which
    /// libtorrent drops; see [`crate::peer::SuperSeed`]).
    pub(crate) fn super_seeding_for_new_peer(&self) -> SuperSeeding {
        match self.session.super_seed {
            _ if self.map.piece_count() < 2 => SuperSeeding::Off,
            SuperSeeding::Auto if self.first_copy_out.load(Ordering::Relaxed) => SuperSeeding::Off,
            mode => mode,
        }
    }

    /// Whether automatic super-seeding may stop (see [`first_not_out`]): we hold every piece
    /// and one copy of each is out. Sticky once true; each piece is looked at about once.
    pub(crate) fn check_first_copy_out(&self) -> bool {
        if self.first_copy_out.load(Ordering::Relaxed) {
            return true;
        }
        let n = self.map.piece_count();
        let from = self.first_copy_cursor.load(Ordering::Relaxed);
        let at = first_not_out(from, n, |p| {
            self.map.availability(p) > 0 || self.reveals[p.0 as usize].load(Ordering::Relaxed) > 0
        });
        self.first_copy_cursor.fetch_max(at, Ordering::Relaxed);
        let out = at == n && self.map.verified_count() == n;
        if out {
            self.first_copy_out.store(true, Ordering::Relaxed);
            tracing::info!(info_hash = %self.info_hash, "automatic super-seeding ends: one copy of every piece is out");
        }
        out
    }

    /// Builds the shared state and starts the torrent's verifier threads. `up` and `down` are
    /// the rate limits (swarm, then torrent) its connections wait on.
    pub(crate) fn new(parts: AddTorrent, up: RateChain, down: RateChain) -> Result<Arc<Torrent>, SwarmError> {
        let layout = Arc::new(parts.layout);
        if parts.piece_hashes.len() != layout.piece_count() {
            return Err(SwarmError::Invalid("piece hash count does not match the layout"));
        }
        let map = Arc::new(match &parts.verified {
            Some(bits) => PieceMap::with_verified(&layout, bits.view()).map_err(SwarmError::PieceMap)?,
            None => PieceMap::new(&layout),
        });
        // Pieces whose hash is not published yet wait, so nothing unverifiable is taken.
        if !parts.piece_hashes.is_complete() {
            for p in (0..layout.piece_count()).map(PieceIndex) {
                if parts.piece_hashes.get(p).is_none() {
                    map.withhold(p).map_err(SwarmError::PieceMap)?;
                }
            }
        }
        let picker = Arc::new(Picker::new(map.clone()));
        let (events, _) = broadcast::channel(4096);
        let torrent = Arc::new(Torrent {
            info_hash: parts.info_hash,
            partial: (0..layout.piece_count()).map(|_| Mutex::new(Vec::new())).collect(),
            reveals: (0..layout.piece_count()).map(|_| AtomicU32::new(0)).collect(),
            first_copy_out: AtomicBool::new(false),
            first_copy_cursor: AtomicU32::new(0),
            cold: ColdReads::default(),
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
    pub(crate) fn register_peer(&self, addr: SocketAddr) -> Option<Arc<PeerShared>> {
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
                u16::try_from(s).ok().filter(|&s| s < FIRST_RESERVED_SLOT)?
            }
        };
        let shared = Arc::new(PeerShared::new(PeerSlot(slot), addr));
        peers.push(shared.clone());
        self.counters.peers_seen.fetch_add(1, Ordering::Relaxed);
        Some(shared)
    }

    /// Forgets a closed connection (its session must already be dropped, releasing its claims).
    pub(crate) fn unregister_peer(&self, shared: &PeerShared) {
        self.peers.lock().retain(|p| p.slot != shared.slot);
        if shared.unchoked.swap(false, Ordering::Relaxed) {
            self.unchoked.fetch_sub(1, Ordering::Relaxed);
        }
        self.free_slots.lock().push(shared.slot.0);
    }

    /// Number of live connections.
    pub(crate) fn peer_count(&self) -> usize {
        self.peers.lock().len()
    }

    /// Takes an upload slot for a newly interested peer if one is free.
    pub(crate) fn try_unchoke_slot(&self) -> bool {
        self.unchoked
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < self.upload_slots).then_some(n + 1))
            .is_ok()
    }

    /// A received block, kept until its piece is complete; the delivery that completes the piece
    /// writes it with one vectored write and submits it to the verifier. Unverified bytes are
    /// on disk only briefly and never served: serving reads only verified pieces.
    pub(crate) fn on_block(&self, from: PeerSlot, block: BlockRef, data: Bytes) {
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
        if let Some(blocks) = complete {
            self.complete_piece(block.piece, blocks);
        }
    }

    /// Writes a piece whose every block is in `blocks` (from peers, or peers and HTTP) with one
    /// vectored write and submits it to the verifier.
    fn complete_piece(&self, piece: PieceIndex, mut blocks: Partial) {
        blocks.sort_unstable_by_key(|b| b.0);
        let contributors: Vec<PeerSlot> = blocks.iter().map(|b| b.1).filter(|s| *s != IMPORT_SLOT).collect();
        let data: Vec<Bytes> = blocks.into_iter().map(|b| b.2).collect();
        if let Err(e) = self.store.write_piece(piece, &data) {
            tracing::error!(info_hash = %self.info_hash, "store write failed: {e}");
            *self.store_error.lock() = Some(e.to_string());
            return;
        }
        self.hashing.lock().push((piece, contributors));
        if let Err(e) = self.map.begin_verify(piece) {
            tracing::error!("piece {} cannot be verified: {e}", piece.0);
            return;
        }
        let Some(expected) = self.hashes.get(piece) else {
            // Never: a piece without a hash is withheld, so no block of it is received.
            tracing::error!("piece {} completed before its hash was known", piece.0);
            let _ = self.map.mark_failed(piece);
            return;
        };
        if let Some(v) = self.verifier.lock().as_ref() {
            if let Err(e) = v.submit(piece, data, expected) {
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

    /// Claims `piece` for an HTTP fetch so no peer requests it: every free block is taken for
    /// the import slot. A piece peers were asked for but sent nothing of may be fetched too
    /// (their requests are superseded when it lands); with `overlap`, any piece peers are
    /// downloading (endgame). Never a piece another HTTP fetch holds. Give unfetched claims back with [`Torrent::release_http`].
    pub(crate) fn claim_for_http(&self, piece: PieceIndex, overlap: bool) -> HttpClaim {
        let Ok(piece) = self.map.piece(piece.0) else { return HttpClaim::Unavailable };
        if self.map.is_withheld(piece) {
            return HttpClaim::Unavailable;
        }
        let claim = match self.map.piece_state(piece) {
            PieceState::Missing => HttpClaim::Claimed,
            PieceState::Downloading if self.map.is_held_by(piece, IMPORT_SLOT) => {
                return HttpClaim::Unavailable
            }
            // Asked of peers, nothing arrived yet (a slow peer's deep queue), or endgame.
            PieceState::Downloading if overlap || self.map.received_blocks(piece) == 0 => HttpClaim::Overlap,
            _ => return HttpClaim::Unavailable,
        };
        while self.map.claim_block(piece, IMPORT_SLOT).is_some() {}
        claim
    }

    /// Gives back the blocks of `piece` HTTP claimed and did not deliver (a failed fetch).
    pub(crate) fn release_http(&self, piece: PieceIndex) {
        let Ok(piece) = self.map.piece(piece.0) else { return };
        for i in 0..self.map.block_count(piece) {
            let _ = self.map.release_block(self.map.block_ref(piece, i), IMPORT_SLOT);
        }
    }

    /// A whole piece obtained outside BitTorrent (origin pull, HTTP Range): checked against its
    /// hash first, then every block nobody delivered yet is taken from it (superseding peers'
    /// requests, which are cancelled). If it supplied every block it is written, marked verified
    /// and announced at once; if peers delivered some blocks first, its blocks join theirs and
    /// the piece is hashed as a whole when the last one is in (so a BitTorrent/HTTP race never
    /// leaves a piece complete but unverified).
    pub(crate) fn import_piece(&self, piece: PieceIndex, data: &[u8]) -> Result<ImportOutcome, ImportError> {
        let piece = self.checked_piece(piece, data)?;
        if self.map.verified().has(piece) {
            return Ok(ImportOutcome::AlreadyHad);
        }
        let expected = self.hashes.get(piece).ok_or(ImportError::HashUnknown(piece.0))?;
        if crate::hash::sha1(data) != expected {
            return Ok(ImportOutcome::HashMismatch);
        }
        self.take_piece(piece, data, false)
    }

    /// A whole piece whose producer hashed it and wrote it to this torrent's files itself (a
    /// relay's URL-only pull: the relay is where the hashes come from): `hash` is published
    /// and the piece is marked verified and announced without hashing or writing it again.
    pub(crate) fn adopt_piece(
        &self,
        piece: PieceIndex,
        data: &[u8],
        hash: [u8; 20],
    ) -> Result<ImportOutcome, ImportError> {
        let piece = self.checked_piece(piece, data)?;
        self.publish_hash(piece, hash)?;
        if self.map.verified().has(piece) {
            return Ok(ImportOutcome::AlreadyHad);
        }
        self.take_piece(piece, data, true)
    }

    /// Publishes the hash of a piece that was withheld without one: from now on peers and
    /// HTTP may fetch it. `Ok(true)` if it was new.
    pub(crate) fn publish_hash(&self, piece: PieceIndex, hash: [u8; 20]) -> Result<bool, ImportError> {
        let new = self.hashes.publish(piece, hash)?;
        if new {
            self.map.release_withheld(piece)?;
            // Every session that can fetch it asks at once, not only the one busiest with
            // traffic (an idle peer would otherwise wait for its next timer).
            let _ = self.events.send(TorrentEvent::Available(piece));
        }
        Ok(new)
    }

    /// Whether the hash of `piece` is known.
    pub(crate) fn hash_known(&self, piece: PieceIndex) -> bool {
        self.hashes.get(piece).is_some()
    }

    /// The piece hashes as far as known.
    pub(crate) fn piece_hashes(&self) -> &PieceHashes {
        &self.hashes
    }

    fn checked_piece(&self, piece: PieceIndex, data: &[u8]) -> Result<PieceIndex, ImportError> {
        let piece = self.map.piece(piece.0)?;
        let want = self.map.piece_size(piece);
        if data.len() != want as usize {
            return Err(ImportError::WrongLength { piece: piece.0, got: data.len(), want });
        }
        Ok(piece)
    }

    /// Takes every block of a piece whose bytes matched its hash that nobody delivered yet
    /// (see [`Torrent::import_piece`]); `written`: the bytes are in the store already.
    fn take_piece(
        &self,
        piece: PieceIndex,
        data: &[u8],
        written: bool,
    ) -> Result<ImportOutcome, ImportError> {
        let n = self.map.block_count(piece);
        let mut cancels = Vec::new();
        let mut ours = Vec::with_capacity(n as usize);
        // Under the piece's partial lock: a peer delivering the piece's last block waits and
        // then finds our blocks beside its own.
        let mut part = self.partial[piece.get()].lock();
        for i in 0..n {
            let block = self.map.block_ref(piece, i);
            cancels.clear();
            let receipt = self.map.receive_block_superseding(block, IMPORT_SLOT, &mut cancels)?;
            if !cancels.is_empty() {
                let _ = self.events.send(TorrentEvent::Cancel(block, cancels.as_slice().into()));
            }
            match receipt {
                Receipt::Accepted | Receipt::PieceComplete => ours.push(block),
                Receipt::Duplicate | Receipt::Unrequested => {}
            }
        }
        if ours.is_empty() {
            return Ok(match self.map.piece_state(piece) {
                PieceState::Verified => ImportOutcome::AlreadyHad,
                _ => ImportOutcome::Busy,
            });
        }
        if ours.len() as u32 == n {
            // Every block is ours and the bytes matched the hash: no second hashing.
            part.clear();
            drop(part);
            if !written {
                self.store.write_at(self.layout.piece_offset(piece), data)?;
            }
            self.map.begin_verify(piece)?;
            self.map.mark_verified(piece)?;
            if let Err(e) = self.store.piece_verified(piece) {
                tracing::warn!("sync of piece {} failed: {e}", piece.0);
            }
            let _ = self.events.send(TorrentEvent::Verified(piece));
            return Ok(ImportOutcome::Verified);
        }
        self.counters.mixed_pieces.fetch_add(1, Ordering::Relaxed);
        for block in &ours {
            let at = block.offset as usize;
            part.push((
                block.offset,
                IMPORT_SLOT,
                Bytes::copy_from_slice(&data[at..at + block.length as usize]),
            ));
        }
        let whole = part.len() as u32 == n;
        let blocks = whole.then(|| std::mem::take(&mut *part));
        drop(part);
        if let Some(blocks) = blocks {
            self.complete_piece(piece, blocks);
        }
        Ok(ImportOutcome::Busy)
    }

    /// Reads a whole verified piece for upload (callers slice blocks out of it).
    pub(crate) fn read_piece(&self, piece: PieceIndex) -> Option<Bytes> {
        match self.store.read_piece(piece) {
            Ok(b) => Some(b),
            Err(e) => {
                tracing::warn!("read for upload failed: {e}");
                None
            }
        }
    }

    /// Stops the verifier and asks every connection to close.
    pub(crate) fn shutdown(&self) {
        for p in self.peers.lock().iter() {
            p.close.store(true, Ordering::Relaxed);
        }
        drop(self.verifier.lock().take());
    }
}
