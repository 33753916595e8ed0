//! The SHA-1 of every piece of a torrent, where some may not be known yet: a URL-only
//! distribution's hashes arrive one by one while its relay is still pulling the file. Each
//! entry is set at most once; reads are lock-free.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use crate::types::PieceIndex;

/// A hash given for a piece that already has another one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("piece {piece}: hash {} disagrees with the one already published ({})", crate::types::hex(.given), crate::types::hex(.known))]
pub struct HashConflict {
    /// The piece.
    pub piece: u32,
    /// The hash already in the list.
    pub known: [u8; 20],
    /// The hash given now.
    pub given: [u8; 20],
}

/// Per-piece SHA-1 hashes, each known from the start or published later (once).
#[derive(Debug)]
pub struct PieceHashes {
    slots: Box<[OnceLock<[u8; 20]>]>,
    known: AtomicU32,
}

impl PieceHashes {
    /// Every hash known (a `.torrent`'s list).
    pub fn known(hashes: &[[u8; 20]]) -> Self {
        let slots: Box<[OnceLock<[u8; 20]>]> = hashes.iter().map(|h| OnceLock::from(*h)).collect();
        PieceHashes { known: AtomicU32::new(slots.len() as u32), slots }
    }

    /// `count` pieces, none of whose hashes is known yet.
    pub fn unknown(count: u32) -> Self {
        PieceHashes { slots: (0..count).map(|_| OnceLock::new()).collect(), known: AtomicU32::new(0) }
    }

    /// Some hashes known (`None`: not yet).
    pub fn partial(hashes: &[Option<[u8; 20]>]) -> Self {
        let list = PieceHashes::unknown(hashes.len() as u32);
        for (i, h) in hashes.iter().enumerate() {
            if let Some(h) = h {
                let _ = list.publish(PieceIndex(i as u32), *h);
            }
        }
        list
    }

    /// Number of pieces.
    pub fn len(&self) -> u32 {
        self.slots.len() as u32
    }

    /// Whether the list covers no piece at all.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Hashes known so far.
    pub fn known_count(&self) -> u32 {
        self.known.load(Ordering::Acquire)
    }

    /// Whether every hash is known.
    pub fn is_complete(&self) -> bool {
        self.known_count() == self.len()
    }

    /// The hash of `piece`, if known (and `piece` is in range).
    pub fn get(&self, piece: PieceIndex) -> Option<[u8; 20]> {
        self.slots.get(piece.get()).and_then(|s| s.get().copied())
    }

    /// Publishes the hash of `piece`: `Ok(true)` if it was new, `Ok(false)` if the same hash was
    /// known already (or `piece` is out of range), [`HashConflict`] if another one was.
    pub fn publish(&self, piece: PieceIndex, hash: [u8; 20]) -> Result<bool, HashConflict> {
        let Some(slot) = self.slots.get(piece.get()) else { return Ok(false) };
        let mut new = false;
        let known = *slot.get_or_init(|| {
            new = true;
            hash
        });
        if new {
            self.known.fetch_add(1, Ordering::AcqRel);
            return Ok(true);
        }
        if known == hash {
            Ok(false)
        } else {
            Err(HashConflict { piece: piece.0, known, given: hash })
        }
    }

    /// Every hash, if all are known.
    pub fn to_vec(&self) -> Option<Vec<[u8; 20]>> {
        self.slots.iter().map(|s| s.get().copied()).collect()
    }

    /// Every hash as far as known.
    pub fn to_options(&self) -> Vec<Option<[u8; 20]>> {
        self.slots.iter().map(|s| s.get().copied()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_hash_is_set_once_and_conflicts_are_refused() {
        let list = PieceHashes::unknown(3);
        assert_eq!((list.known_count(), list.is_complete()), (0, false));
        assert_eq!(list.publish(PieceIndex(1), [1; 20]), Ok(true));
        assert_eq!(list.publish(PieceIndex(1), [1; 20]), Ok(false), "the same hash again");
        let e = list.publish(PieceIndex(1), [2; 20]).expect_err("another hash");
        assert_eq!((e.piece, e.known, e.given), (1, [1; 20], [2; 20]));
        assert_eq!(list.get(PieceIndex(1)), Some([1; 20]));
        assert_eq!(list.publish(PieceIndex(9), [1; 20]), Ok(false), "out of range is ignored");
        assert_eq!(list.to_vec(), None);
        list.publish(PieceIndex(0), [0; 20]).expect("new");
        list.publish(PieceIndex(2), [2; 20]).expect("new");
        assert!(list.is_complete());
        assert_eq!(list.to_vec(), Some(vec![[0; 20], [1; 20], [2; 20]]));
        let again = PieceHashes::partial(&list.to_options());
        assert_eq!(again.to_vec(), list.to_vec());
        assert_eq!(PieceHashes::known(&[[7; 20]]).get(PieceIndex(0)), Some([7; 20]));
    }

    #[test]
    fn racing_publishers_agree_on_one_hash() {
        let list = std::sync::Arc::new(PieceHashes::unknown(1));
        let wins: Vec<_> = (0..4u8)
            .map(|t| {
                let list = list.clone();
                std::thread::spawn(move || list.publish(PieceIndex(0), [t; 20]).is_ok_and(|new| new))
            })
            .collect();
        let new = wins.into_iter().filter_map(|h| h.join().ok()).filter(|&w| w).count();
        assert_eq!(new, 1, "exactly one publisher set it");
        assert_eq!(list.known_count(), 1);
    }
}
