//! Unit and property tests of the bencode decoder and encoder.

use proptest::prelude::*;

use super::*;

fn err(input: &[u8]) -> DecodeError {
    match decode(input) {
        Err(e) => e,
        Ok(v) => panic!("{:?} decoded to {v:?}", String::from_utf8_lossy(input)),
    }
}

#[test]
fn decodes_scalars_and_containers() {
    assert_eq!(decode(b"i42e").unwrap().as_int(), Some(42));
    assert_eq!(decode(b"i-42e").unwrap().as_int(), Some(-42));
    assert_eq!(decode(b"i0e").unwrap().as_int(), Some(0));
    assert_eq!(decode(b"i9223372036854775807e").unwrap().as_int(), Some(i64::MAX));
    assert_eq!(decode(b"i-9223372036854775808e").unwrap().as_int(), Some(i64::MIN));
    assert_eq!(decode(b"4:spam").unwrap().as_bytes(), Some(&b"spam"[..]));
    assert_eq!(decode(b"0:").unwrap().as_str(), Some(""));
    let list = decode(b"l4:spami7ee").unwrap();
    let items = list.as_list().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[1].raw(), b"i7e");
    let dict = decode(b"d3:cow3:moo4:spaml1:a1:bee").unwrap();
    let d = dict.as_dict().unwrap();
    assert_eq!(d.get(b"cow").and_then(Value::as_str), Some("moo"));
    assert_eq!(d.get(b"spam").unwrap().raw(), b"l1:a1:be");
    assert_eq!(d.get(b"nope"), None);
    assert_eq!(d.len(), 2);
    assert!(!d.is_empty() && d.is_sorted());
    assert_eq!(dict.kind_name(), "dict");
}

#[test]
fn raw_span_is_exact_input_slice() {
    let input = b"d4:infod6:lengthi5eee";
    let v = decode(input).unwrap();
    let info = v.as_dict().unwrap().get(b"info").unwrap();
    assert_eq!(info.raw(), b"d6:lengthi5ee");
    // Zero-copy: the span points into the input buffer.
    assert_eq!(info.raw().as_ptr(), input[7..].as_ptr());
}

#[test]
fn every_error_variant() {
    assert_eq!(err(b""), DecodeError::UnexpectedEof { offset: 0 });
    assert_eq!(err(b"l4:spam"), DecodeError::UnexpectedEof { offset: 7 });
    assert_eq!(err(b"5:abc"), DecodeError::UnexpectedEof { offset: 5 });
    assert_eq!(err(b"x"), DecodeError::InvalidByte { offset: 0, byte: b'x' });
    assert_eq!(err(b"i4xe"), DecodeError::InvalidByte { offset: 2, byte: b'x' });
    assert_eq!(err(b"4x"), DecodeError::InvalidByte { offset: 1, byte: b'x' });
    assert_eq!(err(b"ie"), DecodeError::MissingDigits { offset: 0 });
    assert_eq!(err(b"i-e"), DecodeError::MissingDigits { offset: 0 });
    assert_eq!(err(b"i03e"), DecodeError::LeadingZero { offset: 0 });
    assert_eq!(err(b"i-03e"), DecodeError::LeadingZero { offset: 0 });
    assert_eq!(err(b"l03:abce"), DecodeError::LeadingZero { offset: 1 });
    assert_eq!(err(b"i00e"), DecodeError::LeadingZero { offset: 0 });
    assert_eq!(err(b"i-0e"), DecodeError::NegativeZero { offset: 0 });
    assert_eq!(err(b"i9223372036854775808e"), DecodeError::IntOverflow { offset: 0 });
    assert_eq!(err(b"i-9223372036854775809e"), DecodeError::IntOverflow { offset: 0 });
    assert_eq!(err(b"99999999999999999999999:"), DecodeError::LengthOverflow { offset: 0 });
    assert_eq!(err(b"di1e1:ae"), DecodeError::KeyNotBytes { offset: 1 });
    assert_eq!(err(b"d1:bi1e1:ai2ee"), DecodeError::UnsortedKeys { offset: 7 });
    assert_eq!(err(b"d1:ai1e1:ai2ee"), DecodeError::DuplicateKey { offset: 7 });
    assert_eq!(err(b"i1ei2e"), DecodeError::TrailingBytes { offset: 3 });
    assert_eq!(err(b"20:abc"), DecodeError::UnexpectedEof { offset: 6 });

    let tight = DecodeLimits { max_depth: 2, max_items: 3, max_input_len: 16, max_bytes_len: 4 };
    let with = |input: &[u8]| decode_with(input, &tight, KeyOrder::Sorted).unwrap_err();
    assert_eq!(with(b"lllee"), DecodeError::TooDeep { offset: 2, limit: 2 });
    assert_eq!(with(b"li1ei2ei3ee"), DecodeError::TooManyItems { offset: 7, limit: 3 });
    assert_eq!(with(b"5:abcde"), DecodeError::BytesTooLong { offset: 0, len: 5, limit: 4 });
    assert_eq!(with(&[b'i'; 17]), DecodeError::InputTooLong { offset: 0, len: 17, limit: 16 });
    assert!(decode_with(b"llee", &tight, KeyOrder::Sorted).is_ok());
}

#[test]
fn error_offsets_and_messages() {
    let e = err(b"d1:ai1e1:ai2ee");
    assert_eq!(e.offset(), 7);
    assert_eq!(e.to_string(), "duplicate dictionary key at byte 7");
}

#[test]
fn depth_limit_stops_deep_nesting_without_stack_overflow() {
    let deep = vec![b'l'; 1_000_000];
    assert!(matches!(err(&deep), DecodeError::TooDeep { offset: 100, limit: 100 }));
}

#[test]
fn any_key_order_accepts_unsorted_but_not_duplicates() {
    fn any(input: &[u8]) -> Result<Value<'_>, DecodeError> {
        decode_with(input, &DecodeLimits::default(), KeyOrder::Any)
    }
    let v = any(b"d1:bi1e1:ai2ee").unwrap();
    let d = v.as_dict().unwrap();
    assert!(!d.is_sorted());
    assert_eq!(d.get(b"a").and_then(Value::as_int), Some(2));
    assert_eq!(any(b"d1:bi1e1:ai2e1:bi3ee").unwrap_err(), DecodeError::DuplicateKey { offset: 13 });
    assert_eq!(any(b"d1:ai1e1:ai2ee").unwrap_err(), DecodeError::DuplicateKey { offset: 7 });
    // Re-encoding sorts it.
    let mut out = Vec::new();
    encode(&v, &mut out);
    assert_eq!(out, b"d1:ai2e1:bi1ee");
}

#[test]
fn decode_prefix_leaves_trailing_data() {
    let input = b"d8:msg_typei1e5:piecei0eeRAWDATA";
    let (v, used) = decode_prefix(input, &DecodeLimits::default(), KeyOrder::Sorted).unwrap();
    assert_eq!(&input[used..], b"RAWDATA");
    assert_eq!(v.as_dict().unwrap().get(b"piece").and_then(Value::as_int), Some(0));
}

#[test]
fn encoder_sorts_keys_and_reports_duplicates() {
    let mut out = Vec::new();
    let mut enc = Encoder::new(&mut out);
    enc.dict(|d| {
        d.str(b"z", "last");
        d.entry(b"m", |e| {
            e.list(|l| {
                l.int(-7);
                l.bytes(b"\x00\xff");
                l.dict(|_| {});
            })
        });
        d.int(b"a", 0);
    });
    enc.finish().unwrap();
    assert_eq!(out, b"d1:ai0e1:mli-7e2:\x00\xffdee1:z4:laste");
    assert!(decode(&out).is_ok());

    let mut out = Vec::new();
    let mut enc = Encoder::new(&mut out);
    enc.dict(|d| {
        d.int(b"k", 1);
        d.int(b"k", 2);
    });
    assert_eq!(enc.finish(), Err(EncodeError::DuplicateKey { key: b"k".to_vec() }));
}

#[test]
fn encoder_raw_keeps_bytes() {
    let mut out = Vec::new();
    let mut enc = Encoder::new(&mut out);
    enc.dict(|d| d.entry(b"info", |e| e.raw(b"d1:xi1ee")));
    enc.finish().unwrap();
    assert_eq!(out, b"d4:infod1:xi1eee");
}

/// An arbitrary bencode tree, built independently of the decoder.
#[derive(Clone, Debug, PartialEq)]
enum Tree {
    Int(i64),
    Bytes(Vec<u8>),
    List(Vec<Tree>),
    /// Keys unique (a `BTreeMap` makes them so), order given by the map.
    Dict(std::collections::BTreeMap<Vec<u8>, Tree>),
}

fn tree() -> impl Strategy<Value = Tree> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(Tree::Int),
        proptest::collection::vec(any::<u8>(), 0..24).prop_map(Tree::Bytes),
    ];
    leaf.prop_recursive(6, 96, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Tree::List),
            proptest::collection::btree_map(proptest::collection::vec(any::<u8>(), 0..8), inner, 0..8)
                .prop_map(Tree::Dict),
        ]
    })
}

/// Writes a tree; dictionary entries are written in reverse order to exercise the encoder's sort.
fn write_tree(t: &Tree, e: &mut Encoder<'_>) {
    match t {
        Tree::Int(i) => e.int(*i),
        Tree::Bytes(b) => e.bytes(b),
        Tree::List(items) => e.list(|l| items.iter().for_each(|i| write_tree(i, l))),
        Tree::Dict(map) => e.dict(|d| {
            for (k, v) in map.iter().rev() {
                d.entry(k, |e| write_tree(v, e));
            }
        }),
    }
}

fn to_tree(v: &Value<'_>) -> Tree {
    match v.kind() {
        Kind::Int(i) => Tree::Int(*i),
        Kind::Bytes(b) => Tree::Bytes(b.to_vec()),
        Kind::List(items) => Tree::List(items.iter().map(to_tree).collect()),
        Kind::Dict(d) => Tree::Dict(d.iter().map(|(k, v)| (k.to_vec(), to_tree(v))).collect()),
    }
}

proptest! {
    #[test]
    fn decode_of_encode_is_identity(t in tree()) {
        let mut out = Vec::new();
        let mut enc = Encoder::new(&mut out);
        write_tree(&t, &mut enc);
        enc.finish().unwrap();
        let v = decode(&out).unwrap();
        prop_assert_eq!(to_tree(&v), t);
        prop_assert_eq!(v.raw(), &out[..]);
    }

    #[test]
    fn encode_of_decode_is_identity_for_canonical_input(t in tree()) {
        let mut canonical = Vec::new();
        let mut enc = Encoder::new(&mut canonical);
        write_tree(&t, &mut enc);
        enc.finish().unwrap();
        let mut again = Vec::new();
        encode(&decode(&canonical).unwrap(), &mut again);
        prop_assert_eq!(again, canonical);
    }

    #[test]
    fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(v) = decode(&bytes) {
            let mut out = Vec::new();
            encode(&v, &mut out);
            prop_assert_eq!(out, bytes);
        }
    }

    #[test]
    fn strict_decode_of_mutated_canonical_input_agrees_with_reencode(
        t in tree(), pos in any::<prop::sample::Index>(), byte in any::<u8>()
    ) {
        let mut bytes = Vec::new();
        let mut enc = Encoder::new(&mut bytes);
        write_tree(&t, &mut enc);
        enc.finish().unwrap();
        let i = pos.index(bytes.len());
        bytes[i] = byte;
        if let Ok(v) = decode(&bytes) {
            let mut out = Vec::new();
            encode(&v, &mut out);
            prop_assert_eq!(out, bytes);
        }
    }
}
