//! `floodgate get`: download a torrent (from a .torrent file or a magnet link), verify it, then
//! seed.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use floodgate_engine::metainfo::Metainfo;
use floodgate_engine::peer::SuperSeeding;
use floodgate_fetch::HttpUrl;

use super::announcer::Announcer;
use crate::gapfill::{GapFillConfig, GapFillReport, GapFiller, HttpOptions, SourceKind};

/// Arguments of `get`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
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
    /// Fleet membership.
    #[command(flatten)]
    pub fleet: super::swarm_util::Fleet,
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
    /// An older version of the file: every piece of it whose SHA-1 matches at the same place is
    /// taken instead of downloaded (incremental update).
    #[arg(long, value_name = "OLD_FILE")]
    pub reuse: Option<PathBuf>,
    /// HTTP gap-filling.
    #[command(flatten)]
    pub http: HttpOptions,
}

/// The HTTP sources of a download: `--http-source` URLs, then the torrent's web seeds (BEP 19).
/// For a single-file torrent a web seed URL ending in `/` gets the file name appended
/// (percent-encoded); for a multi-file torrent every web seed (and `--http-source`) names the
/// directory its files are under, each fetched at its own URL by the gap-filler.
pub(crate) fn http_sources(meta: &Metainfo, given: &[String]) -> anyhow::Result<Vec<(HttpUrl, SourceKind)>> {
    let mut out = Vec::new();
    for url in given {
        out.push((HttpUrl::parse(url).with_context(|| "bad --http-source")?, SourceKind::WebSeed));
    }
    for url in &meta.url_list {
        match HttpUrl::parse(url) {
            Ok(u) if !meta.is_multi_file() && url.ends_with('/') => {
                out.push((crate::gapfill::web_seed_file_url(&u, Path::new(meta.name())), SourceKind::WebSeed))
            }
            Ok(u) => out.push((u, SourceKind::WebSeed)),
            Err(e) => tracing::warn!("skipping web seed: {e}"),
        }
    }
    Ok(out)
}

/// A TLS client setup for `https` sources when any is given (system roots).
pub(crate) fn tls_for(
    sources: &[(HttpUrl, SourceKind)],
) -> anyhow::Result<Option<std::sync::Arc<floodgate_fetch::ClientConfig>>> {
    if sources.iter().any(|(u, _)| u.https) {
        Ok(Some(floodgate_fetch::client_config(None)?))
    } else {
        Ok(None)
    }
}

/// Takes every piece of `old` whose SHA-1 matches at the same place; returns the bytes taken.
fn reuse_old_version(
    torrent: &floodgate_engine::swarm::TorrentHandle,
    old: &std::path::Path,
) -> anyhow::Result<u64> {
    use std::io::Read;
    let mut file = std::fs::File::open(old).with_context(|| format!("cannot open {}", old.display()))?;
    let layout = torrent.layout().clone();
    let mut buf = Vec::new();
    let mut taken = 0;
    for p in (0..layout.piece_count()).map(floodgate_engine::types::PieceIndex) {
        let size = layout.piece_size(p) as usize;
        buf.resize(size, 0);
        if file.read_exact(&mut buf).is_err() {
            break;
        }
        if torrent.import_piece(p, &buf)? == floodgate_engine::swarm::ImportOutcome::Verified {
            taken += size as u64;
        }
    }
    Ok(taken)
}

/// Runs the command. Exits 0 only when every piece is downloaded and verified.
pub(crate) fn run(args: Args) -> anyhow::Result<()> {
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
    let http = args.http.clone();
    let switch = http.switch(Default::default())?;
    let sources = if http.no_http { Vec::new() } else { http_sources(&meta, &http.http_sources)? };
    let verified = floodgate_engine::store::verified_on_disk(&meta, &args.output);
    let resumed = verified.count_ones();
    let (swarm, torrent) = super::swarm_util::start(
        &meta,
        &args.output,
        args.listen,
        verified,
        args.limits,
        SuperSeeding::Off,
        args.fleet.key(),
    )?;
    let reused = match &args.reuse {
        Some(old) => reuse_old_version(&torrent, old)?,
        None => 0,
    };
    let started = Instant::now();
    let announce_as = swarm.listen_addr().unwrap_or(args.listen);
    let announcer = Announcer::for_torrent(&meta, torrent.clone(), swarm.peer_id(), announce_as);
    if peers.is_empty() && announcer.is_none() && sources.is_empty() && !torrent.is_complete() {
        bail!("no peers and no HTTP source: give --peer or --http-source, or use a torrent with an http(s):// tracker or web seeds");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("fg-http")
        .build()
        .context("cannot start the HTTP runtime")?;
    let filler = (!sources.is_empty()).then(|| -> anyhow::Result<GapFiller> {
        let config = GapFillConfig { switch, tls: tls_for(&sources)?, ..GapFillConfig::default() };
        Ok(GapFiller::start(rt.handle(), torrent.clone(), sources, config))
    });
    let filler = filler.transpose()?;
    let report = || filler.as_ref().map(GapFiller::report).unwrap_or_default();
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
            let r = report();
            let level = r.level.map_or("off", |l| l.as_str());
            bar.set_message(format!(
                "{} peers · BT {} · HTTP {} ({level})",
                s.peers,
                indicatif::HumanBytes(s.downloaded),
                indicatif::HumanBytes(r.http_bytes)
            ));
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let failures = s.hash_failures + report().hash_failures;
            let why = if failures > 0 {
                format!(" ({failures} pieces failed their hash check)")
            } else {
                String::new()
            };
            if args.json {
                let v = serde_json::json!({
                    "error": "timed out",
                    "pieces_verified": s.pieces_verified,
                    "piece_count": s.piece_count,
                    "hash_failures": failures,
                });
                println!("{v}");
            }
            bail!("timed out: {} of {} pieces verified{why}", s.pieces_verified, s.piece_count);
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
    let r = report();
    drop(filler);
    if args.json {
        let v = serde_json::json!({
            "info_hash": meta.info_hash().to_hex(),
            "bytes": meta.total_length(),
            "seconds": seconds,
            "peers": s.peers_seen,
            "bt_bytes": s.downloaded,
            "redundant_bytes": s.redundant_bytes,
            "http_bytes": r.http_bytes,
            "http_bytes_by_source": by_source(&r),
            "origin_bytes": r.bytes_of(SourceKind::Origin),
            "switches": switches(&r),
            "reused_bytes": reused,
            "resumed_pieces": resumed,
            "hash_failures": s.hash_failures,
            "http_hash_failures": r.hash_failures,
            "mb_per_s": meta.total_length() as f64 / seconds.max(1e-9) / 1e6,
            "started_unix": unix_seconds() - seconds,
            "first_piece_unix": first_piece,
        });
        println!("{v}");
    } else {
        eprintln!(
            "complete: {} bytes in {:.2} s ({:.0} MB/s) from {} peers; BitTorrent {} bytes (+{} redundant), HTTP {} bytes",
            meta.total_length(),
            seconds,
            meta.total_length() as f64 / seconds.max(1e-9) / 1e6,
            s.peers_seen,
            s.downloaded,
            s.redundant_bytes,
            r.http_bytes
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

/// `{url: bytes}` of every HTTP source (URLs without credentials).
fn by_source(r: &GapFillReport) -> serde_json::Value {
    r.by_source
        .iter()
        .map(|(url, _, bytes)| (url.clone(), serde_json::json!(bytes)))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// The level changes as JSON objects (`at_s`, `from`, `to`, `reason`).
fn switches(r: &GapFillReport) -> serde_json::Value {
    r.switches
        .iter()
        .map(|c| {
            serde_json::json!({
                "at_s": c.at.as_secs_f64(),
                "from": c.from.as_str(),
                "to": c.to.as_str(),
                "reason": c.reason.to_string(),
            })
        })
        .collect()
}

/// Seconds since the Unix epoch, as a float.
fn unix_seconds() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use floodgate_engine::layout::FileSpan;
    use floodgate_engine::metainfo::MetainfoBuilder;

    fn targets(meta: &Metainfo, given: &[String]) -> Vec<String> {
        http_sources(meta, given).unwrap().into_iter().map(|(u, _)| u.target).collect()
    }

    #[test]
    fn web_seeds_of_single_and_multi_file_torrents() {
        let (_, single) = MetainfoBuilder::single_file("big file.iso", 10, 16384)
            .piece_hashes(vec![[0; 20]])
            .web_seed("http://m/iso/")
            .web_seed("http://m/exact.iso")
            .build()
            .unwrap();
        assert_eq!(targets(&single, &[]), ["/iso/big%20file.iso", "/exact.iso"], "a `/` gets the name");
        let files = vec![FileSpan { path: "a".into(), length: 5 }, FileSpan { path: "b".into(), length: 5 }];
        let (_, multi) = MetainfoBuilder::multi_file("set", files, 16384)
            .piece_hashes(vec![[0; 20]])
            .web_seed("http://m/dir/")
            .web_seed("http://m/other")
            .build()
            .unwrap();
        let given = ["http://given/base".to_string()];
        assert_eq!(
            targets(&multi, &given),
            ["/base", "/dir/", "/other"],
            "directories are kept: the gap-filler maps each file"
        );
    }
}
