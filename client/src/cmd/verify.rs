//! `floodgate verify`: check data on disk against a .torrent.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use floodgate_engine::hash::hash_pieces;

/// Arguments of `verify`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// The .torrent file.
    pub torrent: PathBuf,
    /// Directory holding the data (the torrent's name is looked up inside it).
    #[arg(long, default_value = ".")]
    pub data: PathBuf,
    /// Hashing threads (0 = one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

/// Runs the command; fails unless every piece matches.
pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let meta = super::read_torrent(&args.torrent)?;
    let started = Instant::now();
    let hashes = hash_pieces(&meta.layout(), &args.data, args.threads)
        .with_context(|| format!("cannot read the data under {}", args.data.display()))?;
    let bad: Vec<usize> = hashes
        .iter()
        .zip(meta.piece_hashes())
        .enumerate()
        .filter(|(_, (a, b))| a != b)
        .map(|(i, _)| i)
        .collect();
    let secs = started.elapsed().as_secs_f64();
    if !bad.is_empty() {
        bail!("{} of {} pieces do not match (first: piece {})", bad.len(), hashes.len(), bad[0]);
    }
    eprintln!(
        "all {} pieces match ({} bytes in {:.2} s, {:.0} MB/s)",
        hashes.len(),
        meta.total_length(),
        secs,
        meta.total_length() as f64 / secs.max(1e-9) / 1e6
    );
    Ok(())
}
