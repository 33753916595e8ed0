#![no_main]
//! Bencode decoder: never panics; a strictly decoded value re-encodes to exactly its input; a
//! leniently decoded value re-encodes to canonical bencode that decodes strictly to the same tree.
use floodgate_engine::bencode::{decode, decode_prefix, decode_with, encode, DecodeLimits, KeyOrder};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = DecodeLimits::default();
    if let Ok(v) = decode(data) {
        let mut out = Vec::new();
        encode(&v, &mut out);
        assert_eq!(out, data, "strict value must re-encode to its input");
        assert_eq!(v.raw(), data);
    }
    if let Ok(v) = decode_with(data, &limits, KeyOrder::Any) {
        let mut out = Vec::new();
        encode(&v, &mut out);
        let again = decode(&out).expect("canonical re-encoding must decode strictly");
        let mut twice = Vec::new();
        encode(&again, &mut twice);
        assert_eq!(out, twice);
    }
    if let Ok((v, used)) = decode_prefix(data, &limits, KeyOrder::Sorted) {
        assert_eq!(v.raw(), &data[..used]);
    }
});
