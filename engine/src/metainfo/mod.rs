//! BitTorrent v1 metainfo (`.torrent` files, BEP 3, with BEP 12 `announce-list`, BEP 19
//! `url-list` and BEP 27 `private`).
//!
//! [`Metainfo::from_bytes`] parses and validates a `.torrent`; [`MetainfoBuilder`] writes one.
//! The `info` dictionary is kept byte for byte as it appeared, so the info-hash is the SHA-1 of
//! exactly those bytes and [`Metainfo::to_bytes`] never changes it.
//!
//! # Strict and lenient parsing
//! BEP 3 requires sorted dictionary keys, and [`Metainfo::from_bytes`] insists on it. Real files
//! are sometimes sloppier outside `info` (hand-edited tracker lists, old tools), and libtorrent
//! accepts them. [`Metainfo::from_bytes_lenient`] does the same: outside `info` keys may be in any
//! order and malformed optional fields (`announce`, `announce-list`, `url-list`, `comment`,
//! `created by`, `creation date`) are skipped instead of refused. Inside `info` both modes are
//! strict, since that is what the info-hash covers and what peers exchange.
//!
//! Unknown keys are ignored; inside `info` they survive [`Metainfo::to_bytes`] (the raw bytes
//! are kept), outside `info` they are dropped.

mod builder;
mod error;
mod parse;
mod path;
mod provisional;

#[cfg(test)]
mod tests;

use std::fmt;

use crate::bencode::Encoder;
use crate::layout::{FileSpan, Layout};
use crate::types::{InfoHash, PieceIndex};

pub use builder::{piece_length_for, MetainfoBuilder};
pub use error::{MetainfoError, PathError};
pub use provisional::{provisional_info_hash, url_file_name, url_task_id};

/// Largest piece length accepted: 256 MiB.
pub const MAX_PIECE_LENGTH: u32 = 256 << 20;

/// A parsed and validated v1 `.torrent`.
///
/// Everything derived from `info` is read through methods, so it cannot drift from the
/// info-hash; the fields outside `info` are public and may be edited before [`Self::to_bytes`].
#[derive(Clone, PartialEq, Eq)]
pub struct Metainfo {
    info_hash: InfoHash,
    info_bytes: Vec<u8>,
    name: String,
    pieces: Vec<[u8; 20]>,
    layout: Layout,
    multi_file: bool,
    private: bool,
    /// The main tracker URL (`announce`).
    pub announce: Option<String>,
    /// Tracker tiers (`announce-list`, BEP 12); empty tiers are dropped.
    pub announce_list: Vec<Vec<String>>,
    /// Web seeds (`url-list`, BEP 19); a single string is read as a one-element list.
    pub url_list: Vec<String>,
    /// Free-form `comment`.
    pub comment: Option<String>,
    /// The creating program (`created by`).
    pub created_by: Option<String>,
    /// Creation time (`creation date`), seconds since the Unix epoch.
    pub creation_date: Option<i64>,
}

impl Metainfo {
    /// Parses a `.torrent` strictly (see the module docs).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MetainfoError> {
        parse::parse(bytes, false)
    }

    /// Parses a `.torrent`, tolerating unsorted keys and malformed optional fields outside `info`.
    pub fn from_bytes_lenient(bytes: &[u8]) -> Result<Self, MetainfoError> {
        parse::parse(bytes, true)
    }

    /// Builds a metainfo from a bare `info` dictionary (as fetched from peers with BEP 9); the
    /// fields outside `info` are empty. The caller checks the info-hash against the one it wanted.
    pub fn from_info_bytes(info: &[u8]) -> Result<Self, MetainfoError> {
        parse::from_info(info)
    }

    /// Writes the torrent: fields outside `info` in canonical form, `info` byte for byte.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.info_bytes.len() + 256);
        let mut enc = Encoder::new(&mut out);
        enc.dict(|d| {
            if let Some(a) = &self.announce {
                d.str(b"announce", a);
            }
            if !self.announce_list.is_empty() {
                d.entry(b"announce-list", |e| {
                    e.list(|tiers| {
                        for tier in &self.announce_list {
                            tiers.list(|t| tier.iter().for_each(|url| t.str(url)));
                        }
                    })
                });
            }
            if let Some(c) = &self.comment {
                d.str(b"comment", c);
            }
            if let Some(c) = &self.created_by {
                d.str(b"created by", c);
            }
            if let Some(t) = self.creation_date {
                d.int(b"creation date", t);
            }
            d.entry(b"info", |e| e.raw(&self.info_bytes));
            match self.url_list.as_slice() {
                [] => {}
                [one] => d.str(b"url-list", one),
                many => d.entry(b"url-list", |e| e.list(|l| many.iter().for_each(|u| l.str(u)))),
            }
        });
        // Every key above is distinct and written once, so the encoder has nothing to report.
        let _ = enc.finish();
        out
    }

    /// SHA-1 of the raw `info` dictionary.
    pub fn info_hash(&self) -> InfoHash {
        self.info_hash
    }

    /// The `info` dictionary exactly as it appeared (what BEP 9 serves to peers).
    pub fn info_bytes(&self) -> &[u8] {
        &self.info_bytes
    }

    /// The torrent's name: the file name in single-file mode, the directory name otherwise.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Nominal piece length in bytes.
    pub fn piece_length(&self) -> u32 {
        self.layout.piece_length()
    }

    /// Number of pieces.
    pub fn piece_count(&self) -> u32 {
        self.layout.piece_count()
    }

    /// All piece hashes in order.
    pub fn piece_hashes(&self) -> &[[u8; 20]] {
        &self.pieces
    }

    /// The SHA-1 of one piece, or `None` past the last piece.
    pub fn piece_hash(&self, piece: PieceIndex) -> Option<&[u8; 20]> {
        self.pieces.get(piece.get())
    }

    /// The files in stream order, with sanitised paths relative to the download directory
    /// (multi-file paths start with the torrent's name).
    pub fn files(&self) -> &[FileSpan] {
        self.layout.files()
    }

    /// Total bytes in the torrent.
    pub fn total_length(&self) -> u64 {
        self.layout.total_length()
    }

    /// Whether the torrent uses the multi-file form (`files`) rather than `length`.
    pub fn is_multi_file(&self) -> bool {
        self.multi_file
    }

    /// Whether the torrent is private (BEP 27: no DHT, PEX or LSD).
    pub fn is_private(&self) -> bool {
        self.private
    }

    /// The mapping of pieces onto files.
    pub fn layout(&self) -> Layout {
        self.layout.clone()
    }

    /// All trackers, tier by tier: `announce-list` when present (BEP 12 says it replaces
    /// `announce` then), otherwise `announce` alone.
    pub fn trackers(&self) -> Vec<Vec<String>> {
        if !self.announce_list.is_empty() {
            return self.announce_list.clone();
        }
        self.announce.iter().map(|a| vec![a.clone()]).collect()
    }
}

impl fmt::Debug for Metainfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metainfo")
            .field("info_hash", &self.info_hash)
            .field("name", &self.name)
            .field("piece_length", &self.piece_length())
            .field("pieces", &self.pieces.len())
            .field("files", &self.files().len())
            .field("total_length", &self.total_length())
            .field("private", &self.private)
            .field("announce", &self.announce)
            .field("announce_list", &self.announce_list)
            .field("url_list", &self.url_list)
            .field("comment", &self.comment)
            .field("created_by", &self.created_by)
            .field("creation_date", &self.creation_date)
            .finish_non_exhaustive()
    }
}
