//! gRPC service implementations, one file per service.

pub(crate) mod admin;
pub(crate) mod client;
pub(crate) mod lease;
pub(crate) mod relay;

use crate::convert;
use crate::error::CtlResult;
use crate::state::State;
use floodgate_proto::v1 as pb;

/// Parses a `.torrent` (as BitTorrent clients do: unknown keys allowed) and returns its
/// total length; anything else is a clear `INVALID_ARGUMENT`.
pub(crate) fn torrent_length(torrent: &[u8]) -> CtlResult<u64> {
    floodgate_engine::metainfo::Metainfo::from_bytes_lenient(torrent)
        .map(|m| m.total_length())
        .map_err(|e| crate::error::CtlError::Invalid(format!("torrent: {e}")))
}

/// Piece hashes and torrent of a distribution (shared by relay and client services).
pub(crate) async fn distribution_meta(st: &State, dist_id: &str) -> CtlResult<pb::DistributionMeta> {
    let d = st.db.get_distribution(dist_id).await?;
    Ok(pb::DistributionMeta {
        dist_id: d.id.clone(),
        torrent: convert::decode_bytes(&d.torrent)?,
        piece_hashes: convert::decode_bytes(&d.piece_hashes)?,
        piece_length: d.piece_length.max(0) as u64,
        state: d.state.clone(),
        failure_reason: d.failure_reason.clone(),
    })
}
