#![no_main]
//! The relay's hash-list JSON (`/tasks/<id>/hashes`) as the agent reads it: `HashList` from
//! `client/src/cmd/hash_feed.rs` (serde decode, `decoded`, `layout`), compiled in from its
//! source file (the client is a binary crate).
//!
//! Two kinds of input, by the first byte:
//! - raw JSON: decoding never panics; a list that decodes, written back as JSON, decodes to the
//!   same fields; a decoded hash is exactly a 40-digit hex string and writes back to it;
//!   `layout` accepts exactly a plain file name, a non-zero length and the piece length every
//!   relay picks for it, and the layout it returns is that file;
//! - a list built from the input in the shape the relay's `http/hashes.rs` writes (whole or
//!   incremental): it always decodes, to what was written, and its layout is accepted when
//!   the relay's own rules made it.
use floodgate_engine::layout::Layout;
use floodgate_engine::metainfo::{piece_length_for, url_file_name};
use floodgate_engine::types::hex;
use libfuzzer_sys::arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use serde_json::json;

#[allow(dead_code)]
#[path = "../../client/src/cmd/hash_feed.rs"]
mod hash_feed;

use hash_feed::HashList;

/// The fields of a list, comparable.
type Fields = (String, u64, u32, bool, Vec<Option<String>>, u64, Vec<(u32, String)>);

fn fields(l: &HashList) -> Fields {
    (l.name.clone(), l.length, l.piece_length, l.complete, l.hashes.clone(), l.seq, l.landed.clone())
}

fn is_hex40(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn check(list: &HashList) {
    let written = json!({
        "name": list.name,
        "length": list.length,
        "piece_length": list.piece_length,
        "complete": list.complete,
        "hashes": list.hashes,
        "seq": list.seq,
        "landed": list.landed,
    })
    .to_string();
    let back: HashList = serde_json::from_str(&written).expect("a list written back decodes");
    assert_eq!(fields(&back), fields(list));

    let decoded = list.decoded();
    assert_eq!(decoded.len(), list.hashes.len());
    for (d, h) in decoded.iter().zip(&list.hashes) {
        match (d, h.as_deref()) {
            (Some(d), Some(h)) => assert!(is_hex40(h) && hex(d).eq_ignore_ascii_case(h), "{h:?}"),
            (None, Some(h)) => assert!(!is_hex40(h), "{h:?} not decoded"),
            (None, None) => {}
            (Some(_), None) => panic!("a hash decoded from null"),
        }
    }

    let plain = url_file_name(&format!("/{}", list.name)) == list.name;
    let relay_rule = list.length > 0 && list.piece_length == piece_length_for(list.length);
    match list.layout() {
        Ok(layout) => {
            assert!(
                plain && relay_rule,
                "layout accepted {:?} {} {}",
                list.name,
                list.length,
                list.piece_length
            );
            assert!(!list.name.contains('/') && !list.name.starts_with('.'));
            assert_eq!((layout.total_length(), layout.piece_length()), (list.length, list.piece_length));
            assert_eq!(layout.files().len(), 1);
            assert_eq!(layout.files()[0].path, std::path::Path::new(&list.name));
            assert_eq!(u64::from(layout.piece_count()), list.length.div_ceil(u64::from(list.piece_length)));
        }
        Err(_) => {
            let fits = Layout::single(list.name.clone(), list.length, list.piece_length).is_ok();
            assert!(!plain || !relay_rule || !fits, "layout refused {:?} {}", list.name, list.length);
        }
    }
}

/// A list in the relay's shape, built from `u`.
fn relay_shaped(u: &mut Unstructured<'_>) -> libfuzzer_sys::arbitrary::Result<(String, HashList)> {
    let name: String = u.arbitrary()?;
    let length = u64::arbitrary(u)? >> u.int_in_range(0..=63)?;
    let piece_length = if u.arbitrary()? { piece_length_for(length) } else { u.arbitrary()? };
    let pieces = length.div_ceil(u64::from(piece_length.max(1))).min(64) as usize;
    let complete: bool = u.arbitrary()?;
    let mut head = json!({
        "id": "fz",
        "name": name,
        "length": length,
        "piece_length": piece_length,
        "pieces": pieces,
        "complete": complete,
    });
    let hash = |u: &mut Unstructured<'_>| -> libfuzzer_sys::arbitrary::Result<String> {
        Ok(hex(&<[u8; 20]>::arbitrary(u)?))
    };
    if u.arbitrary()? {
        let mut hashes = Vec::new();
        for _ in 0..pieces {
            hashes.push(if u.arbitrary()? { Some(hash(u)?) } else { None });
        }
        head["hashes"] = json!(hashes);
    } else {
        let mut landed = Vec::new();
        for _ in 0..u.int_in_range(0..=pieces)? {
            landed.push(json!([u.int_in_range(0..=pieces as u32)?, hash(u)?]));
        }
        head["seq"] = json!(u64::arbitrary(u)?);
        head["landed"] = json!(landed);
    }
    let text = head.to_string();
    let list: HashList = serde_json::from_str(&text).expect("the relay's shape decodes");
    Ok((text, list))
}

fuzz_target!(|data: &[u8]| {
    let [mode, rest @ ..] = data else { return };
    if mode & 1 == 0 {
        if let Ok(list) = serde_json::from_slice::<HashList>(rest) {
            check(&list);
        }
        return;
    }
    let mut u = Unstructured::new(rest);
    let Ok((text, list)) = relay_shaped(&mut u) else { return };
    let value: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    assert_eq!(list.name, value["name"].as_str().expect("a string"));
    assert_eq!(Some(list.length), value["length"].as_u64());
    assert!(list.decoded().iter().all(Option::is_some) || list.hashes.iter().any(Option::is_none));
    for (_, h) in &list.landed {
        assert!(is_hex40(h));
    }
    check(&list);
    // What a relay publishes for a file it named and laid out itself is always accepted.
    let relay_name = url_file_name(&format!("/{}", list.name));
    let fits = Layout::single(list.name.clone(), list.length, list.piece_length).is_ok();
    if relay_name == list.name
        && list.length > 0
        && list.piece_length == piece_length_for(list.length)
        && fits
    {
        assert!(list.layout().is_ok());
    }
});
