//! gRPC service implementations, one file per service.

pub mod admin;
pub mod client;
pub mod lease;
pub mod relay;

use crate::convert;
use crate::error::CtlResult;
use crate::state::State;
use floodgate_proto::v1 as pb;

/// Piece hashes and torrent of a distribution (shared by relay and client services).
pub async fn distribution_meta(st: &State, dist_id: &str) -> CtlResult<pb::DistributionMeta> {
    let d = st.db.get_distribution(dist_id).await?;
    Ok(pb::DistributionMeta {
        dist_id: d.id.clone(),
        torrent: convert::decode_bytes(&d.torrent)?,
        piece_hashes: convert::decode_bytes(&d.piece_hashes)?,
        piece_length: d.piece_length.max(0) as u64,
    })
}
