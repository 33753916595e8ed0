//! Floodgate's BitTorrent engine.
//!
//! The crate is built in floors (see `ARCHITECTURE.md` at the repository root):
//!
//! * bottom: [`bencode`], [`piece_map`], [`hash`], [`ratelimit`], [`layout`], [`types`],
//!   [`percent`] and the io_uring edge ([`uring`]);
//! * above them: [`wire`] (sans-IO), [`picker`], [`metainfo`], [`magnet`], [`store`];
//! * then [`peer`] (the sans-IO session state machine), [`http`] (sans-IO heads, ranges and
//!   URLs), [`tracker`] and [`gapfill`] (when and what to fetch over HTTP, sans-IO);
//! * top: [`swarm`], the live engine over io_uring TCP.
//!
//! No module on a lower floor imports one from a higher floor (a test, `floors.rs`, checks the
//! `use crate::` lines). Only [`uring`], the io_uring backed parts of [`store`] and [`swarm`]
//! know about io_uring; [`wire`] and [`peer`] know no sockets. `unsafe` is denied everywhere but
//! [`uring`].

#![deny(unsafe_code)]

pub mod bencode;
#[cfg(test)]
mod floors;
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
#[allow(unsafe_code)]
pub mod uring;
pub mod wire;

pub use types::{BlockRef, InfoHash, PeerId, PieceIndex, BLOCK_SIZE};
