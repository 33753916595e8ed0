//! BitTorrent HTTP trackers (BEP 3, 23, 7, 48): a sans-IO core and the built-in tracker's
//! accept loop.
//!
//! * [`AnnounceRequest`] builds announce URLs; [`AnnounceQuery`] parses them on the server side.
//! * [`parse_announce_response`] reads a tracker's bencoded answer (any key order, bounded);
//!   [`AnnounceResponse::encode`] writes one (the server's encoder).
//! * [`TrackerServer`] is the tracker's state: `handle(target, peer_ip, now)` answers `/announce`
//!   and `/scrape` with a status and a body, so any HTTP server can route to it.
//! * [`TrackerRunner`]: a standalone accept loop serving a [`TrackerServer`].
//!
//! Announcing is I/O and lives with the project's one HTTP client: `floodgate_fetch::announce`
//! sends [`AnnounceRequest::url`] and parses the body with [`parse_announce_response`].
//!
//! Nothing parsed from the network panics: every parser returns a typed error and bounds what it
//! keeps ([`MAX_RESPONSE_BYTES`], [`MAX_PEERS`]).

mod error;
mod query;
mod request;
mod response;
mod runner;
mod server;

#[cfg(test)]
mod tests;

pub use crate::percent::{percent_decode, percent_encode};
pub use error::{QueryError, ResponseError};
pub use query::{AnnounceQuery, ScrapeQuery, MAX_SCRAPE_HASHES};
pub use request::{AnnounceRequest, Event};
pub use response::{encode_failure, parse_announce_response, AnnounceResponse};
pub use runner::TrackerRunner;
pub use server::{TrackerConfig, TrackerServer};

/// Largest tracker response body read or parsed, in bytes.
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;
/// Most peers kept from one announce response (the rest are dropped).
pub const MAX_PEERS: usize = 10_000;
