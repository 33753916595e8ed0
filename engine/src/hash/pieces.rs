//! Hashing the pieces of files already on disk, on several threads.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Component, Path};

use super::Hasher;
use crate::layout::Layout;

/// Bytes read per `pread`: large sequential reads that still fit in L2 while being hashed.
const READ_CHUNK: usize = 1 << 20;

/// SHA-1 of every piece of `layout`, read from the files under `root`, on `threads` threads
/// (`0` = one per core).
///
/// Each thread takes a contiguous run of pieces and reads it sequentially in 1 MiB `pread`s,
/// hashing piece by piece; a piece may span files. Fails if a file is missing or shorter than
/// the layout says, or if a layout path is absolute or contains `..`.
pub fn hash_pieces(layout: &Layout, root: &Path, threads: usize) -> io::Result<Vec<[u8; 20]>> {
    for f in layout.files() {
        let ok = f.path.components().next().is_some()
            && f.path.components().all(|c| matches!(c, Component::Normal(_)));
        if !ok {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("refusing path outside the root: {}", f.path.display()),
            ));
        }
    }
    let pieces = layout.piece_count() as usize;
    let threads = match threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .clamp(1, pieces.max(1));
    if threads == 1 {
        return hash_range(layout, root, 0, pieces);
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (a, b) = (pieces * t / threads, pieces * (t + 1) / threads);
                s.spawn(move || hash_range(layout, root, a, b))
            })
            .collect();
        let mut out = Vec::with_capacity(pieces);
        for h in handles {
            let part = h.join().map_err(|_| io::Error::other("hashing thread panicked"))??;
            out.extend(part);
        }
        Ok(out)
    })
}

/// Hashes pieces `first..end` sequentially.
fn hash_range(layout: &Layout, root: &Path, first: usize, end: usize) -> io::Result<Vec<[u8; 20]>> {
    let mut out = Vec::with_capacity(end - first);
    if first >= end {
        return Ok(out);
    }
    let pl = layout.piece_length() as u64;
    let start = first as u64 * pl;
    let stop = (end as u64 * pl).min(layout.total_length());
    let mut files: Vec<Option<File>> = (0..layout.files().len()).map(|_| None).collect();
    let mut buf = vec![0u8; READ_CHUNK];
    let mut hasher = Hasher::new();
    let mut pos = start;
    while pos < stop {
        let n = (stop - pos).min(READ_CHUNK as u64) as usize;
        let chunk = &mut buf[..n];
        for seg in layout.segments(pos, n as u64) {
            let file = match &mut files[seg.file] {
                Some(f) => f,
                slot => {
                    let path = root.join(&layout.files()[seg.file].path);
                    let f = File::open(&path)
                        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
                    slot.insert(f)
                }
            };
            let dst = &mut chunk[seg.range_offset as usize..(seg.range_offset + seg.len) as usize];
            file.read_exact_at(dst, seg.file_offset).map_err(|e| {
                let path = root.join(&layout.files()[seg.file].path);
                io::Error::new(e.kind(), format!("{}: {e}", path.display()))
            })?;
        }
        // Feed the chunk piece by piece.
        let mut off = 0usize;
        while off < n {
            let abs = pos + off as u64;
            let piece_end = ((abs / pl + 1) * pl).min(stop);
            let take = ((piece_end - abs) as usize).min(n - off);
            hasher.update(&chunk[off..off + take]);
            off += take;
            if abs + take as u64 == piece_end {
                out.push(hasher.finish_reset());
            }
        }
        pos += n as u64;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::sha1;
    use crate::layout::FileSpan;
    use crate::types::PieceIndex;

    #[test]
    fn equals_plain_sha1_of_each_piece() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let lens = [100_000u64, 0, 3, 250_001, 7];
        let mut stream = Vec::new();
        let mut files = Vec::new();
        for (i, &len) in lens.iter().enumerate() {
            let data: Vec<u8> = (0..len).map(|j| (j * 31 + i as u64) as u8).collect();
            let rel = format!("d{i}/f{i}");
            std::fs::create_dir_all(dir.path().join(format!("d{i}")))?;
            std::fs::write(dir.path().join(&rel), &data)?;
            stream.extend_from_slice(&data);
            files.push(FileSpan { path: rel.into(), length: len });
        }
        let layout = Layout::new(files, 32768).map_err(io::Error::other)?;
        let expected: Vec<[u8; 20]> = (0..layout.piece_count())
            .map(|p| {
                let off = layout.piece_offset(PieceIndex(p)) as usize;
                sha1(&stream[off..off + layout.piece_size(PieceIndex(p)) as usize])
            })
            .collect();
        for threads in [1, 2, 3, 64] {
            assert_eq!(hash_pieces(&layout, dir.path(), threads)?, expected, "threads={threads}");
        }
        // A short file is an error, not a wrong hash.
        std::fs::write(dir.path().join("d4/f4"), b"abc")?;
        assert!(hash_pieces(&layout, dir.path(), 2).is_err());
        Ok(())
    }

    #[test]
    fn refuses_escaping_paths() {
        let layout = Layout::single("../x", 10, 4).expect("layout");
        assert!(hash_pieces(&layout, Path::new("/tmp"), 1).is_err());
    }
}
