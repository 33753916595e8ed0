//! Which blocks to request from a peer: rarest-first with partial pieces first, an endgame
//! mode, per-piece priorities and a sequential (streaming) mode.
//!
//! A [`Picker`] is shared by every peer session of a torrent, beside its
//! [`PieceMap`](crate::piece_map::PieceMap). [`Picker::pick`] walks candidate pieces the peer
//! has and claims blocks in the map (one CAS each), so what it returns is already marked in
//! flight for that peer. The order of preference in one call:
//!
//! 1. pieces set to [`Priority::High`], in the order they were set;
//! 2. in sequential mode, pieces from the cursor upwards (a relay's stream consumer);
//! 3. partially requested pieces with free blocks (finish pieces so they can be shared, as
//!    libtorrent does), found through a two-level bitfield (a summary bit per 64 pieces, so
//!    ~16 word reads for 64k pieces) and matched a word at a time against the peer's bitfield,
//!    from a random start;
//! 4. rarest first: pickable pieces (wanted, with a free block) are kept bucketed by
//!    availability in the map (updated in O(1) per HAVE; see `piece_map/availability.rs`), each
//!    bucket in random order, so the walk starts at the rarest bucket and stops as soon as it
//!    has `max` blocks; there is no per-pick sort or scan of all pieces, and fully requested
//!    pieces are not in the way. Random start inside each bucket spreads peers over equally rare
//!    pieces;
//! 5. endgame (every missing block already requested, [`PieceMap::in_endgame`]): blocks
//!    requested by others, at most [`PickerConfig::endgame_cap`] requesters per block. When one
//!    arrives, [`PieceMap::receive_block`](crate::piece_map::PieceMap::receive_block) lists the
//!    other requesters to CANCEL.
//!
//! Pieces set to [`Priority::Skip`] are never picked.
//!
//! # Call sequence
//! ```
//! # use std::sync::Arc;
//! # use floodgate_engine::{layout::Layout, piece_map::{Bitfield, PeerSlot, PieceMap}};
//! use floodgate_engine::picker::{Picker, Priority};
//! # let layout = Layout::single("f", 1 << 20, 1 << 16).unwrap();
//! let map = Arc::new(PieceMap::new(&layout));
//! let picker = Picker::new(map.clone());
//! picker.set_priority(3, Priority::High).unwrap(); // "this piece first"
//! let peer = Bitfield::full(map.piece_count());
//! map.add_peer(peer.view()).unwrap();
//! let mut out = Vec::new();
//! let pick = picker.pick(peer.view(), PeerSlot(7), 4, &mut out);
//! assert_eq!((pick.blocks, out[0].piece.0), (4, 3));
//! // send REQUEST for each block in `out`; see `piece_map` for the rest.
//! ```

#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicU32, AtomicU8, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;

use crate::piece_map::{BitfieldView, PeerSlot, PieceMap, PieceMapError};
use crate::types::{BlockRef, PieceIndex};

/// How much a piece is wanted.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Priority {
    /// Never picked (not wanted now).
    Skip = 0,
    /// Picked by the normal policy.
    #[default]
    Normal = 1,
    /// Picked before every normal piece, in the order set.
    High = 2,
}

impl Priority {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => Priority::Skip,
            2 => Priority::High,
            _ => Priority::Normal,
        }
    }
}

/// Picker settings.
#[derive(Clone, Copy, Debug)]
pub struct PickerConfig {
    /// Endgame: most peers one block may be requested from at once (owner included).
    pub endgame_cap: u32,
}

impl Default for PickerConfig {
    fn default() -> Self {
        PickerConfig { endgame_cap: 2 }
    }
}

/// What one [`Picker::pick`] call did.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Pick {
    /// Blocks pushed to `out` (all claimed for the slot).
    pub blocks: usize,
    /// Whether some of them are endgame duplicates.
    pub endgame: bool,
}

const SEQUENTIAL_OFF: u32 = u32::MAX;

/// The piece picker of one torrent; `Sync`, shared by its peer sessions.
#[derive(Debug)]
pub struct Picker {
    map: Arc<PieceMap>,
    priority: Box<[AtomicU8]>,
    /// Pieces set to `High`, in the order set (entries go stale when reset; checked on use).
    high: RwLock<Vec<u32>>,
    sequential: AtomicU32,
    config: PickerConfig,
}

impl Picker {
    /// A picker with default settings over `map`.
    pub fn new(map: Arc<PieceMap>) -> Self {
        Self::with_config(map, PickerConfig::default())
    }

    /// A picker with explicit settings.
    pub fn with_config(map: Arc<PieceMap>, config: PickerConfig) -> Self {
        let n = map.piece_count();
        Picker {
            map,
            priority: (0..n).map(|_| AtomicU8::new(Priority::Normal as u8)).collect(),
            high: RwLock::new(Vec::new()),
            sequential: AtomicU32::new(SEQUENTIAL_OFF),
            config,
        }
    }

    /// The piece map this picker claims blocks in.
    pub fn map(&self) -> &Arc<PieceMap> {
        &self.map
    }

    /// Sets a piece's priority (index checked).
    pub fn set_priority(&self, piece: u32, priority: Priority) -> Result<(), PieceMapError> {
        let p = self.map.piece(piece)?;
        let old = self.priority[p.get()].swap(priority as u8, Ordering::AcqRel);
        if priority == Priority::High && old != Priority::High as u8 {
            self.high.write().push(p.0);
        } else if priority != Priority::High && old == Priority::High as u8 {
            self.high.write().retain(|&h| h != p.0);
        }
        Ok(())
    }

    /// A checked piece's priority.
    pub fn priority(&self, piece: PieceIndex) -> Priority {
        Priority::from_u8(self.priority[piece.get()].load(Ordering::Acquire))
    }

    /// Sequential mode from `cursor` upwards (`None`: rarest-first only). Move the cursor as
    /// the stream consumer advances.
    pub fn set_sequential(&self, cursor: Option<PieceIndex>) {
        let v = cursor.map_or(SEQUENTIAL_OFF, |c| c.0.min(SEQUENTIAL_OFF - 1));
        self.sequential.store(v, Ordering::Release);
    }

    /// Claims up to `max` blocks for `slot` among the pieces `peer` has and pushes them to
    /// `out` (send one REQUEST each). A bitfield of the wrong length yields nothing.
    pub fn pick(&self, peer: BitfieldView<'_>, slot: PeerSlot, max: usize, out: &mut Vec<BlockRef>) -> Pick {
        let mut pick = Pick::default();
        if peer.len() != self.map.piece_count() || max == 0 {
            return pick;
        }
        let mut left = max;
        self.pick_high(peer, slot, &mut left, out);
        let cursor = self.sequential.load(Ordering::Acquire);
        if left > 0 && cursor != SEQUENTIAL_OFF {
            self.pick_sequential(peer, slot, cursor, &mut left, out);
        }
        if left > 0 {
            self.pick_partial(peer, slot, &mut left, out);
        }
        if left > 0 {
            self.pick_rarest(peer, slot, &mut left, out);
        }
        if left > 0 && self.map.in_endgame() {
            let before = left;
            self.pick_endgame(peer, slot, &mut left, out);
            pick.endgame = left < before;
        }
        pick.blocks = max - left;
        pick
    }

    fn wanted(&self, peer: BitfieldView<'_>, p: PieceIndex) -> bool {
        peer.has(p) && self.priority[p.get()].load(Ordering::Relaxed) != Priority::Skip as u8
    }

    /// Claims blocks of `p` until it has none free or `left` is 0.
    fn fill(&self, p: PieceIndex, slot: PeerSlot, left: &mut usize, out: &mut Vec<BlockRef>) {
        while *left > 0 {
            match self.map.claim_block(p, slot) {
                Some(b) => {
                    out.push(b);
                    *left -= 1;
                }
                None => break,
            }
        }
    }

    fn pick_high(&self, peer: BitfieldView<'_>, slot: PeerSlot, left: &mut usize, out: &mut Vec<BlockRef>) {
        let high = self.high.read();
        for &p in high.iter() {
            if *left == 0 {
                break;
            }
            let p = PieceIndex(p);
            if peer.has(p) && self.map.has_free_blocks(p) {
                self.fill(p, slot, left, out);
            }
        }
    }

    fn pick_sequential(
        &self,
        peer: BitfieldView<'_>,
        slot: PeerSlot,
        cursor: u32,
        left: &mut usize,
        out: &mut Vec<BlockRef>,
    ) {
        let words = peer.words();
        let have = self.map.have();
        let first = cursor as usize / 64;
        for (w, &pw) in words.iter().enumerate().skip(first) {
            let mut cand = pw & !have.word(w);
            if w == first {
                cand &= u64::MAX << (cursor % 64);
            }
            if self.scan_word(w, cand, peer, slot, left, out) {
                return;
            }
        }
    }

    /// Tries each piece of word `w` set in `cand`; returns true once `left` is 0.
    fn scan_word(
        &self,
        w: usize,
        cand: u64,
        peer: BitfieldView<'_>,
        slot: PeerSlot,
        left: &mut usize,
        out: &mut Vec<BlockRef>,
    ) -> bool {
        let mut bits = cand;
        while bits != 0 {
            let p = PieceIndex((w * 64) as u32 + bits.trailing_zeros());
            bits &= bits - 1;
            if self.wanted(peer, p) && self.map.has_free_blocks(p) {
                self.fill(p, slot, left, out);
                if *left == 0 {
                    return true;
                }
            }
        }
        false
    }

    fn pick_partial(
        &self,
        peer: BitfieldView<'_>,
        slot: PeerSlot,
        left: &mut usize,
        out: &mut Vec<BlockRef>,
    ) {
        let words = peer.words();
        let start = rand::random_range(0..words.len().div_ceil(64));
        self.map.partial().for_each_word(start, |w, bits| {
            let cand = bits & words[w];
            cand != 0 && self.scan_word(w, cand, peer, slot, left, out)
        });
    }

    fn pick_rarest(&self, peer: BitfieldView<'_>, slot: PeerSlot, left: &mut usize, out: &mut Vec<BlockRef>) {
        // Candidates are gathered under the rarity read lock and claimed after it is released:
        // claiming a piece's last free block unlists it, which takes the write lock. A small
        // stack buffer keeps the pick free of allocation.
        let mut candidates = [PieceIndex(0); 32];
        loop {
            let mut found = 0;
            {
                let order = self.map.rarity().read();
                let mut budget = *left;
                // Bucket 0: no connected peer has these, so this peer does not either.
                'buckets: for bucket in order.buckets().iter().skip(1) {
                    let len = bucket.len();
                    if len == 0 {
                        continue;
                    }
                    let start = rand::random_range(0..len);
                    for &p in bucket[start..].iter().chain(&bucket[..start]) {
                        let p = PieceIndex(p);
                        if self.wanted(peer, p) && self.map.has_free_blocks(p) {
                            candidates[found] = p;
                            found += 1;
                            budget = budget.saturating_sub(self.map.block_count(p) as usize);
                            if budget == 0 || found == candidates.len() {
                                break 'buckets;
                            }
                        }
                    }
                }
            }
            let before = *left;
            for &p in &candidates[..found] {
                self.fill(p, slot, left, out);
                if *left == 0 {
                    return;
                }
            }
            // Nothing found, or every candidate was taken by a racing picker meanwhile.
            if *left == before {
                return;
            }
        }
    }

    /// Endgame: pieces the peer has and we lack (few by now, found a word at a time), blocks
    /// that others already requested.
    fn pick_endgame(
        &self,
        peer: BitfieldView<'_>,
        slot: PeerSlot,
        left: &mut usize,
        out: &mut Vec<BlockRef>,
    ) {
        let have = self.map.have();
        for (w, &pw) in peer.words().iter().enumerate() {
            let mut bits = pw & !have.word(w);
            while bits != 0 {
                let p = PieceIndex((w * 64) as u32 + bits.trailing_zeros());
                bits &= bits - 1;
                if self.wanted(peer, p) {
                    *left -= self.map.claim_duplicates(p, slot, self.config.endgame_cap, *left, out);
                    if *left == 0 {
                        return;
                    }
                }
            }
        }
    }
}
