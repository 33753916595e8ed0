//! Picker tests: rarest-first, partial first, priorities, sequential, endgame.

use std::collections::HashSet;

use super::*;
use crate::layout::Layout;
use crate::piece_map::{Bitfield, Receipt};

/// `pieces` pieces of 2 blocks each.
fn setup(pieces: u32) -> (Arc<PieceMap>, Picker) {
    let layout = Layout::single("f", u64::from(pieces) * 32 * 1024, 32 * 1024).unwrap();
    let map = Arc::new(PieceMap::new(&layout));
    let picker = Picker::new(map.clone());
    (map, picker)
}

fn bits(n: u32, pieces: impl IntoIterator<Item = u32>) -> Bitfield {
    let mut b = Bitfield::new(n);
    for p in pieces {
        b.set(PieceIndex(p));
    }
    b
}

#[test]
fn picks_a_rarest_piece_the_peer_has() {
    for round in 0..50u32 {
        let (map, picker) = setup(200);
        // Random availability from random peers.
        let peers: Vec<Bitfield> =
            (0..6).map(|_| bits(200, (0..200).filter(|_| rand::random_bool(0.5)))).collect();
        for p in &peers {
            map.add_peer(p.view()).unwrap();
        }
        let peer = &peers[(round % 6) as usize];
        let Some(min) = peer.view().iter_ones().map(|p| map.availability(p)).min() else { continue };
        let mut out = Vec::new();
        assert_eq!(picker.pick(peer.view(), PeerSlot(0), 2, &mut out).blocks, 2);
        assert!(peer.has(out[0].piece));
        assert_eq!(map.availability(out[0].piece), min, "round {round}");
        assert_eq!(out[1].piece, out[0].piece, "whole piece before the next");
    }
}

#[test]
fn ties_are_broken_at_random() {
    let mut first = HashSet::new();
    for _ in 0..30 {
        let (map, picker) = setup(100);
        let seed = Bitfield::full(100);
        map.add_peer(seed.view()).unwrap();
        let mut out = Vec::new();
        picker.pick(seed.view(), PeerSlot(0), 1, &mut out);
        first.insert(out[0].piece);
    }
    assert!(first.len() > 5, "{first:?}");
}

#[test]
fn partial_pieces_come_first_then_rarest() {
    let (map, picker) = setup(20);
    let seed = Bitfield::full(20);
    map.add_peer(seed.view()).unwrap();
    map.add_peer(bits(20, (0..20).filter(|&p| p != 9)).view()).unwrap(); // 9 is rarest
    assert!(map.claim_block(PieceIndex(5), PeerSlot(3)).is_some()); // 5 is partial
    let mut out = Vec::new();
    picker.pick(seed.view(), PeerSlot(1), 2, &mut out);
    assert_eq!(out.iter().map(|b| b.piece.0).collect::<Vec<_>>(), vec![5, 9]);
    assert!(map.check_invariants().is_ok());
}

#[test]
fn priorities_high_first_skip_never() {
    let (map, picker) = setup(20);
    let seed = Bitfield::full(20);
    map.add_peer(seed.view()).unwrap();
    picker.set_priority(17, Priority::High).unwrap();
    picker.set_priority(4, Priority::High).unwrap();
    assert!(picker.set_priority(20, Priority::High).is_err());
    for p in 0..20 {
        if p != 17 && p != 4 && p != 11 {
            picker.set_priority(p, Priority::Skip).unwrap();
        }
    }
    let mut out = Vec::new();
    assert_eq!(picker.pick(seed.view(), PeerSlot(0), 100, &mut out).blocks, 6);
    assert_eq!(out.iter().map(|b| b.piece.0).collect::<Vec<_>>(), vec![17, 17, 4, 4, 11, 11]);
    picker.set_priority(4, Priority::Normal).unwrap();
    assert_eq!(picker.priority(PieceIndex(4)), Priority::Normal);
    assert_eq!(picker.priority(PieceIndex(0)), Priority::Skip);
}

#[test]
fn sequential_from_cursor() {
    let (map, picker) = setup(200);
    let peer = bits(200, (0..200).filter(|&p| p != 131));
    map.add_peer(peer.view()).unwrap();
    picker.set_sequential(Some(PieceIndex(128)));
    let mut out = Vec::new();
    picker.pick(peer.view(), PeerSlot(0), 6, &mut out);
    let pieces: Vec<u32> = out.iter().map(|b| b.piece.0).collect();
    assert_eq!(pieces, vec![128, 128, 129, 129, 130, 130]);
    out.clear();
    picker.pick(peer.view(), PeerSlot(0), 2, &mut out);
    assert_eq!(out.iter().map(|b| b.piece.0).collect::<Vec<_>>(), vec![132, 132], "131 missing at the peer");
    picker.set_sequential(None);
    out.clear();
    picker.pick(peer.view(), PeerSlot(0), 1, &mut out);
    assert!(out[0].piece.0 < 128 || out[0].piece.0 > 132);
}

#[test]
fn endgame_duplicates_with_cap_and_cancels() {
    let (map, picker) = setup(2);
    let seed = Bitfield::full(2);
    map.add_peer(seed.view()).unwrap();
    let mut a_out = Vec::new();
    let pick = picker.pick(seed.view(), PeerSlot(0), 10, &mut a_out);
    assert_eq!(pick, Pick { blocks: 4, endgame: false });
    assert!(map.in_endgame());
    let mut b_out = Vec::new();
    let pick = picker.pick(seed.view(), PeerSlot(1), 10, &mut b_out);
    assert_eq!(pick, Pick { blocks: 4, endgame: true });
    let mut c_out = Vec::new();
    assert_eq!(picker.pick(seed.view(), PeerSlot(2), 10, &mut c_out).blocks, 0, "cap 2");
    let mut cancels = Vec::new();
    for &b in &b_out {
        let r = map.receive_block(b, PeerSlot(1), &mut cancels).unwrap();
        assert!(matches!(r, Receipt::Accepted | Receipt::PieceComplete));
        assert_eq!(cancels, vec![PeerSlot(0)], "cancel the other requester");
        cancels.clear();
    }
    for &b in &a_out {
        assert_eq!(map.receive_block(b, PeerSlot(0), &mut cancels), Ok(Receipt::Duplicate));
    }
    assert!(map.check_invariants().is_ok());
}

#[test]
fn refuses_mismatched_bitfield_and_zero_max() {
    let (map, picker) = setup(10);
    map.add_peer(Bitfield::full(10).view()).unwrap();
    let mut out = Vec::new();
    assert_eq!(picker.pick(Bitfield::full(11).view(), PeerSlot(0), 4, &mut out).blocks, 0);
    assert_eq!(picker.pick(Bitfield::full(10).view(), PeerSlot(0), 0, &mut out).blocks, 0);
    assert_eq!(picker.pick(Bitfield::new(10).view(), PeerSlot(0), 4, &mut out).blocks, 0);
    assert!(out.is_empty());
}
