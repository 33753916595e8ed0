#![no_main]
//! Metainfo parser: never panics; paths stay inside the download directory; a parsed torrent
//! written back parses strictly to the same torrent with the same info-hash.
use std::path::Component;

use floodgate_engine::metainfo::Metainfo;
use libfuzzer_sys::fuzz_target;

fn check(m: &Metainfo) {
    for f in m.files() {
        assert!(f.path.components().all(|c| matches!(c, Component::Normal(_))), "{:?}", f.path);
    }
    let bytes = m.to_bytes();
    let again = Metainfo::from_bytes(&bytes).expect("to_bytes output must parse strictly");
    assert_eq!(&again, m);
    assert_eq!(again.info_hash(), m.info_hash());
    assert_eq!(m.layout().piece_count() as usize, m.piece_hashes().len());
}

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Metainfo::from_bytes(data) {
        check(&m);
    }
    if let Ok(m) = Metainfo::from_bytes_lenient(data) {
        check(&m);
    }
    if let Ok(m) = Metainfo::from_info_bytes(data) {
        check(&m);
    }
});
