//! Decoder tests across the whole module: every message, every error, chunked streams,
//! property-based round trips.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use super::*;
use crate::types::{BlockRef, InfoHash, PeerId, PieceIndex, BLOCK_SIZE};

fn block(piece: u32, offset: u32, length: u32) -> BlockRef {
    BlockRef { piece: PieceIndex(piece), offset, length }
}

fn encode_all(msgs: &[Message]) -> Vec<u8> {
    let mut v = Vec::new();
    for m in msgs {
        m.encode(&mut v);
    }
    v
}

/// Decodes everything in `bytes` with a default decoder, failing on leftovers.
fn decode_all(config: DecoderConfig, bytes: &[u8]) -> Result<Vec<Message>, WireError> {
    let mut d = Decoder::new(config);
    d.extend_from_slice(bytes);
    let mut out = Vec::new();
    while let Some(m) = d.next()? {
        out.push(m);
    }
    assert_eq!(d.buffered(), 0, "leftover bytes");
    Ok(out)
}

fn one_of_each() -> Vec<Message> {
    vec![
        Message::KeepAlive,
        Message::Choke,
        Message::Unchoke,
        Message::Interested,
        Message::NotInterested,
        Message::Have(PieceIndex(3)),
        Message::Bitfield(Bytes::from_static(&[0xf0])),
        Message::Request(block(1, 0, BLOCK_SIZE)),
        Message::Piece { piece: PieceIndex(1), offset: 0, data: Bytes::from(vec![9u8; BLOCK_SIZE as usize]) },
        Message::Cancel(block(1, 0, BLOCK_SIZE)),
        Message::Port(6881),
        Message::SuggestPiece(PieceIndex(2)),
        Message::HaveAll,
        Message::HaveNone,
        Message::RejectRequest(block(1, 16384, 100)),
        Message::AllowedFast(PieceIndex(0)),
        Message::Extended { id: 0, payload: Bytes::from_static(b"d1:md6:ut_pexi1eee") },
        Message::Extended { id: 1, payload: Bytes::new() },
        Message::Unknown { id: 21, payload: Bytes::from_static(b"v2 hash request") },
        Message::Unknown { id: 200, payload: Bytes::new() },
    ]
}

#[test]
fn decodes_every_message() {
    let msgs = one_of_each();
    for m in &msgs {
        assert_eq!(
            decode_all(DecoderConfig::default(), &encode_all(std::slice::from_ref(m))),
            Ok(vec![m.clone()])
        );
    }
    assert_eq!(decode_all(DecoderConfig::default(), &encode_all(&msgs)), Ok(msgs));
}

#[test]
fn handshake_then_messages_on_one_buffer() {
    let hs = Handshake::new(InfoHash([1; 20]), PeerId([2; 20]));
    let mut bytes = hs.to_bytes().to_vec();
    bytes.extend(encode_all(&[Message::HaveAll, Message::Unchoke]));
    let mut d = Decoder::default();
    for (i, b) in bytes.iter().enumerate() {
        d.extend_from_slice(std::slice::from_ref(b));
        if i + 1 < Handshake::LEN {
            assert_eq!(d.handshake(), Ok(None));
        }
    }
    assert_eq!(d.handshake(), Ok(Some(hs)));
    assert_eq!(d.next(), Ok(Some(Message::HaveAll)));
    assert_eq!(d.next(), Ok(Some(Message::Unchoke)));
    assert_eq!(d.next(), Ok(None));
}

#[test]
fn handshake_errors_surface_from_decoder() {
    let mut d = Decoder::default();
    d.extend_from_slice(b"\x13BitTorrent pr0");
    assert_eq!(d.handshake(), Err(WireError::BadProtocolString));
    let mut d = Decoder::default();
    d.extend_from_slice(&[0]);
    assert_eq!(d.handshake(), Err(WireError::BadProtocolLength { len: 0 }));
}

#[test]
fn piece_payload_is_a_slice_of_the_receive_buffer() {
    let msgs = vec![
        Message::Piece { piece: PieceIndex(0), offset: 0, data: Bytes::from(vec![1u8; 16384]) },
        Message::Piece { piece: PieceIndex(0), offset: 16384, data: Bytes::from(vec![2u8; 16384]) },
    ];
    let bytes = encode_all(&msgs);
    let mut d = Decoder::with_capacity(DecoderConfig::default(), bytes.len());
    d.buffer_mut().extend_from_slice(&bytes);
    let base = d.buffer_mut().as_ptr() as usize;
    let Ok(Some(Message::Piece { data, .. })) = d.next() else { panic!("no piece") };
    assert_eq!(data.as_ptr() as usize, base + PIECE_HEADER_LEN);
    let Ok(Some(Message::Piece { data, offset: 16384, .. })) = d.next() else { panic!("no piece") };
    assert_eq!(data.as_ptr() as usize, base + 2 * PIECE_HEADER_LEN + 16384);
    assert_eq!(&data[..], &[2u8; 16384][..]);
}

#[test]
fn oversize_length_prefix_rejected_without_buffering() {
    let mut d = Decoder::default();
    let cap = d.buffer_mut().capacity();
    // A PIECE claiming 4 GiB: rejected from its 5 header bytes alone.
    d.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, id::PIECE]);
    assert_eq!(
        d.next(),
        Err(WireError::MessageTooLong { id: id::PIECE, len: u32::MAX, max: BLOCK_SIZE + 9 })
    );
    // Same error again (the frame is not consumed) and nothing was reserved for it.
    assert!(d.next().is_err());
    assert!(d.buffer_mut().capacity() <= cap.max(64));
    // One byte over the block bound.
    let mut head = piece_header(PieceIndex(0), 0, BLOCK_SIZE as usize + 1).to_vec();
    head.truncate(5);
    let err = decode_all(DecoderConfig::default(), &head).unwrap_err();
    assert_eq!(err, WireError::MessageTooLong { id: id::PIECE, len: BLOCK_SIZE + 10, max: BLOCK_SIZE + 9 });
    // Exactly the bound is fine.
    let ok =
        Message::Piece { piece: PieceIndex(0), offset: 0, data: Bytes::from(vec![0; BLOCK_SIZE as usize]) };
    assert!(decode_all(DecoderConfig::default(), &encode_all(&[ok])).is_ok());
}

#[test]
fn bounds_for_variable_messages() {
    let small =
        DecoderConfig { max_bitfield_len: 2, max_extended_len: 3, max_unknown_len: 4, ..Default::default() };
    let cases = [
        (Message::Bitfield(Bytes::from_static(&[0; 3])), id::BITFIELD, 4, 3),
        (Message::Extended { id: 1, payload: Bytes::from_static(&[0; 4]) }, id::EXTENDED, 6, 5),
        (Message::Unknown { id: 30, payload: Bytes::from_static(&[0; 5]) }, 30, 6, 5),
    ];
    for (m, msg_id, len, max) in cases {
        assert_eq!(
            decode_all(small, &encode_all(&[m])),
            Err(WireError::MessageTooLong { id: msg_id, len, max })
        );
    }
}

#[test]
fn wrong_fixed_lengths_rejected() {
    let fixed: [(u8, u32); 15] = [
        (id::CHOKE, 1),
        (id::UNCHOKE, 1),
        (id::INTERESTED, 1),
        (id::NOT_INTERESTED, 1),
        (id::HAVE, 5),
        (id::REQUEST, 13),
        (id::CANCEL, 13),
        (id::PORT, 3),
        (id::SUGGEST_PIECE, 5),
        (id::HAVE_ALL, 1),
        (id::HAVE_NONE, 1),
        (id::REJECT_REQUEST, 13),
        (id::ALLOWED_FAST, 5),
        (id::PIECE, 9),
        (id::EXTENDED, 2),
    ];
    for (msg_id, good) in fixed {
        let variable = msg_id == id::PIECE || msg_id == id::EXTENDED;
        for len in [good - 1, good + 1, 100] {
            if len == 0 || (variable && len > good) {
                continue;
            }
            let mut bytes = len.to_be_bytes().to_vec();
            bytes.push(msg_id);
            assert_eq!(
                decode_all(DecoderConfig::default(), &bytes),
                Err(WireError::BadLength { id: msg_id, len })
            );
        }
    }
}

#[test]
fn piece_count_checks() {
    let config = DecoderConfig { piece_count: Some(10), ..Default::default() };
    let out_of_range = [
        Message::Have(PieceIndex(10)),
        Message::Request(block(10, 0, 1)),
        Message::Piece { piece: PieceIndex(11), offset: 0, data: Bytes::from_static(b"x") },
        Message::Cancel(block(12, 0, 1)),
        Message::SuggestPiece(PieceIndex(u32::MAX)),
        Message::RejectRequest(block(10, 0, 1)),
        Message::AllowedFast(PieceIndex(10)),
    ];
    for m in out_of_range {
        let Some(index) = (match &m {
            Message::Have(p) | Message::SuggestPiece(p) | Message::AllowedFast(p) => Some(p.0),
            Message::Request(b) | Message::Cancel(b) | Message::RejectRequest(b) => Some(b.piece.0),
            Message::Piece { piece, .. } => Some(piece.0),
            _ => None,
        }) else {
            continue;
        };
        assert_eq!(
            decode_all(config, &encode_all(&[m])),
            Err(WireError::PieceOutOfRange { index, piece_count: 10 })
        );
    }
    assert!(decode_all(config, &encode_all(&[Message::Have(PieceIndex(9))])).is_ok());
    // Bitfield: exact length, checked on the prefix; spare bits checked on the body.
    assert_eq!(
        decode_all(config, &[0, 0, 0, 4, id::BITFIELD]),
        Err(WireError::BitfieldLength { len: 3, expected: 2 })
    );
    assert_eq!(
        decode_all(config, &encode_all(&[Message::Bitfield(Bytes::from_static(&[0xff, 0xe0]))])),
        Err(WireError::BitfieldSpareBits)
    );
    let good = Message::Bitfield(Bytes::from_static(&[0xff, 0xc0]));
    assert_eq!(decode_all(config, &encode_all(std::slice::from_ref(&good))), Ok(vec![good]));
    // Setting the count later applies to later messages.
    let mut d = Decoder::default();
    d.extend_from_slice(&encode_all(&[Message::Have(PieceIndex(50)), Message::Have(PieceIndex(50))]));
    assert_eq!(d.next(), Ok(Some(Message::Have(PieceIndex(50)))));
    d.set_piece_count(Some(50));
    assert_eq!(d.config().piece_count, Some(50));
    assert_eq!(d.next(), Err(WireError::PieceOutOfRange { index: 50, piece_count: 50 }));
}

#[test]
fn needed_hints_read_size() {
    let mut d = Decoder::default();
    assert_eq!(d.needed(), 4);
    d.extend_from_slice(&[0, 0]);
    assert_eq!(d.needed(), 2);
    d.extend_from_slice(&[0, 5, id::HAVE]);
    assert_eq!(d.needed(), 4);
    d.extend_from_slice(&[0, 0, 0, 1]);
    assert_eq!(d.needed(), 0);
    assert_eq!(d.next(), Ok(Some(Message::Have(PieceIndex(1)))));
    assert_eq!(d.needed(), 4);
}

#[test]
fn error_display_is_readable() {
    let e = WireError::MessageTooLong { id: 7, len: 99999, max: 16393 };
    assert_eq!(e.to_string(), "message id 7 has length 99999, more than the maximum 16393");
    assert!(WireError::Incomplete { needed: 3 }.to_string().contains('3'));
}

fn arb_bytes(max: usize) -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..=max).prop_map(Bytes::from)
}

fn arb_block() -> impl Strategy<Value = BlockRef> {
    (any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(p, o, l)| block(p, o, l))
}

/// Any message the default decoder accepts.
pub(super) fn arb_message() -> impl Strategy<Value = Message> {
    let known = [0u8, 1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 14, 15, 16, 17, 20];
    prop_oneof![
        Just(Message::KeepAlive),
        Just(Message::Choke),
        Just(Message::Unchoke),
        Just(Message::Interested),
        Just(Message::NotInterested),
        Just(Message::HaveAll),
        Just(Message::HaveNone),
        any::<u32>().prop_map(|p| Message::Have(PieceIndex(p))),
        any::<u32>().prop_map(|p| Message::SuggestPiece(PieceIndex(p))),
        any::<u32>().prop_map(|p| Message::AllowedFast(PieceIndex(p))),
        any::<u16>().prop_map(Message::Port),
        arb_block().prop_map(Message::Request),
        arb_block().prop_map(Message::Cancel),
        arb_block().prop_map(Message::RejectRequest),
        arb_bytes(64).prop_map(Message::Bitfield),
        (any::<u32>(), any::<u32>(), prop_oneof![arb_bytes(64), Just(Bytes::from(vec![7; 16384]))])
            .prop_map(|(p, offset, data)| Message::Piece { piece: PieceIndex(p), offset, data }),
        (any::<u8>(), arb_bytes(64)).prop_map(|(id, payload)| Message::Extended { id, payload }),
        (any::<u8>().prop_filter("unknown id", move |i| !known.contains(i)), arb_bytes(64))
            .prop_map(|(id, payload)| Message::Unknown { id, payload }),
    ]
}

proptest! {
    #[test]
    fn round_trip(m in arb_message()) {
        let mut buf = BytesMut::new();
        m.encode(&mut buf);
        prop_assert_eq!(buf.len(), m.encoded_len());
        prop_assert_eq!(decode_all(DecoderConfig::default(), &buf), Ok(vec![m]));
    }

    #[test]
    fn any_chunking_yields_the_same_messages(
        msgs in proptest::collection::vec(arb_message(), 0..12),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..20),
    ) {
        let hs = Handshake::new(InfoHash([3; 20]), PeerId([4; 20]));
        let mut stream = hs.to_bytes().to_vec();
        stream.extend(encode_all(&msgs));
        let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
        cuts.push(stream.len());
        cuts.sort_unstable();
        let mut d = Decoder::default();
        let (mut got_hs, mut got, mut from) = (None, Vec::new(), 0);
        for cut in cuts {
            d.buffer_mut().extend_from_slice(&stream[from..cut]);
            from = cut;
            if got_hs.is_none() {
                got_hs = d.handshake().map_err(|e| TestCaseError::fail(e.to_string()))?;
            }
            if got_hs.is_some() {
                while let Some(m) = d.next().map_err(|e| TestCaseError::fail(e.to_string()))? {
                    got.push(m);
                }
            }
        }
        prop_assert_eq!(got_hs, Some(hs));
        prop_assert_eq!(got, msgs);
        prop_assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let mut d = Decoder::new(DecoderConfig { piece_count: Some(13), ..Default::default() });
        d.extend_from_slice(&bytes);
        while let Ok(Some(m)) = d.next() {
            let mut again = Vec::new();
            m.encode(&mut again);
            prop_assert!(again.len() == m.encoded_len());
        }
    }
}
