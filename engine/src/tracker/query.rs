//! Announce and scrape query strings as the tracker server reads them.

use super::{Event, QueryError};
use crate::http::{query_pairs, QueryPairsError};
use crate::types::{InfoHash, PeerId};

/// Most `name=value` pairs read from one query string.
const MAX_PARAMS: usize = 128;
/// Most info-hashes in one scrape.
pub const MAX_SCRAPE_HASHES: usize = 64;

/// The parameters of an announce, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnounceQuery {
    /// The torrent.
    pub info_hash: InfoHash,
    /// The announcing peer.
    pub peer_id: PeerId,
    /// The port it accepts peers on.
    pub port: u16,
    /// Bytes uploaded (0 when absent).
    pub uploaded: u64,
    /// Bytes downloaded (0 when absent).
    pub downloaded: u64,
    /// Bytes left; `None` when absent.
    pub left: Option<u64>,
    /// The event, if any.
    pub event: Option<Event>,
    /// Peers wanted, if given.
    pub numwant: Option<u32>,
    /// Whether the compact form was asked for (`compact=1`; default true).
    pub compact: bool,
    /// The client's key (hex), if given and valid.
    pub key: Option<u32>,
}

/// The info-hashes of a scrape (empty: every torrent).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ScrapeQuery {
    /// Requested torrents, at most [`MAX_SCRAPE_HASHES`].
    pub info_hashes: Vec<InfoHash>,
}

/// Splits a query string into decoded `(name, value)` pairs.
fn pairs(query: &str) -> Result<Vec<(&str, Vec<u8>)>, QueryError> {
    query_pairs(query, MAX_PARAMS).map_err(|e| match e {
        QueryPairsError::TooMany => QueryError::TooMany,
        QueryPairsError::BadEncoding(_) => QueryError::Invalid("percent-encoding"),
    })
}

fn twenty(v: &[u8], name: &'static str) -> Result<[u8; 20], QueryError> {
    <[u8; 20]>::try_from(v).map_err(|_| QueryError::Invalid(name))
}

fn number<T: std::str::FromStr>(v: &[u8], name: &'static str) -> Result<T, QueryError> {
    std::str::from_utf8(v).ok().and_then(|s| s.parse().ok()).ok_or(QueryError::Invalid(name))
}

impl AnnounceQuery {
    /// Parses the query part of an announce target (after `?`).
    pub fn parse(query: &str) -> Result<AnnounceQuery, QueryError> {
        let mut info_hash = None;
        let mut peer_id = None;
        let mut port = None;
        let mut q = AnnounceQuery {
            info_hash: InfoHash::default(),
            peer_id: PeerId::default(),
            port: 0,
            uploaded: 0,
            downloaded: 0,
            left: None,
            event: None,
            numwant: None,
            compact: true,
            key: None,
        };
        for (name, v) in pairs(query)? {
            match name {
                "info_hash" => info_hash = Some(InfoHash(twenty(&v, "info_hash")?)),
                "peer_id" => peer_id = Some(PeerId(twenty(&v, "peer_id")?)),
                "port" => port = Some(number::<u16>(&v, "port")?),
                "uploaded" => q.uploaded = number(&v, "uploaded")?,
                "downloaded" => q.downloaded = number(&v, "downloaded")?,
                "left" => q.left = Some(number(&v, "left")?),
                "event" => q.event = Event::parse(&v),
                "numwant" => q.numwant = Some(number(&v, "numwant")?),
                "compact" => q.compact = v != b"0",
                "key" => q.key = std::str::from_utf8(&v).ok().and_then(|s| u32::from_str_radix(s, 16).ok()),
                _ => {}
            }
        }
        q.info_hash = info_hash.ok_or(QueryError::Missing("info_hash"))?;
        q.peer_id = peer_id.ok_or(QueryError::Missing("peer_id"))?;
        q.port = port.ok_or(QueryError::Missing("port"))?;
        if q.port == 0 {
            return Err(QueryError::Invalid("port"));
        }
        Ok(q)
    }
}

impl ScrapeQuery {
    /// Parses the query part of a scrape target (after `?`; may be empty).
    pub fn parse(query: &str) -> Result<ScrapeQuery, QueryError> {
        let mut info_hashes = Vec::new();
        for (name, v) in pairs(query)? {
            if name == "info_hash" {
                if info_hashes.len() >= MAX_SCRAPE_HASHES {
                    return Err(QueryError::TooMany);
                }
                info_hashes.push(InfoHash(twenty(&v, "info_hash")?));
            }
        }
        Ok(ScrapeQuery { info_hashes })
    }
}
