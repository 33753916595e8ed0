//! SHA-1 backends at block (16 KiB) and piece (1 MiB) sizes: `sha1_smol` (portable) vs
//! RustCrypto `sha1` (SHA-NI when the CPU has it), plus the engine's own entry points.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use floodgate_benches::pattern;
use floodgate_engine::hash;
use sha1::Digest;

fn sha1_backends(c: &mut Criterion) {
    let mut g = c.benchmark_group("sha1");
    g.sample_size(20).measurement_time(std::time::Duration::from_secs(2));
    for (label, size) in [("16KiB", 16usize << 10), ("1MiB", 1 << 20)] {
        let data = pattern(size, 1);
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::new("sha1_smol", label), &data, |b, d| {
            b.iter(|| sha1_smol::Sha1::from(d.as_slice()).digest().bytes())
        });
        g.bench_with_input(BenchmarkId::new("rustcrypto", label), &data, |b, d| {
            b.iter(|| <[u8; 20]>::from(sha1::Sha1::digest(d)))
        });
        g.bench_with_input(BenchmarkId::new("engine_sha1", label), &data, |b, d| b.iter(|| hash::sha1(d)));
        let blocks: Vec<Bytes> = data.chunks(16 << 10).map(Bytes::copy_from_slice).collect();
        g.bench_with_input(BenchmarkId::new("engine_sha1_chunks", label), &blocks, |b, bl| {
            b.iter(|| hash::sha1_chunks(bl))
        });
    }
    g.finish();
}

criterion_group!(benches, sha1_backends);
criterion_main!(benches);
