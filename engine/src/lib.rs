//! Floodgate's BitTorrent engine.
//!
//! The crate is built in floors (see `ARCHITECTURE.md` at the repository root):
//!
//! * bottom: [`bencode`], [`piece_map`], [`hash`], [`ratelimit`], [`types`] and the io_uring edge
//!   ([`uring`]);
//! * above them: [`wire`] (sans-IO), [`picker`], [`metainfo`], [`magnet`], [`store`];
//! * later floors (peer sessions, HTTP, tracker, swarm) stand on these.
//!
//! No module on a lower floor imports one from a higher floor. Only [`uring`] and the io_uring
//! backed parts of [`store`] know about io_uring; [`wire`] knows no sockets.

pub mod bencode;
pub mod gapfill;
pub mod hash;
pub mod http;
pub mod layout;
pub mod magnet;
pub mod metainfo;
pub mod peer;
pub mod percent;
pub mod picker;
pub mod piece_map;
pub mod ratelimit;
pub mod store;
pub mod swarm;
pub mod tracker;
pub mod types;
pub mod uring;
pub mod wire;

pub use types::{BlockRef, InfoHash, PeerId, PieceIndex, BLOCK_SIZE};
