//! What `seed` and `get` share: opening the store, checking data already on disk, the swarm.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context;
use floodgate_engine::hash::hash_pieces;
use floodgate_engine::metainfo::Metainfo;
use floodgate_engine::piece_map::Bitfield;
use floodgate_engine::store::{Store, StoreConfig};
use floodgate_engine::swarm::{AddTorrent, Swarm, SwarmConfig, TorrentHandle};
use floodgate_engine::types::PieceIndex;

/// Which pieces of `meta` are already correct under `root`. Files that are missing or short
/// count as holding nothing (a fresh download).
pub fn check_existing(meta: &Metainfo, root: &Path) -> Bitfield {
    let layout = meta.layout();
    let mut bits = Bitfield::new(layout.piece_count());
    let complete_files = layout.files().iter().all(|f| {
        std::fs::metadata(root.join(&f.path)).map(|m| m.is_file() && m.len() >= f.length).unwrap_or(false)
    });
    if !complete_files {
        return bits;
    }
    if let Ok(hashes) = hash_pieces(&layout, root, 0) {
        for (i, (have, want)) in hashes.iter().zip(meta.piece_hashes()).enumerate() {
            if have == want {
                bits.set(PieceIndex(i as u32));
            }
        }
    }
    bits
}

/// Starts a swarm listening on `listen` and adds the torrent with its store under `root`.
pub fn start(
    meta: &Metainfo,
    root: &Path,
    listen: SocketAddr,
    verified: Bitfield,
) -> anyhow::Result<(Swarm, TorrentHandle)> {
    let store = Store::open(meta.layout(), root, StoreConfig::default())
        .with_context(|| format!("cannot open the data files under {}", root.display()))?;
    let swarm = Swarm::start(SwarmConfig { listen: Some(listen), ..SwarmConfig::default() })
        .with_context(|| format!("cannot listen on {listen}"))?;
    let torrent = swarm.add_torrent(AddTorrent::new(meta, store).with_verified(verified))?;
    Ok((swarm, torrent))
}
