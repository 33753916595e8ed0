//! The BitTorrent handshake (BEP 3) and its reserved bits (BEP 5, BEP 6, BEP 10).

use bytes::BufMut;

use super::WireError;
use crate::types::{InfoHash, PeerId};

/// The protocol string every BitTorrent v1 handshake starts with (after its length byte).
pub const PROTOCOL: &[u8; 19] = b"BitTorrent protocol";

/// The 8 reserved bytes of the handshake, with typed accessors for the bits Floodgate knows.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Debug)]
pub struct Reserved(pub [u8; 8]);

impl Reserved {
    /// The bits Floodgate advertises: extension protocol (BEP 10) and fast extension (BEP 6).
    pub const FLOODGATE: Reserved = Reserved([0, 0, 0, 0, 0, 0x10, 0, 0x04]);

    /// BEP 10 extension protocol: bit 20 from the right (byte 5, mask `0x10`).
    pub fn extension_protocol(self) -> bool {
        self.0[5] & 0x10 != 0
    }

    /// BEP 6 fast extension: byte 7, mask `0x04`.
    pub fn fast(self) -> bool {
        self.0[7] & 0x04 != 0
    }

    /// BEP 5 DHT (the peer accepts PORT): byte 7, mask `0x01`.
    pub fn dht(self) -> bool {
        self.0[7] & 0x01 != 0
    }

    /// This value with the BEP 10 extension protocol bit set or cleared.
    pub fn with_extension_protocol(self, on: bool) -> Self {
        self.with_bit(5, 0x10, on)
    }

    /// This value with the BEP 6 fast extension bit set or cleared.
    pub fn with_fast(self, on: bool) -> Self {
        self.with_bit(7, 0x04, on)
    }

    /// This value with the DHT bit set or cleared.
    pub fn with_dht(self, on: bool) -> Self {
        self.with_bit(7, 0x01, on)
    }

    fn with_bit(mut self, byte: usize, mask: u8, on: bool) -> Self {
        if on {
            self.0[byte] |= mask;
        } else {
            self.0[byte] &= !mask;
        }
        self
    }
}

/// The 68-byte handshake: `19 "BitTorrent protocol" reserved[8] info_hash[20] peer_id[20]`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Handshake {
    /// Feature bits.
    pub reserved: Reserved,
    /// The torrent this connection is for.
    pub info_hash: InfoHash,
    /// The sender's peer id.
    pub peer_id: PeerId,
}

impl Handshake {
    /// Encoded length in bytes.
    pub const LEN: usize = 68;

    /// A handshake with Floodgate's reserved bits ([`Reserved::FLOODGATE`]).
    pub fn new(info_hash: InfoHash, peer_id: PeerId) -> Self {
        Handshake { reserved: Reserved::FLOODGATE, info_hash, peer_id }
    }

    /// The 68 encoded bytes.
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        let mut w = &mut out[..];
        self.encode(&mut w);
        out
    }

    /// Appends the 68 encoded bytes to `buf` (no allocation if `buf` has room).
    ///
    /// # Panics
    /// If `buf` is a fixed-size buffer with less than 68 bytes of room.
    pub fn encode<B: BufMut>(&self, buf: &mut B) {
        buf.put_u8(PROTOCOL.len() as u8);
        buf.put_slice(PROTOCOL);
        buf.put_slice(&self.reserved.0);
        buf.put_slice(&self.info_hash.0);
        buf.put_slice(&self.peer_id.0);
    }

    /// Decodes a handshake from the start of `buf` (bytes past the first 68 are ignored).
    ///
    /// A wrong length byte or protocol string is reported as soon as the offending byte is in
    /// `buf`; otherwise a short `buf` gives [`WireError::Incomplete`].
    pub fn decode(buf: &[u8]) -> Result<Self, WireError> {
        if let Some(&len) = buf.first() {
            if usize::from(len) != PROTOCOL.len() {
                return Err(WireError::BadProtocolLength { len });
            }
        }
        let seen = buf.get(1..).unwrap_or_default();
        let n = seen.len().min(PROTOCOL.len());
        if seen.get(..n) != PROTOCOL.get(..n) {
            return Err(WireError::BadProtocolString);
        }
        let Some(rest) = buf.get(1 + PROTOCOL.len()..Self::LEN) else {
            return Err(WireError::Incomplete { needed: Self::LEN - buf.len() });
        };
        let (reserved, rest) = split_array::<8>(rest);
        let (info_hash, rest) = split_array::<20>(rest);
        let (peer_id, _) = split_array::<20>(rest);
        Ok(Handshake {
            reserved: Reserved(reserved),
            info_hash: InfoHash(info_hash),
            peer_id: PeerId(peer_id),
        })
    }
}

/// The first `N` bytes of `s` as an array (zero-padded if `s` is shorter) and the rest.
pub(super) fn split_array<const N: usize>(s: &[u8]) -> ([u8; N], &[u8]) {
    let mut out = [0u8; N];
    let n = s.len().min(N);
    let (head, tail) = s.split_at(n);
    if let Some(dst) = out.get_mut(..n) {
        dst.copy_from_slice(head);
    }
    (out, tail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Handshake {
        Handshake::new(InfoHash([7; 20]), PeerId(*b"-FG0100-abcdefghijkl"))
    }

    #[test]
    fn round_trip_and_layout() {
        let hs = sample();
        let bytes = hs.to_bytes();
        assert_eq!(bytes[0], 19);
        assert_eq!(&bytes[1..20], PROTOCOL);
        assert_eq!(&bytes[20..28], &[0, 0, 0, 0, 0, 0x10, 0, 0x04]);
        assert_eq!(&bytes[28..48], &[7; 20]);
        assert_eq!(&bytes[48..68], b"-FG0100-abcdefghijkl");
        assert_eq!(Handshake::decode(&bytes), Ok(hs));
        let mut v = Vec::new();
        hs.encode(&mut v);
        assert_eq!(v, bytes);
    }

    #[test]
    fn reserved_bits() {
        let r = Reserved::default();
        assert!(!r.extension_protocol() && !r.fast() && !r.dht());
        let r = r.with_extension_protocol(true).with_fast(true).with_dht(true);
        assert!(r.extension_protocol() && r.fast() && r.dht());
        assert_eq!(r.0, [0, 0, 0, 0, 0, 0x10, 0, 0x05]);
        let r = r.with_fast(false);
        assert!(!r.fast() && r.dht() && r.extension_protocol());
        assert!(Reserved::FLOODGATE.extension_protocol() && Reserved::FLOODGATE.fast());
    }

    #[test]
    fn incomplete_at_every_prefix() {
        let bytes = sample().to_bytes();
        for n in 0..Handshake::LEN {
            assert_eq!(Handshake::decode(&bytes[..n]), Err(WireError::Incomplete { needed: 68 - n }));
        }
    }

    #[test]
    fn bad_protocol_reported_early() {
        assert_eq!(Handshake::decode(&[18]), Err(WireError::BadProtocolLength { len: 18 }));
        assert_eq!(Handshake::decode(b"\x13BitTorrent"), Err(WireError::Incomplete { needed: 57 }));
        assert_eq!(Handshake::decode(b"\x13BitTorrenX"), Err(WireError::BadProtocolString));
        let mut bytes = sample().to_bytes();
        bytes[19] = b'X';
        assert_eq!(Handshake::decode(&bytes), Err(WireError::BadProtocolString));
        // An HTTP request on the BitTorrent port fails on the first byte.
        assert_eq!(Handshake::decode(b"GET / HTTP/1.1"), Err(WireError::BadProtocolLength { len: b'G' }));
    }
}
