//! Announce responses: the lenient, bounded parser a client needs and the encoder the server uses.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::{ResponseError, MAX_PEERS, MAX_RESPONSE_BYTES};
use crate::bencode::{decode_with, DecodeLimits, Dict, Encoder, KeyOrder, Value};

/// What a tracker answered to an announce (a `failure reason` is an error instead).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AnnounceResponse {
    /// Seconds to wait before the next regular announce.
    pub interval: u32,
    /// Seconds the tracker wants at least between announces.
    pub min_interval: Option<u32>,
    /// Seeders in the swarm.
    pub complete: Option<u32>,
    /// Leechers in the swarm.
    pub incomplete: Option<u32>,
    /// A warning to show (the announce still succeeded).
    pub warning: Option<String>,
    /// Peers, IPv4 and IPv6, in the order given (compact `peers` before `peers6`); at most
    /// [`MAX_PEERS`].
    pub peers: Vec<SocketAddr>,
}

/// Bencode limits for a tracker response: small depth, at most [`MAX_RESPONSE_BYTES`].
fn limits() -> DecodeLimits {
    DecodeLimits {
        max_depth: 8,
        max_items: 6 * MAX_PEERS + 64,
        max_input_len: MAX_RESPONSE_BYTES,
        max_bytes_len: MAX_RESPONSE_BYTES,
    }
}

/// Parses an announce response body. Keys may come in any order (real trackers do not sort
/// them). Peers may be compact (`peers` as a string of 6-byte entries, BEP 23), IPv6 compact
/// (`peers6`, 18-byte entries, BEP 7) or the original list of `{ip, port}` dictionaries, whose
/// unusable entries (host names, port 0) are skipped.
pub fn parse_announce_response(body: &[u8]) -> Result<AnnounceResponse, ResponseError> {
    let value = decode_with(body, &limits(), KeyOrder::Any)?;
    let dict = value.as_dict().ok_or(ResponseError::NotADict)?;
    if let Some(reason) = dict.get(b"failure reason") {
        let bytes = reason.as_bytes().ok_or(ResponseError::Invalid { key: "failure reason" })?;
        return Err(ResponseError::Failure { reason: String::from_utf8_lossy(bytes).into_owned() });
    }
    let interval = u32_field(dict, "interval")?.ok_or(ResponseError::Missing { key: "interval" })?;
    let mut resp = AnnounceResponse {
        interval,
        min_interval: u32_field(dict, "min interval")?,
        complete: u32_field(dict, "complete")?,
        incomplete: u32_field(dict, "incomplete")?,
        warning: match dict.get(b"warning message") {
            None => None,
            Some(v) => Some(
                String::from_utf8_lossy(
                    v.as_bytes().ok_or(ResponseError::Invalid { key: "warning message" })?,
                )
                .into_owned(),
            ),
        },
        peers: Vec::new(),
    };
    match dict.get(b"peers") {
        None => {}
        Some(v) => match (v.as_bytes(), v.as_list()) {
            (Some(compact), _) => compact_peers(compact, "peers", 6, &mut resp.peers)?,
            (_, Some(list)) => dict_peers(list, &mut resp.peers)?,
            _ => return Err(ResponseError::Invalid { key: "peers" }),
        },
    }
    if let Some(v) = dict.get(b"peers6") {
        let compact = v.as_bytes().ok_or(ResponseError::Invalid { key: "peers6" })?;
        compact_peers(compact, "peers6", 18, &mut resp.peers)?;
    }
    Ok(resp)
}

/// A non-negative integer that fits a `u32`, if present.
fn u32_field(dict: &Dict<'_>, key: &'static str) -> Result<Option<u32>, ResponseError> {
    match dict.get(key.as_bytes()) {
        None => Ok(None),
        Some(v) => {
            let n = v.as_int().ok_or(ResponseError::Invalid { key })?;
            u32::try_from(n).map(Some).map_err(|_| ResponseError::Invalid { key })
        }
    }
}

fn compact_peers(
    bytes: &[u8],
    key: &'static str,
    entry: usize,
    out: &mut Vec<SocketAddr>,
) -> Result<(), ResponseError> {
    let chunks = bytes.chunks_exact(entry);
    if !chunks.remainder().is_empty() {
        return Err(ResponseError::CompactLength { key, len: bytes.len(), entry });
    }
    for chunk in chunks {
        if out.len() >= MAX_PEERS {
            break;
        }
        let (ip, port) = chunk.split_at(entry - 2);
        let port = u16::from_be_bytes([port[0], port[1]]);
        let ip = match <[u8; 4]>::try_from(ip) {
            Ok(v4) => IpAddr::V4(Ipv4Addr::from(v4)),
            Err(_) => match <[u8; 16]>::try_from(ip) {
                Ok(v6) => IpAddr::V6(Ipv6Addr::from(v6)),
                Err(_) => continue,
            },
        };
        if port != 0 {
            out.push(SocketAddr::new(ip, port));
        }
    }
    Ok(())
}

fn dict_peers(list: &[Value<'_>], out: &mut Vec<SocketAddr>) -> Result<(), ResponseError> {
    for item in list {
        if out.len() >= MAX_PEERS {
            break;
        }
        let peer = item.as_dict().ok_or(ResponseError::Invalid { key: "peers" })?;
        let ip = peer.get(b"ip").and_then(Value::as_str).and_then(|s| s.parse::<IpAddr>().ok());
        let port = peer.get(b"port").and_then(Value::as_int).and_then(|p| u16::try_from(p).ok());
        if let (Some(ip), Some(port)) = (ip, port) {
            if port != 0 {
                out.push(SocketAddr::new(ip, port));
            }
        }
    }
    Ok(())
}

impl AnnounceResponse {
    /// Appends the bencoded response to `out`. With `compact`, IPv4 peers go into `peers` and
    /// IPv6 peers into `peers6` (both always present); otherwise `peers` is a list of
    /// `{ip, port}` dictionaries.
    pub fn encode(&self, compact: bool, out: &mut Vec<u8>) {
        let mut enc = Encoder::new(out);
        enc.dict(|d| {
            d.int(b"interval", i64::from(self.interval));
            if let Some(v) = self.min_interval {
                d.int(b"min interval", i64::from(v));
            }
            if let Some(v) = self.complete {
                d.int(b"complete", i64::from(v));
            }
            if let Some(v) = self.incomplete {
                d.int(b"incomplete", i64::from(v));
            }
            if let Some(w) = &self.warning {
                d.str(b"warning message", w);
            }
            if compact {
                let mut v4 = Vec::new();
                let mut v6 = Vec::new();
                for p in &self.peers {
                    match p.ip() {
                        IpAddr::V4(ip) => v4.extend_from_slice(&ip.octets()),
                        IpAddr::V6(ip) => v6.extend_from_slice(&ip.octets()),
                    }
                    let buf = if p.is_ipv4() { &mut v4 } else { &mut v6 };
                    buf.extend_from_slice(&p.port().to_be_bytes());
                }
                d.bytes(b"peers", &v4);
                d.bytes(b"peers6", &v6);
            } else {
                d.entry(b"peers", |e| {
                    e.list(|l| {
                        for p in &self.peers {
                            l.dict(|pd| {
                                pd.str(b"ip", &p.ip().to_string());
                                pd.int(b"port", i64::from(p.port()));
                            });
                        }
                    })
                });
            }
        });
        // Keys are distinct constants: the encoder cannot report a duplicate.
        let _ = enc.finish();
    }
}

/// Appends a bencoded `failure reason` response to `out`.
pub fn encode_failure(reason: &str, out: &mut Vec<u8>) {
    let mut enc = Encoder::new(out);
    enc.dict(|d| d.str(b"failure reason", reason));
    let _ = enc.finish();
}
