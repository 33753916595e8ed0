//! The quiescent invariant check (`INVARIANTS.md`), used by tests after every operation.

use std::sync::atomic::Ordering;

use super::{PieceMap, COMPLETE, FREE, RECEIVED, VERIFIED, VERIFYING, WANTED};
use crate::types::PieceIndex;

pub(super) fn check(map: &PieceMap) -> Result<(), String> {
    let mut free_total: i64 = 0;
    let mut verified_count = 0u32;
    let mut verified_bytes = 0u64;
    let mut wanted = 0usize;
    for i in 0..map.piece_count {
        let p = PieceIndex(i);
        let ps = &map.pieces[p.get()];
        let state = ps.state.load(Ordering::Acquire);
        let words: Vec<u32> = map.block_words(p).iter().map(|w| w.load(Ordering::Acquire)).collect();
        let n = words.len() as u32;
        let free = words.iter().filter(|&&w| w == FREE).count() as u32;
        let received = words.iter().filter(|&&w| w == RECEIVED).count() as u32;
        free_total += i64::from(free);
        // I8
        if ps.claimed.load(Ordering::Acquire) != n - free {
            return Err(format!(
                "piece {i}: claimed {} but {} blocks not free",
                ps.claimed.load(Ordering::Acquire),
                n - free
            ));
        }
        if ps.received.load(Ordering::Acquire) != received {
            return Err(format!(
                "piece {i}: received counter {} but {received} received",
                ps.received.load(Ordering::Acquire)
            ));
        }
        // I1, I3
        match state {
            WANTED if received < n => {}
            COMPLETE | VERIFYING | VERIFIED if received == n => {}
            s => return Err(format!("piece {i}: state {s} with {received}/{n} blocks received")),
        }
        // I10
        let have = matches!(state, COMPLETE | VERIFYING | VERIFIED);
        if map.have.has(p) != have || map.verified.has(p) != (state == VERIFIED) {
            return Err(format!("piece {i}: have/verified bits disagree with state {state}"));
        }
        if state == VERIFIED {
            verified_count += 1;
            verified_bytes += u64::from(map.piece_size(p));
        }
        // I12 (membership)
        let pickable = state == WANTED && free > 0;
        if pickable {
            wanted += 1;
        }
        if map.availability.read().is_listed(i) != pickable {
            return Err(format!("piece {i}: listed in rarity order != pickable"));
        }
    }
    // I8, I9
    if map.unclaimed.load(Ordering::Acquire) != free_total {
        return Err(format!(
            "unclaimed {} but {free_total} free blocks",
            map.unclaimed.load(Ordering::Acquire)
        ));
    }
    if map.verified_count() != verified_count || map.verified_bytes() != verified_bytes {
        return Err(format!(
            "verified counts {} / {} bytes, expected {verified_count} / {verified_bytes}",
            map.verified_count(),
            map.verified_bytes()
        ));
    }
    // I12 (placement)
    let listed = map.availability.check()?;
    if listed != wanted {
        return Err(format!("{listed} pieces listed, {wanted} pickable"));
    }
    // I5
    let table = map.extras.snapshot_all();
    for (k, &(g, tag)) in table.iter().enumerate() {
        let w = map.blocks[g].load(Ordering::Acquire);
        if w == FREE || w == RECEIVED || w == tag || table[..k].contains(&(g, tag)) {
            return Err(format!("endgame entry ({g}, {tag}) invalid for word {w}"));
        }
    }
    Ok(())
}
