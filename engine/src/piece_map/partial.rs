//! The set of partially requested pieces (some blocks claimed, some still free), with a
//! summary level so that finding its members
//! costs O(pieces / 4096) word reads instead of O(pieces / 64).
//!
//! Bit `w` of the summary is set iff word `w` of the set may be non-zero. `remove` clears the
//! summary bit when its word becomes zero, then reads the word again and restores the bit if a
//! racing `insert` filled it meanwhile (the racing insert's summary `fetch_or` is ordered with
//! our `fetch_and` on the same summary word, so one of the two sees the other). It is still a
//! hint (I12 note in `INVARIANTS.md`): the picker re-checks every piece it takes from it.

use super::bitfield::{AtomicBitfield, Ones};
use crate::types::PieceIndex;

#[derive(Debug)]
pub(crate) struct PartialSet {
    bits: AtomicBitfield,
    summary: AtomicBitfield,
}

impl PartialSet {
    pub(crate) fn new(len: u32) -> Self {
        PartialSet { bits: AtomicBitfield::new(len), summary: AtomicBitfield::new(len.div_ceil(64)) }
    }

    pub(crate) fn insert(&self, piece: PieceIndex) {
        if self.bits.insert(piece) {
            self.summary.insert(PieceIndex(piece.0 / 64));
        }
    }

    pub(crate) fn remove(&self, piece: PieceIndex) {
        let w = piece.get() / 64;
        if self.bits.remove(piece) && self.bits.word(w) == 0 {
            let s = PieceIndex(piece.0 / 64);
            self.summary.remove(s);
            if self.bits.word(w) != 0 {
                self.summary.insert(s);
            }
        }
    }

    /// Whether `piece` is in the set.
    #[cfg(test)]
    pub(crate) fn has(&self, piece: PieceIndex) -> bool {
        self.bits.has(piece)
    }

    /// Calls `f(w, word)` for the non-empty words, starting at summary word `start` (wrapping),
    /// until `f` returns true.
    pub(crate) fn for_each_word(&self, start: usize, mut f: impl FnMut(usize, u64) -> bool) {
        let n = self.summary.len().div_ceil(64) as usize;
        let start = start % n.max(1);
        for s in (start..n).chain(0..start) {
            for bit in Ones(self.summary.word(s)) {
                let w = s * 64 + bit as usize;
                let word = self.bits.word(w);
                if word != 0 && f(w, word) {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_follows_members() {
        let p = PartialSet::new(10_000);
        for i in [3, 64, 65, 9_999] {
            p.insert(PieceIndex(i));
        }
        p.remove(PieceIndex(64));
        let mut seen = Vec::new();
        p.for_each_word(1, |w, word| {
            seen.push((w, word));
            false
        });
        seen.sort();
        assert_eq!(seen, vec![(0, 1 << 3), (1, 1 << 1), (156, 1 << 15)]);
        p.remove(PieceIndex(65));
        assert!(!p.has(PieceIndex(65)) && p.summary.word(0) & 2 == 0);
    }
}
