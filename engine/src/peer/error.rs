//! Why a peer connection was closed.

use crate::piece_map::{BitfieldError, PieceMapError};
use crate::wire::WireError;

/// Why a session ended the connection. Each is logged with the peer's address by the driver.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// The byte stream broke the wire protocol.
    #[error("wire protocol: {0}")]
    Wire(#[from] WireError),
    /// The handshake named another torrent.
    #[error("handshake for another torrent")]
    WrongInfoHash,
    /// The peer is ourselves (same peer id).
    #[error("connected to ourselves")]
    SelfConnection,
    /// A BITFIELD that does not fit the torrent, or sent twice / too late.
    #[error("bad bitfield: {0}")]
    Bitfield(#[from] BitfieldError),
    /// A message that is valid alone but not here (e.g. BITFIELD after other messages, BEP 6
    /// messages without the fast extension).
    #[error("protocol violation: {0}")]
    Protocol(&'static str),
    /// A piece index or block outside the torrent.
    #[error("bad piece reference: {0}")]
    Piece(#[from] PieceMapError),
    /// A fleet-only swarm (a provisional swarm) and the peer did not prove it is a member.
    #[error("peer is not a member of this fleet-only swarm")]
    NotInFleet,
    /// Nothing arrived for too long.
    #[error("peer idle for too long")]
    Idle,
    /// The socket failed.
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
    /// The session was closed and should not be used.
    #[error("session closed")]
    Closed,
}
