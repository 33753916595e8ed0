//! The piece store's io_uring path vs plain `std::fs` positional I/O on the same directory.
//!
//! Writes: a 64 MiB file written sequentially in 16 KiB blocks (one call per block, and one
//! batch per 1 MiB piece), through the store's ring path and its syscall path. Reads: the same
//! file read back in 1 MiB reads. Files stay in the page cache, so this measures the syscall
//! path, not the disk. With `FLOODGATE_STORE_DISK_MIB=N` set, it instead writes N MiB to disk
//! once per path with `fdatasync`, to compare with `dd ... conv=fdatasync` (`BENCHMARKS.md`).

// criterion_group! generates undocumented public functions.
#![allow(missing_docs)]

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, Criterion, Throughput};
use floodgate_benches::{bench_dir, pattern};
use floodgate_engine::layout::Layout;
use floodgate_engine::store::{Backend, FsyncPolicy, Store, StoreConfig};

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
    let open = |name: &str, writes: Backend, reads: Backend| {
        let layout = Layout::single(name, FILE as u64, READ as u32).map_err(|e| e.to_string())?;
        let config = StoreConfig { fsync: FsyncPolicy::None, preallocate: true, writes, reads };
        Store::open(layout, dir.path(), config).map_err(|e| e.to_string())
    };
    let (ring, sync) = match (
        open("ring.bin", Backend::IoUring, Backend::IoUring),
        open("sync.bin", Backend::Sync, Backend::Sync),
    ) {
        (Ok(r), Ok(s)) => (r, s),
        (Err(e), _) | (_, Err(e)) => return eprintln!("store bench skipped: {e}"),
    };
    let std_path = dir.path().join("std.bin");
    let std_file =
        match OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&std_path) {
            Ok(f) => f,
            Err(e) => return eprintln!("store bench skipped: {e}"),
        };

    let mut g = c.benchmark_group("store");
    g.sample_size(10).measurement_time(std::time::Duration::from_secs(3));
    g.throughput(Throughput::Bytes(FILE as u64));
    for (name, store) in [("ring", &ring), ("sync", &sync)] {
        g.bench_function(format!("write_16KiB_blocks/store_{name}"), |b| {
            b.iter(|| {
                for (i, blk) in blocks.iter().enumerate() {
                    store.write_at((i * BLOCK) as u64, blk).expect("store write");
                }
            })
        });
        g.bench_function(format!("write_16KiB_blocks/store_{name}_batched_1MiB"), |b| {
            b.iter(|| {
                for (i, piece) in blocks.chunks(READ / BLOCK).enumerate() {
                    store.write_blocks((i * READ) as u64, piece).expect("store write");
                }
            })
        });
    }
    g.bench_function("write_16KiB_blocks/std_pwrite", |b| {
        b.iter(|| {
            for (i, blk) in blocks.iter().enumerate() {
                std_file.write_all_at(blk, (i * BLOCK) as u64).expect("pwrite");
            }
        })
    });
    let mut buf = BytesMut::with_capacity(READ);
    for (name, store) in [("ring", &ring), ("sync", &sync)] {
        g.bench_function(format!("read_1MiB/store_{name}"), |b| {
            b.iter(|| {
                for i in 0..FILE / READ {
                    buf.clear();
                    let (res, back) = store.read_into((i * READ) as u64, READ, std::mem::take(&mut buf));
                    res.expect("store read");
                    buf = back;
                }
            })
        });
    }
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

/// One pass of `mib` MiB written in 16 KiB blocks then `fdatasync`ed, through the store's ring
/// path, its syscall path and `std::fs`: the disk-bound figure to set beside
/// `dd if=/dev/zero of=FILE bs=1M count=N conv=fdatasync` on the same directory.
fn to_disk(mib: usize) {
    let dir = match tempfile::tempdir_in(bench_dir()) {
        Ok(d) => d,
        Err(e) => return eprintln!("to_disk skipped: {e}"),
    };
    let piece = Bytes::from(pattern(READ, 9));
    let blocks: Vec<Bytes> = (0..READ / BLOCK).map(|i| piece.slice(i * BLOCK..(i + 1) * BLOCK)).collect();
    let total = (mib * READ) as u64;
    for (name, writes) in
        [("store_ring", Some(Backend::IoUring)), ("store_sync", Some(Backend::Sync)), ("std", None)]
    {
        let file_name = format!("{name}.bin");
        let start = std::time::Instant::now();
        let res: Result<(), String> = match writes {
            Some(writes) => (|| {
                let layout =
                    Layout::single(file_name.as_str(), total, READ as u32).map_err(|e| e.to_string())?;
                let config =
                    StoreConfig { fsync: FsyncPolicy::OnClose, preallocate: true, writes, reads: writes };
                let store = Store::open(layout, dir.path(), config).map_err(|e| e.to_string())?;
                for i in 0..mib * (READ / BLOCK) {
                    store
                        .write_at((i * BLOCK) as u64, &blocks[i % blocks.len()])
                        .map_err(|e| e.to_string())?;
                }
                store.close().map_err(|e| e.to_string())
            })(),
            None => (|| {
                let f = std::fs::File::create(dir.path().join(&file_name)).map_err(|e| e.to_string())?;
                for i in 0..mib * (READ / BLOCK) {
                    f.write_all_at(&blocks[i % blocks.len()], (i * BLOCK) as u64)
                        .map_err(|e| e.to_string())?;
                }
                f.sync_data().map_err(|e| e.to_string())
            })(),
        };
        let secs = start.elapsed().as_secs_f64();
        match res {
            Ok(()) => {
                println!("to_disk/{name}: {mib} MiB in {secs:.2} s = {:.0} MB/s", total as f64 / secs / 1e6)
            }
            Err(e) => println!("to_disk/{name}: failed: {e}"),
        }
        let _ = std::fs::remove_file(dir.path().join(&file_name));
    }
}

criterion_group!(benches, store_vs_std);

fn main() {
    // `FLOODGATE_STORE_DISK_MIB=N`: the one-shot to-disk comparison instead of criterion.
    if let Some(mib) = std::env::var("FLOODGATE_STORE_DISK_MIB").ok().and_then(|v| v.parse().ok()) {
        return to_disk(mib);
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
