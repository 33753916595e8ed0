//! One module per subcommand.

pub mod agent;
mod announcer;
pub mod get;
mod hash_feed;
pub mod info;
pub mod make_torrent;
pub mod seed;
mod swarm_util;
pub mod verify;

use std::path::Path;

use anyhow::Context;
use floodgate_engine::metainfo::Metainfo;

/// Reads and parses a .torrent file, with the path in every error.
pub fn read_torrent(path: &Path) -> anyhow::Result<Metainfo> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Metainfo::from_bytes_lenient(&bytes)
        .with_context(|| format!("{} is not a valid .torrent", path.display()))
}
