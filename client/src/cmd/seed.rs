//! `floodgate seed`: serve a complete torrent to BitTorrent peers.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use floodgate_engine::peer::SuperSeeding;
use floodgate_engine::tracker::{TrackerConfig, TrackerRunner};

use super::announcer::Announcer;

/// Arguments of `seed`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// The .torrent file.
    pub torrent: PathBuf,
    /// Directory holding the data (the torrent's name is looked up inside it).
    #[arg(long, default_value = ".")]
    pub data: PathBuf,
    /// Address to accept peers on.
    #[arg(long, default_value = "0.0.0.0:6881")]
    pub listen: SocketAddr,
    /// Rate limits.
    #[command(flatten)]
    pub limits: super::swarm_util::Limits,
    /// Fleet membership.
    #[command(flatten)]
    pub fleet: super::swarm_util::Fleet,
    /// Stop after this many seconds (default: until interrupted).
    #[arg(long)]
    pub seed_for: Option<u64>,
    /// Also run the built-in HTTP tracker (`/announce`, `/scrape`) on this address.
    #[arg(long)]
    pub tracker_listen: Option<SocketAddr>,
    /// Super-seeding (BEP 16) always: reveal pieces to each peer one by one, the rarest
    /// first, so peers get different pieces and trade them; the seed sends each piece about
    /// once.
    #[arg(long, conflicts_with = "no_super_seed")]
    pub super_seed: bool,
    /// Never super-seed: announce every piece up front. Without either flag the seed
    /// super-seeds only until one copy of every piece is out, then announces everything.
    #[arg(long)]
    pub no_super_seed: bool,
}

/// Runs the command.
pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let meta = super::read_torrent(&args.torrent)?;
    let verified = floodgate_engine::store::verified_on_disk(&meta, &args.data);
    if verified.count_ones() != verified.len() {
        bail!(
            "the data under {} is incomplete: {} of {} pieces match the torrent",
            args.data.display(),
            verified.count_ones(),
            verified.len()
        );
    }
    let tracker = match args.tracker_listen {
        Some(at) => {
            let runner = TrackerRunner::start(at, TrackerConfig::default())
                .with_context(|| format!("cannot run the tracker on {at}"))?;
            eprintln!("tracker on http://{}/announce", runner.local_addr());
            Some(runner)
        }
        None => None,
    };
    let (swarm, torrent) = super::swarm_util::start(
        &meta,
        &args.data,
        args.listen,
        verified,
        args.limits,
        SuperSeeding::from_flags(args.super_seed, args.no_super_seed),
        args.fleet.key(),
    )?;
    let addr = swarm.listen_addr().unwrap_or(args.listen);
    eprintln!("seeding {} ({} bytes) on {addr}", meta.info_hash(), meta.total_length());
    let announcer = Announcer::for_torrent(&meta, torrent.clone(), swarm.peer_id(), addr);
    // Scripts read the address from stdout.
    println!("{addr}");
    let deadline = args.seed_for.map(|s| std::time::Instant::now() + Duration::from_secs(s));
    loop {
        std::thread::sleep(Duration::from_millis(500));
        if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            let s = torrent.stats();
            eprintln!("done seeding: {} bytes uploaded to {} peers", s.uploaded, s.peers_seen);
            // Say `stopped` to the trackers (ours included) before the tracker goes away.
            drop(announcer);
            drop(tracker);
            return Ok(());
        }
    }
}
