//! Store tests: round trips over multi-file layouts, concurrency, errors, memory parity.

use std::path::Path;

use bytes::Bytes;
use proptest::prelude::*;

use super::*;
use crate::layout::FileSpan;
use crate::types::BLOCK_SIZE;

fn layout(lens: &[u64], piece_length: u32) -> Layout {
    let files = lens
        .iter()
        .enumerate()
        .map(|(i, &length)| FileSpan { path: format!("dir{}/sub/f{i}.bin", i % 2).into(), length })
        .collect();
    Layout::new(files, piece_length).expect("valid layout")
}

fn pattern(len: usize, seed: u64) -> Vec<u8> {
    (0..len as u64)
        .map(|i| (i.wrapping_mul(0x9E37_79B9).wrapping_add(seed.wrapping_mul(131)) >> 7) as u8)
        .collect()
}

fn no_fsync() -> StoreConfig {
    StoreConfig { fsync: FsyncPolicy::None, ..StoreConfig::default() }
}

/// Every read/write path through the edge: ring and syscall.
fn all_paths() -> [StoreConfig; 2] {
    let ring = StoreConfig { writes: Backend::IoUring, reads: Backend::IoUring, ..no_fsync() };
    let sync = StoreConfig { writes: Backend::Sync, reads: Backend::Sync, ..no_fsync() };
    [ring, sync]
}

/// Writes the whole stream as 4 KiB blocks, piece by piece, and checks every byte back.
fn round_trip(lens: &[u64], piece_length: u32) -> Result<(), StoreError> {
    let dir =
        tempfile::tempdir().map_err(|e| StoreError::Io { op: "tempdir", path: "/tmp".into(), source: e })?;
    let l = layout(lens, piece_length);
    let stream = pattern(l.total_length() as usize, 7);
    let store = Store::open(l.clone(), dir.path(), StoreConfig::default())?;
    for p in 0..l.piece_count() {
        let piece = PieceIndex(p);
        let off = l.piece_offset(piece) as usize;
        let data = &stream[off..off + l.piece_size(piece) as usize];
        let blocks: Vec<Bytes> = data.chunks(4096).map(Bytes::copy_from_slice).collect();
        store.write_piece(piece, &blocks)?;
        store.piece_verified(piece)?;
    }
    assert_eq!(store.read_at(0, stream.len())?.as_ref(), &stream[..]);
    for p in 0..l.piece_count() {
        let piece = PieceIndex(p);
        let off = l.piece_offset(piece) as usize;
        assert_eq!(store.read_piece(piece)?.as_ref(), &stream[off..off + l.piece_size(piece) as usize]);
    }
    store.close()?;
    // Each file on disk holds its slice of the stream; zero-length files exist and are empty.
    for (i, f) in l.files().iter().enumerate() {
        let on_disk = std::fs::read(dir.path().join(&f.path)).expect("file exists");
        let start = l.file_start(i) as usize;
        assert_eq!(on_disk, &stream[start..start + f.length as usize], "file {i}");
    }
    Ok(())
}

#[test]
fn round_trip_multi_file_with_empty_files() -> Result<(), StoreError> {
    // Piece 0 spans f0, f2 and f3 (three files, skipping the empty f1).
    let l = layout(&[10_000, 0, 4_000, 5_000], 16_384);
    assert_eq!(l.segments(0, 16_384).count(), 3);
    round_trip(&[10_000, 0, 4_000, 5_000], 16_384)?;
    round_trip(&[0, 5_000, 0, 3_000, 100, 20_000, 0], 16_384)?;
    round_trip(&[1], 16_384)?;
    round_trip(&[200_000], 32_768)
}

#[test]
fn concurrent_writers_on_disjoint_blocks() -> Result<(), StoreError> {
    let dir =
        tempfile::tempdir().map_err(|e| StoreError::Io { op: "tempdir", path: "/tmp".into(), source: e })?;
    let l = layout(&[300_000, 0, 123_457, 1_000_000], 65_536);
    let stream = Bytes::from(pattern(l.total_length() as usize, 3));
    for config in all_paths() {
        concurrent_writers(&l, &stream, dir.path(), config)?;
    }
    Ok(())
}

fn concurrent_writers(
    l: &Layout,
    stream: &Bytes,
    root: &Path,
    config: StoreConfig,
) -> Result<(), StoreError> {
    let store = Store::open(l.clone(), root, config)?;
    let block = BLOCK_SIZE as usize;
    std::thread::scope(|s| {
        for t in 0..2usize {
            let (store, stream) = (&store, &stream);
            s.spawn(move || {
                let mut off = t * block;
                while off < stream.len() {
                    let end = (off + block).min(stream.len());
                    store.write_at(off as u64, &stream.slice(off..end)).expect("write");
                    off += 2 * block;
                }
            });
        }
    });
    assert_eq!(&store.read_at(0, stream.len())?, stream, "{config:?}");
    // Start the next round from zeros.
    store.write_at(0, &vec![0; stream.len()])?;
    Ok(())
}

#[test]
fn ranges_past_the_end_are_refused() -> Result<(), StoreError> {
    let dir =
        tempfile::tempdir().map_err(|e| StoreError::Io { op: "tempdir", path: "/tmp".into(), source: e })?;
    for store in [
        Store::open(layout(&[100, 0, 50], 64), dir.path(), no_fsync())?,
        Store::memory(layout(&[100, 0, 50], 64)),
    ] {
        assert!(matches!(
            store.read_at(100, 51),
            Err(StoreError::OutOfRange { offset: 100, len: 51, total: 150 })
        ));
        assert!(matches!(store.read_at(u64::MAX, 2), Err(StoreError::OutOfRange { .. })));
        assert!(matches!(store.write_at(149, b"ab"), Err(StoreError::OutOfRange { .. })));
        assert!(matches!(store.read_piece(PieceIndex(3)), Err(StoreError::OutOfRange { .. })));
        assert!(matches!(store.piece_verified(PieceIndex(3)), Err(StoreError::OutOfRange { .. })));
        assert_eq!(store.read_at(150, 0)?.len(), 0);
        // Unwritten ranges read as zeros.
        assert_eq!(store.read_at(90, 20)?.as_ref(), &[0u8; 20]);
        store.close()?;
        assert!(matches!(store.read_at(0, 1), Err(StoreError::Closed)));
    }
    Ok(())
}

#[test]
fn missing_root_and_unwritable_paths_are_typed_errors() -> std::io::Result<()> {
    let dir = tempfile::tempdir()?;
    let plain_file = dir.path().join("plain");
    std::fs::write(&plain_file, b"x")?;
    // The root cannot be created: a parent component is a regular file (works even as root).
    let err = Store::open(layout(&[10], 4), &plain_file.join("root"), no_fsync()).expect_err("must fail");
    assert!(matches!(err, StoreError::RootUnavailable { .. }), "{err}");
    // The root is a regular file.
    let err = Store::open(layout(&[10], 4), &plain_file, no_fsync()).expect_err("must fail");
    assert!(matches!(err, StoreError::RootUnavailable { .. }), "{err}");
    // A file's parent directory cannot be created.
    let l = Layout::single("plain/inner.bin", 10, 4).expect("layout");
    let err = Store::open(l, dir.path(), no_fsync()).expect_err("must fail");
    assert!(matches!(err, StoreError::NotWritable { .. }), "{err}");
    // A symlink as the final component is refused (O_NOFOLLOW).
    std::os::unix::fs::symlink(&plain_file, dir.path().join("link"))?;
    let err = Store::open(Layout::single("link", 10, 4).expect("layout"), dir.path(), no_fsync())
        .expect_err("must fail");
    assert!(matches!(err, StoreError::NotWritable { .. }), "{err}");
    Ok(())
}

#[test]
fn escaping_paths_are_refused_before_touching_the_disk() -> std::io::Result<()> {
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("root");
    for bad in ["../evil", "/etc/evil", "a/../../evil", "./a", ""] {
        let files =
            vec![FileSpan { path: "ok.bin".into(), length: 4 }, FileSpan { path: bad.into(), length: 4 }];
        let l = Layout::new(files, 4).expect("layout");
        let err = Store::open(l, &root, no_fsync()).expect_err("must fail");
        assert!(matches!(err, StoreError::UnsafePath { .. }), "{bad}: {err}");
        assert!(!root.join("ok.bin").exists(), "nothing created for {bad}");
    }
    Ok(())
}

#[test]
fn reopen_keeps_data_and_fsync_policies_work() -> Result<(), StoreError> {
    let dir =
        tempfile::tempdir().map_err(|e| StoreError::Io { op: "tempdir", path: "/tmp".into(), source: e })?;
    let l = layout(&[40_000, 0, 30_000], 16_384);
    let data = pattern(70_000, 9);
    for fsync in [FsyncPolicy::OnPieceVerified, FsyncPolicy::OnClose, FsyncPolicy::None] {
        let store = Store::open(
            l.clone(),
            dir.path(),
            StoreConfig { fsync, preallocate: fsync != FsyncPolicy::None, ..StoreConfig::default() },
        )?;
        if fsync == FsyncPolicy::OnPieceVerified {
            store.write_at(0, &data)?;
            for p in 0..l.piece_count() {
                store.piece_verified(PieceIndex(p))?;
            }
        }
        assert_eq!(store.read_at(0, data.len())?.as_ref(), &data[..], "{fsync:?}");
        store.close()?;
    }
    Ok(())
}

#[test]
fn enospc_is_reported_as_disk_full() {
    // /dev/full fails every write with ENOSPC.
    let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else { return };
    let (res, buf) = crate::uring::write_all_at(&full, 0, Bytes::from_static(b"abc"));
    assert_eq!(buf.as_ref(), b"abc", "the buffer comes back on failure");
    let err = res.expect_err("ENOSPC");
    let err = StoreError::from_io("write", Path::new("/dev/full").into(), 3, err);
    assert!(matches!(err, StoreError::DiskFull { needed: 3, .. }), "{err}");
    assert!(err.to_string().contains("disk full"));
}

/// Needs root and `mount`: preallocating more than a small tmpfs holds fails with `DiskFull`.
#[test]
#[ignore = "mounts a tmpfs; run as root with --ignored"]
fn preallocation_on_a_full_disk_is_disk_full() -> std::io::Result<()> {
    let dir = tempfile::tempdir()?;
    let st = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(dir.path())
        .status()?;
    assert!(st.success(), "mount failed");
    let res =
        Store::open(Layout::single("big.bin", 8 << 20, 1 << 20).expect("layout"), dir.path(), no_fsync());
    std::process::Command::new("umount").arg(dir.path()).status()?;
    assert!(matches!(res, Err(StoreError::DiskFull { needed, .. }) if needed == 8 << 20), "{res:?}");
    Ok(())
}

#[derive(Clone, Debug)]
enum Action {
    Write { offset: u64, len: usize, seed: u64 },
    Blocks { offset: u64, lens: Vec<usize>, seed: u64 },
    Read { offset: u64, len: usize },
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        (0u64..70_000, 0usize..20_000, any::<u64>()).prop_map(|(offset, len, seed)| Action::Write {
            offset,
            len,
            seed
        }),
        (0u64..70_000, proptest::collection::vec(0usize..6_000, 0..6), any::<u64>())
            .prop_map(|(offset, lens, seed)| Action::Blocks { offset, lens, seed }),
        (0u64..70_000, 0usize..20_000).prop_map(|(offset, len)| Action::Read { offset, len }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn memory_store_matches_disk_store(
        lens in proptest::collection::vec(prop_oneof![Just(0u64), 1u64..30_000], 1..6),
        actions in proptest::collection::vec(action(), 1..24),
        path in 0usize..2,
    ) {
        prop_assume!(lens.iter().sum::<u64>() > 0);
        let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let l = layout(&lens, 8_192);
        let disk = Store::open(l.clone(), dir.path(), all_paths()[path]).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mem = Store::memory(l.clone());
        let brief = |r: Result<Bytes, StoreError>| r.map_err(|e| e.to_string());
        for a in actions {
            match a {
                Action::Write { offset, len, seed } => {
                    let data = pattern(len, seed);
                    prop_assert_eq!(disk.write_at(offset, &data).is_ok(), mem.write_at(offset, &data).is_ok());
                }
                Action::Blocks { offset, lens, seed } => {
                    let blocks: Vec<Bytes> = lens.iter().enumerate().map(|(i, &n)| Bytes::from(pattern(n, seed.wrapping_add(i as u64)))).collect();
                    prop_assert_eq!(disk.write_blocks(offset, &blocks).is_ok(), mem.write_blocks(offset, &blocks).is_ok());
                }
                Action::Read { offset, len } => {
                    prop_assert_eq!(brief(disk.read_at(offset, len)), brief(mem.read_at(offset, len)));
                }
            }
        }
        let total = l.total_length() as usize;
        prop_assert_eq!(brief(disk.read_at(0, total)), brief(mem.read_at(0, total)));
    }
}

#[test]
fn store_is_shareable_across_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Store>();
    shareable::<crate::hash::Verifier>();
}

/// The intended flow: blocks written as they arrive, then the same `Bytes` verified.
#[test]
fn write_then_verify_flow() -> Result<(), StoreError> {
    use crate::hash::{sha1, Verdict, Verifier, VerifierConfig};
    let dir =
        tempfile::tempdir().map_err(|e| StoreError::Io { op: "tempdir", path: "/tmp".into(), source: e })?;
    let l = layout(&[70_000, 0, 60_000], 32_768);
    let stream = Bytes::from(pattern(l.total_length() as usize, 11));
    let store = Store::open(
        l.clone(),
        dir.path(),
        StoreConfig { fsync: FsyncPolicy::OnPieceVerified, ..StoreConfig::default() },
    )?;
    let (verifier, verdicts) = Verifier::new(VerifierConfig { threads: 2, queue: 2 })
        .map_err(|e| StoreError::Io { op: "spawn", path: "/tmp".into(), source: e })?;
    for p in 0..l.piece_count() {
        let piece = PieceIndex(p);
        let off = l.piece_offset(piece) as usize;
        let end = off + l.piece_size(piece) as usize;
        let expected = sha1(&stream[off..end]);
        let mut blocks = Vec::new();
        for start in (off..end).step_by(BLOCK_SIZE as usize) {
            let mut block = stream.slice(start..(start + BLOCK_SIZE as usize).min(end));
            if p == 2 && start == off {
                block = Bytes::from(vec![0xEE; block.len()]); // a lying peer
            }
            store.write_at(start as u64, &block)?;
            blocks.push(block);
        }
        verifier.submit(piece, blocks, expected).map_err(|e| StoreError::Io {
            op: "submit",
            path: "/tmp".into(),
            source: std::io::Error::other(e.to_string()),
        })?;
    }
    drop(verifier);
    let mut bad = Vec::new();
    for v in verdicts.iter() {
        match v {
            Verdict::Verified(p) => store.piece_verified(p)?,
            Verdict::Mismatch(p) => bad.push(p),
        }
    }
    assert_eq!(bad, vec![PieceIndex(2)]);
    Ok(())
}
