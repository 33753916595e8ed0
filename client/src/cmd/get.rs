//! `floodgate get`: download a torrent (from a .torrent file or a magnet link), verify it, then
//! seed.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::swarm_util::Announcer;

/// Arguments of `get`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The .torrent file, or a `magnet:` link (its metadata is fetched from the peers first).
    pub torrent: String,
    /// Download directory.
    #[arg(short, long, default_value = ".")]
    pub output: PathBuf,
    /// A peer to connect to (repeatable); the torrent's trackers are asked for more.
    #[arg(long = "peer")]
    pub peers: Vec<SocketAddr>,
    /// Address to accept peers on.
    #[arg(long, default_value = "0.0.0.0:0")]
    pub listen: SocketAddr,
    /// Rate limits.
    #[command(flatten)]
    pub limits: super::swarm_util::Limits,
    /// Exit as soon as the download is complete.
    #[arg(long, conflicts_with = "seed_for")]
    pub no_seed: bool,
    /// Seed this many seconds after completing (default: until interrupted).
    #[arg(long)]
    pub seed_for: Option<u64>,
    /// Give up after this many seconds without completing.
    #[arg(long)]
    pub timeout: Option<u64>,
    /// Print one JSON object with the results on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Runs the command. Exits 0 only when every piece is downloaded and verified.
pub fn run(args: Args) -> anyhow::Result<()> {
    let (meta, magnet_peers) = if args.torrent.to_ascii_lowercase().starts_with("magnet:") {
        let deadline = args.timeout.map(Duration::from_secs).unwrap_or(Duration::from_secs(120));
        super::swarm_util::resolve_magnet(&args.torrent, &args.peers, deadline)?
    } else {
        (super::read_torrent(std::path::Path::new(&args.torrent))?, Vec::new())
    };
    let mut peers = args.peers.clone();
    peers.extend(magnet_peers.into_iter().filter(|p| !args.peers.contains(p)));
    std::fs::create_dir_all(&args.output)
        .with_context(|| format!("cannot create {}", args.output.display()))?;
    let verified = super::swarm_util::check_existing(&meta, &args.output);
    let resumed = verified.count_ones();
    let (swarm, torrent) =
        super::swarm_util::start(&meta, &args.output, args.listen, verified, args.limits, false)?;
    let started = Instant::now();
    let announce_as = swarm.listen_addr().unwrap_or(args.listen);
    let announcer = Announcer::start(&meta, torrent.clone(), swarm.peer_id(), announce_as);
    if peers.is_empty() && announcer.is_none() {
        bail!("no peers: give --peer or use a torrent with an http:// tracker");
    }
    for p in &peers {
        torrent.connect(*p);
    }
    let bar = (!args.json && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new(meta.total_length());
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let deadline = args.timeout.map(|s| started + Duration::from_secs(s));
    // Wall-clock time of the first piece verified in this run (for fast-start benchmarks).
    let mut first_piece: Option<f64> = None;
    let mut redial = Instant::now() + Duration::from_secs(5);
    while !torrent.is_complete() {
        std::thread::sleep(Duration::from_millis(20));
        let s = torrent.stats();
        if first_piece.is_none() && s.pieces_verified > resumed {
            first_piece = Some(unix_seconds());
        }
        if let Some(e) = s.store_error {
            bail!("cannot write the download: {e}");
        }
        if let Some(bar) = &bar {
            bar.set_position(s.bytes_verified);
            bar.set_message(format!("{} peers", s.peers));
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            bail!("timed out: {} of {} pieces verified", s.pieces_verified, s.piece_count);
        }
        if s.peers == 0 && Instant::now() >= redial {
            // Every peer is gone: dial the given ones again.
            for p in &peers {
                torrent.connect(*p);
            }
            redial = Instant::now() + Duration::from_secs(5);
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    torrent.sync().context("cannot flush the download to disk")?;
    if let Some(bar) = bar {
        bar.finish();
    }
    let s = torrent.stats();
    if args.json {
        let v = serde_json::json!({
            "info_hash": meta.info_hash().to_hex(),
            "bytes": meta.total_length(),
            "seconds": seconds,
            "peers": s.peers_seen,
            "bt_bytes": s.downloaded,
            "http_bytes": 0,
            "resumed_pieces": resumed,
            "hash_failures": s.hash_failures,
            "mb_per_s": meta.total_length() as f64 / seconds.max(1e-9) / 1e6,
            "started_unix": unix_seconds() - seconds,
            "first_piece_unix": first_piece,
        });
        println!("{v}");
    } else {
        eprintln!(
            "complete: {} bytes in {:.2} s ({:.0} MB/s) from {} peers",
            meta.total_length(),
            seconds,
            meta.total_length() as f64 / seconds.max(1e-9) / 1e6,
            s.peers_seen
        );
    }
    if args.no_seed {
        return Ok(());
    }
    let until = args.seed_for.map(|secs| Instant::now() + Duration::from_secs(secs));
    while until.is_none_or(|u| Instant::now() < u) {
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

/// Seconds since the Unix epoch, as a float.
fn unix_seconds() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}
