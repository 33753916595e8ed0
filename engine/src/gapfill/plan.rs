//! Which pieces the next HTTP request takes: pieces no connected peer has first, then the
//! rarest; pieces peers were asked for but have sent nothing of come next (a slow peer's deep
//! request queue must not hold the pieces HTTP could bring); one BitTorrent has partly
//! delivered only when overlapping (full level, endgame); and as many
//! adjacent missing pieces as fit in one request, so a request carries megabytes, not one piece
//! (one request per piece is what made libtorrent's web seeds slow).

use crate::piece_map::{PieceMap, PieceState, IMPORT_SLOT};
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
/// pieces (nobody has claimed a block), then pieces peers were asked for and sent nothing of;
/// with `overlap` and nothing else left, any piece peers are downloading (endgame). Never one
/// HTTP has in flight (`in_flight`, the caller's record, or an HTTP claim in the map). `None`
/// when nothing qualifies. The caller claims the
/// pieces; a racing claim may take some first, so it trims the run where its claims fail.
pub fn plan_run(
    map: &PieceMap,
    max_bytes: u64,
    overlap: bool,
    in_flight: impl Fn(PieceIndex) -> bool,
) -> Option<PlannedRun> {
    let n = map.piece_count();
    // Tier 0: missing; 1: requested from peers, nothing received; 2: partly received.
    let tier = |p: PieceIndex| match map.piece_state(p) {
        _ if in_flight(p) => None,
        PieceState::Missing => Some(0),
        PieceState::Downloading if map.is_held_by(p, IMPORT_SLOT) => None,
        PieceState::Downloading if map.received_blocks(p) == 0 => Some(1),
        PieceState::Downloading if overlap => Some(2),
        _ => None,
    };
    let (first, max_tier) = (0..n)
        .map(PieceIndex)
        .filter_map(|p| tier(p).map(|t| (p, t)))
        .min_by_key(|&(p, t)| (t, map.availability(p), p.0))?;
    let candidate = |p: PieceIndex| tier(p).is_some_and(|t| t <= max_tier.max(1));
    let mut bytes = u64::from(map.piece_size(first));
    let mut count = 1;
    while first.0 + count < n {
        let next = PieceIndex(first.0 + count);
        let size = u64::from(map.piece_size(next));
        if bytes + size > max_bytes || !candidate(next) {
            break;
        }
        bytes += size;
        count += 1;
    }
    Some(PlannedRun { first, count })
}
