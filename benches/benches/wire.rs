//! Wire protocol hot paths: decoding a stream of 16 KiB PIECE messages, and encoding their
//! 13-byte headers (the payload goes out by vectored I/O, never copied).

// criterion_group! generates undocumented public functions.
#![allow(missing_docs)]

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use floodgate_engine::wire::{piece_header, Decoder, DecoderConfig, Message, PIECE_HEADER_LEN};
use floodgate_engine::{PieceIndex, BLOCK_SIZE};

/// Blocks per stream: 4 MiB of payload.
const BLOCKS: u32 = 256;

fn piece_stream() -> Vec<u8> {
    let data = Bytes::from(vec![0xa5u8; BLOCK_SIZE as usize]);
    let mut out = Vec::with_capacity(BLOCKS as usize * (BLOCK_SIZE as usize + PIECE_HEADER_LEN));
    for i in 0..BLOCKS {
        Message::Piece { piece: PieceIndex(i / 16), offset: (i % 16) * BLOCK_SIZE, data: data.clone() }
            .encode(&mut out);
    }
    out
}

fn decode(c: &mut Criterion) {
    let stream = piece_stream();
    let config = DecoderConfig { piece_count: Some(BLOCKS / 16), ..Default::default() };
    let mut g = c.benchmark_group("wire_decode");
    g.throughput(Throughput::Bytes(stream.len() as u64));
    // Decoding alone: the stream is already in the receive buffer.
    g.bench_function("piece_16k_buffered", |b| {
        b.iter_batched(
            || {
                let mut d = Decoder::with_capacity(config, stream.len());
                d.extend_from_slice(&stream);
                d
            },
            |mut d| {
                let mut n = 0u32;
                while let Ok(Some(m)) = d.next() {
                    if let Message::Piece { data, .. } = m {
                        n += data.len() as u32;
                    }
                }
                assert_eq!(n, BLOCKS * BLOCK_SIZE);
                d
            },
            BatchSize::LargeInput,
        )
    });
    // As a session sees it: 64 KiB reads appended to the buffer, then decoded.
    g.bench_function("piece_16k_64k_reads", |b| {
        b.iter(|| {
            let mut d = Decoder::with_capacity(config, 256 << 10);
            let mut n = 0u32;
            for chunk in stream.chunks(64 << 10) {
                let buf = d.buffer_mut();
                if buf.capacity() - buf.len() < chunk.len() {
                    buf.reserve(256 << 10);
                }
                buf.extend_from_slice(chunk);
                while let Ok(Some(m)) = d.next() {
                    if let Message::Piece { data, .. } = m {
                        n += data.len() as u32;
                    }
                }
            }
            assert_eq!(n, BLOCKS * BLOCK_SIZE);
        })
    });
    // Baseline for the line above: the same reads into the same kind of buffer, no decoding.
    g.bench_function("copy_only_64k_reads_baseline", |b| {
        b.iter(|| {
            let mut buf = BytesMut::with_capacity(256 << 10);
            for chunk in stream.chunks(64 << 10) {
                if buf.capacity() - buf.len() < chunk.len() {
                    buf.clear();
                    buf.reserve(256 << 10);
                }
                buf.extend_from_slice(chunk);
            }
            std::hint::black_box(&buf);
        })
    });
    g.finish();
}

fn encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("wire_encode");
    g.throughput(Throughput::Elements(BLOCKS as u64));
    let mut buf = BytesMut::with_capacity(BLOCKS as usize * PIECE_HEADER_LEN);
    g.bench_function("piece_header_x256", |b| {
        b.iter(|| {
            buf.clear();
            for i in 0..BLOCKS {
                buf.extend_from_slice(&piece_header(
                    PieceIndex(i / 16),
                    (i % 16) * BLOCK_SIZE,
                    BLOCK_SIZE as usize,
                ));
            }
            std::hint::black_box(&buf);
        })
    });
    let data = Bytes::from(vec![0u8; BLOCK_SIZE as usize]);
    let msgs: Vec<Message> = (0..BLOCKS)
        .map(|i| Message::Piece {
            piece: PieceIndex(i / 16),
            offset: (i % 16) * BLOCK_SIZE,
            data: data.clone(),
        })
        .collect();
    g.bench_function("encode_head_x256", |b| {
        b.iter(|| {
            buf.clear();
            for m in &msgs {
                std::hint::black_box(m.encode_head(&mut buf));
            }
        })
    });
    g.finish();
}

criterion_group!(benches, decode, encode);
criterion_main!(benches);
