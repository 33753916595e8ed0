//! Piece bitfields: an owned one for a peer ([`Bitfield`]), a borrowed view the picker reads
//! ([`BitfieldView`]), and the shared atomic one inside the piece map ([`AtomicBitfield`]).
//!
//! In memory bit `i` of the set is bit `i % 64` of word `i / 64` (LSB first), so the picker can
//! combine sets a word at a time. On the wire (BITFIELD message) piece 0 is the high bit of the
//! first byte; [`Bitfield::from_wire`] and [`AtomicBitfield::to_wire`] convert.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::types::PieceIndex;

/// Why a peer's BITFIELD payload was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BitfieldError {
    /// The payload is not `ceil(piece_count / 8)` bytes long.
    #[error("bitfield is {got} bytes, expected {expected}")]
    WrongLength {
        /// Bytes received.
        got: usize,
        /// Bytes expected for this torrent.
        expected: usize,
    },
    /// A bit past the last piece is set.
    #[error("bitfield has spare bits set")]
    SpareBitsSet,
}

fn words_for(len: u32) -> usize {
    (len as usize).div_ceil(64)
}

/// An owned set of pieces, e.g. what a peer has (BITFIELD, then HAVE messages).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bitfield {
    words: Vec<u64>,
    len: u32,
}

impl Bitfield {
    /// An empty set over `len` pieces.
    pub fn new(len: u32) -> Self {
        Bitfield { words: vec![0; words_for(len)], len }
    }

    /// The set of all `len` pieces (a seed).
    pub fn full(len: u32) -> Self {
        let mut b = Bitfield { words: vec![u64::MAX; words_for(len)], len };
        b.clear_spare();
        b
    }

    /// Parses a BITFIELD payload for a torrent of `len` pieces (checked length, spare bits zero).
    pub fn from_wire(bytes: &[u8], len: u32) -> Result<Self, BitfieldError> {
        let expected = (len as usize).div_ceil(8);
        if bytes.len() != expected {
            return Err(BitfieldError::WrongLength { got: bytes.len(), expected });
        }
        let mut b = Bitfield::new(len);
        for (i, &byte) in bytes.iter().enumerate() {
            let rev = byte.reverse_bits() as u64;
            b.words[i / 8] |= rev << ((i % 8) * 8);
        }
        let before = b.count_ones();
        b.clear_spare();
        if b.count_ones() != before {
            return Err(BitfieldError::SpareBitsSet);
        }
        Ok(b)
    }

    fn clear_spare(&mut self) {
        let rem = self.len % 64;
        if rem != 0 {
            if let Some(last) = self.words.last_mut() {
                *last &= (1u64 << rem) - 1;
            }
        }
    }

    /// Adds a piece (a HAVE message). Returns `false` if the index is out of range.
    pub fn set(&mut self, piece: PieceIndex) -> bool {
        if piece.0 >= self.len {
            return false;
        }
        self.words[piece.get() / 64] |= 1 << (piece.0 % 64);
        true
    }

    /// Whether the set holds `piece` (`false` when out of range).
    pub fn has(&self, piece: PieceIndex) -> bool {
        self.view().has(piece)
    }

    /// Number of pieces in the set.
    pub fn count_ones(&self) -> u32 {
        self.words.iter().map(|w| w.count_ones()).sum()
    }

    /// Number of pieces the set ranges over.
    pub fn len(&self) -> u32 {
        self.len
    }

    /// Whether the set ranges over no pieces at all.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A borrowed view for the picker and the piece map.
    pub fn view(&self) -> BitfieldView<'_> {
        BitfieldView { words: &self.words, len: self.len }
    }
}

/// A borrowed, read-only set of pieces, as the picker takes it.
#[derive(Clone, Copy, Debug)]
pub struct BitfieldView<'a> {
    words: &'a [u64],
    len: u32,
}

impl<'a> BitfieldView<'a> {
    /// Whether the set holds `piece` (`false` when out of range).
    pub fn has(&self, piece: PieceIndex) -> bool {
        piece.0 < self.len && self.words[piece.get() / 64] & (1 << (piece.0 % 64)) != 0
    }

    /// Number of pieces the set ranges over.
    pub fn len(&self) -> u32 {
        self.len
    }

    /// Whether the set ranges over no pieces at all.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The 64-bit words, LSB first (bit `i % 64` of word `i / 64` is piece `i`).
    pub fn words(&self) -> &'a [u64] {
        self.words
    }

    /// The pieces in the set, ascending.
    pub fn iter_ones(&self) -> impl Iterator<Item = PieceIndex> + 'a {
        self.words
            .iter()
            .enumerate()
            .flat_map(|(w, &word)| Ones(word).map(move |b| PieceIndex((w * 64) as u32 + b)))
    }
}

/// Iterator over the set bit positions of one word.
pub(crate) struct Ones(pub(crate) u64);

impl Iterator for Ones {
    type Item = u32;
    fn next(&mut self) -> Option<u32> {
        if self.0 == 0 {
            return None;
        }
        let b = self.0.trailing_zeros();
        self.0 &= self.0 - 1;
        Some(b)
    }
}

/// A set of pieces in atomic words, shared by every thread of a torrent.
#[derive(Debug)]
pub struct AtomicBitfield {
    words: Box<[AtomicU64]>,
    len: u32,
}

impl AtomicBitfield {
    /// An empty set over `len` pieces.
    pub fn new(len: u32) -> Self {
        AtomicBitfield { words: (0..words_for(len)).map(|_| AtomicU64::new(0)).collect(), len }
    }

    /// Sets the bit; returns whether it was clear before. `piece` must be in range.
    pub(crate) fn insert(&self, piece: PieceIndex) -> bool {
        let mask = 1u64 << (piece.0 % 64);
        self.words[piece.get() / 64].fetch_or(mask, Ordering::AcqRel) & mask == 0
    }

    /// Clears the bit; returns whether it was set before. `piece` must be in range.
    pub(crate) fn remove(&self, piece: PieceIndex) -> bool {
        let mask = 1u64 << (piece.0 % 64);
        self.words[piece.get() / 64].fetch_and(!mask, Ordering::AcqRel) & mask != 0
    }

    /// Whether the set holds `piece` (`false` when out of range).
    pub fn has(&self, piece: PieceIndex) -> bool {
        piece.0 < self.len
            && self.words[piece.get() / 64].load(Ordering::Acquire) & (1 << (piece.0 % 64)) != 0
    }

    /// Word `w` (LSB first), read with acquire ordering.
    pub(crate) fn word(&self, w: usize) -> u64 {
        self.words[w].load(Ordering::Acquire)
    }

    /// Number of pieces the set ranges over.
    pub fn len(&self) -> u32 {
        self.len
    }

    /// Whether the set ranges over no pieces at all.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A point-in-time copy (each word read atomically, the whole not as one snapshot).
    pub fn snapshot(&self) -> Bitfield {
        Bitfield { words: (0..self.words.len()).map(|w| self.word(w)).collect(), len: self.len }
    }

    /// The set as a BITFIELD payload (piece 0 is the high bit of the first byte).
    pub fn to_wire(&self) -> Vec<u8> {
        let n = (self.len as usize).div_ceil(8);
        (0..n).map(|i| ((self.word(i / 8) >> ((i % 8) * 8)) as u8).reverse_bits()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_round_trip() {
        let bytes = [0b1000_0001, 0b0100_0000];
        let b = Bitfield::from_wire(&bytes, 10).unwrap();
        assert!(b.has(PieceIndex(0)) && b.has(PieceIndex(7)) && b.has(PieceIndex(9)));
        assert!(!b.has(PieceIndex(8)) && !b.has(PieceIndex(10)));
        assert_eq!(
            b.view().iter_ones().collect::<Vec<_>>(),
            vec![PieceIndex(0), PieceIndex(7), PieceIndex(9)]
        );
        let a = AtomicBitfield::new(10);
        for p in b.view().iter_ones() {
            a.insert(p);
        }
        assert_eq!(a.to_wire(), bytes.to_vec());
        assert_eq!(a.snapshot(), b);
    }

    #[test]
    fn rejects_bad_payloads() {
        assert_eq!(Bitfield::from_wire(&[0], 10), Err(BitfieldError::WrongLength { got: 1, expected: 2 }));
        assert_eq!(Bitfield::from_wire(&[0, 0b0010_0000], 10), Err(BitfieldError::SpareBitsSet));
        let mut b = Bitfield::new(3);
        assert!(!b.set(PieceIndex(3)));
        assert_eq!(Bitfield::full(65).count_ones(), 65);
    }
}
