//! BEP 9 `ut_metadata` messages: fetching the info dictionary from peers in 16 KiB pieces.

use bytes::Bytes;

use super::extended::PEER_DICT_LIMITS;
use super::{ExtensionError, Message};
use crate::bencode::{self, Encoder, KeyOrder};

/// Size of every metadata piece but the last.
pub const METADATA_PIECE_LEN: u32 = 16 * 1024;

/// One `ut_metadata` message (the payload of an extended message whose id the receiver assigned
/// to `ut_metadata`).
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum MetadataMessage {
    /// `msg_type` 0: asks for a metadata piece.
    Request {
        /// The metadata piece index.
        piece: u32,
    },
    /// `msg_type` 1: a metadata piece; the raw bytes follow the dictionary.
    Data {
        /// The metadata piece index.
        piece: u32,
        /// Size of the whole info dictionary.
        total_size: u64,
        /// The piece's bytes (a slice of the received payload, not a copy).
        data: Bytes,
    },
    /// `msg_type` 2: the sender will not send this piece.
    Reject {
        /// The metadata piece index.
        piece: u32,
    },
}

impl MetadataMessage {
    /// Decodes an extended message payload. For data, checks that `data` has the length its
    /// piece index and `total_size` imply.
    pub fn decode(payload: &Bytes) -> Result<Self, ExtensionError> {
        let (value, used) = bencode::decode_prefix(payload, &PEER_DICT_LIMITS, KeyOrder::Any)?;
        let dict = value.as_dict().ok_or(ExtensionError::NotADict { kind: value.kind_name() })?;
        let int = |key: &'static str| -> Result<i64, ExtensionError> {
            let v = dict.get(key.as_bytes()).ok_or(ExtensionError::MissingField { key })?;
            v.as_int().ok_or(ExtensionError::BadField { key })
        };
        let msg_type = int("msg_type")?;
        let piece = u32::try_from(int("piece")?).map_err(|_| ExtensionError::BadField { key: "piece" })?;
        let data = payload.slice(used.min(payload.len())..);
        match msg_type {
            0 | 2 if !data.is_empty() => Err(bencode::DecodeError::TrailingBytes { offset: used }.into()),
            0 => Ok(MetadataMessage::Request { piece }),
            2 => Ok(MetadataMessage::Reject { piece }),
            1 => {
                let total_size = u64::try_from(int("total_size")?)
                    .map_err(|_| ExtensionError::BadField { key: "total_size" })?;
                let expected = piece_len(piece, total_size);
                if expected != Some(data.len() as u64) {
                    return Err(ExtensionError::MetadataPieceSize { piece, len: data.len(), total_size });
                }
                Ok(MetadataMessage::Data { piece, total_size, data })
            }
            msg_type => Err(ExtensionError::UnknownMetadataType { msg_type }),
        }
    }

    /// Appends the bencoded dictionary, and for data the raw bytes, to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let (msg_type, piece) = match self {
            MetadataMessage::Request { piece } => (0, piece),
            MetadataMessage::Data { piece, .. } => (1, piece),
            MetadataMessage::Reject { piece } => (2, piece),
        };
        let mut enc = Encoder::new(out);
        enc.dict(|d| {
            d.int(b"msg_type", msg_type);
            d.int(b"piece", i64::from(*piece));
            if let MetadataMessage::Data { total_size, .. } = self {
                d.int(b"total_size", i64::try_from(*total_size).unwrap_or(i64::MAX));
            }
        });
        // Three distinct fixed keys: no duplicate is possible.
        let _ = enc.finish();
        if let MetadataMessage::Data { data, .. } = self {
            out.extend_from_slice(data);
        }
    }

    /// The extended message carrying this, for a peer that gave `ut_metadata` the id
    /// `peer_ut_metadata_id` in its extended handshake.
    pub fn to_message(&self, peer_ut_metadata_id: u8) -> Message {
        let mut out = Vec::new();
        self.encode(&mut out);
        Message::Extended { id: peer_ut_metadata_id, payload: Bytes::from(out) }
    }
}

/// How many metadata pieces an info dictionary of `total_size` bytes has.
pub fn metadata_piece_count(total_size: u64) -> u64 {
    total_size.div_ceil(u64::from(METADATA_PIECE_LEN))
}

/// Length of metadata piece `piece` for `total_size` bytes, `None` if there is no such piece.
pub fn piece_len(piece: u32, total_size: u64) -> Option<u64> {
    let start = u64::from(piece) * u64::from(METADATA_PIECE_LEN);
    (start < total_size).then(|| (total_size - start).min(u64::from(METADATA_PIECE_LEN)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(b: &'static [u8]) -> Result<MetadataMessage, ExtensionError> {
        MetadataMessage::decode(&Bytes::from_static(b))
    }

    #[test]
    fn exact_bytes_and_round_trip() {
        let data = Bytes::from(vec![b'x'; 16384]);
        let cases = [
            (MetadataMessage::Request { piece: 0 }, b"d8:msg_typei0e5:piecei0ee".to_vec()),
            (MetadataMessage::Reject { piece: 3 }, b"d8:msg_typei2e5:piecei3ee".to_vec()),
            (
                MetadataMessage::Data { piece: 1, total_size: 16388, data: Bytes::from_static(b"0123") },
                b"d8:msg_typei1e5:piecei1e10:total_sizei16388ee0123".to_vec(),
            ),
            (
                MetadataMessage::Data { piece: 0, total_size: 40000, data: data.clone() },
                [&b"d8:msg_typei1e5:piecei0e10:total_sizei40000ee"[..], &data].concat(),
            ),
        ];
        for (m, bytes) in cases {
            let mut out = Vec::new();
            m.encode(&mut out);
            assert_eq!(out, bytes, "{m:?}");
            let Message::Extended { id: 3, payload } = m.to_message(3) else { panic!("not extended") };
            assert_eq!(MetadataMessage::decode(&payload), Ok(m));
        }
    }

    #[test]
    fn data_is_a_slice_of_the_payload() {
        let payload = Bytes::from(b"d8:msg_typei1e5:piecei0e10:total_sizei3eeabc".to_vec());
        let Ok(MetadataMessage::Data { data, .. }) = MetadataMessage::decode(&payload) else { panic!() };
        assert_eq!(&data[..], b"abc");
        assert_eq!(data.as_ptr() as usize, payload.as_ptr() as usize + payload.len() - 3);
    }

    #[test]
    fn errors() {
        assert!(matches!(dec(b"d8:msg_type"), Err(ExtensionError::Bencode(_))));
        assert!(matches!(dec(b"d8:msg_typei0e5:piecei0eexx"), Err(ExtensionError::Bencode(_))));
        assert_eq!(dec(b"i0e"), Err(ExtensionError::NotADict { kind: "int" }));
        assert_eq!(dec(b"d5:piecei0ee"), Err(ExtensionError::MissingField { key: "msg_type" }));
        assert_eq!(dec(b"d8:msg_typei0ee"), Err(ExtensionError::MissingField { key: "piece" }));
        assert_eq!(dec(b"d8:msg_type1:05:piecei0ee"), Err(ExtensionError::BadField { key: "msg_type" }));
        assert_eq!(dec(b"d8:msg_typei0e5:piecei-1ee"), Err(ExtensionError::BadField { key: "piece" }));
        assert_eq!(
            dec(b"d8:msg_typei1e5:piecei0ee"),
            Err(ExtensionError::MissingField { key: "total_size" })
        );
        assert_eq!(
            dec(b"d8:msg_typei1e5:piecei0e10:total_sizei-1ee"),
            Err(ExtensionError::BadField { key: "total_size" })
        );
        assert_eq!(
            dec(b"d8:msg_typei7e5:piecei0ee"),
            Err(ExtensionError::UnknownMetadataType { msg_type: 7 })
        );
        assert_eq!(
            dec(b"d8:msg_typei1e5:piecei0e10:total_sizei5eeabc"),
            Err(ExtensionError::MetadataPieceSize { piece: 0, len: 3, total_size: 5 })
        );
        assert_eq!(
            dec(b"d8:msg_typei1e5:piecei1e10:total_sizei5ee"),
            Err(ExtensionError::MetadataPieceSize { piece: 1, len: 0, total_size: 5 })
        );
    }

    #[test]
    fn piece_arithmetic() {
        assert_eq!(metadata_piece_count(0), 0);
        assert_eq!(metadata_piece_count(16384), 1);
        assert_eq!(metadata_piece_count(16385), 2);
        assert_eq!(piece_len(1, 16385), Some(1));
        assert_eq!(piece_len(0, 16385), Some(16384));
        assert_eq!(piece_len(2, 16385), None);
        assert_eq!(piece_len(u32::MAX, u64::MAX), Some(16384));
    }
}
