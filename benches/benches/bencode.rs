//! Bencode decode/encode and metainfo parse of a large multi-file `.torrent`
//! (40,000 piece hashes, 1,000 files, about 850 KB).
// criterion_group! generates undocumented public functions.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use floodgate_engine::bencode::{decode, encode};
use floodgate_engine::layout::FileSpan;
use floodgate_engine::metainfo::{Metainfo, MetainfoBuilder};

const PIECES: u64 = 40_000;
const FILES: u64 = 1_000;
const PIECE_LENGTH: u32 = 256 << 10;

/// A large but realistic multi-file torrent: 1,000 files in nested folders, 40,000 pieces.
fn large_torrent() -> Vec<u8> {
    let per_file = PIECES * u64::from(PIECE_LENGTH) / FILES;
    let files = (0..FILES)
        .map(|i| FileSpan {
            path: format!("disc{:02}/track{i:04} - some title.flac", i / 50).into(),
            length: per_file,
        })
        .collect();
    let hashes = (0..PIECES).map(|i| {
        let mut h = [0u8; 20];
        h[..8].copy_from_slice(&i.to_le_bytes());
        h
    });
    let (bytes, _) = MetainfoBuilder::multi_file("Large Collection", files, PIECE_LENGTH)
        .piece_hashes(hashes.collect())
        .tracker("http://tracker.example:6969/announce")
        .tracker("udp://tracker.example:1337/announce")
        .web_seed("http://relay-1.example/data/")
        .comment("benchmark fixture")
        .created_by("floodgate")
        .creation_date(1_700_000_000)
        .build()
        .expect("fixture builds");
    bytes
}

fn bencode(c: &mut Criterion) {
    let bytes = large_torrent();
    let mut g = c.benchmark_group("bencode");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("decode_large_torrent", |b| b.iter(|| decode(black_box(&bytes)).expect("decodes")));
    let value = decode(&bytes).expect("decodes");
    let mut out = Vec::with_capacity(bytes.len());
    g.bench_function("encode_large_torrent", |b| {
        b.iter(|| {
            out.clear();
            encode(black_box(&value), &mut out);
        })
    });
    g.bench_function("metainfo_from_bytes_large_torrent", |b| {
        b.iter(|| Metainfo::from_bytes(black_box(&bytes)).expect("parses"))
    });
    g.finish();
}

criterion_group!(benches, bencode);
criterion_main!(benches);
