//! One module per subcommand.

pub(crate) mod agent;
mod announcer;
pub(crate) mod get;
mod hash_feed;
pub(crate) mod info;
pub(crate) mod make_torrent;
pub(crate) mod provisional_record;
pub(crate) mod seed;
mod swarm_util;
pub(crate) mod verify;

use std::path::Path;

use anyhow::Context;
use floodgate_engine::metainfo::Metainfo;

/// Reads and parses a .torrent file, with the path in every error.
pub(crate) fn read_torrent(path: &Path) -> anyhow::Result<Metainfo> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Metainfo::from_bytes_lenient(&bytes)
        .with_context(|| format!("{} is not a valid .torrent", path.display()))
}
