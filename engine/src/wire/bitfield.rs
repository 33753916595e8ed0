//! A validated BEP 3 bitfield: which pieces a peer has.

use bytes::Bytes;

use super::WireError;
use crate::types::PieceIndex;

/// A peer's bitfield checked against the torrent's piece count.
///
/// Bit order per BEP 3: the high bit of the first byte is piece 0. The byte length is exactly
/// `ceil(piece_count / 8)` and the spare bits after the last piece are zero; anything else is
/// rejected by [`Bitfield::new`]. Holds the received bytes without copying them.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Bitfield {
    bytes: Bytes,
    piece_count: u32,
}

impl Bitfield {
    /// Validates `bytes` (e.g. the payload of [`Message::Bitfield`](super::Message::Bitfield))
    /// for a torrent with `piece_count` pieces.
    pub fn new(bytes: Bytes, piece_count: u32) -> Result<Self, WireError> {
        check(&bytes, piece_count)?;
        Ok(Bitfield { bytes, piece_count })
    }

    /// A bitfield with bit `i` set where `has(i)` is true, for `piece_count` pieces.
    pub fn from_fn(piece_count: u32, mut has: impl FnMut(PieceIndex) -> bool) -> Self {
        let mut bytes = vec![0u8; byte_len(piece_count)];
        for i in 0..piece_count {
            if has(PieceIndex(i)) {
                if let Some(b) = bytes.get_mut((i / 8) as usize) {
                    *b |= 0x80 >> (i % 8);
                }
            }
        }
        Bitfield { bytes: Bytes::from(bytes), piece_count }
    }

    /// The number of pieces this bitfield covers.
    pub fn piece_count(&self) -> u32 {
        self.piece_count
    }

    /// Whether the peer has `piece` (false for an index out of range).
    pub fn has(&self, piece: PieceIndex) -> bool {
        piece.0 < self.piece_count
            && self.bytes.get(piece.get() / 8).is_some_and(|b| b & (0x80 >> (piece.0 % 8)) != 0)
    }

    /// How many pieces the peer has.
    pub fn count_ones(&self) -> u32 {
        self.bytes.iter().map(|b| b.count_ones()).sum()
    }

    /// Whether the peer has every piece.
    pub fn is_complete(&self) -> bool {
        self.count_ones() == self.piece_count
    }

    /// The pieces the peer has, in increasing order.
    pub fn iter_ones(&self) -> impl Iterator<Item = PieceIndex> + '_ {
        self.bytes.iter().enumerate().flat_map(|(i, &b)| {
            (0..8u32).filter(move |bit| b & (0x80 >> bit) != 0).map(move |bit| PieceIndex(i as u32 * 8 + bit))
        })
    }

    /// The raw bytes, as sent on the wire.
    pub fn as_bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The raw bytes, as sent on the wire.
    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }
}

/// `ceil(piece_count / 8)`: the byte length of a bitfield for `piece_count` pieces.
pub fn byte_len(piece_count: u32) -> usize {
    piece_count.div_ceil(8) as usize
}

/// Checks the length and spare bits of a bitfield for `piece_count` pieces.
pub(super) fn check(bytes: &[u8], piece_count: u32) -> Result<(), WireError> {
    let expected = byte_len(piece_count);
    if bytes.len() != expected {
        return Err(WireError::BitfieldLength {
            len: u32::try_from(bytes.len()).unwrap_or(u32::MAX),
            expected: expected as u32,
        });
    }
    let spare = (expected * 8) as u64 - u64::from(piece_count);
    if spare > 0 {
        let mask = (1u8 << spare) - 1;
        if bytes.last().is_some_and(|b| b & mask != 0) {
            return Err(WireError::BitfieldSpareBits);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_order_high_bit_first() {
        let bf = Bitfield::new(Bytes::from_static(&[0b1000_0001, 0b0100_0000]), 10).unwrap();
        assert!(bf.has(PieceIndex(0)));
        assert!(bf.has(PieceIndex(7)));
        assert!(bf.has(PieceIndex(9)));
        assert!(!bf.has(PieceIndex(8)));
        assert!(!bf.has(PieceIndex(10)));
        assert!(!bf.has(PieceIndex(1000)));
        assert_eq!(bf.count_ones(), 3);
        assert_eq!(bf.iter_ones().collect::<Vec<_>>(), vec![PieceIndex(0), PieceIndex(7), PieceIndex(9)]);
        assert!(!bf.is_complete());
        assert_eq!(bf.piece_count(), 10);
    }

    #[test]
    fn from_fn_round_trips() {
        for n in [0u32, 1, 7, 8, 9, 100] {
            let bf = Bitfield::from_fn(n, |i| i.0 % 3 == 0);
            assert_eq!(bf.as_bytes().len(), byte_len(n));
            let again = Bitfield::new(bf.clone().into_bytes(), n).unwrap();
            assert_eq!(again, bf);
            assert!((0..n).all(|i| bf.has(PieceIndex(i)) == (i % 3 == 0)));
            assert!(Bitfield::from_fn(n, |_| true).is_complete());
        }
    }

    #[test]
    fn rejects_wrong_length_and_spare_bits() {
        assert_eq!(
            Bitfield::new(Bytes::from_static(&[0xff]), 10),
            Err(WireError::BitfieldLength { len: 1, expected: 2 })
        );
        assert_eq!(
            Bitfield::new(Bytes::from_static(&[0xff, 0xff]), 8),
            Err(WireError::BitfieldLength { len: 2, expected: 1 })
        );
        assert_eq!(Bitfield::new(Bytes::from_static(&[0xff, 0xe0]), 10), Err(WireError::BitfieldSpareBits));
        assert!(Bitfield::new(Bytes::from_static(&[0xff, 0xc0]), 10).is_ok());
        assert!(Bitfield::new(Bytes::new(), 0).is_ok());
    }
}
