//! Piece map and picker hot paths: pick + claim + receive (+ verify on completion), availability
//! updates of a whole bitfield, and the token bucket.
//!
//! `cargo bench -p floodgate-benches --bench piece_map -- --warm-up-time 1 --measurement-time 3`

// criterion_group! generates undocumented public functions.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use floodgate_engine::layout::Layout;
use floodgate_engine::picker::Picker;
use floodgate_engine::piece_map::{Bitfield, PeerSlot, PieceMap, Receipt};
use floodgate_engine::ratelimit::TokenBucket;
use floodgate_engine::PieceIndex;

const PIECE: u32 = 256 * 1024; // 16 blocks
const BATCH: usize = 16;

fn random_bitfield(n: u32, p: f64) -> Bitfield {
    let mut b = Bitfield::new(n);
    for i in 0..n {
        if rand::random_bool(p) {
            b.set(PieceIndex(i));
        }
    }
    b
}

/// A torrent of `n` pieces seen by 8 peers with random bitfields (so availability buckets are
/// spread out) plus one seed we download from. `in_flight` pieces are fully requested by
/// other peers (so the picker has to walk past them).
fn setup(n: u32, in_flight: u32) -> (Arc<PieceMap>, Picker, Bitfield) {
    let layout = Layout::single("f", u64::from(n) * u64::from(PIECE), PIECE).unwrap();
    let map = Arc::new(PieceMap::new(&layout));
    for _ in 0..8 {
        map.add_peer(random_bitfield(n, 0.5).view()).unwrap();
    }
    let seed = Bitfield::full(n);
    map.add_peer(seed.view()).unwrap();
    let picker = Picker::new(map.clone());
    let mut out = Vec::new();
    for i in 0..in_flight * 16 {
        out.clear();
        picker.pick(seed.view(), PeerSlot(100 + (i % 50) as u16), 1, &mut out);
    }
    (map, picker, seed)
}

fn pick_receive(c: &mut Criterion) {
    let mut g = c.benchmark_group("pick_claim_receive");
    g.throughput(Throughput::Elements(BATCH as u64));
    for (n, in_flight) in [(4_000u32, 0u32), (64_000, 0), (64_000, 500)] {
        let id = BenchmarkId::from_parameter(format!("{n}_pieces_{in_flight}_in_flight"));
        g.bench_function(id, |b| {
            b.iter_custom(|iters| {
                let (mut map, mut picker, mut seed) = setup(n, in_flight);
                let (mut out, mut cancels) = (Vec::with_capacity(BATCH), Vec::new());
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    // Leave room so the in-flight pieces never block progress into endgame.
                    if map.unclaimed_blocks() < (BATCH as u64) * 2 + u64::from(in_flight) * 16 {
                        (map, picker, seed) = setup(n, in_flight);
                    }
                    let t = Instant::now();
                    out.clear();
                    picker.pick(seed.view(), PeerSlot(0), BATCH, &mut out);
                    for &blk in &out {
                        if map.receive_block(blk, PeerSlot(0), &mut cancels).unwrap()
                            == Receipt::PieceComplete
                        {
                            map.begin_verify(blk.piece).unwrap();
                            map.mark_verified(blk.piece).unwrap();
                        }
                    }
                    spent += t.elapsed();
                    black_box(&out);
                }
                spent
            })
        });
    }
    g.finish();
}

fn availability(c: &mut Criterion) {
    let mut g = c.benchmark_group("availability_add_remove_bitfield");
    for n in [4_000u32, 64_000] {
        let (map, _picker, _seed) = setup(n, 0);
        let peer = random_bitfield(n, 0.5);
        g.throughput(Throughput::Elements(u64::from(n)));
        g.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                map.add_peer(peer.view()).unwrap();
                map.remove_peer(peer.view()).unwrap();
            })
        });
        let have = map.piece_count() / 2;
        g.throughput(Throughput::Elements(2));
        g.bench_function(BenchmarkId::new("peer_has_lost", n), |b| {
            b.iter(|| {
                map.peer_has(black_box(have)).unwrap();
                map.peer_lost(black_box(have)).unwrap();
            })
        });
    }
    g.finish();
}

fn token_bucket(c: &mut Criterion) {
    let t0 = Instant::now();
    let limited = TokenBucket::new(u64::MAX / 2, u64::MAX / 4, t0);
    let unlimited = TokenBucket::unlimited(t0);
    let mut g = c.benchmark_group("token_bucket");
    g.bench_function("try_take_limited", |b| b.iter(|| limited.try_take(black_box(16384), t0)));
    g.bench_function("try_take_unlimited", |b| b.iter(|| unlimited.try_take(black_box(16384), t0)));
    g.finish();
}

criterion_group!(benches, pick_receive, availability, token_bucket);
criterion_main!(benches);
