//! SHA-1 backends at block (16 KiB) and piece (1 MiB) sizes: `sha1_smol` (portable) vs
//! RustCrypto `sha1` (SHA-NI when the CPU has it), plus the engine's own entry points; and
//! `hash_pieces` over a real file when `$FLOODGATE_HASH_FILE` names one.

// criterion_group! generates undocumented public functions.
#![allow(missing_docs)]

use bytes::Bytes;
use criterion::measurement::Measurement;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use floodgate_benches::{pattern, CpuTime};
use floodgate_engine::hash;
use sha1::Digest;

/// Measured twice: in wall time (`sha1/..`) and in thread CPU time (`sha1_cpu/..`), the
/// latter comparable with `openssl speed` on a loaded machine.
fn sha1_backends<M: Measurement>(c: &mut Criterion<M>, group: &str) {
    let mut g = c.benchmark_group(group);
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

/// `hash_pieces` over an existing file named by `$FLOODGATE_HASH_FILE` (skipped when unset),
/// 1 MiB pieces, 1 and 2 threads. Warm the page cache first (`cat FILE > /dev/null`).
fn hash_pieces_file(c: &mut Criterion) {
    let Some(path) = std::env::var_os("FLOODGATE_HASH_FILE").map(std::path::PathBuf::from) else {
        return;
    };
    let (Some(dir), Some(name), Ok(meta)) = (path.parent(), path.file_name(), std::fs::metadata(&path))
    else {
        return eprintln!("hash_pieces bench skipped: cannot stat {}", path.display());
    };
    let Ok(layout) = floodgate_engine::layout::Layout::single(name, meta.len(), 1 << 20) else {
        return eprintln!("hash_pieces bench skipped: empty file");
    };
    let mut g = c.benchmark_group("hash_pieces");
    g.sample_size(10).measurement_time(std::time::Duration::from_secs(8));
    g.throughput(Throughput::Bytes(meta.len()));
    for threads in [1usize, 2] {
        g.bench_function(BenchmarkId::new("threads", threads), |b| {
            b.iter(|| hash::hash_pieces(&layout, dir, threads).expect("hash_pieces"))
        });
    }
    g.finish();
}

fn sha1_wall(c: &mut Criterion) {
    sha1_backends(c, "sha1");
}

fn sha1_cpu(c: &mut Criterion<CpuTime>) {
    sha1_backends(c, "sha1_cpu");
}

criterion_group!(benches, sha1_wall, hash_pieces_file);
criterion_group! {
    name = cpu;
    config = Criterion::default().with_measurement(CpuTime);
    targets = sha1_cpu
}
criterion_main!(benches, cpu);
