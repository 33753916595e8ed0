//! Checked newtypes shared by every floor of the engine.

use std::fmt;

/// The standard BitTorrent block (request) size: 16 KiB.
pub const BLOCK_SIZE: u32 = 16 * 1024;

/// A 20-byte SHA-1 info-hash (BitTorrent v1).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct InfoHash(pub [u8; 20]);

impl InfoHash {
    /// The hash as 40 lowercase hex characters.
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    /// Parses 40 hex characters (either case).
    pub fn from_hex(s: &str) -> Option<Self> {
        let bytes = s.as_bytes();
        if bytes.len() != 40 {
            return None;
        }
        let mut out = [0u8; 20];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            out[i] = (hex_val(pair[0])? << 4) | hex_val(pair[1])?;
        }
        Some(InfoHash(out))
    }

    /// The raw 20 bytes.
    pub fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }
}

impl fmt::Debug for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InfoHash({})", self.to_hex())
    }
}

impl fmt::Display for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// A 20-byte peer id as sent in the handshake.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PeerId(pub [u8; 20]);

/// Our client name and version, sent as `v` in the BEP 10 extended handshake: what other
/// clients show in their peer lists (libtorrent reads `-FG` in our peer id as FlashGet's).
pub const CLIENT_VERSION: &str = concat!("Floodgate ", env!("CARGO_PKG_VERSION"));

impl PeerId {
    /// A fresh random peer id with Floodgate's Azureus-style prefix `-FG0100-`.
    pub fn generate() -> Self {
        let mut id = [0u8; 20];
        id[..8].copy_from_slice(b"-FG0100-");
        for b in &mut id[8..] {
            *b = b"0123456789abcdefghijklmnopqrstuvwxyz"[rand::random_range(0..36usize)];
        }
        PeerId(id)
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerId({})", String::from_utf8_lossy(&self.0).escape_debug())
    }
}

/// The index of a piece, checked against a torrent's piece count where it enters the engine.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct PieceIndex(pub u32);

impl PieceIndex {
    /// The index as a `usize`, for slice indexing.
    pub fn get(self) -> usize {
        self.0 as usize
    }
}

/// One block of a piece: `length` bytes at `offset` inside piece `piece`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct BlockRef {
    /// The piece the block belongs to.
    pub piece: PieceIndex,
    /// Byte offset of the block inside the piece.
    pub offset: u32,
    /// Length in bytes (at most [`BLOCK_SIZE`] for blocks we request).
    pub length: u32,
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Lowercase hex of arbitrary bytes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_hash_hex_round_trip() {
        let h = InfoHash([0xab; 20]);
        assert_eq!(InfoHash::from_hex(&h.to_hex()), Some(h));
        assert_eq!(InfoHash::from_hex("zz"), None);
        assert_eq!(InfoHash::from_hex(&"g".repeat(40)), None);
    }

    #[test]
    fn peer_id_has_prefix() {
        let id = PeerId::generate();
        assert_eq!(&id.0[..8], b"-FG0100-");
        assert_ne!(PeerId::generate(), id);
    }
}
