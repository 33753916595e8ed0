//! Endgame duplicate requests (invariant I5).
//!
//! Outside endgame a block word names its one requester. In endgame the same block may be
//! requested from a few more peers; those extra requesters live in a small table under a
//! mutex. The table is empty outside endgame and `len` (read with one atomic load) keeps the
//! normal block path off the mutex.
//!
//! Race rule: `add` raises `len` *before* it reads the block word, and `receive_block` reads
//! `len` *after* its CAS to `RECEIVED` (both `SeqCst`). So either `add` sees `RECEIVED` and
//! adds nothing, or the receiver sees `len > 0`, takes the lock after `add` and drains the
//! entry: no extra request outlives its block.

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use parking_lot::Mutex;

use super::{PeerSlot, PieceMap, FREE, RECEIVED};
use crate::types::{BlockRef, PieceIndex};

#[derive(Debug, Default)]
pub(crate) struct Extras {
    len: AtomicUsize,
    /// (global block number, slot tag) of every extra request.
    table: Mutex<Vec<(usize, u32)>>,
}

impl Extras {
    pub(crate) fn active(&self) -> bool {
        self.len.load(Ordering::SeqCst) > 0
    }

    /// Whether `tag` holds an extra request for block `g`.
    pub(crate) fn is_requester(&self, g: usize, tag: u32) -> bool {
        self.active() && self.table.lock().contains(&(g, tag))
    }

    /// Releases `tag`'s request of block `g` if the table is involved: `Some(done)` if handled
    /// here, `None` if the caller should free the word normally.
    pub(crate) fn release(&self, g: usize, word: &AtomicU32, tag: u32) -> Option<bool> {
        let mut table = self.table.lock();
        if let Some(i) = table.iter().position(|&e| e == (g, tag)) {
            table.swap_remove(i);
            self.len.fetch_sub(1, Ordering::SeqCst);
            return Some(true);
        }
        if word.load(Ordering::SeqCst) != tag {
            return None;
        }
        let i = table.iter().position(|&(b, _)| b == g)?;
        let heir = table[i].1;
        // The owner leaves: its first extra requester inherits the block.
        let ok = word.compare_exchange(tag, heir, Ordering::SeqCst, Ordering::SeqCst).is_ok();
        if ok {
            table.swap_remove(i);
            self.len.fetch_sub(1, Ordering::SeqCst);
        }
        Some(ok)
    }

    /// The block `g` arrived from `from`: every other extra requester goes to `cancels`.
    pub(crate) fn drain_block(&self, g: usize, from: u32, cancels: &mut Vec<PeerSlot>) {
        let mut table = self.table.lock();
        let before = table.len();
        table.retain(|&(b, t)| {
            if b != g {
                return true;
            }
            if t != from {
                cancels.push(PeerSlot::from_tag(t));
            }
            false
        });
        self.len.fetch_sub(before - table.len(), Ordering::SeqCst);
    }

    /// Records `tag` as an extra requester of block `g` if allowed (I5).
    fn add(&self, table: &mut Vec<(usize, u32)>, g: usize, word: &AtomicU32, tag: u32, cap: u32) -> bool {
        self.len.fetch_add(1, Ordering::SeqCst);
        let cur = word.load(Ordering::SeqCst);
        let ok = cur != FREE
            && cur != RECEIVED
            && cur != tag
            && !table.contains(&(g, tag))
            && 1 + table.iter().filter(|&&(b, _)| b == g).count() < cap as usize;
        if ok {
            table.push((g, tag));
        } else {
            self.len.fetch_sub(1, Ordering::SeqCst);
        }
        ok
    }

    pub(crate) fn snapshot_all(&self) -> Vec<(usize, u32)> {
        self.table.lock().clone()
    }
}

impl PieceMap {
    /// Endgame: requests blocks of `piece` that others already requested, for `slot`, at most
    /// `cap` requesters per block and `max` blocks; free blocks are claimed normally. Returns
    /// the number of blocks pushed to `out`.
    pub(crate) fn claim_duplicates(
        &self,
        piece: PieceIndex,
        slot: PeerSlot,
        cap: u32,
        max: usize,
        out: &mut Vec<BlockRef>,
    ) -> usize {
        if max == 0 || !self.has_unreceived(piece) {
            return 0;
        }
        let words = self.block_words(piece);
        let mut table = self.extras.table.lock();
        let mut added = 0;
        for (i, word) in words.iter().enumerate() {
            if added == max {
                break;
            }
            let i = i as u32;
            let got = match word.load(Ordering::Acquire) {
                FREE => self.try_claim(word, piece, i, slot).is_some(),
                RECEIVED => false,
                _ => self.extras.add(&mut table, self.first_block(piece) + i as usize, word, slot.tag(), cap),
            };
            if got {
                out.push(self.block_ref(piece, i));
                added += 1;
            }
        }
        added
    }

    fn has_unreceived(&self, piece: PieceIndex) -> bool {
        let ps = &self.pieces[piece.get()];
        ps.state.load(Ordering::Acquire) == super::WANTED
            && ps.received.load(Ordering::Relaxed) < self.block_count(piece)
    }
}
