//! Resume after a restart: which pieces of a task are already correct in its data directory.
//!
//! The data files are preallocated at full length when first opened, so after a crash (even
//! `kill -9`) they exist; every piece is re-hashed and those matching the torrent count as
//! verified. A piece half-written at the crash fails its hash and is pulled again.

use std::path::Path;

use floodgate_engine::hash::hash_pieces;
use floodgate_engine::metainfo::Metainfo;
use floodgate_engine::piece_map::Bitfield;
use floodgate_engine::types::PieceIndex;

/// Pieces of `meta` already correct under `root` (none if the files are missing or short).
pub fn verified_on_disk(meta: &Metainfo, root: &Path) -> Bitfield {
    let layout = meta.layout();
    let mut bits = Bitfield::new(layout.piece_count());
    let complete_files = layout.files().iter().all(|f| {
        std::fs::metadata(root.join(&f.path)).map(|m| m.is_file() && m.len() >= f.length).unwrap_or(false)
    });
    if !complete_files {
        return bits;
    }
    match hash_pieces(&layout, root, 0) {
        Ok(hashes) => {
            for (i, (have, want)) in hashes.iter().zip(meta.piece_hashes()).enumerate() {
                if have == want {
                    bits.set(PieceIndex(i as u32));
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, root = %root.display(), "cannot re-hash existing data"),
    }
    bits
}
