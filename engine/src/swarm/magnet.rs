//! Fetching a magnet link's metadata (BEP 9) before the torrent can join the swarm: a short,
//! blocking phase over plain TCP that drives a [`MetadataFetch`] with one peer at a time.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::BytesMut;

use crate::metainfo::Metainfo;
use crate::peer::{MetadataError, MetadataFetch, OUR_UT_METADATA_ID};
use crate::types::{InfoHash, PeerId};
use crate::wire::{Decoder, DecoderConfig, ExtendedHandshake, Handshake, Message, Reserved, UT_METADATA};

/// Settings of [`fetch_metadata`].
#[derive(Clone, Debug)]
pub struct FetchConfig {
    /// Our peer id in the handshakes.
    pub peer_id: PeerId,
    /// Give up on everything after this long.
    pub timeout: Duration,
    /// Give up on one peer after this long (connecting included).
    pub peer_timeout: Duration,
    /// Largest metadata accepted.
    pub max_size: u64,
}

impl Default for FetchConfig {
    fn default() -> Self {
        FetchConfig {
            peer_id: PeerId::generate(),
            timeout: Duration::from_secs(60),
            peer_timeout: Duration::from_secs(20),
            max_size: crate::peer::metadata::MAX_METADATA_SIZE,
        }
    }
}

/// Why no metadata could be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// No peer addresses to try.
    #[error("no peers to fetch the metadata from")]
    NoPeers,
    /// Every peer failed or the overall time ran out; the last peer's failure is given.
    #[error("no peer gave the metadata (last failure: {last})")]
    Exhausted {
        /// What went wrong with the last peer tried.
        last: String,
    },
    /// The metadata matched the info-hash but is not a valid info dictionary.
    #[error("the metadata is invalid: {0}")]
    Invalid(MetadataError),
}

/// Why one peer did not give the metadata.
#[derive(Debug, thiserror::Error)]
enum PeerFailure {
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
    #[error("wire: {0}")]
    Wire(#[from] crate::wire::WireError),
    #[error("handshake for another torrent")]
    WrongInfoHash,
    #[error("peer does not support the extension protocol")]
    NoExtensions,
    #[error("metadata: {0}")]
    Metadata(#[from] MetadataError),
    #[error("bad extended handshake")]
    BadExtendedHandshake,
    #[error("peer rejected our requests")]
    Rejected,
    #[error("timed out")]
    Timeout,
    #[error("peer closed the connection")]
    Closed,
}

/// Fetches the info dictionary of `info_hash` from `peers` (tried in order, one at a time) and
/// returns the verified metainfo. Blocks for at most `config.timeout`.
pub fn fetch_metadata(
    info_hash: InfoHash,
    peers: &[SocketAddr],
    config: &FetchConfig,
) -> Result<Metainfo, FetchError> {
    if peers.is_empty() {
        return Err(FetchError::NoPeers);
    }
    let deadline = Instant::now() + config.timeout;
    let mut fetch = MetadataFetch::with_max_size(info_hash, config.max_size);
    let mut last = String::from("timed out");
    for (key, addr) in peers.iter().enumerate() {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        let peer_deadline = deadline.min(now + config.peer_timeout);
        let key = key as u64;
        match fetch_from(&mut fetch, key, *addr, info_hash, config.peer_id, peer_deadline) {
            Ok(meta) => return Ok(meta),
            Err(PeerFailure::Metadata(e @ MetadataError::InvalidInfo(_))) => {
                return Err(FetchError::Invalid(e))
            }
            Err(e) => {
                tracing::debug!(%addr, "metadata fetch failed: {e}");
                last = format!("{addr}: {e}");
            }
        }
        fetch.remove_peer(key);
    }
    Err(FetchError::Exhausted { last })
}

fn fetch_from(
    fetch: &mut MetadataFetch,
    key: u64,
    addr: SocketAddr,
    info_hash: InfoHash,
    peer_id: PeerId,
    deadline: Instant,
) -> Result<Metainfo, PeerFailure> {
    let remaining = |d: Instant| d.saturating_duration_since(Instant::now());
    let connect_in = remaining(deadline).min(Duration::from_secs(5));
    if connect_in.is_zero() {
        return Err(PeerFailure::Timeout);
    }
    let mut stream = TcpStream::connect_timeout(&addr, connect_in)?;
    let _ = stream.set_nodelay(true);
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut hs = Handshake::new(info_hash, peer_id);
    hs.reserved = Reserved([0; 8]).with_extension_protocol(true);
    stream.write_all(&hs.to_bytes())?;

    let mut decoder = Decoder::new(DecoderConfig::default());
    let mut out = BytesMut::new();
    let mut handshaken = false;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let left = remaining(deadline);
        if left.is_zero() {
            return Err(PeerFailure::Timeout);
        }
        stream.set_read_timeout(Some(left.min(Duration::from_millis(500))))?;
        match stream.read(&mut buf) {
            Ok(0) => return Err(PeerFailure::Closed),
            Ok(n) => decoder.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            Err(e) => return Err(e.into()),
        }
        if !handshaken {
            let Some(theirs) = decoder.handshake()? else { continue };
            if theirs.info_hash != info_hash {
                return Err(PeerFailure::WrongInfoHash);
            }
            if !theirs.reserved.extension_protocol() {
                return Err(PeerFailure::NoExtensions);
            }
            handshaken = true;
            let mut ours = ExtendedHandshake { v: Some("floodgate".into()), ..Default::default() };
            ours.m.insert(UT_METADATA.to_owned(), OUR_UT_METADATA_ID);
            ours.to_message().encode(&mut out);
        }
        while let Some(msg) = decoder.next()? {
            match msg {
                Message::Extended { id: 0, payload } => {
                    let theirs =
                        ExtendedHandshake::decode(&payload).map_err(|_| PeerFailure::BadExtendedHandshake)?;
                    fetch.add_peer(key, &theirs)?;
                }
                Message::Extended { id: OUR_UT_METADATA_ID, payload } => {
                    if let Some(meta) = fetch.handle_message(key, &payload)? {
                        return Ok(meta);
                    }
                    if fetch.usable_peers() == 0 {
                        return Err(PeerFailure::Rejected);
                    }
                }
                _ => {}
            }
        }
        while let Some(req) = fetch.poll_request(key) {
            req.encode(&mut out);
        }
        if !out.is_empty() {
            stream.write_all(&out)?;
            out.clear();
        }
    }
}
