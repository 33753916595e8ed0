//! The serving side of BEP 9 (`ut_metadata`): answering a peer's request for a piece of the
//! info dictionary, as a pure function of the request and what we hold.

use bytes::Bytes;

use crate::wire::{metadata_piece_len, MetadataMessage, METADATA_PIECE_LEN};

/// The reply to one `ut_metadata` message from a peer: for a request, the asked piece of
/// `info` (our bencoded info dictionary, sliced, not copied), or a reject when we do not know
/// the dictionary or the piece does not exist. `None` for anything that is not a well-formed
/// request (data and rejects are for [`MetadataFetch`](super::MetadataFetch); garbage is
/// ignored, as BEP 9 allows).
pub fn answer_metadata_request(info: Option<&Bytes>, payload: &Bytes) -> Option<MetadataMessage> {
    let Ok(MetadataMessage::Request { piece }) = MetadataMessage::decode(payload) else {
        return None;
    };
    let data = info.and_then(|info| {
        let len = metadata_piece_len(piece, info.len() as u64)?;
        let start = piece as usize * METADATA_PIECE_LEN as usize;
        Some(MetadataMessage::Data {
            piece,
            total_size: info.len() as u64,
            data: info.slice(start..start + len as usize),
        })
    });
    Some(data.unwrap_or(MetadataMessage::Reject { piece }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(m: &MetadataMessage) -> Bytes {
        let mut out = Vec::new();
        m.encode(&mut out);
        Bytes::from(out)
    }

    #[test]
    fn requests_get_their_piece_or_a_reject() {
        let info = Bytes::from(vec![7u8; METADATA_PIECE_LEN as usize + 100]);
        let ask = |piece| encoded(&MetadataMessage::Request { piece });
        match answer_metadata_request(Some(&info), &ask(1)) {
            Some(MetadataMessage::Data { piece: 1, total_size, data }) => {
                assert_eq!(total_size, info.len() as u64);
                assert_eq!(data.len(), 100, "the last piece is the remainder");
            }
            other => panic!("wanted piece 1, got {other:?}"),
        }
        match answer_metadata_request(Some(&info), &ask(0)) {
            Some(MetadataMessage::Data { piece: 0, data, .. }) => {
                assert_eq!(data.len(), METADATA_PIECE_LEN as usize)
            }
            other => panic!("wanted piece 0, got {other:?}"),
        }
        assert!(matches!(
            answer_metadata_request(Some(&info), &ask(2)),
            Some(MetadataMessage::Reject { piece: 2 })
        ));
        assert!(matches!(answer_metadata_request(None, &ask(0)), Some(MetadataMessage::Reject { piece: 0 })));
    }

    #[test]
    fn anything_but_a_request_gets_no_answer() {
        let info = Bytes::from_static(b"d4:name1:xe");
        assert!(answer_metadata_request(Some(&info), &Bytes::from_static(b"not bencode")).is_none());
        let reject = encoded(&MetadataMessage::Reject { piece: 0 });
        assert!(answer_metadata_request(Some(&info), &reject).is_none());
    }
}
