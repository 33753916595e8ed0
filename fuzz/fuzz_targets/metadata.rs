#![no_main]
//! BEP 9 metadata assembly: arbitrary extended handshakes and `ut_metadata` messages from a few
//! peers never panic, and anything returned hashes to the wanted info-hash.
use bytes::Bytes;
use floodgate_engine::peer::MetadataFetch;
use floodgate_engine::types::InfoHash;
use floodgate_engine::wire::{ExtendedHandshake, UT_METADATA};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let hash = InfoHash([7; 20]);
    // A small bound keeps each run fast; the logic is the same for the default 64 MiB.
    let mut fetch = MetadataFetch::with_max_size(hash, 256 * 1024);
    let mut rest = data;
    // Records: op, peer, len (u16 LE), len bytes of payload.
    while let [op, peer, l0, l1, tail @ ..] = rest {
        let len = (usize::from(*l0) | usize::from(*l1) << 8).min(tail.len());
        let (payload, next) = tail.split_at(len);
        rest = next;
        let peer = u64::from(*peer % 4);
        match op % 5 {
            0 => {
                if let Ok(hs) = ExtendedHandshake::decode(payload) {
                    let _ = fetch.add_peer(peer, &hs);
                }
            }
            1 => {
                // A handshake that offers metadata of a size taken from the payload.
                let mut size = [0u8; 8];
                let n = payload.len().min(8);
                size[..n].copy_from_slice(&payload[..n]);
                let mut hs = ExtendedHandshake {
                    metadata_size: Some(u64::from_le_bytes(size) % (512 * 1024)),
                    ..Default::default()
                };
                hs.m.insert(UT_METADATA.into(), 1);
                let _ = fetch.add_peer(peer, &hs);
            }
            2 => {
                if let Ok(Some(meta)) = fetch.handle_message(peer, &Bytes::copy_from_slice(payload)) {
                    assert_eq!(meta.info_hash(), hash);
                }
            }
            3 => {
                for _ in 0..payload.len().min(64) {
                    if fetch.poll_request(peer).is_none() {
                        break;
                    }
                }
            }
            _ => fetch.remove_peer(peer),
        }
    }
});
