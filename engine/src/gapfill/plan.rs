//! Which pieces the next HTTP request takes: pieces no connected peer has first, then the
//! rarest, never one BitTorrent has in flight (unless overlapping in the endgame), and as many
//! adjacent missing pieces as fit in one request, so a request carries megabytes, not one piece
//! (one request per piece is what made libtorrent's web seeds slow).

use crate::piece_map::{PieceMap, PieceState};
use crate::types::PieceIndex;

/// A run of consecutive pieces for one Range request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlannedRun {
    /// First piece.
    pub first: PieceIndex,
    /// Pieces in the run (≥ 1).
    pub count: u32,
}

/// Plans the next run of at most `max_bytes` (at least one piece). Candidates are `Missing`
/// pieces (nobody has claimed a block); with `overlap` and no missing piece left, pieces peers
/// are downloading qualify too (endgame). `None` when nothing qualifies. The caller claims the
/// pieces; a racing claim may take some first, so it trims the run where its claims fail.
pub fn plan_run(map: &PieceMap, max_bytes: u64, overlap: bool) -> Option<PlannedRun> {
    let n = map.piece_count();
    let candidate = |p: PieceIndex, overlap: bool| match map.piece_state(p) {
        PieceState::Missing => true,
        PieceState::Downloading => overlap,
        _ => false,
    };
    let best = |overlap: bool| {
        (0..n).map(PieceIndex).filter(|&p| candidate(p, overlap)).min_by_key(|&p| (map.availability(p), p.0))
    };
    let (first, overlap) = match best(false) {
        Some(p) => (p, false),
        None if overlap => (best(true)?, true),
        None => return None,
    };
    let mut bytes = u64::from(map.piece_size(first));
    let mut count = 1;
    while first.0 + count < n {
        let next = PieceIndex(first.0 + count);
        let size = u64::from(map.piece_size(next));
        if bytes + size > max_bytes || !candidate(next, overlap) {
            break;
        }
        bytes += size;
        count += 1;
    }
    Some(PlannedRun { first, count })
}
