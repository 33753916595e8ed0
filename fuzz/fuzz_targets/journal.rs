#![no_main]
//! The relay's resume files for a URL-only task: the piece journal (`<task>.pieces`: magic,
//! file length, piece length, then `(piece u32 LE, SHA-1)` records) and the origin ETag file
//! beside it, read by `Growing::open` / `Growing::check_origin` in
//! `relay/src/task/growing.rs`, compiled in here from its source file (the relay is a binary
//! crate). The engine itself has no resume file: it re-hashes data on disk
//! (`store::verified_on_disk`).
//!
//! The input builds a journal from records that are right (the true hash of a piece's bytes in
//! the store), wrong, out of range, torn or plain garbage, after a right or damaged header.
//! Checked against the format as documented: exactly the pieces with a right record under a
//! right header are resumed, with their hashes and byte count; the journal is rewritten to one
//! record per resumed piece, and reopening it resumes the same; a piece landed after a restart
//! is resumed on the next one; an ETag change drops every resumed piece and restarts the
//! journal.
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use floodgate_engine::hash::sha1;
use floodgate_engine::layout::Layout;
use floodgate_engine::store::Store;
use floodgate_engine::types::PieceIndex;
use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../relay/src/task/growing.rs"]
mod growing;

use growing::Growing;

const MAGIC: &[u8; 8] = b"FGPIECE1";
const HEADER: usize = 20;
const RECORD: usize = 24;

/// A directory of this process's own (fuzzing runs one input at a time).
fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base =
            if std::path::Path::new("/dev/shm").is_dir() { "/dev/shm".into() } else { std::env::temp_dir() };
        let d = base.join(format!("floodgate-fuzz-journal-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("create the fuzz directory");
        d
    })
}

fn header(layout: &Layout) -> Vec<u8> {
    let mut h = MAGIC.to_vec();
    h.extend_from_slice(&layout.total_length().to_le_bytes());
    h.extend_from_slice(&layout.piece_length().to_le_bytes());
    h
}

/// A memory store holding `data` (a new one per run of the relay: the bytes on disk).
fn store(layout: &Arc<Layout>, data: &[u8]) -> Store {
    let s = Store::memory(layout.clone());
    s.write_at(0, data).expect("write the data");
    s
}

fn piece_hash(layout: &Layout, data: &[u8], p: u32) -> [u8; 20] {
    let off = layout.piece_offset(PieceIndex(p)) as usize;
    sha1(&data[off..off + layout.piece_size(PieceIndex(p)) as usize])
}

/// The pieces the format says are resumed from `journal`, in index order.
fn expected(layout: &Layout, data: &[u8], journal: &[u8]) -> Vec<u32> {
    let mut out = Vec::new();
    if journal.len() < HEADER || journal[..HEADER] != header(layout)[..] {
        return out;
    }
    for rec in journal[HEADER..].chunks_exact(RECORD) {
        let p = u32::from_le_bytes([rec[0], rec[1], rec[2], rec[3]]);
        if p < layout.piece_count() && rec[4..] == piece_hash(layout, data, p) && !out.contains(&p) {
            out.push(p);
        }
    }
    out.sort_unstable();
    out
}

fn check(g: &Growing, layout: &Layout, data: &[u8], want: &[u32]) {
    assert_eq!(g.count() as usize, want.len());
    let mut bytes = 0;
    for p in 0..layout.piece_count() {
        let has = want.contains(&p);
        assert_eq!(g.has(p), has, "piece {p}");
        assert_eq!(g.hash(p), has.then(|| piece_hash(layout, data, p)));
        if has {
            bytes += u64::from(layout.piece_size(PieceIndex(p)));
        }
    }
    assert_eq!(g.bytes(), bytes);
    let (seq, landed) = g.landed_since(0);
    assert_eq!(seq as usize, want.len());
    let mut order: Vec<u32> = landed.iter().map(|(p, _)| *p).collect();
    order.sort_unstable();
    assert_eq!(order, want);
}

fn rewritten(layout: &Layout, data: &[u8], pieces: &[u32]) -> Vec<u8> {
    let mut j = header(layout);
    for &p in pieces {
        j.extend_from_slice(&p.to_le_bytes());
        j.extend_from_slice(&piece_hash(layout, data, p));
    }
    j
}

fuzz_target!(|input: &[u8]| {
    let [pl, l0, l1, seed, ops @ ..] = input else { return };
    let piece_length = 16 * (u32::from(*pl % 16) + 1);
    let length = 1 + u64::from(u16::from_le_bytes([*l0, *l1])) % (u64::from(piece_length) * 9);
    let layout = Arc::new(Layout::single("f", length, piece_length).expect("a valid layout"));
    let count = layout.piece_count();
    let data: Vec<u8> = (0..length)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(*seed).rotate_left(i as u32 % 7))
        .collect();

    // Build the journal: records and damage chosen by the input.
    let mut journal = Vec::new();
    let mut rest = ops;
    while let [op, arg, tail @ ..] = rest {
        rest = tail;
        match op % 6 {
            0 => journal.extend_from_slice(&header(&layout)),
            1 | 2 => {
                let p = u32::from(*arg) % (count + 2);
                journal.extend_from_slice(&p.to_le_bytes());
                let mut h = if p < count { piece_hash(&layout, &data, p) } else { [*arg; 20] };
                if op % 6 == 2 {
                    h[usize::from(*arg) % 20] ^= 1 | arg;
                }
                journal.extend_from_slice(&h);
            }
            3 => {
                let n = usize::from(*arg % 32).min(rest.len());
                journal.extend_from_slice(&rest[..n]);
                rest = &rest[n..];
            }
            4 => {
                let cut = journal.len().saturating_sub(usize::from(*arg % 24));
                journal.truncate(cut);
            }
            _ => {
                if let Some(b) = journal.get_mut(usize::from(*arg)) {
                    *b ^= 0x40;
                }
            }
        }
    }
    let dir = dir();
    let path = dir.join("t.pieces");
    let etag = dir.join("t.pieces.etag");
    let _ = std::fs::remove_file(&etag);
    std::fs::write(&path, &journal).expect("write the journal");

    let want = expected(&layout, &data, &journal);
    let g = Growing::open(layout.clone(), store(&layout, &data), &path).expect("open the journal");
    check(&g, &layout, &data, &want);
    assert!(g.check_origin(Some("\"v1\"")), "no ETag recorded yet: resumed pieces kept");
    check(&g, &layout, &data, &want);
    let on_disk = std::fs::read(&path).expect("read the journal");
    assert_eq!(on_disk, rewritten(&layout, &data, &want), "journal rewritten to the resumed pieces");

    // A piece landed now is resumed after the next restart.
    let extra = (0..count).find(|p| !want.contains(p));
    if let Some(p) = extra {
        let off = layout.piece_offset(PieceIndex(p)) as usize;
        let bytes = &data[off..off + layout.piece_size(PieceIndex(p)) as usize];
        assert_eq!(g.land(p, bytes).ok(), Some(true));
        assert_eq!(g.land(p, bytes).ok(), Some(false), "a piece lands once");
    }
    drop(g);
    let mut after: Vec<u32> = want.iter().copied().chain(extra).collect();
    after.sort_unstable();
    let g = Growing::open(layout.clone(), store(&layout, &data), &path).expect("reopen the journal");
    check(&g, &layout, &data, &after);
    assert!(g.check_origin(Some("\"v1\"")), "same ETag: kept");
    check(&g, &layout, &data, &after);
    drop(g);

    // The origin changed between runs: nothing old is kept, and the journal starts over.
    let g = Growing::open(layout.clone(), store(&layout, &data), &path).expect("reopen the journal");
    assert!(!g.check_origin(Some("\"v2\"")), "another ETag: resumed pieces dropped");
    check(&g, &layout, &data, &[]);
    assert_eq!(std::fs::read(&path).expect("read the journal"), header(&layout));
    assert_eq!(std::fs::read_to_string(&etag).ok().as_deref(), Some("\"v2\""));
});
