//! One peer connection as a sans-IO state machine, and the pieces it needs (rate meter, request
//! latency, errors).
//!
//! A [`PeerSession`] owns the connection's protocol state (handshake, choke/interest flags, the
//! peer's bitfield, our outstanding requests, the peer's requests to us) and claims blocks in the
//! torrent's shared [`PieceMap`](crate::piece_map::PieceMap) through the
//! [`Picker`](crate::picker::Picker). It never touches a socket, a file or a clock: the driver
//! (an io_uring runtime, or an in-memory test pair) calls it in this order:
//!
//! 1. [`PeerSession::new`] queues our handshake;
//! 2. received bytes go in with [`PeerSession::handle_input`];
//! 3. [`PeerSession::poll_event`] yields what the driver must act on: blocks to store (and
//!    pieces to verify), blocks the peer asked us for, cancels for other sessions (endgame);
//! 4. the driver answers with [`PeerSession::send_block`], [`PeerSession::piece_verified`],
//!    [`PeerSession::cancel_request`], [`PeerSession::set_choking`];
//! 5. [`PeerSession::poll_transmit`] yields the bytes to write, in order (PIECE payloads are the
//!    block `Bytes` themselves, never copied);
//! 6. [`PeerSession::handle_timeout`] runs keep-alives and request timeouts (adaptive, from the
//!    peer's measured request latency: [`RequestLatency`]) when the timer the driver armed for
//!    [`PeerSession::poll_timeout`] fires.
//!
//! Dropping a session releases its block claims and its share of piece availability.
//!
//! [`MetadataFetch`] is the BEP 9 side: assembling an info dictionary (magnet links) from the
//! `ut_metadata` messages sessions pass on as [`PeerEvent::Unhandled`];
//! [`answer_metadata_request`] is the serving side.
//!
//! Policy a driver applies around a session, pure and on passed-in time too: [`SuperSeed`]
//! (which piece BEP 16 reveals to a peer next) and [`unchoke_on_interest`] (an interested peer
//! unchoked at once when a slot is free).

mod error;
mod fleet;
mod latency;
pub mod metadata;
mod metadata_serve;
mod rate;
mod session;
mod super_seed;
mod unchoke;

pub use error::PeerError;
pub use fleet::FleetKey;
pub use latency::RequestLatency;
pub use metadata::{MetadataError, MetadataFetch, OUR_UT_METADATA_ID};
pub use metadata_serve::answer_metadata_request;
pub use rate::RateMeter;
pub use session::{PeerEvent, PeerSession, SessionConfig};
pub use super_seed::{
    first_not_out, RevealView, SuperSeed, SuperSeeding, REVEAL_AHEAD, REVEAL_IDLE, REVEAL_REPEAT,
};
pub use unchoke::unchoke_on_interest;

#[cfg(test)]
mod tests;
