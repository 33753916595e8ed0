//! Writing new `.torrent` files.

use super::error::MetainfoError;
use super::{path, Metainfo};
use crate::bencode::Encoder;
use crate::layout::FileSpan;

/// Smallest piece length [`piece_length_for`] picks: 256 KiB.
const MIN_AUTO_PIECE: u32 = 256 << 10;
/// Largest piece length [`piece_length_for`] picks: 16 MiB.
const MAX_AUTO_PIECE: u32 = 16 << 20;
/// Piece count [`piece_length_for`] stays under while it can.
const TARGET_MAX_PIECES: u64 = 2000;

/// A piece length for a torrent of `total_len` bytes.
///
/// Rule: the smallest power of two from 256 KiB up to 16 MiB that gives at most 2000 pieces.
/// Each doubling halves the count, so torrents from 250 MiB to 2000 × 16 MiB (31.25 GiB) get
/// 1000–2000 pieces; smaller ones get fewer pieces of 256 KiB, larger ones more pieces of 16 MiB.
pub fn piece_length_for(total_len: u64) -> u32 {
    let mut pl = MIN_AUTO_PIECE;
    while pl < MAX_AUTO_PIECE && total_len.div_ceil(u64::from(pl)) > TARGET_MAX_PIECES {
        pl *= 2;
    }
    pl
}

/// What the torrent holds.
#[derive(Clone, Debug)]
enum Content {
    /// One file named after the torrent.
    Single(u64),
    /// Files under a directory named after the torrent.
    Multi(Vec<FileSpan>),
}

/// Writes a v1 `.torrent` from file sizes and piece hashes the caller computed.
///
/// ```
/// use floodgate_engine::metainfo::MetainfoBuilder;
/// let (bytes, meta) = MetainfoBuilder::single_file("a.iso", 5, 16384)
///     .piece_hashes(vec![[0u8; 20]])
///     .tracker("http://tracker.example/announce")
///     .build()
///     .unwrap();
/// assert_eq!(meta.to_bytes(), bytes);
/// ```
#[derive(Clone, Debug)]
pub struct MetainfoBuilder {
    name: String,
    content: Content,
    piece_length: u32,
    piece_hashes: Vec<[u8; 20]>,
    tiers: Vec<Vec<String>>,
    web_seeds: Vec<String>,
    comment: Option<String>,
    created_by: Option<String>,
    creation_date: Option<i64>,
    private: bool,
}

impl MetainfoBuilder {
    fn new(name: String, content: Content, piece_length: u32) -> Self {
        MetainfoBuilder {
            name,
            content,
            piece_length,
            piece_hashes: Vec::new(),
            tiers: Vec::new(),
            web_seeds: Vec::new(),
            comment: None,
            created_by: None,
            creation_date: None,
            private: false,
        }
    }

    /// A single-file torrent: the file is called `name` and holds `length` bytes.
    pub fn single_file(name: impl Into<String>, length: u64, piece_length: u32) -> Self {
        Self::new(name.into(), Content::Single(length), piece_length)
    }

    /// A multi-file torrent: a directory `name` holding `files` (paths relative to it, `/`
    /// separated, in stream order).
    pub fn multi_file(name: impl Into<String>, files: Vec<FileSpan>, piece_length: u32) -> Self {
        Self::new(name.into(), Content::Multi(files), piece_length)
    }

    /// The SHA-1 of every piece, in order (one per `piece_length` bytes of the stream).
    pub fn piece_hashes(mut self, hashes: Vec<[u8; 20]>) -> Self {
        self.piece_hashes = hashes;
        self
    }

    /// Adds a tracker in a tier of its own. The first tracker becomes `announce`;
    /// `announce-list` is written when there is more than one URL.
    pub fn tracker(mut self, url: impl Into<String>) -> Self {
        self.tiers.push(vec![url.into()]);
        self
    }

    /// Adds a tier of trackers tried in random order (BEP 12). Empty tiers are ignored.
    pub fn tracker_tier(mut self, urls: Vec<String>) -> Self {
        if !urls.is_empty() {
            self.tiers.push(urls);
        }
        self
    }

    /// Adds a BEP 19 web seed URL.
    pub fn web_seed(mut self, url: impl Into<String>) -> Self {
        self.web_seeds.push(url.into());
        self
    }

    /// Sets the `comment`.
    pub fn comment(mut self, comment: impl Into<String>) -> Self {
        self.comment = Some(comment.into());
        self
    }

    /// Sets `created by`.
    pub fn created_by(mut self, created_by: impl Into<String>) -> Self {
        self.created_by = Some(created_by.into());
        self
    }

    /// Sets `creation date` (seconds since the Unix epoch). Not set by default, so output is
    /// reproducible.
    pub fn creation_date(mut self, unix_seconds: i64) -> Self {
        self.creation_date = Some(unix_seconds);
        self
    }

    /// Marks the torrent private (BEP 27).
    pub fn private(mut self, private: bool) -> Self {
        self.private = private;
        self
    }

    /// Writes the `.torrent` and parses it back, so the result passed every check of
    /// [`Metainfo::from_bytes`].
    pub fn build(&self) -> Result<(Vec<u8>, Metainfo), MetainfoError> {
        let mut meta = Metainfo::from_info_bytes(&self.info_bytes()?)?;
        let urls: Vec<&String> = self.tiers.iter().flatten().collect();
        meta.announce = urls.first().map(|u| u.to_string());
        // `announce-list` only when there is more than the one `announce` URL.
        meta.announce_list = if urls.len() > 1 { self.tiers.clone() } else { Vec::new() };
        meta.url_list = self.web_seeds.clone();
        meta.comment = self.comment.clone();
        meta.created_by = self.created_by.clone();
        meta.creation_date = self.creation_date;
        let out = meta.to_bytes();
        let meta = Metainfo::from_bytes(&out)?;
        Ok((out, meta))
    }

    /// The `info` dictionary.
    fn info_bytes(&self) -> Result<Vec<u8>, MetainfoError> {
        path::check_component(&self.name).map_err(MetainfoError::BadName)?;
        let files = match &self.content {
            Content::Single(_) => Vec::new(),
            Content::Multi(files) => files
                .iter()
                .enumerate()
                .map(|(index, f)| {
                    let parts = path::components_of(&f.path)
                        .map_err(|error| MetainfoError::BadPath { index, error })?;
                    Ok((parts, f.length))
                })
                .collect::<Result<Vec<_>, MetainfoError>>()?,
        };
        let mut pieces = Vec::with_capacity(self.piece_hashes.len() * 20);
        self.piece_hashes.iter().for_each(|h| pieces.extend_from_slice(h));

        let mut out = Vec::with_capacity(pieces.len() + files.len() * 64 + 128);
        let mut enc = Encoder::new(&mut out);
        enc.dict(|d| {
            match &self.content {
                Content::Single(length) => d.int(b"length", length_value(*length)),
                Content::Multi(_) => d.entry(b"files", |e| {
                    e.list(|l| {
                        for (parts, length) in &files {
                            l.dict(|f| {
                                f.int(b"length", length_value(*length));
                                f.entry(b"path", |e| e.list(|p| parts.iter().for_each(|c| p.str(c))));
                            });
                        }
                    })
                }),
            }
            d.str(b"name", &self.name);
            d.int(b"piece length", i64::from(self.piece_length));
            d.bytes(b"pieces", &pieces);
            if self.private {
                d.int(b"private", 1);
            }
        });
        // Every key is written once, so the encoder has nothing to report.
        let _ = enc.finish();
        Ok(out)
    }
}

/// A file length as a bencode integer. Lengths above `i64::MAX` are written as `i64::MAX`, which
/// then fails the piece-count check (no hash list can be that long).
fn length_value(length: u64) -> i64 {
    i64::try_from(length).unwrap_or(i64::MAX)
}
