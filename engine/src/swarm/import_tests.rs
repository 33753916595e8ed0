//! Pieces from BitTorrent and HTTP meeting on one piece, without sockets: blocks are fed to the
//! torrent as a connection would (`receive_block`, then `on_block`) and imports interleave.

use std::time::{Duration, Instant};

use rand::RngCore;

use super::torrent::{HttpClaim, ImportOutcome, Torrent};
use super::*;
use crate::hash::{sha1, PieceHashes};
use crate::layout::FileSpan;
use crate::piece_map::{PeerSlot, PieceState, Receipt};
use crate::ratelimit::RateChain;
use crate::types::PieceIndex;

const PL: u32 = 64 * 1024; // four blocks a piece

fn setup(pieces: u32) -> (Vec<u8>, std::sync::Arc<Torrent>) {
    setup_with(pieces, PieceHashes::known)
}

/// A torrent over random data whose hash list `hashes` makes from the real hashes.
fn setup_with(
    pieces: u32,
    hashes: impl FnOnce(&[[u8; 20]]) -> PieceHashes,
) -> (Vec<u8>, std::sync::Arc<Torrent>) {
    let len = (pieces * PL) as usize;
    let mut data = vec![0u8; len];
    rand::rng().fill_bytes(&mut data);
    let layout = Layout::new(vec![FileSpan { path: "blob".into(), length: len as u64 }], PL).unwrap();
    let real: Vec<[u8; 20]> = data.chunks(PL as usize).map(sha1).collect();
    let hashes = hashes(&real);
    let add = AddTorrent {
        info_hash: InfoHash([7; 20]),
        store: Store::memory(layout.clone()),
        layout,
        piece_hashes: hashes,
        verified: None,
        session: SessionConfig::default(),
        max_peers: 8,
        upload_slots: 4,
        hash_threads: 1,
        upload_limit: 0,
        download_limit: 0,
        info_bytes: None,
    };
    (data, Torrent::new(add, RateChain::new(vec![]), RateChain::new(vec![])).unwrap())
}

fn piece_bytes(data: &[u8], p: u32) -> &[u8] {
    &data[(p * PL) as usize..((p + 1) * PL) as usize]
}

/// A peer's delivery of block `i` of piece `p`, as a connection does it: the map first, then the
/// torrent's block buffer. Returns the map's receipt.
fn peer_block(t: &Torrent, data: &[u8], slot: PeerSlot, p: u32, i: u32) -> Receipt {
    let block = t.map.block_ref(PieceIndex(p), i);
    let mut cancels = Vec::new();
    let receipt = t.map.receive_block(block, slot, &mut cancels).unwrap();
    if matches!(receipt, Receipt::Accepted | Receipt::PieceComplete) {
        let at = (p * PL + block.offset) as usize;
        t.on_block(slot, block, bytes::Bytes::copy_from_slice(&data[at..at + block.length as usize]));
    }
    receipt
}

fn wait_verified(t: &Torrent, p: u32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if t.map.verified().has(PieceIndex(p)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

#[test]
fn a_claimed_piece_is_never_picked_for_peers() {
    let (_, t) = setup(8);
    assert_eq!(t.claim_for_http(PieceIndex(1), false), HttpClaim::Claimed);
    let peer = crate::piece_map::Bitfield::full(8);
    t.map.add_peer(peer.view()).unwrap();
    let mut picked = Vec::new();
    // Up to every other piece's blocks but one (endgame, which may overlap HTTP, not reached).
    t.picker.pick(peer.view(), PeerSlot(0), 6 * 4 + 3, &mut picked);
    assert!(!t.map.in_endgame());
    assert!(!picked.is_empty());
    assert!(picked.iter().all(|b| b.piece != PieceIndex(1)), "{picked:?}");
    // Asked of a peer, nothing received: HTTP may take it over.
    let busy = picked[0].piece;
    assert_eq!(t.claim_for_http(busy, false), HttpClaim::Overlap);
    // Once the peer delivered a block, only overlap (endgame) may.
    let other = picked.iter().find(|b| b.piece != busy).unwrap().piece;
    let first = picked.iter().find(|b| b.piece == other).copied().unwrap();
    assert_eq!(t.map.receive_block(first, PeerSlot(0), &mut Vec::new()).unwrap(), Receipt::Accepted);
    assert_eq!(t.claim_for_http(other, false), HttpClaim::Unavailable);
    assert_eq!(t.claim_for_http(other, true), HttpClaim::Overlap);
    // A piece another HTTP fetch holds is never taken twice.
    assert_eq!(t.claim_for_http(PieceIndex(1), true), HttpClaim::Unavailable);
    // A released claim is pickable again.
    t.release_http(PieceIndex(1));
    assert_eq!(t.map.piece_state(PieceIndex(1)), PieceState::Missing);
}

#[test]
fn import_after_some_peer_blocks_completes_when_the_peer_finishes() {
    let (data, t) = setup(2);
    let slot = PeerSlot(3);
    // The peer was given blocks 0..4 of piece 0 and delivered two of them.
    let mut claimed = Vec::new();
    while let Some(b) = t.map.claim_block(PieceIndex(0), slot) {
        claimed.push(b);
    }
    assert_eq!(claimed.len(), 4);
    assert_eq!(peer_block(&t, &data, slot, 0, 0), Receipt::Accepted);
    assert_eq!(peer_block(&t, &data, slot, 0, 1), Receipt::Accepted);
    // HTTP brings the whole piece: it takes blocks 2 and 3 over from the peer.
    assert_eq!(t.import_piece(PieceIndex(0), piece_bytes(&data, 0)).unwrap(), ImportOutcome::Busy);
    assert!(wait_verified(&t, 0), "the piece must be hashed and verified once every block is in");
    // The peer's late copies are duplicates and change nothing.
    assert_eq!(peer_block(&t, &data, slot, 0, 2), Receipt::Duplicate);
    assert_eq!(t.map.piece_state(PieceIndex(0)), PieceState::Verified);
    assert_eq!(t.counters.mixed_pieces.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert_eq!(t.store.read_at(0, PL as usize).unwrap().as_ref(), piece_bytes(&data, 0));
}

#[test]
fn peer_blocks_recorded_but_not_yet_buffered_still_complete_the_piece() {
    // The peer's receive reached the map, its `on_block` comes after the import: the peer's
    // delivery is the one that completes the piece and must hash it.
    let (data, t) = setup(1);
    let slot = PeerSlot(1);
    while t.map.claim_block(PieceIndex(0), slot).is_some() {}
    let block = t.map.block_ref(PieceIndex(0), 3);
    assert_eq!(t.map.receive_block(block, slot, &mut Vec::new()).unwrap(), Receipt::Accepted);
    assert_eq!(t.import_piece(PieceIndex(0), piece_bytes(&data, 0)).unwrap(), ImportOutcome::Busy);
    assert!(!t.map.verified().has(PieceIndex(0)));
    let at = (block.offset) as usize;
    t.on_block(slot, block, bytes::Bytes::copy_from_slice(&data[at..at + block.length as usize]));
    assert!(wait_verified(&t, 0));
    t.map.check_invariants().unwrap();
}

#[test]
fn a_whole_http_piece_is_verified_at_once_and_a_bad_one_changes_nothing() {
    let (data, t) = setup(3);
    assert_eq!(t.claim_for_http(PieceIndex(2), false), HttpClaim::Claimed);
    let mut bad = piece_bytes(&data, 2).to_vec();
    bad[100] ^= 1;
    assert_eq!(t.import_piece(PieceIndex(2), &bad).unwrap(), ImportOutcome::HashMismatch);
    assert_eq!(t.map.piece_state(PieceIndex(2)), PieceState::Downloading, "still claimed by HTTP");
    assert_eq!(t.import_piece(PieceIndex(2), piece_bytes(&data, 2)).unwrap(), ImportOutcome::Verified);
    assert!(t.map.verified().has(PieceIndex(2)));
    assert_eq!(t.import_piece(PieceIndex(2), piece_bytes(&data, 2)).unwrap(), ImportOutcome::AlreadyHad);
    // Unclaimed pieces import too (the relay never claims).
    assert_eq!(t.import_piece(PieceIndex(0), piece_bytes(&data, 0)).unwrap(), ImportOutcome::Verified);
    assert!(t.import_piece(PieceIndex(1), &data[..10]).is_err());
    t.map.check_invariants().unwrap();
}

#[test]
fn peers_and_imports_racing_on_every_piece_leave_every_piece_verified() {
    let pieces = 64;
    let (data, t) = setup(pieces);
    let data = std::sync::Arc::new(data);
    let peer = {
        let (t, data) = (t.clone(), data.clone());
        std::thread::spawn(move || {
            let slot = PeerSlot(5);
            for p in 0..pieces {
                let mut mine = Vec::new();
                while let Some(b) = t.map.claim_block(PieceIndex(p), slot) {
                    mine.push(b);
                }
                for b in mine {
                    peer_block(&t, &data, slot, p, b.offset / crate::BLOCK_SIZE);
                }
            }
        })
    };
    for p in (0..pieces).rev() {
        let outcome = t.import_piece(PieceIndex(p), piece_bytes(&data, p)).unwrap();
        assert_ne!(outcome, ImportOutcome::HashMismatch);
    }
    peer.join().unwrap();
    for p in 0..pieces {
        assert!(wait_verified(&t, p), "piece {p} complete but never verified");
    }
    t.map.check_invariants().unwrap();
}

#[test]
fn a_piece_without_a_published_hash_is_neither_picked_nor_imported() {
    let (data, t) = setup_with(4, |_| PieceHashes::unknown(4));
    let peer = crate::piece_map::Bitfield::full(4);
    t.map.add_peer(peer.view()).unwrap();
    let mut picked = Vec::new();
    t.picker.pick(peer.view(), PeerSlot(0), 64, &mut picked);
    assert!(picked.is_empty(), "nothing is pickable before a hash is known: {picked:?}");
    assert!(!t.map.in_endgame(), "withheld pieces are not endgame");
    assert_eq!(t.claim_for_http(PieceIndex(2), true), HttpClaim::Unavailable);
    assert!(matches!(t.import_piece(PieceIndex(2), piece_bytes(&data, 2)), Err(ImportError::HashUnknown(2))));
    // A block a peer sends unasked changes nothing.
    let block = t.map.block_ref(PieceIndex(2), 0);
    assert_eq!(t.map.receive_block(block, PeerSlot(0), &mut Vec::new()).unwrap(), Receipt::Unrequested);
    // The hash arrives: the piece is fetchable, and a wrong hash for it afterwards is refused.
    let h = sha1(piece_bytes(&data, 2));
    assert!(t.publish_hash(PieceIndex(2), h).unwrap());
    assert!(!t.publish_hash(PieceIndex(2), h).unwrap(), "the same hash again");
    assert!(matches!(t.publish_hash(PieceIndex(2), [0; 20]), Err(ImportError::HashConflict(_))));
    t.picker.pick(peer.view(), PeerSlot(0), 64, &mut picked);
    assert!(!picked.is_empty() && picked.iter().all(|b| b.piece == PieceIndex(2)), "{picked:?}");
    for b in &picked {
        let _ = t.map.release_block(*b, PeerSlot(0));
    }
    assert_eq!(t.import_piece(PieceIndex(2), piece_bytes(&data, 2)).unwrap(), ImportOutcome::Verified);
    t.map.check_invariants().unwrap();
}

#[test]
fn an_adopted_piece_is_verified_without_a_write_and_its_hash_published() {
    let (data, t) = setup_with(3, |_| PieceHashes::unknown(3));
    // The producer wrote the bytes itself (as a relay's pull does), then adopts the piece.
    t.store.write_at(u64::from(PL), piece_bytes(&data, 1)).unwrap();
    let h = sha1(piece_bytes(&data, 1));
    assert_eq!(t.adopt_piece(PieceIndex(1), piece_bytes(&data, 1), h).unwrap(), ImportOutcome::Verified);
    assert!(t.map.verified().has(PieceIndex(1)));
    assert_eq!(t.piece_hashes().get(PieceIndex(1)), Some(h));
    assert_eq!(t.adopt_piece(PieceIndex(1), piece_bytes(&data, 1), h).unwrap(), ImportOutcome::AlreadyHad);
    assert!(t.adopt_piece(PieceIndex(1), piece_bytes(&data, 1), [1; 20]).is_err(), "another hash is refused");
    assert!(t.map.is_withheld(PieceIndex(0)) && t.map.is_withheld(PieceIndex(2)));
    t.map.check_invariants().unwrap();
}
