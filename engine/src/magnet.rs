//! Magnet links (BEP 9): `magnet:?xt=urn:btih:<hash>&dn=<name>&tr=<tracker>&ws=<web seed>&x.pe=<peer>`.
//!
//! Parsing percent-decodes every value (and reads `+` as a space, as libtorrent does), accepts
//! the info-hash as 40 hex or 32 base32 characters, collects repeated `tr`, `ws` and `x.pe`, and
//! ignores parameters it does not know (including `xt` values other than `urn:btih:`, e.g. v2
//! `urn:btmh:`). [`Magnet::to_uri`] writes a link that parses back to the same [`Magnet`].

use std::net::SocketAddr;

use crate::percent::{percent_decode_at, percent_encode};
use crate::types::InfoHash;

/// A parsed magnet link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Magnet {
    /// The v1 info-hash (`xt=urn:btih:`).
    pub info_hash: InfoHash,
    /// Display name (`dn`), if given.
    pub name: Option<String>,
    /// Tracker URLs (`tr`), in order.
    pub trackers: Vec<String>,
    /// Web seed URLs (`ws`, BEP 19), in order.
    pub web_seeds: Vec<String>,
    /// Peers to contact directly (`x.pe`). Only `ip:port` and `[ipv6]:port` are kept; host
    /// names would need DNS, which this parser does not do, so they are skipped.
    pub peers: Vec<SocketAddr>,
}

/// Why a string is not a usable magnet link.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MagnetError {
    /// The string does not start with `magnet:?` (scheme compared case-insensitively).
    #[error("not a magnet link")]
    NotMagnet,
    /// No `xt=urn:btih:` parameter.
    #[error("no urn:btih info-hash")]
    MissingInfoHash,
    /// The `urn:btih:` value is neither 40 hex nor 32 base32 characters.
    #[error("bad info-hash {value:?}")]
    BadInfoHash {
        /// The value after `urn:btih:`.
        value: String,
    },
    /// Two `urn:btih:` parameters naming different torrents.
    #[error("conflicting info-hashes")]
    ConflictingInfoHash,
    /// A `%` not followed by two hex digits.
    #[error("bad percent-encoding at byte {offset}")]
    BadPercentEncoding {
        /// Offset of the `%` in the link.
        offset: usize,
    },
    /// A value that is not UTF-8 once percent-decoded.
    #[error("parameter `{param}` is not UTF-8")]
    NotUtf8 {
        /// The parameter name.
        param: String,
    },
}

const PREFIX: &str = "magnet:?";
const BTIH: &str = "urn:btih:";

impl Magnet {
    /// A magnet for `info_hash` with nothing else.
    pub fn new(info_hash: InfoHash) -> Self {
        Magnet { info_hash, name: None, trackers: Vec::new(), web_seeds: Vec::new(), peers: Vec::new() }
    }

    /// Parses a magnet link.
    pub fn parse(uri: &str) -> Result<Self, MagnetError> {
        let head = uri.get(..PREFIX.len()).ok_or(MagnetError::NotMagnet)?;
        if !head.eq_ignore_ascii_case(PREFIX) {
            return Err(MagnetError::NotMagnet);
        }
        let mut info_hash = None;
        let mut m = Magnet::new(InfoHash::default());
        let mut offset = PREFIX.len();
        for pair in uri.get(PREFIX.len()..).unwrap_or_default().split('&') {
            let pair_offset = offset;
            offset += pair.len() + 1;
            let (key, raw) = pair.split_once('=').unwrap_or((pair, ""));
            let value_offset = pair_offset + key.len() + 1;
            match key {
                "xt" => {
                    let value = decode(raw, value_offset, key)?;
                    let Some(hash) = strip_prefix_ignore_case(&value, BTIH) else { continue };
                    let hash = parse_hash(hash)?;
                    if info_hash.is_some_and(|h| h != hash) {
                        return Err(MagnetError::ConflictingInfoHash);
                    }
                    info_hash = Some(hash);
                }
                "dn" => m.name = Some(decode(raw, value_offset, key)?),
                "tr" => m.trackers.push(decode(raw, value_offset, key)?),
                "ws" => m.web_seeds.push(decode(raw, value_offset, key)?),
                "x.pe" => {
                    if let Ok(addr) = decode(raw, value_offset, key)?.parse() {
                        m.peers.push(addr);
                    }
                }
                _ => {}
            }
        }
        m.info_hash = info_hash.ok_or(MagnetError::MissingInfoHash)?;
        Ok(m)
    }

    /// The link as a string: hash in lowercase hex, values percent-encoded.
    pub fn to_uri(&self) -> String {
        let mut s = format!("{PREFIX}xt={BTIH}{}", self.info_hash.to_hex());
        if let Some(name) = &self.name {
            s.push_str("&dn=");
            percent_encode(name.as_bytes(), &mut s);
        }
        let params = [("tr", &self.trackers), ("ws", &self.web_seeds)];
        for (key, values) in params {
            for v in values {
                s.push('&');
                s.push_str(key);
                s.push('=');
                percent_encode(v.as_bytes(), &mut s);
            }
        }
        for peer in &self.peers {
            s.push_str("&x.pe=");
            percent_encode(peer.to_string().as_bytes(), &mut s);
        }
        s
    }
}

impl std::str::FromStr for Magnet {
    type Err = MagnetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Magnet::parse(s)
    }
}

fn strip_prefix_ignore_case<'s>(s: &'s str, prefix: &str) -> Option<&'s str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| s.get(prefix.len()..)).flatten()
}

/// Reads 40 hex or 32 base32 characters.
fn parse_hash(s: &str) -> Result<InfoHash, MagnetError> {
    let bad = || MagnetError::BadInfoHash { value: s.to_owned() };
    match s.len() {
        40 => InfoHash::from_hex(s).ok_or_else(bad),
        32 => {
            let upper = s.to_ascii_uppercase();
            let bytes = data_encoding::BASE32.decode(upper.as_bytes()).map_err(|_| bad())?;
            let arr = <[u8; 20]>::try_from(bytes.as_slice()).map_err(|_| bad())?;
            Ok(InfoHash(arr))
        }
        _ => Err(bad()),
    }
}

/// Percent-decodes `raw` (found at `offset` in the link), reading `+` as a space.
fn decode(raw: &str, offset: usize, param: &str) -> Result<String, MagnetError> {
    let bytes = percent_decode_at(raw).map_err(|i| MagnetError::BadPercentEncoding { offset: offset + i })?;
    String::from_utf8(bytes).map_err(|_| MagnetError::NotUtf8 { param: param.to_owned() })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const HEX: &str = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a";

    #[test]
    fn parses_real_world_link() {
        let uri = format!(
            "magnet:?xt=urn:btih:{}&dn=ubuntu-24.04-desktop-amd64.iso\
             &tr=https%3A%2F%2Ftorrent.ubuntu.com%2Fannounce&tr=udp://tracker.example:1337/announce\
             &ws=http%3A%2F%2Fmirror.example%2Fubuntu.iso&x.pe=10.0.0.1:6881&x.pe=[::1]:51413\
             &x.pe=peer.example:6881&so=0-3&xl=6114656256",
            HEX.to_uppercase()
        );
        let m = Magnet::parse(&uri).unwrap();
        assert_eq!(m.info_hash.to_hex(), HEX);
        assert_eq!(m.name.as_deref(), Some("ubuntu-24.04-desktop-amd64.iso"));
        assert_eq!(
            m.trackers,
            ["https://torrent.ubuntu.com/announce", "udp://tracker.example:1337/announce"]
        );
        assert_eq!(m.web_seeds, ["http://mirror.example/ubuntu.iso"]);
        assert_eq!(m.peers, ["10.0.0.1:6881".parse().unwrap(), "[::1]:51413".parse().unwrap()]);
        assert_eq!(Magnet::parse(&m.to_uri()), Ok(m.clone()));
        assert_eq!(m.to_uri().parse::<Magnet>(), Ok(m));
    }

    #[test]
    fn base32_hash_and_plus_as_space() {
        let hash = InfoHash::from_hex(HEX).unwrap();
        let b32 = data_encoding::BASE32.encode(hash.as_bytes());
        let m = Magnet::parse(&format!("MAGNET:?dn=My+File%20x&xt=urn:btih:{}", b32.to_lowercase())).unwrap();
        assert_eq!(m.info_hash, hash);
        assert_eq!(m.name.as_deref(), Some("My File x"));
        // v2 hashes and repeats of the same v1 hash are fine.
        let uri = format!("magnet:?xt=urn:btmh:1220abcd&xt=urn:btih:{HEX}&xt=urn:btih:{b32}&flag&=x");
        assert_eq!(Magnet::parse(&uri).unwrap().info_hash, hash);
    }

    #[test]
    fn every_error_variant() {
        let other = "0123456789012345678901234567890123456789";
        let cases: [(String, MagnetError); 9] = [
            ("http://x".into(), MagnetError::NotMagnet),
            ("magnet".into(), MagnetError::NotMagnet),
            ("magnet:?dn=x".into(), MagnetError::MissingInfoHash),
            ("magnet:?xt=urn:btih:abc".into(), MagnetError::BadInfoHash { value: "abc".into() }),
            (
                format!("magnet:?xt=urn:btih:{}", "z".repeat(40)),
                MagnetError::BadInfoHash { value: "z".repeat(40) },
            ),
            (
                format!("magnet:?xt=urn:btih:{}", "1".repeat(32)),
                MagnetError::BadInfoHash { value: "1".repeat(32) },
            ),
            (format!("magnet:?xt=urn:btih:{HEX}&xt=urn:btih:{other}"), MagnetError::ConflictingInfoHash),
            (format!("magnet:?xt=urn:btih:{HEX}&dn=a%2"), MagnetError::BadPercentEncoding { offset: 65 }),
            (format!("magnet:?xt=urn:btih:{HEX}&tr=%ff"), MagnetError::NotUtf8 { param: "tr".into() }),
        ];
        for (uri, want) in cases {
            assert_eq!(Magnet::parse(&uri), Err(want), "{uri}");
        }
        assert_eq!(Magnet::parse("magnet:?dn=%zz"), Err(MagnetError::BadPercentEncoding { offset: 11 }));
    }

    fn magnet() -> impl Strategy<Value = Magnet> {
        let text = "\\PC{0,16}";
        let peer = (any::<std::net::IpAddr>(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::new(ip, port));
        (
            any::<[u8; 20]>(),
            proptest::option::of(text),
            proptest::collection::vec(text, 0..4),
            proptest::collection::vec(text, 0..3),
            proptest::collection::vec(peer, 0..3),
        )
            .prop_map(|(h, name, trackers, web_seeds, peers)| Magnet {
                info_hash: InfoHash(h),
                name,
                trackers,
                web_seeds,
                peers,
            })
    }

    proptest! {
        #[test]
        fn round_trip(m in magnet()) {
            prop_assert_eq!(Magnet::parse(&m.to_uri()), Ok(m));
        }

        #[test]
        fn parser_never_panics(s in "magnet:\\?[a-z.=&%0-9A-F+:]{0,80}") {
            if let Ok(m) = Magnet::parse(&s) {
                prop_assert_eq!(Magnet::parse(&m.to_uri()), Ok(m));
            }
        }
    }
}
