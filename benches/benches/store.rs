//! The piece store's io_uring path vs plain `std::fs` positional I/O on the same directory.
//!
//! Writes: a 64 MiB file written sequentially in 16 KiB blocks (one call per block, and one
//! batch per 1 MiB piece). Reads: the same file read back in 1 MiB reads. Files stay in the
//! page cache, so this measures the syscall path, not the disk; see `BENCHMARKS.md` for `dd`.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use floodgate_benches::{bench_dir, pattern};
use floodgate_engine::layout::Layout;
use floodgate_engine::store::{FsyncPolicy, Store, StoreConfig};

const FILE: usize = 64 << 20;
const BLOCK: usize = 16 << 10;
const READ: usize = 1 << 20;

fn store_vs_std(c: &mut Criterion) {
    let dir = match tempfile::tempdir_in(bench_dir()) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("store bench skipped: no temp dir: {e}");
            return;
        }
    };
    let data = Bytes::from(pattern(FILE, 5));
    let blocks: Vec<Bytes> = (0..FILE / BLOCK).map(|i| data.slice(i * BLOCK..(i + 1) * BLOCK)).collect();
    let layout = match Layout::single("uring.bin", FILE as u64, READ as u32) {
        Ok(l) => l,
        Err(e) => return eprintln!("store bench skipped: {e}"),
    };
    let config = StoreConfig { fsync: FsyncPolicy::None, preallocate: true };
    let store = match Store::open(layout, dir.path(), config) {
        Ok(s) => s,
        Err(e) => return eprintln!("store bench skipped: {e}"),
    };
    let std_path = dir.path().join("std.bin");
    let std_file = match OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&std_path) {
        Ok(f) => f,
        Err(e) => return eprintln!("store bench skipped: {e}"),
    };

    let mut g = c.benchmark_group("store");
    g.sample_size(10).measurement_time(std::time::Duration::from_secs(3));
    g.throughput(Throughput::Bytes(FILE as u64));
    g.bench_function("write_16KiB_blocks/uring", |b| {
        b.iter(|| {
            for (i, blk) in blocks.iter().enumerate() {
                store.write_at((i * BLOCK) as u64, blk).expect("store write");
            }
        })
    });
    g.bench_function("write_16KiB_blocks/uring_batched_1MiB", |b| {
        b.iter(|| {
            for (i, piece) in blocks.chunks(READ / BLOCK).enumerate() {
                store.write_blocks((i * READ) as u64, piece).expect("store write");
            }
        })
    });
    g.bench_function("write_16KiB_blocks/std_pwrite", |b| {
        b.iter(|| {
            for (i, blk) in blocks.iter().enumerate() {
                std_file.write_all_at(blk, (i * BLOCK) as u64).expect("pwrite");
            }
        })
    });
    let mut buf = BytesMut::with_capacity(READ);
    g.bench_function("read_1MiB/uring", |b| {
        b.iter(|| {
            for i in 0..FILE / READ {
                buf.clear();
                let (res, back) = store.read_into((i * READ) as u64, READ, std::mem::take(&mut buf));
                res.expect("store read");
                buf = back;
            }
        })
    });
    let mut vec = vec![0u8; READ];
    g.bench_function("read_1MiB/std_pread", |b| {
        b.iter(|| {
            for i in 0..FILE / READ {
                std_file.read_exact_at(&mut vec, (i * READ) as u64).expect("pread");
            }
        })
    });
    g.finish();
}

criterion_group!(benches, store_vs_std);
criterion_main!(benches);
