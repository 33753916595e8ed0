//! The BEP 10 extended handshake (extended message id 0).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bytes::Bytes;

use super::{ExtensionError, Message};
use crate::bencode::{self, DecodeLimits, Dict, Encoder, KeyOrder};

/// Extended message id of the extended handshake itself.
pub const EXTENDED_HANDSHAKE_ID: u8 = 0;

/// Name of the BEP 9 metadata extension in `m`.
pub const UT_METADATA: &str = "ut_metadata";

/// Bencode limits for dictionaries peers send in extended messages: small and shallow.
pub(super) const PEER_DICT_LIMITS: DecodeLimits =
    DecodeLimits { max_depth: 8, max_items: 4096, max_input_len: 1 << 20, max_bytes_len: 1 << 20 };

/// The BEP 10 extended handshake dictionary: which extensions the sender speaks and a few facts
/// about it. Every field is optional on the wire; unknown keys are ignored.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct ExtendedHandshake {
    /// `m`: extension name -> the id the *sender* wants to receive that extension's messages
    /// under (0 means disabled).
    pub m: BTreeMap<String, u8>,
    /// `v`: client name and version.
    pub v: Option<String>,
    /// `p`: the sender's listening TCP port.
    pub p: Option<u16>,
    /// `reqq`: how many outstanding requests the sender accepts.
    pub reqq: Option<u32>,
    /// `metadata_size` (BEP 9): size of the info dictionary in bytes.
    pub metadata_size: Option<u64>,
    /// `yourip`: the receiver's address as the sender sees it.
    pub yourip: Option<IpAddr>,
    /// `fg_fleet` (Floodgate): proof that the sender belongs to the receiver's fleet, a 20-byte
    /// digest bound to both peer ids (see [`FleetKey`](crate::peer::FleetKey)).
    pub fleet: Option<[u8; 20]>,
}

impl ExtendedHandshake {
    /// Decodes the payload of an extended message with id 0.
    ///
    /// Lenient as real clients need: keys may come unsorted, and a field of the wrong type or
    /// out of range reads as absent (an `m` entry likewise is skipped), except `m` itself, which
    /// must be a dictionary if present.
    pub fn decode(payload: &[u8]) -> Result<Self, ExtensionError> {
        let value = bencode::decode_with(payload, &PEER_DICT_LIMITS, KeyOrder::Any)?;
        let dict = value.as_dict().ok_or(ExtensionError::NotADict { kind: value.kind_name() })?;
        let mut m = BTreeMap::new();
        if let Some(mv) = dict.get(b"m") {
            let md = mv.as_dict().ok_or(ExtensionError::BadField { key: "m" })?;
            for (name, id) in md.iter() {
                let id = id.as_int().and_then(|i| u8::try_from(i).ok());
                if let (Ok(name), Some(id)) = (std::str::from_utf8(name), id) {
                    m.insert(name.to_owned(), id);
                }
            }
        }
        Ok(ExtendedHandshake {
            m,
            v: dict.get(b"v").and_then(|v| v.as_str()).map(str::to_owned),
            p: int_field(dict, b"p"),
            reqq: int_field(dict, b"reqq"),
            metadata_size: int_field(dict, b"metadata_size"),
            yourip: dict.get(b"yourip").and_then(|v| v.as_bytes()).and_then(ip_from_bytes),
            fleet: dict
                .get(b"fg_fleet")
                .and_then(|v| v.as_bytes())
                .and_then(|b| <[u8; 20]>::try_from(b).ok()),
        })
    }

    /// Appends the bencoded dictionary (keys sorted) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut enc = Encoder::new(out);
        enc.dict(|d| {
            if let Some(proof) = &self.fleet {
                d.bytes(b"fg_fleet", proof);
            }
            d.entry(b"m", |e| {
                e.dict(|md| {
                    for (name, id) in &self.m {
                        md.int(name.as_bytes(), i64::from(*id));
                    }
                })
            });
            if let Some(size) = self.metadata_size {
                d.int(b"metadata_size", i64::try_from(size).unwrap_or(i64::MAX));
            }
            if let Some(p) = self.p {
                d.int(b"p", i64::from(p));
            }
            if let Some(reqq) = self.reqq {
                d.int(b"reqq", i64::from(reqq));
            }
            if let Some(v) = &self.v {
                d.str(b"v", v);
            }
            match self.yourip {
                Some(IpAddr::V4(ip)) => d.bytes(b"yourip", &ip.octets()),
                Some(IpAddr::V6(ip)) => d.bytes(b"yourip", &ip.octets()),
                None => {}
            }
        });
        // Keys come from a map (unique) and fixed distinct names, so there is no duplicate.
        let _ = enc.finish();
    }

    /// The whole extended message (id 0) carrying this handshake.
    pub fn to_message(&self) -> Message {
        let mut out = Vec::new();
        self.encode(&mut out);
        Message::Extended { id: EXTENDED_HANDSHAKE_ID, payload: Bytes::from(out) }
    }

    /// The id the sender wants to receive extension `name` under, if it speaks it (not 0).
    pub fn extension_id(&self, name: &str) -> Option<u8> {
        self.m.get(name).copied().filter(|&id| id != 0)
    }
}

/// The integer under `key` converted to `T`, or `None` if absent, not an int, or out of range.
fn int_field<T: TryFrom<i64>>(dict: &Dict<'_>, key: &[u8]) -> Option<T> {
    dict.get(key)?.as_int().and_then(|i| T::try_from(i).ok())
}

/// A 4- or 16-byte compact address.
fn ip_from_bytes(b: &[u8]) -> Option<IpAddr> {
    if let Ok(v4) = <[u8; 4]>::try_from(b) {
        Some(IpAddr::V4(Ipv4Addr::from(v4)))
    } else {
        <[u8; 16]>::try_from(b).ok().map(|v6| IpAddr::V6(Ipv6Addr::from(v6)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> ExtendedHandshake {
        ExtendedHandshake {
            m: [("ut_metadata".to_owned(), 3), ("ut_pex".to_owned(), 1)].into_iter().collect(),
            v: Some("Floodgate 0.1".to_owned()),
            p: Some(6881),
            reqq: Some(500),
            metadata_size: Some(31337),
            yourip: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7))),
            fleet: None,
        }
    }

    #[test]
    fn exact_encoding() {
        let mut out = Vec::new();
        full().encode(&mut out);
        let expected: &[u8] = b"d1:md11:ut_metadatai3e6:ut_pexi1ee13:metadata_sizei31337e1:pi6881e\
4:reqqi500e1:v13:Floodgate 0.16:yourip4:\x0a\x00\x00\x07e";
        assert_eq!(out, expected);
        let mut out = Vec::new();
        ExtendedHandshake::default().encode(&mut out);
        assert_eq!(out, b"d1:mdee");
    }

    #[test]
    fn round_trip() {
        let mut v6 = full();
        v6.yourip = Some(IpAddr::V6(Ipv6Addr::LOCALHOST));
        let fleet = ExtendedHandshake { fleet: Some([9; 20]), ..full() };
        for hs in [full(), v6, fleet, ExtendedHandshake::default()] {
            let Message::Extended { id: 0, payload } = hs.to_message() else { panic!("not extended 0") };
            assert_eq!(ExtendedHandshake::decode(&payload), Ok(hs));
        }
        assert_eq!(full().extension_id(UT_METADATA), Some(3));
        assert_eq!(full().extension_id("lt_donthave"), None);
    }

    #[test]
    fn lenient_on_real_world_quirks() {
        // Unsorted keys, unknown keys, wrong types and out-of-range values read as absent.
        let payload = b"d1:pi99999e1:v3:abc4:reqq3:xyz1:md6:ut_pexi1e3:badi300e3:negi-1ee\
6:yourip3:abc13:metadata_sizei-5e5:extrald1:xi1eeee";
        let hs = ExtendedHandshake::decode(payload).unwrap();
        assert_eq!(hs.m, [("ut_pex".to_owned(), 1)].into_iter().collect());
        assert_eq!(hs.v.as_deref(), Some("abc"));
        assert_eq!((hs.p, hs.reqq, hs.metadata_size, hs.yourip), (None, None, None, None));
        // m = 0 means disabled.
        let hs = ExtendedHandshake::decode(b"d1:md11:ut_metadatai0eee").unwrap();
        assert_eq!(hs.extension_id(UT_METADATA), None);
    }

    #[test]
    fn errors() {
        assert!(matches!(ExtendedHandshake::decode(b"d1:m"), Err(ExtensionError::Bencode(_))));
        assert_eq!(ExtendedHandshake::decode(b"li1ee"), Err(ExtensionError::NotADict { kind: "list" }));
        assert_eq!(ExtendedHandshake::decode(b"d1:mi1ee"), Err(ExtensionError::BadField { key: "m" }));
    }
}
