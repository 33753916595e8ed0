//! [`MetadataFetch`]: assembling a torrent's info dictionary from peers with BEP 9
//! (`ut_metadata`), sans-IO.
//!
//! The driver owns the connections and names each peer with a key of its choice. Call order:
//!
//! 1. [`MetadataFetch::new`] with the info-hash from the magnet link;
//! 2. for each peer, after the BEP 10 handshakes: [`MetadataFetch::add_peer`] with the peer's
//!    extended handshake (it must speak `ut_metadata` and name a `metadata_size`);
//! 3. [`MetadataFetch::poll_request`] yields requests to send to that peer, until `None`;
//! 4. every extended message the peer sends under *our* `ut_metadata` id goes to
//!    [`MetadataFetch::handle_message`]; `Ok(Some(meta))` is the verified result;
//! 5. [`MetadataFetch::remove_peer`] when a connection ends (its pieces go to other peers).
//!
//! Memory is bounded by [`MetadataFetch::max_size`] (the buffer is allocated once the first
//! peer names a size within it); the assembled bytes are checked against the info-hash before
//! they are parsed.

use std::collections::HashMap;

use bytes::Bytes;

use crate::hash::sha1;
use crate::metainfo::{Metainfo, MetainfoError};
use crate::types::InfoHash;
use crate::wire::{
    metadata_piece_count, ExtendedHandshake, ExtensionError, Message, MetadataMessage, METADATA_PIECE_LEN,
    UT_METADATA,
};

/// Largest info dictionary fetched by default (64 MiB: a torrent of millions of pieces).
pub const MAX_METADATA_SIZE: u64 = 64 << 20;

/// The id we ask peers to send `ut_metadata` messages under (in our extended handshake).
pub const OUR_UT_METADATA_ID: u8 = 3;

/// Metadata pieces requested from one peer at once.
const MAX_IN_FLIGHT: usize = 8;

/// The driver's name for one peer connection.
pub type PeerKey = u64;

/// Why a metadata message or peer was refused. Apart from [`MetadataError::InvalidInfo`], each
/// concerns only the peer that caused it: drop that peer and carry on with others.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// The peer does not speak `ut_metadata` or did not say how big the metadata is.
    #[error("peer does not offer metadata")]
    NotOffered,
    /// The size the peer names is zero or above the bound.
    #[error("metadata size {size} outside 1..={max}")]
    BadSize {
        /// The size the peer named.
        size: u64,
        /// Our bound.
        max: u64,
    },
    /// The peer's size differs from the one other peers named.
    #[error("metadata size {size} differs from {expected}")]
    SizeMismatch {
        /// The size the peer named.
        size: u64,
        /// The size already established.
        expected: u64,
    },
    /// A message that is not a valid `ut_metadata` message.
    #[error("bad ut_metadata message: {0}")]
    Message(#[from] ExtensionError),
    /// A message from a peer that was never added (or already removed).
    #[error("unknown peer")]
    UnknownPeer,
    /// A data piece we did not request from this peer.
    #[error("unrequested metadata piece {piece}")]
    Unrequested {
        /// The piece index.
        piece: u32,
    },
    /// The assembled bytes do not hash to the info-hash; everything was discarded.
    #[error("metadata does not match the info-hash")]
    HashMismatch,
    /// The bytes hash correctly but are not a valid info dictionary (the magnet is useless).
    #[error("invalid info dictionary: {0}")]
    InvalidInfo(#[from] MetainfoError),
}

#[derive(Debug)]
struct PeerState {
    /// The id the peer receives `ut_metadata` messages under.
    ut_id: u8,
    /// Pieces requested from the peer and not yet answered.
    in_flight: Vec<u32>,
    /// The peer rejected a request: ask it for nothing more.
    rejected: bool,
}

/// Assembles and verifies an info dictionary from `ut_metadata` messages of one or more peers.
/// See the [module docs](self) for the call order.
#[derive(Debug)]
pub struct MetadataFetch {
    info_hash: InfoHash,
    max_size: u64,
    /// The established size, once a peer named one.
    size: Option<u64>,
    buf: Vec<u8>,
    /// Per piece: received.
    have: Vec<bool>,
    /// Per piece: requested from some peer and not yet answered.
    requested: Vec<bool>,
    received: usize,
    peers: HashMap<PeerKey, PeerState>,
    done: bool,
}

impl MetadataFetch {
    /// A fetch for `info_hash`, accepting metadata up to [`MAX_METADATA_SIZE`].
    pub fn new(info_hash: InfoHash) -> Self {
        Self::with_max_size(info_hash, MAX_METADATA_SIZE)
    }

    /// A fetch for `info_hash` accepting metadata up to `max_size` bytes.
    pub fn with_max_size(info_hash: InfoHash, max_size: u64) -> Self {
        MetadataFetch {
            info_hash,
            max_size,
            size: None,
            buf: Vec::new(),
            have: Vec::new(),
            requested: Vec::new(),
            received: 0,
            peers: HashMap::new(),
            done: false,
        }
    }

    /// The largest metadata accepted.
    pub fn max_size(&self) -> u64 {
        self.max_size
    }

    /// The metadata size, once a peer named an acceptable one.
    pub fn size(&self) -> Option<u64> {
        self.size
    }

    /// Whether the metadata was assembled and verified.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Number of peers that can still be asked for pieces.
    pub fn usable_peers(&self) -> usize {
        self.peers.values().filter(|p| !p.rejected).count()
    }

    /// Adds a peer from its extended handshake. An error means the peer is of no use here.
    pub fn add_peer(&mut self, peer: PeerKey, hs: &ExtendedHandshake) -> Result<(), MetadataError> {
        let ut_id = hs.extension_id(UT_METADATA).ok_or(MetadataError::NotOffered)?;
        let size = hs.metadata_size.ok_or(MetadataError::NotOffered)?;
        if size == 0 || size > self.max_size {
            return Err(MetadataError::BadSize { size, max: self.max_size });
        }
        match self.size {
            Some(expected) if expected != size => {
                return Err(MetadataError::SizeMismatch { size, expected });
            }
            Some(_) => {}
            None => {
                let pieces = metadata_piece_count(size) as usize;
                self.size = Some(size);
                // `size` is within `max_size`, so this allocation is bounded.
                self.buf = vec![0; size as usize];
                self.have = vec![false; pieces];
                self.requested = vec![false; pieces];
                self.received = 0;
            }
        }
        self.remove_peer(peer);
        self.peers.insert(peer, PeerState { ut_id, in_flight: Vec::new(), rejected: false });
        Ok(())
    }

    /// Forgets a peer; the pieces it was asked for can go to others.
    pub fn remove_peer(&mut self, peer: PeerKey) {
        if let Some(state) = self.peers.remove(&peer) {
            for p in state.in_flight {
                if let Some(r) = self.requested.get_mut(p as usize) {
                    *r = false;
                }
            }
        }
    }

    /// The next request to send to `peer`, if it should be asked for anything more.
    pub fn poll_request(&mut self, peer: PeerKey) -> Option<Message> {
        if self.done {
            return None;
        }
        let state = self.peers.get_mut(&peer)?;
        if state.rejected || state.in_flight.len() >= MAX_IN_FLIGHT {
            return None;
        }
        let piece = (0..self.have.len()).find(|&i| !self.have[i] && !self.requested[i])?;
        self.requested[piece] = true;
        let piece = piece as u32;
        state.in_flight.push(piece);
        Some(MetadataMessage::Request { piece }.to_message(state.ut_id))
    }

    /// Handles the payload of an extended message `peer` sent under [`OUR_UT_METADATA_ID`].
    /// `Ok(Some(_))` is the verified metainfo (returned once). Requests from the peer are not
    /// answered here (a fetching client has nothing to serve) and are ignored.
    pub fn handle_message(
        &mut self,
        peer: PeerKey,
        payload: &Bytes,
    ) -> Result<Option<Metainfo>, MetadataError> {
        let msg = MetadataMessage::decode(payload)?;
        let state = self.peers.get_mut(&peer).ok_or(MetadataError::UnknownPeer)?;
        match msg {
            MetadataMessage::Request { .. } => Ok(None),
            MetadataMessage::Reject { piece } => {
                if let Some(i) = state.in_flight.iter().position(|&p| p == piece) {
                    state.in_flight.swap_remove(i);
                    if let Some(r) = self.requested.get_mut(piece as usize) {
                        *r = false;
                    }
                }
                state.rejected = true;
                Ok(None)
            }
            MetadataMessage::Data { piece, total_size, data } => {
                let Some(i) = state.in_flight.iter().position(|&p| p == piece) else {
                    return Err(MetadataError::Unrequested { piece });
                };
                let expected = self.size.unwrap_or(0);
                if total_size != expected {
                    return Err(MetadataError::SizeMismatch { size: total_size, expected });
                }
                state.in_flight.swap_remove(i);
                let idx = piece as usize;
                self.requested[idx] = false;
                if self.done || self.have[idx] {
                    return Ok(None);
                }
                // `decode` checked that `data` has exactly this piece's length.
                let start = idx * METADATA_PIECE_LEN as usize;
                let Some(dst) = self.buf.get_mut(start..start + data.len()) else {
                    return Err(MetadataError::Unrequested { piece });
                };
                dst.copy_from_slice(&data);
                self.have[idx] = true;
                self.received += 1;
                if self.received < self.have.len() {
                    return Ok(None);
                }
                self.finish().map(Some)
            }
        }
    }

    /// Every piece is in: verify and parse, or start over on a mismatch.
    fn finish(&mut self) -> Result<Metainfo, MetadataError> {
        if sha1(&self.buf) != self.info_hash.0 {
            self.have.iter_mut().for_each(|h| *h = false);
            self.received = 0;
            return Err(MetadataError::HashMismatch);
        }
        self.done = true;
        let meta = Metainfo::from_info_bytes(&self.buf)?;
        self.buf = Vec::new();
        Ok(meta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metainfo::MetainfoBuilder;

    fn info(len: u64) -> (Vec<u8>, InfoHash) {
        // Enough pieces that the info dictionary spans several metadata pieces.
        let count = len.div_ceil(16384) as usize;
        let hashes = (0..count).map(|i| [i as u8; 20]).collect();
        let (_, meta) =
            MetainfoBuilder::single_file("f.bin", len, 16384).piece_hashes(hashes).build().unwrap();
        (meta.info_bytes().to_vec(), meta.info_hash())
    }

    fn hs(size: usize) -> ExtendedHandshake {
        let mut hs = ExtendedHandshake { metadata_size: Some(size as u64), ..Default::default() };
        hs.m.insert(UT_METADATA.into(), 7);
        hs
    }

    fn request_piece(m: Message) -> u32 {
        let Message::Extended { id: 7, payload } = m else { panic!("not ut_metadata") };
        match MetadataMessage::decode(&payload).unwrap() {
            MetadataMessage::Request { piece } => piece,
            other => panic!("{other:?}"),
        }
    }

    fn data(bytes: &[u8], piece: u32) -> Bytes {
        let start = piece as usize * 16384;
        let end = (start + 16384).min(bytes.len());
        let mut out = Vec::new();
        MetadataMessage::Data {
            piece,
            total_size: bytes.len() as u64,
            data: Bytes::copy_from_slice(&bytes[start..end]),
        }
        .encode(&mut out);
        Bytes::from(out)
    }

    #[test]
    fn assembles_from_two_peers_with_a_reject() {
        let (bytes, hash) = info(40 << 20); // 2560 hashes: ~51 KiB, 4 metadata pieces
        let mut f = MetadataFetch::new(hash);
        f.add_peer(1, &hs(bytes.len())).unwrap();
        f.add_peer(2, &hs(bytes.len())).unwrap();
        let a = request_piece(f.poll_request(1).unwrap());
        let b = request_piece(f.poll_request(2).unwrap());
        assert_ne!(a, b);
        // Peer 2 rejects: its piece goes back, and it is asked for nothing more.
        let mut rej = Vec::new();
        MetadataMessage::Reject { piece: b }.encode(&mut rej);
        assert!(f.handle_message(2, &Bytes::from(rej)).unwrap().is_none());
        assert!(f.poll_request(2).is_none());
        assert!(f.handle_message(1, &data(&bytes, a)).unwrap().is_none());
        let mut result = None;
        while let Some(m) = f.poll_request(1) {
            let p = request_piece(m);
            if let Some(meta) = f.handle_message(1, &data(&bytes, p)).unwrap() {
                result = Some(meta);
            }
        }
        let meta = result.expect("complete");
        assert_eq!(meta.info_hash(), hash);
        assert_eq!(meta.info_bytes(), &bytes[..]);
        assert!(f.is_done());
    }

    #[test]
    fn wrong_hash_starts_over() {
        let (mut bytes, hash) = info(1 << 20);
        bytes[5] ^= 1;
        let mut f = MetadataFetch::new(hash);
        f.add_peer(1, &hs(bytes.len())).unwrap();
        let mut err = None;
        while let Some(m) = f.poll_request(1) {
            let p = request_piece(m);
            if let Err(e) = f.handle_message(1, &data(&bytes, p)) {
                err = Some(e);
                break;
            }
        }
        assert!(matches!(err, Some(MetadataError::HashMismatch)));
        assert!(!f.is_done());
        assert!(f.poll_request(1).is_some(), "asks again after a mismatch");
    }

    #[test]
    fn refuses_oversized_and_mismatched_sizes() {
        let (bytes, hash) = info(1 << 20);
        let mut f = MetadataFetch::with_max_size(hash, 100);
        assert!(matches!(f.add_peer(1, &hs(bytes.len())), Err(MetadataError::BadSize { .. })));
        assert!(matches!(f.add_peer(1, &hs(0)), Err(MetadataError::BadSize { .. })));
        let mut f = MetadataFetch::new(hash);
        assert!(matches!(f.add_peer(1, &ExtendedHandshake::default()), Err(MetadataError::NotOffered)));
        let too_big = MAX_METADATA_SIZE as usize + 1;
        assert!(matches!(f.add_peer(1, &hs(too_big)), Err(MetadataError::BadSize { .. })));
        f.add_peer(1, &hs(bytes.len())).unwrap();
        assert!(matches!(f.add_peer(2, &hs(bytes.len() + 1)), Err(MetadataError::SizeMismatch { .. })));
    }

    #[test]
    fn refuses_unrequested_and_malformed_messages() {
        let (bytes, hash) = info(1 << 20);
        let mut f = MetadataFetch::new(hash);
        f.add_peer(1, &hs(bytes.len())).unwrap();
        assert!(matches!(
            f.handle_message(1, &data(&bytes, 0)),
            Err(MetadataError::Unrequested { piece: 0 })
        ));
        assert!(matches!(f.handle_message(9, &data(&bytes, 0)), Err(MetadataError::UnknownPeer)));
        assert!(matches!(
            f.handle_message(1, &Bytes::from_static(b"garbage")),
            Err(MetadataError::Message(_))
        ));
        // A request from the peer is ignored.
        let mut req = Vec::new();
        MetadataMessage::Request { piece: 0 }.encode(&mut req);
        assert!(f.handle_message(1, &Bytes::from(req)).unwrap().is_none());
    }

    #[test]
    fn removed_peer_releases_its_pieces() {
        let (bytes, hash) = info(1 << 20);
        let mut f = MetadataFetch::new(hash);
        f.add_peer(1, &hs(bytes.len())).unwrap();
        f.add_peer(2, &hs(bytes.len())).unwrap();
        while f.poll_request(1).is_some() {}
        assert!(f.poll_request(2).is_none());
        f.remove_peer(1);
        let mut got = None;
        while let Some(m) = f.poll_request(2) {
            let p = request_piece(m);
            got = f.handle_message(2, &data(&bytes, p)).unwrap().or(got);
        }
        assert_eq!(got.map(|m| m.info_hash()), Some(hash));
    }
}
