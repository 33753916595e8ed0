//! `floodgate-relay`: pulls a file from an HTTP origin and serves it while pulling.
//!
//! Standalone mode: one task from `--origin URL --torrent X.torrent`; pieces are pulled with
//! parallel Range requests, SHA-1 checked and announced to BitTorrent peers as they land, and
//! served over HTTP Range from the same store.

mod http;
mod origin;
mod resume;
mod task;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::Parser;
use floodgate_engine::metainfo::Metainfo;
use floodgate_engine::store::{Store, StoreConfig};
use floodgate_engine::swarm::{AddTorrent, Swarm, SwarmConfig};

use origin::PullConfig;
use task::Task;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Pull a file from an HTTP(S) origin under quota, verify and seed it while writing, serve HTTP Range.
#[derive(Parser, Debug)]
#[command(name = "floodgate-relay", version, about)]
struct Cli {
    /// Origin URL to pull (standalone mode).
    #[arg(long)]
    origin: Option<String>,
    /// The task's .torrent (piece hashes known); its info-hash is the task id.
    #[arg(long)]
    torrent: Option<PathBuf>,
    /// Directory holding task data and state.
    #[arg(long, default_value = "relay-data")]
    data_dir: PathBuf,
    /// Address for BitTorrent peers.
    #[arg(long, default_value = "127.0.0.1:6881")]
    listen_bt: SocketAddr,
    /// Address for the HTTP Range server and tracker.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen_http: SocketAddr,
    /// Origin bandwidth limit, bytes per second (0 = unlimited).
    #[arg(long, default_value_t = 0)]
    origin_rate: u64,
    /// Parallel connections to the origin (2–8).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(2..=8))]
    origin_conns: u8,
    /// Percent of the file verified before whole-file requests are served (1–10).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=10))]
    serve_threshold: u8,
    /// Extra CA certificates (PEM) trusted for an https origin, besides the system roots.
    #[arg(long)]
    origin_ca: Option<PathBuf>,
    /// Seconds without progress before an origin request counts as stalled.
    #[arg(long, default_value_t = 10)]
    origin_timeout: u64,
    /// BitTorrent connections at once.
    #[arg(long, default_value_t = 1000)]
    max_peers: usize,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let Some(origin) = cli.origin.clone() else {
        bail!("--origin URL is required (ctl mode is not built yet)");
    };
    let Some(torrent_path) = cli.torrent.clone() else {
        bail!("--torrent X.torrent is required: URL-only tasks (hashing as pieces land) are not built yet");
    };
    let bytes =
        std::fs::read(&torrent_path).with_context(|| format!("cannot read {}", torrent_path.display()))?;
    let meta = Metainfo::from_bytes(&bytes)
        .with_context(|| format!("{} is not a valid .torrent", torrent_path.display()))?;
    let url = origin::OriginUrl::parse(&origin)?;
    let tls = if url.https { Some(origin::client_config(cli.origin_ca.as_deref())?) } else { None };

    let id = meta.info_hash().to_hex();
    let root = cli.data_dir.join(&id);
    std::fs::create_dir_all(&root).with_context(|| format!("cannot create {}", root.display()))?;
    let verified = resume::verified_on_disk(&meta, &root);
    let resumed = verified.count_ones();
    let store = Store::open(meta.layout(), &root, StoreConfig::default())
        .with_context(|| format!("cannot open the data files under {}", root.display()))?;
    let swarm = Swarm::start(SwarmConfig { listen: Some(cli.listen_bt), ..SwarmConfig::default() })
        .with_context(|| format!("cannot listen for BitTorrent on {}", cli.listen_bt))?;
    let mut add = AddTorrent::new(&meta, store).with_verified(verified);
    add.max_peers = cli.max_peers;
    let torrent = swarm.add_torrent(add)?;
    torrent.disable_peer_downloads();
    let task = Arc::new(Task::new(origin, meta, torrent, cli.serve_threshold));
    task.counters.resumed_pieces.store(u64::from(resumed), Ordering::Relaxed);
    println!("{id}");
    tracing::info!(task = %id, resumed, pieces = task.meta.piece_count(), bt = ?swarm.listen_addr(), http = %cli.listen_http, "task started");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("fg-relay")
        .build()
        .context("cannot start the async runtime")?;
    let config = PullConfig {
        conns: usize::from(cli.origin_conns),
        rate: cli.origin_rate,
        io_timeout: std::time::Duration::from_secs(cli.origin_timeout.max(1)),
        tls,
        ..PullConfig::default()
    };
    rt.block_on(async move {
        let listener = http::bind(cli.listen_http)
            .await
            .with_context(|| format!("cannot listen for HTTP on {}", cli.listen_http))?;
        let server = Arc::new(http::Server::new(vec![task.clone()], http::ServerConfig::default()));
        tokio::spawn(http::serve(listener, server));
        let pull_task = task.clone();
        tokio::spawn(async move {
            origin::pull(pull_task.clone(), config).await;
            if let Err(e) = pull_task.torrent.sync() {
                tracing::warn!(error = %e, "sync after the pull failed");
            }
        });
        tokio::signal::ctrl_c().await.context("waiting for a signal")?;
        tracing::info!("shutting down");
        let _ = task.torrent.sync();
        drop(swarm);
        Ok(())
    })
}
