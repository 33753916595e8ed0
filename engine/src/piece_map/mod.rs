//! The shared piece state of one torrent: which pieces we have and have verified, how many peers
//! have each piece, which blocks are requested by whom or received.
//!
//! One [`PieceMap`] per torrent lives in an `Arc` and is used by every peer connection on every
//! runtime thread and by the HTTP Range gap-filler. The block path (claim, receive, release) and
//! the verification path are lock-free: one CAS per block on an `AtomicU32` block word, plus a few
//! counter updates. Locks are taken only for availability changes (HAVE/BITFIELD, once per
//! message), once when a piece completes or fails its hash (to update the rarity order), and in
//! endgame for the small table of duplicate requests. The rules it keeps are written in
//! `INVARIANTS.md` beside this file (I1–I12) and checked by [`PieceMap::check_invariants`].
//!
//! # Call sequence (one peer session; `slot` is the session's [`PeerSlot`])
//! ```
//! use std::sync::Arc;
//! use floodgate_engine::layout::Layout;
//! use floodgate_engine::piece_map::{Bitfield, PeerSlot, PieceMap, Receipt};
//! use floodgate_engine::picker::Picker;
//!
//! let layout = Layout::single("f", 3 * 32 * 1024, 32 * 1024).unwrap();
//! let map = Arc::new(PieceMap::new(&layout));
//! let picker = Picker::new(map.clone());
//! let slot = PeerSlot(0);
//!
//! // BITFIELD from the peer (then `peer.set(i)` + `map.peer_has(i)` for each HAVE).
//! let peer = Bitfield::full(map.piece_count());
//! map.add_peer(peer.view()).unwrap();
//!
//! let mut requests = Vec::new();
//! let mut cancels = Vec::new();
//! while !map.is_complete() {
//!     // Unchoked: fill the request queue (claims the blocks for `slot`), send REQUESTs.
//!     requests.clear();
//!     picker.pick(peer.view(), slot, 8, &mut requests);
//!     for block in requests.drain(..) {
//!         // PIECE message arrives: write the payload, then record it.
//!         cancels.clear();
//!         match map.receive_block(block, slot, &mut cancels).unwrap() {
//!             Receipt::PieceComplete => {
//!                 map.begin_verify(block.piece).unwrap(); // the hasher takes the piece
//!                 map.mark_verified(block.piece).unwrap(); // or mark_failed on a bad hash
//!                 // send HAVE(block.piece) to every peer
//!             }
//!             Receipt::Accepted => {}
//!             Receipt::Duplicate | Receipt::Unrequested => {} // drop the payload
//!         }
//!         // send CANCEL(block) to every slot in `cancels` (endgame duplicates)
//!     }
//! }
//! // On choke / timeout: `map.release_block(block, slot)` for each outstanding request.
//! // On disconnect: release its requests, then `map.remove_peer(peer.view())`.
//! ```

mod availability;
mod bitfield;
mod check;
mod endgame;
mod partial;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, AtomicU8, Ordering};

pub use bitfield::{AtomicBitfield, Bitfield, BitfieldError, BitfieldView};

use crate::layout::Layout;
use crate::types::{BlockRef, PieceIndex, BLOCK_SIZE};
use availability::Availability;
use endgame::Extras;
use partial::PartialSet;

/// Identifies one requester (a peer connection, or the HTTP gap-filler) in the block table.
///
/// The session layer hands them out per torrent and may reuse one after the connection has
/// released all its blocks.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct PeerSlot(pub u16);

impl PeerSlot {
    fn tag(self) -> u32 {
        u32::from(self.0) + 1
    }
    fn from_tag(tag: u32) -> Self {
        PeerSlot((tag - 1) as u16)
    }
}

/// The slot that pieces from outside BitTorrent (origin pulls, HTTP) are claimed and recorded
/// under.
pub const IMPORT_SLOT: PeerSlot = PeerSlot(u16::MAX);

/// The slot that holds every block of a withheld piece (its hash is not known yet), so that no
/// peer and no HTTP fetch takes it.
pub const WITHHELD_SLOT: PeerSlot = PeerSlot(u16::MAX - 1);

/// The first slot number no peer connection gets (the ones from here on are reserved).
pub const FIRST_RESERVED_SLOT: u16 = WITHHELD_SLOT.0;

const FREE: u32 = 0;
const RECEIVED: u32 = u32::MAX;

const WANTED: u8 = 0;
const COMPLETE: u8 = 1;
const VERIFYING: u8 = 2;
const RESETTING: u8 = 3;
const VERIFIED: u8 = 4;

/// Where a piece is in its life (invariant I1).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PieceState {
    /// No block requested or received.
    Missing,
    /// Some blocks requested or received, not all received.
    Downloading,
    /// All blocks received, waiting for the hasher.
    Complete,
    /// The hasher is on it.
    Verifying,
    /// Hash checked; the piece can be served.
    Verified,
}

/// What became of a received block.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Receipt {
    /// Recorded; the piece still misses blocks.
    Accepted,
    /// Recorded, and it was the last block: hash the piece (`begin_verify`).
    PieceComplete,
    /// The block was already received (late endgame duplicate): drop the payload.
    Duplicate,
    /// This slot did not request the block: drop the payload.
    Unrequested,
}

/// Why a piece map operation was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PieceMapError {
    /// A piece index at or past the piece count (e.g. from a peer's HAVE).
    #[error("piece {index} out of range (torrent has {count})")]
    PieceOutOfRange {
        /// The index received.
        index: u32,
        /// The torrent's piece count.
        count: u32,
    },
    /// A block that is not one of the piece's 16 KiB blocks (offset or length wrong).
    #[error("invalid block {block:?}")]
    BadBlock {
        /// The block received.
        block: BlockRef,
    },
    /// A peer bitfield of the wrong size for this torrent.
    #[error("bitfield covers {got} pieces, torrent has {expected}")]
    BitfieldLength {
        /// Pieces in the bitfield.
        got: u32,
        /// Pieces in the torrent.
        expected: u32,
    },
    /// Removing a peer's piece whose availability is already zero (I11).
    #[error("availability of piece {piece:?} would go below zero")]
    AvailabilityUnderflow {
        /// The piece.
        piece: PieceIndex,
    },
    /// The piece is not in the state the operation needs (I2).
    #[error("piece {piece:?} is {state:?}, cannot {op}")]
    WrongState {
        /// The piece.
        piece: PieceIndex,
        /// Its state when refused.
        state: PieceState,
        /// The operation refused.
        op: &'static str,
    },
}

#[derive(Debug)]
struct PieceSlot {
    state: AtomicU8,
    /// Blocks not `FREE` (requested or received).
    claimed: AtomicU32,
    /// Blocks `RECEIVED`.
    received: AtomicU32,
}

/// The shared, thread-safe piece state of one torrent. See the module doc for the call sequence.
#[derive(Debug)]
pub struct PieceMap {
    piece_count: u32,
    piece_length: u32,
    total_length: u64,
    blocks_per_piece: u32,
    pieces: Box<[PieceSlot]>,
    blocks: Box<[AtomicU32]>,
    have: AtomicBitfield,
    verified: AtomicBitfield,
    partial: PartialSet,
    availability: Availability,
    extras: Extras,
    unclaimed: AtomicI64,
    verified_count: AtomicU32,
    verified_bytes: AtomicU64,
    /// Pieces withheld until their hash is known.
    withheld: AtomicBitfield,
    withheld_count: AtomicU32,
}

impl PieceMap {
    /// A map with every piece missing.
    pub fn new(layout: &Layout) -> Self {
        Self::build(layout, None)
    }

    /// A map with the pieces in `verified` already verified (resume from a checked store).
    pub fn with_verified(layout: &Layout, verified: BitfieldView<'_>) -> Result<Self, PieceMapError> {
        if verified.len() != layout.piece_count() {
            return Err(PieceMapError::BitfieldLength {
                got: verified.len(),
                expected: layout.piece_count(),
            });
        }
        Ok(Self::build(layout, Some(verified)))
    }

    fn build(layout: &Layout, done: Option<BitfieldView<'_>>) -> Self {
        let piece_count = layout.piece_count();
        let bpp = layout.piece_length().div_ceil(BLOCK_SIZE);
        let last = layout.piece_size(PieceIndex(piece_count - 1)).div_ceil(BLOCK_SIZE);
        let total_blocks = (piece_count as usize - 1) * bpp as usize + last as usize;
        let mut map = PieceMap {
            piece_count,
            piece_length: layout.piece_length(),
            total_length: layout.total_length(),
            blocks_per_piece: bpp,
            pieces: (0..piece_count)
                .map(|_| PieceSlot { state: AtomicU8::new(WANTED), claimed: 0.into(), received: 0.into() })
                .collect(),
            blocks: (0..total_blocks).map(|_| AtomicU32::new(FREE)).collect(),
            have: AtomicBitfield::new(piece_count),
            verified: AtomicBitfield::new(piece_count),
            partial: PartialSet::new(piece_count),
            availability: Availability::new(0, |_| false),
            extras: Extras::default(),
            unclaimed: AtomicI64::new(total_blocks as i64),
            verified_count: AtomicU32::new(0),
            verified_bytes: AtomicU64::new(0),
            withheld: AtomicBitfield::new(piece_count),
            withheld_count: AtomicU32::new(0),
        };
        if let Some(done) = done {
            for p in done.iter_ones() {
                let n = map.block_count(p);
                let ps = &map.pieces[p.get()];
                ps.state.store(VERIFIED, Ordering::Relaxed);
                ps.claimed.store(n, Ordering::Relaxed);
                ps.received.store(n, Ordering::Relaxed);
                for w in map.block_words(p) {
                    w.store(RECEIVED, Ordering::Relaxed);
                }
                map.have.insert(p);
                map.verified.insert(p);
                map.unclaimed.fetch_sub(i64::from(n), Ordering::Relaxed);
                map.verified_count.fetch_add(1, Ordering::Relaxed);
                map.verified_bytes.fetch_add(u64::from(map.piece_size(p)), Ordering::Relaxed);
            }
        }
        map.availability = Availability::new(piece_count, |p| !done.is_some_and(|d| d.has(PieceIndex(p))));
        map
    }

    // ---- geometry -------------------------------------------------------------------------

    /// Number of pieces.
    pub fn piece_count(&self) -> u32 {
        self.piece_count
    }

    /// Checks a piece index from outside (a peer, a request) against the piece count.
    pub fn piece(&self, index: u32) -> Result<PieceIndex, PieceMapError> {
        if index < self.piece_count {
            Ok(PieceIndex(index))
        } else {
            Err(PieceMapError::PieceOutOfRange { index, count: self.piece_count })
        }
    }

    /// Size in bytes of a checked piece (the last one may be short).
    pub fn piece_size(&self, piece: PieceIndex) -> u32 {
        let start = u64::from(piece.0) * u64::from(self.piece_length);
        (self.total_length - start).min(u64::from(self.piece_length)) as u32
    }

    /// Number of blocks of a checked piece.
    pub fn block_count(&self, piece: PieceIndex) -> u32 {
        self.piece_size(piece).div_ceil(BLOCK_SIZE)
    }

    /// Block `i` of a checked piece (`i < block_count`).
    pub fn block_ref(&self, piece: PieceIndex, i: u32) -> BlockRef {
        let offset = i * BLOCK_SIZE;
        BlockRef { piece, offset, length: (self.piece_size(piece) - offset).min(BLOCK_SIZE) }
    }

    fn first_block(&self, piece: PieceIndex) -> usize {
        piece.get() * self.blocks_per_piece as usize
    }

    fn block_words(&self, piece: PieceIndex) -> &[AtomicU32] {
        let first = self.first_block(piece);
        &self.blocks[first..first + self.block_count(piece) as usize]
    }

    /// Checks a block from outside (a PIECE message): piece in range, offset on a block
    /// boundary, exact length. Returns the global block number.
    fn check_block(&self, block: BlockRef) -> Result<usize, PieceMapError> {
        let piece = self.piece(block.piece.0)?;
        let i = block.offset / BLOCK_SIZE;
        // `block_ref` rebuilds offset and length, so this also refuses unaligned offsets.
        if i >= self.block_count(piece) || self.block_ref(piece, i) != block {
            return Err(PieceMapError::BadBlock { block });
        }
        Ok(self.first_block(piece) + i as usize)
    }

    // ---- state readers (lock-free) --------------------------------------------------------

    /// The state of a checked piece.
    pub fn piece_state(&self, piece: PieceIndex) -> PieceState {
        let ps = &self.pieces[piece.get()];
        match ps.state.load(Ordering::Acquire) {
            WANTED if ps.claimed.load(Ordering::Relaxed) > 0 => PieceState::Downloading,
            WANTED => PieceState::Missing,
            COMPLETE => PieceState::Complete,
            VERIFIED => PieceState::Verified,
            _ => PieceState::Verifying,
        }
    }

    /// Pieces whose data is all present (complete, verifying or verified) (I10).
    pub fn have(&self) -> &AtomicBitfield {
        &self.have
    }

    /// Pieces that passed their hash check: what we announce and serve (I10).
    pub fn verified(&self) -> &AtomicBitfield {
        &self.verified
    }

    /// Number of verified pieces.
    pub fn verified_count(&self) -> u32 {
        self.verified_count.load(Ordering::Acquire)
    }

    /// Bytes in verified pieces.
    pub fn verified_bytes(&self) -> u64 {
        self.verified_bytes.load(Ordering::Acquire)
    }

    /// Whether every piece is verified.
    pub fn is_complete(&self) -> bool {
        self.verified_count() == self.piece_count
    }

    /// Blocks neither requested nor received, torrent-wide.
    pub fn unclaimed_blocks(&self) -> u64 {
        self.unclaimed.load(Ordering::Acquire).max(0) as u64
    }

    /// Endgame: every missing block is requested, but the torrent is not complete (and no
    /// piece is withheld: those become free when their hashes arrive).
    pub fn in_endgame(&self) -> bool {
        self.unclaimed_blocks() == 0
            && self.withheld_count.load(Ordering::Acquire) == 0
            && !self.is_complete()
    }

    /// Withholds a wanted piece whose hash is not known yet: every free block is claimed for
    /// [`WITHHELD_SLOT`], so neither the picker nor an HTTP fetch takes it, and it does not
    /// count towards endgame. Returns whether the piece is withheld now (false for a piece
    /// that is no longer wanted, or was withheld already).
    pub fn withhold(&self, piece: PieceIndex) -> Result<bool, PieceMapError> {
        let piece = self.piece(piece.0)?;
        if self.pieces[piece.get()].state.load(Ordering::Acquire) != WANTED || !self.withheld.insert(piece) {
            return Ok(false);
        }
        self.withheld_count.fetch_add(1, Ordering::AcqRel);
        while self.claim_block(piece, WITHHELD_SLOT).is_some() {}
        Ok(true)
    }

    /// Releases a withheld piece (its hash arrived): its blocks are free for peers and HTTP.
    /// Returns whether it was withheld.
    pub fn release_withheld(&self, piece: PieceIndex) -> Result<bool, PieceMapError> {
        let piece = self.piece(piece.0)?;
        if !self.withheld.remove(piece) {
            return Ok(false);
        }
        for i in 0..self.block_count(piece) {
            self.release_block(self.block_ref(piece, i), WITHHELD_SLOT)?;
        }
        self.withheld_count.fetch_sub(1, Ordering::AcqRel);
        Ok(true)
    }

    /// Whether a checked piece is withheld (its hash is not known yet).
    pub fn is_withheld(&self, piece: PieceIndex) -> bool {
        self.withheld.has(piece)
    }

    /// How many connected peers have a checked piece.
    pub fn availability(&self, piece: PieceIndex) -> u32 {
        self.availability.get(piece)
    }

    pub(crate) fn rarity(&self) -> &Availability {
        &self.availability
    }

    pub(crate) fn partial(&self) -> &PartialSet {
        &self.partial
    }

    /// Puts `piece` in the rarity order iff it is pickable: wanted with a free block (I12).
    fn sync_listing(&self, piece: PieceIndex) {
        self.availability.sync(piece, || self.has_free_blocks(piece));
    }

    /// Blocks of a checked piece received so far.
    pub fn received_blocks(&self, piece: PieceIndex) -> u32 {
        self.pieces[piece.get()].received.load(Ordering::Acquire)
    }

    /// Whether `slot` holds a request for some block of a checked piece (e.g. an HTTP fetch
    /// has it in flight).
    pub fn is_held_by(&self, piece: PieceIndex, slot: PeerSlot) -> bool {
        self.block_words(piece).iter().any(|w| w.load(Ordering::Acquire) == slot.tag())
    }

    /// Whether a checked piece is wanted and has a block nobody has claimed (a hint under races).
    pub(crate) fn has_free_blocks(&self, piece: PieceIndex) -> bool {
        let ps = &self.pieces[piece.get()];
        ps.state.load(Ordering::Acquire) == WANTED
            && ps.claimed.load(Ordering::Relaxed) < self.block_count(piece)
    }

    // ---- availability ---------------------------------------------------------------------

    /// A connected peer announced `piece` (HAVE).
    pub fn peer_has(&self, piece: u32) -> Result<(), PieceMapError> {
        let p = self.piece(piece)?;
        self.availability.inc(p);
        Ok(())
    }

    /// A peer that had `piece` left; refuses to underflow (I11).
    pub fn peer_lost(&self, piece: u32) -> Result<(), PieceMapError> {
        let p = self.piece(piece)?;
        self.availability.dec(p)
    }

    fn check_len(&self, bits: BitfieldView<'_>) -> Result<(), PieceMapError> {
        if bits.len() != self.piece_count {
            return Err(PieceMapError::BitfieldLength { got: bits.len(), expected: self.piece_count });
        }
        Ok(())
    }

    /// A peer's whole bitfield counts (BITFIELD on connect), under one lock.
    pub fn add_peer(&self, bits: BitfieldView<'_>) -> Result<(), PieceMapError> {
        self.check_len(bits)?;
        self.availability.add_all(bits);
        Ok(())
    }

    /// A peer's whole bitfield stops counting (disconnect); all or nothing (I11).
    pub fn remove_peer(&self, bits: BitfieldView<'_>) -> Result<(), PieceMapError> {
        self.check_len(bits)?;
        self.availability.remove_all(bits)
    }

    // ---- blocks (lock-free outside endgame) -----------------------------------------------

    /// Claims one free block of `piece` for `slot` (I4); `None` if the piece is out of range,
    /// not wanted, or has no free block.
    pub fn claim_block(&self, piece: PieceIndex, slot: PeerSlot) -> Option<BlockRef> {
        let ps = self.pieces.get(piece.get())?;
        if ps.state.load(Ordering::Acquire) != WANTED {
            return None;
        }
        let n = self.block_count(piece);
        let start = ps.claimed.load(Ordering::Relaxed);
        if start >= n {
            return None;
        }
        let words = self.block_words(piece);
        (0..n).map(|k| (start + k) % n).find_map(|i| self.try_claim(&words[i as usize], piece, i, slot))
    }

    fn try_claim(&self, word: &AtomicU32, piece: PieceIndex, i: u32, slot: PeerSlot) -> Option<BlockRef> {
        if word.load(Ordering::Relaxed) != FREE
            || word.compare_exchange(FREE, slot.tag(), Ordering::AcqRel, Ordering::Relaxed).is_err()
        {
            return None;
        }
        // The partial set holds pieces with 0 < claimed < n (a hint, see `partial.rs`).
        let claimed = self.pieces[piece.get()].claimed.fetch_add(1, Ordering::AcqRel) + 1;
        if claimed == self.block_count(piece) {
            self.partial.remove(piece);
            self.sync_listing(piece);
        } else if claimed == 1 {
            self.partial.insert(piece);
        }
        self.unclaimed.fetch_sub(1, Ordering::AcqRel);
        Some(self.block_ref(piece, i))
    }

    /// Gives back a block `slot` requested (choke, timeout, disconnect). Returns whether `slot`
    /// held a request for it. In endgame another requester of the block becomes its owner.
    pub fn release_block(&self, block: BlockRef, slot: PeerSlot) -> Result<bool, PieceMapError> {
        let g = self.check_block(block)?;
        let word = &self.blocks[g];
        if self.extras.active() {
            if let Some(done) = self.extras.release(g, word, slot.tag()) {
                return Ok(done);
            }
        }
        if word.compare_exchange(slot.tag(), FREE, Ordering::AcqRel, Ordering::Relaxed).is_err() {
            return Ok(false);
        }
        let claimed = self.pieces[block.piece.get()].claimed.fetch_sub(1, Ordering::AcqRel) - 1;
        if claimed == 0 {
            self.partial.remove(block.piece);
        }
        if claimed + 1 == self.block_count(block.piece) {
            if claimed > 0 {
                self.partial.insert(block.piece);
            }
            self.sync_listing(block.piece);
        }
        self.unclaimed.fetch_add(1, Ordering::AcqRel);
        Ok(true)
    }

    /// Records a block received from `from`. Slots that also requested it (endgame) are pushed
    /// to `cancels`: send them CANCEL. Errors only for a block that is not one of the torrent's.
    pub fn receive_block(
        &self,
        block: BlockRef,
        from: PeerSlot,
        cancels: &mut Vec<PeerSlot>,
    ) -> Result<Receipt, PieceMapError> {
        self.receive(block, from, false, cancels)
    }

    /// Records a block that arrived whole from outside BitTorrent (an HTTP piece whose SHA-1
    /// already matched): it is taken whoever requested it — a free block is claimed for `from`
    /// first, a peer's request is superseded and that peer reported in `cancels`. Only a block
    /// already received is refused ([`Receipt::Duplicate`]).
    pub fn receive_block_superseding(
        &self,
        block: BlockRef,
        from: PeerSlot,
        cancels: &mut Vec<PeerSlot>,
    ) -> Result<Receipt, PieceMapError> {
        self.receive(block, from, true, cancels)
    }

    fn receive(
        &self,
        block: BlockRef,
        from: PeerSlot,
        supersede: bool,
        cancels: &mut Vec<PeerSlot>,
    ) -> Result<Receipt, PieceMapError> {
        let g = self.check_block(block)?;
        let word = &self.blocks[g];
        let mut cur = word.load(Ordering::Acquire);
        loop {
            if cur == RECEIVED {
                return Ok(Receipt::Duplicate);
            }
            if supersede && cur == FREE {
                if self.pieces[block.piece.get()].state.load(Ordering::Acquire) != WANTED {
                    return Ok(Receipt::Duplicate);
                }
                let i = block.offset / BLOCK_SIZE;
                if self.try_claim(word, block.piece, i, from).is_none() {
                    cur = word.load(Ordering::Acquire);
                    continue;
                }
                cur = from.tag();
            }
            let requested = cur == from.tag() || self.extras.is_requester(g, from.tag());
            if cur == FREE || (!requested && !supersede) {
                return Ok(Receipt::Unrequested);
            }
            match word.compare_exchange(cur, RECEIVED, Ordering::SeqCst, Ordering::Acquire) {
                Ok(_) => break,
                Err(actual) => cur = actual,
            }
        }
        if cur != from.tag() {
            cancels.push(PeerSlot::from_tag(cur));
        }
        if self.extras.active() {
            self.extras.drain_block(g, from.tag(), cancels);
        }
        let piece = block.piece;
        let ps = &self.pieces[piece.get()];
        if ps.received.fetch_add(1, Ordering::AcqRel) + 1 < self.block_count(piece) {
            return Ok(Receipt::Accepted);
        }
        // Only this thread sees received reach n (I2). All blocks were claimed, so the piece
        // already left the rarity order; the sync is for the record (I12).
        self.have.insert(piece);
        self.partial.remove(piece);
        ps.state.store(COMPLETE, Ordering::Release);
        self.sync_listing(piece);
        Ok(Receipt::PieceComplete)
    }

    // ---- verification ---------------------------------------------------------------------

    fn transition(&self, piece: PieceIndex, from: u8, to: u8, op: &'static str) -> Result<(), PieceMapError> {
        self.pieces[piece.get()]
            .state
            .compare_exchange(from, to, Ordering::AcqRel, Ordering::Acquire)
            .map(|_| ())
            .map_err(|_| PieceMapError::WrongState { piece, state: self.piece_state(piece), op })
    }

    /// The hasher takes a complete piece (Complete → Verifying); only one caller wins.
    pub fn begin_verify(&self, piece: PieceIndex) -> Result<(), PieceMapError> {
        self.piece(piece.0)?;
        self.transition(piece, COMPLETE, VERIFYING, "begin_verify")
    }

    /// The hash matched (Verifying → Verified): counts and the verified bitfield are updated.
    pub fn mark_verified(&self, piece: PieceIndex) -> Result<(), PieceMapError> {
        self.piece(piece.0)?;
        self.transition(piece, VERIFYING, VERIFIED, "mark_verified")?;
        self.verified.insert(piece);
        self.verified_bytes.fetch_add(u64::from(self.piece_size(piece)), Ordering::AcqRel);
        self.verified_count.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// The hash failed (Verifying → Missing): every block is freed and the piece is wanted
    /// again. Peers that sent it are the caller's concern (ban / score).
    pub fn mark_failed(&self, piece: PieceIndex) -> Result<(), PieceMapError> {
        self.piece(piece.0)?;
        self.transition(piece, VERIFYING, RESETTING, "mark_failed")?;
        let ps = &self.pieces[piece.get()];
        self.have.remove(piece);
        // Counters first, then the words: a claim racing with the reset finds a FREE word only
        // after its counter was zeroed, so its increment stays correct (I8).
        ps.claimed.store(0, Ordering::Release);
        ps.received.store(0, Ordering::Release);
        self.unclaimed.fetch_add(i64::from(self.block_count(piece)), Ordering::AcqRel);
        for w in self.block_words(piece) {
            w.store(FREE, Ordering::Release);
        }
        ps.state.store(WANTED, Ordering::Release);
        self.sync_listing(piece);
        Ok(())
    }

    /// Checks invariants I1–I12 (see `INVARIANTS.md`). Only meaningful when quiescent (no call
    /// in progress on another thread); for tests and debugging.
    pub fn check_invariants(&self) -> Result<(), String> {
        check::check(self)
    }
}
