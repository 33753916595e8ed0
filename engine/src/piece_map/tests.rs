//! Piece map tests: unit, proptest over random operation sequences, threads.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

use proptest::prelude::*;

use super::*;
use crate::picker::{Picker, PickerConfig};

const KB: u64 = 1024;

fn map(total: u64, piece_len: u32) -> PieceMap {
    PieceMap::new(&Layout::single("f", total, piece_len).unwrap())
}

fn claim_all(m: &PieceMap, p: u32, slot: PeerSlot) -> Vec<BlockRef> {
    std::iter::from_fn(|| m.claim_block(PieceIndex(p), slot)).collect()
}

#[test]
fn geometry_and_block_checks() {
    let m = map(100 * KB, 40 * 1024); // pieces 40, 40, 20 KiB
    assert_eq!(m.piece_count(), 3);
    assert_eq!(m.block_count(PieceIndex(0)), 3);
    assert_eq!(m.block_count(PieceIndex(2)), 2);
    assert_eq!(m.block_ref(PieceIndex(0), 2).length, 8 * 1024);
    assert_eq!(m.block_ref(PieceIndex(2), 1).length, 4 * 1024);
    assert_eq!(m.unclaimed_blocks(), 8);
    assert_eq!(m.piece(3), Err(PieceMapError::PieceOutOfRange { index: 3, count: 3 }));
    let mut c = Vec::new();
    for bad in [
        BlockRef { piece: PieceIndex(0), offset: 1, length: BLOCK_SIZE },
        BlockRef { piece: PieceIndex(0), offset: 0, length: 1 },
        BlockRef { piece: PieceIndex(0), offset: 3 * BLOCK_SIZE, length: BLOCK_SIZE },
        BlockRef { piece: PieceIndex(2), offset: BLOCK_SIZE, length: BLOCK_SIZE },
    ] {
        assert_eq!(m.receive_block(bad, PeerSlot(0), &mut c), Err(PieceMapError::BadBlock { block: bad }));
        assert!(m.release_block(bad, PeerSlot(0)).is_err());
    }
    let out = BlockRef { piece: PieceIndex(9), offset: 0, length: BLOCK_SIZE };
    assert!(matches!(m.receive_block(out, PeerSlot(0), &mut c), Err(PieceMapError::PieceOutOfRange { .. })));
    assert_eq!(m.claim_block(PieceIndex(9), PeerSlot(0)), None);
    m.check_invariants().unwrap();
}

#[test]
fn piece_life_cycle() {
    let m = map(100 * KB, 40 * 1024);
    let (a, b) = (PeerSlot(1), PeerSlot(2));
    let p = PieceIndex(0);
    assert_eq!(m.piece_state(p), PieceState::Missing);
    let blocks = claim_all(&m, 0, a);
    assert_eq!(blocks.len(), 3);
    assert_eq!(m.piece_state(p), PieceState::Downloading);
    assert_eq!(m.claim_block(p, b), None, "no block twice");
    let mut c = Vec::new();
    assert_eq!(m.receive_block(blocks[0], b, &mut c), Ok(Receipt::Unrequested));
    assert_eq!(m.receive_block(blocks[0], a, &mut c), Ok(Receipt::Accepted));
    assert_eq!(m.receive_block(blocks[0], a, &mut c), Ok(Receipt::Duplicate));
    assert_eq!(m.release_block(blocks[1], b), Ok(false));
    assert_eq!(m.release_block(blocks[1], a), Ok(true));
    assert_eq!(m.claim_block(p, b), Some(blocks[1]));
    assert_eq!(m.receive_block(blocks[1], b, &mut c), Ok(Receipt::Accepted));
    assert!(matches!(
        m.begin_verify(p),
        Err(PieceMapError::WrongState { state: PieceState::Downloading, .. })
    ));
    assert_eq!(m.receive_block(blocks[2], a, &mut c), Ok(Receipt::PieceComplete));
    assert!(c.is_empty());
    assert_eq!(m.piece_state(p), PieceState::Complete);
    assert!(m.have().has(p) && !m.verified().has(p));
    m.check_invariants().unwrap();

    // Hash failure: back to missing, every block claimable again.
    m.begin_verify(p).unwrap();
    assert!(m.begin_verify(p).is_err(), "one hasher per piece");
    m.mark_failed(p).unwrap();
    assert_eq!(m.piece_state(p), PieceState::Missing);
    assert!(!m.have().has(p));
    m.check_invariants().unwrap();
    for blk in claim_all(&m, 0, a) {
        m.receive_block(blk, a, &mut c).unwrap();
    }
    m.begin_verify(p).unwrap();
    m.mark_verified(p).unwrap();
    assert_eq!((m.verified_count(), m.verified_bytes()), (1, 40 * KB));
    assert_eq!(m.claim_block(p, b), None, "a verified piece is never re-requested");
    assert!(m.mark_failed(p).is_err());
    assert!(!m.is_complete());
    m.check_invariants().unwrap();
}

#[test]
fn availability_counts_and_underflow() {
    let m = map(100 * KB, 40 * 1024);
    assert!(m.peer_has(3).is_err());
    m.peer_has(1).unwrap();
    assert_eq!(m.availability(PieceIndex(1)), 1);
    m.peer_lost(1).unwrap();
    assert_eq!(m.peer_lost(1), Err(PieceMapError::AvailabilityUnderflow { piece: PieceIndex(1) }));
    let mut bits = Bitfield::new(3);
    bits.set(PieceIndex(0));
    bits.set(PieceIndex(2));
    m.add_peer(bits.view()).unwrap();
    m.add_peer(Bitfield::full(3).view()).unwrap();
    assert_eq!([0, 1, 2].map(|i| m.availability(PieceIndex(i))), [2, 1, 2]);
    m.remove_peer(bits.view()).unwrap();
    m.remove_peer(bits.view()).unwrap();
    // Piece 0 is at 0 now: the whole removal is refused and nothing changes.
    assert!(m.remove_peer(Bitfield::full(3).view()).is_err());
    assert_eq!([0, 1, 2].map(|i| m.availability(PieceIndex(i))), [0, 1, 0]);
    assert!(matches!(m.add_peer(Bitfield::new(4).view()), Err(PieceMapError::BitfieldLength { .. })));
    m.check_invariants().unwrap();
}

#[test]
fn resume_from_verified_bitfield() {
    let layout = Layout::single("f", 100 * KB, 40 * 1024).unwrap();
    let mut done = Bitfield::new(3);
    done.set(PieceIndex(2));
    let m = PieceMap::with_verified(&layout, done.view()).unwrap();
    assert_eq!((m.verified_count(), m.verified_bytes(), m.unclaimed_blocks()), (1, 20 * KB, 6));
    assert_eq!(m.piece_state(PieceIndex(2)), PieceState::Verified);
    assert_eq!(m.claim_block(PieceIndex(2), PeerSlot(0)), None);
    m.check_invariants().unwrap();
    assert!(PieceMap::with_verified(&layout, Bitfield::new(2).view()).is_err());
}

#[test]
fn withheld_pieces_are_not_picked_and_do_not_start_endgame() {
    let m = map(100 * KB, 40 * 1024); // pieces 40, 40, 20 KiB
    assert_eq!(m.withhold(PieceIndex(1)), Ok(true));
    assert_eq!(m.withhold(PieceIndex(1)), Ok(false), "once");
    assert!(m.is_withheld(PieceIndex(1)));
    assert_eq!(m.claim_block(PieceIndex(1), PeerSlot(0)), None, "no peer gets a withheld block");
    m.check_invariants().unwrap();
    claim_all(&m, 0, PeerSlot(0));
    claim_all(&m, 2, PeerSlot(0));
    assert_eq!(m.unclaimed_blocks(), 0);
    assert!(!m.in_endgame(), "a withheld piece is still to come: not endgame");
    assert_eq!(m.release_withheld(PieceIndex(1)), Ok(true));
    assert_eq!(m.release_withheld(PieceIndex(1)), Ok(false));
    assert!(!m.is_withheld(PieceIndex(1)));
    assert_eq!(m.unclaimed_blocks(), 3, "its blocks are free again");
    m.check_invariants().unwrap();
    assert_eq!(claim_all(&m, 1, PeerSlot(1)).len(), 3);
    assert!(m.in_endgame());
    // A piece no longer wanted is not withheld.
    let v = map(32 * KB, 32 * 1024);
    let blocks = claim_all(&v, 0, PeerSlot(0));
    for b in blocks {
        v.receive_block(b, PeerSlot(0), &mut Vec::new()).unwrap();
    }
    assert_eq!(v.withhold(PieceIndex(0)), Ok(false));
    assert!(v.withhold(PieceIndex(5)).is_err());
}

#[test]
fn endgame_duplicates_cancel_and_promote() {
    let m = map(32 * KB, 32 * 1024); // one piece, two blocks
    let (a, b, c) = (PeerSlot(0), PeerSlot(1), PeerSlot(2));
    let blocks = claim_all(&m, 0, a);
    assert!(m.in_endgame());
    let mut out = Vec::new();
    assert_eq!(m.claim_duplicates(PieceIndex(0), b, 2, 8, &mut out), 2);
    assert_eq!(m.claim_duplicates(PieceIndex(0), c, 2, 8, &mut out), 0, "cap of 2 requesters");
    assert_eq!(m.claim_duplicates(PieceIndex(0), b, 3, 8, &mut out), 0, "never twice for one slot");
    m.check_invariants().unwrap();
    let mut cancels = Vec::new();
    assert_eq!(m.receive_block(blocks[0], b, &mut cancels), Ok(Receipt::Accepted));
    assert_eq!(cancels, vec![a]);
    cancels.clear();
    assert_eq!(m.receive_block(blocks[0], a, &mut cancels), Ok(Receipt::Duplicate));
    // The owner of block 1 goes away: b inherits the request.
    assert_eq!(m.release_block(blocks[1], a), Ok(true));
    assert_eq!(m.unclaimed_blocks(), 0);
    m.check_invariants().unwrap();
    assert_eq!(m.receive_block(blocks[1], b, &mut cancels), Ok(Receipt::PieceComplete));
    assert!(cancels.is_empty());
    m.check_invariants().unwrap();
}

#[derive(Clone, Debug)]
enum Op {
    Claim(u32, u16),
    Dup(u32, u16),
    Receive(u32, u16),
    Release(u32, u16),
    BeginVerify(u32),
    Verified(u32),
    Failed(u32),
    Has(u32),
    Lost(u32),
}

fn op() -> impl Strategy<Value = Op> {
    // Indices run one past the end to exercise the range checks.
    let p = 0u32..6;
    let blk = 0u32..16;
    let s = 0u16..3;
    prop_oneof![
        4 => (p.clone(), s.clone()).prop_map(|(p, s)| Op::Claim(p, s)),
        1 => (p.clone(), s.clone()).prop_map(|(p, s)| Op::Dup(p, s)),
        4 => (blk.clone(), s.clone()).prop_map(|(b, s)| Op::Receive(b, s)),
        1 => (blk, s).prop_map(|(b, s)| Op::Release(b, s)),
        1 => p.clone().prop_map(Op::BeginVerify),
        1 => p.clone().prop_map(Op::Verified),
        1 => p.clone().prop_map(Op::Failed),
        1 => p.clone().prop_map(Op::Has),
        1 => p.prop_map(Op::Lost),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn invariants_hold_under_random_operations(ops in proptest::collection::vec(op(), 1..120)) {
        // 5 pieces of 48 KiB (3 blocks), the last 8 KiB (1 block): 13 blocks.
        let m = map(4 * 48 * KB + 8 * KB, 48 * 1024);
        let mut cancels = Vec::new();
        let mut out = Vec::new();
        let mut verified_before = 0;
        for op in ops {
            match op {
                Op::Claim(p, s) => {
                    let state = (p < 5).then(|| m.piece_state(PieceIndex(p)));
                    let got = m.claim_block(PieceIndex(p), PeerSlot(s));
                    if got.is_some() {
                        prop_assert!(matches!(state, Some(PieceState::Missing | PieceState::Downloading)));
                    }
                }
                Op::Dup(p, s) => if p < 5 { m.claim_duplicates(PieceIndex(p), PeerSlot(s), 2, 4, &mut out); },
                Op::Receive(b, s) | Op::Release(b, s) => {
                    let (piece, i) = (b / 3, b % 3);
                    let block = if piece < 5 && i < m.block_count(PieceIndex(piece)) {
                        m.block_ref(PieceIndex(piece), i)
                    } else {
                        BlockRef { piece: PieceIndex(piece), offset: i * BLOCK_SIZE, length: BLOCK_SIZE }
                    };
                    let _ = if matches!(op, Op::Receive(..)) {
                        m.receive_block(block, PeerSlot(s), &mut cancels).map(|_| ())
                    } else {
                        m.release_block(block, PeerSlot(s)).map(|_| ())
                    };
                    prop_assert!(!cancels.contains(&PeerSlot(s)), "never cancel the sender");
                    cancels.clear();
                }
                Op::BeginVerify(p) => { let _ = m.begin_verify(PieceIndex(p)); }
                Op::Verified(p) => { let _ = m.mark_verified(PieceIndex(p)); }
                Op::Failed(p) => { let _ = m.mark_failed(PieceIndex(p)); }
                Op::Has(p) => { let _ = m.peer_has(p); }
                Op::Lost(p) => { let _ = m.peer_lost(p); }
            }
            if let Err(e) = m.check_invariants() {
                prop_assert!(false, "{}", e);
            }
            prop_assert!(m.verified_count() >= verified_before, "verified count only grows");
            verified_before = m.verified_count();
        }
    }
}

/// Several threads pick, receive and verify concurrently (a seed peer each). Every block must be
/// accepted exactly once per download attempt, claimed exactly once outside endgame, and the
/// map must end complete with exact counts.
fn run_threads(threads: u16, endgame_cap: u32) -> u32 {
    let layout = Layout::single("f", 300 * 48 * KB + 5 * KB, 48 * 1024).unwrap();
    let map = Arc::new(PieceMap::new(&layout));
    let picker = Picker::with_config(map.clone(), PickerConfig { endgame_cap });
    let n = map.piece_count();
    let seed = Bitfield::full(n);
    for _ in 0..threads {
        map.add_peer(seed.view()).unwrap();
    }
    let total_blocks = (0..n).map(|p| map.block_count(PieceIndex(p)) as usize).sum::<usize>();
    let claims: Vec<AtomicU32> = (0..total_blocks).map(|_| AtomicU32::new(0)).collect();
    let accepted: Vec<AtomicU32> = (0..total_blocks).map(|_| AtomicU32::new(0)).collect();
    let failed_once: Vec<AtomicBool> = (0..n).map(|_| AtomicBool::new(false)).collect();
    let endgame_picks = AtomicU32::new(0);
    let global = |b: BlockRef| b.piece.get() * 3 + (b.offset / BLOCK_SIZE) as usize;
    std::thread::scope(|s| {
        for t in 0..threads {
            let (map, picker, seed) = (&map, &picker, &seed);
            let (claims, accepted, failed_once, endgame_picks) =
                (&claims, &accepted, &failed_once, &endgame_picks);
            s.spawn(move || {
                let slot = PeerSlot(t);
                // Blocks are received three rounds after they are picked, so requests overlap
                // and endgame duplicates really happen.
                let (mut queue, mut cancels) = (VecDeque::new(), Vec::new());
                while !map.is_complete() {
                    let mut out = Vec::new();
                    let pick = picker.pick(seed.view(), slot, 5, &mut out);
                    if pick.endgame {
                        endgame_picks.fetch_add(1, Ordering::Relaxed);
                    }
                    for &b in &out {
                        claims[global(b)].fetch_add(1, Ordering::Relaxed);
                    }
                    if out.is_empty() {
                        std::thread::yield_now();
                    }
                    queue.push_back(out);
                    let pending =
                        if queue.len() > 3 { queue.pop_front().unwrap_or_default() } else { Vec::new() };
                    for &b in &pending {
                        match map.receive_block(b, slot, &mut cancels).unwrap() {
                            Receipt::Accepted => {
                                accepted[global(b)].fetch_add(1, Ordering::Relaxed);
                            }
                            Receipt::PieceComplete => {
                                accepted[global(b)].fetch_add(1, Ordering::Relaxed);
                                map.begin_verify(b.piece).unwrap();
                                // Every 7th piece fails its first hash check.
                                if b.piece.0 % 7 == 0
                                    && !failed_once[b.piece.get()].swap(true, Ordering::Relaxed)
                                {
                                    map.mark_failed(b.piece).unwrap();
                                } else {
                                    map.mark_verified(b.piece).unwrap();
                                }
                            }
                            Receipt::Duplicate | Receipt::Unrequested => {}
                        }
                        cancels.clear();
                    }
                }
            });
        }
    });
    map.check_invariants().unwrap();
    assert!(map.is_complete());
    assert_eq!(map.verified_bytes(), layout.total_length());
    assert_eq!(map.verified_count(), n);
    for (g, a) in accepted.iter().enumerate() {
        let attempts = if (g / 3) % 7 == 0 { 2 } else { 1 };
        assert_eq!(a.load(Ordering::Relaxed), attempts, "block {g} accepted once per attempt");
        // With a cap of 1 there are no duplicate requests at all, so every pick is a claim.
        if endgame_cap <= 1 {
            assert_eq!(claims[g].load(Ordering::Relaxed), attempts, "block {g} claimed once per attempt");
        } else {
            assert!(claims[g].load(Ordering::Relaxed) >= attempts, "block {g}");
        }
    }
    endgame_picks.load(Ordering::Relaxed)
}

#[test]
fn threads_claim_receive_verify_without_endgame() {
    run_threads(4, 1);
}

#[test]
fn threads_claim_receive_verify_with_endgame() {
    let endgame_picks: u32 = (0..3).map(|_| run_threads(3, 3)).sum();
    assert!(endgame_picks > 0, "the runs reached endgame");
}
