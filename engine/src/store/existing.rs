//! Resume: which pieces of a torrent are already correct in a download directory.
//!
//! Data files are preallocated at full length when first opened, so after a crash (even
//! `kill -9`) they exist; every piece is re-hashed and those matching the torrent count as
//! verified. A piece half-written at the crash fails its hash and is fetched again.

use std::path::Path;

use crate::hash::hash_pieces;
use crate::layout::Layout;
use crate::metainfo::Metainfo;
use crate::piece_map::Bitfield;
use crate::types::PieceIndex;

/// Pieces of `meta` already correct under `root`: none when a file is missing or shorter than
/// the layout says (nothing is created or changed).
pub fn verified_on_disk(meta: &Metainfo, root: &Path) -> Bitfield {
    let hashes: Vec<Option<[u8; 20]>> = meta.piece_hashes().iter().copied().map(Some).collect();
    verified_on_disk_against(&meta.layout(), &hashes, root)
}

/// Pieces of `layout` under `root` whose bytes match `hashes` (a piece whose hash is not known
/// yet never counts); none when a file is missing or short.
pub fn verified_on_disk_against(layout: &Layout, hashes: &[Option<[u8; 20]>], root: &Path) -> Bitfield {
    let mut bits = Bitfield::new(layout.piece_count());
    let complete_files = layout.files().iter().all(|f| {
        std::fs::metadata(root.join(&f.path)).map(|m| m.is_file() && m.len() >= f.length).unwrap_or(false)
    });
    if !complete_files {
        return bits;
    }
    if hashes.iter().all(Option::is_none) {
        return bits;
    }
    match hash_pieces(layout, root, 0) {
        Ok(on_disk) => {
            for (i, (have, want)) in on_disk.iter().zip(hashes).enumerate() {
                if Some(*have) == *want {
                    bits.set(PieceIndex(i as u32));
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, root = %root.display(), "cannot re-hash existing data"),
    }
    bits
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::sha1;
    use crate::metainfo::MetainfoBuilder;

    const PIECE: usize = 16 * 1024;

    /// The torrent of `data` as one file, `f.bin`.
    fn torrent(data: &[u8]) -> Metainfo {
        let hashes = data.chunks(PIECE).map(sha1).collect();
        let (_, meta) = MetainfoBuilder::single_file("f.bin", data.len() as u64, PIECE as u32)
            .piece_hashes(hashes)
            .build()
            .expect("a valid torrent");
        meta
    }

    #[test]
    fn only_pieces_whose_hash_matches_count() {
        let data: Vec<u8> = (0..3 * PIECE + 100).map(|i| (i * 7 % 251) as u8).collect();
        let meta = torrent(&data);
        let dir = tempfile::tempdir().expect("temp dir");
        let mut on_disk = data.clone();
        on_disk[PIECE + 5] ^= 0xff; // piece 1 corrupt
        std::fs::write(dir.path().join("f.bin"), &on_disk).expect("write the file");
        let bits = verified_on_disk(&meta, dir.path());
        let have: Vec<bool> = (0..4).map(|i| bits.has(PieceIndex(i))).collect();
        assert_eq!(have, [true, false, true, true]);
    }

    #[test]
    fn a_missing_or_short_file_counts_nothing() {
        let data: Vec<u8> = (0..2 * PIECE).map(|i| (i % 13) as u8).collect();
        let meta = torrent(&data);
        let dir = tempfile::tempdir().expect("temp dir");
        assert_eq!(verified_on_disk(&meta, dir.path()).count_ones(), 0, "no file");
        std::fs::write(dir.path().join("f.bin"), &data[..PIECE]).expect("write the file");
        assert_eq!(verified_on_disk(&meta, dir.path()).count_ones(), 0, "a short file");
    }
}
