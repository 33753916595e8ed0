//! `floodgate-relay`: pulls a file from an HTTP origin and serves it while pulling.
//!
//! Standalone mode: one task from `--origin URL --torrent X.torrent`; pieces are pulled with
//! parallel Range requests, SHA-1 checked and announced to BitTorrent peers as they land, and
//! served over HTTP Range from the same store.
//!
//! Ctl mode (`--ctl URL --token T`): tasks come from `floodgate-ctl` (see `ctl_mode`).

mod ctl_mode;
mod http;
mod lease;
mod origin;
mod resume;
mod task;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::Parser;
use floodgate_engine::layout::Layout;
use floodgate_engine::metainfo::{piece_length_for, Metainfo};
use floodgate_engine::piece_map::Bitfield;
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
    #[arg(long, conflicts_with = "ctl")]
    origin: Option<String>,
    /// Control plane URL (ctl mode): register there and run the tasks it assigns.
    #[arg(long)]
    ctl: Option<String>,
    /// Relay token for the control plane.
    #[arg(long, env = "FLOODGATE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// This relay's id at the control plane (default: derived from --listen-http).
    #[arg(long)]
    id: Option<String>,
    /// Zone advertised to the control plane.
    #[arg(long)]
    zone: Option<String>,
    /// The task's .torrent (piece hashes known); its info-hash is the task id. Without it the
    /// task is URL-only: pieces are hashed as they land and a .torrent is built at the end.
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
    /// Super-seeding (BEP 16): reveal pieces to each peer one by one, the rarest first, so
    /// clients get different pieces from the relay and trade them among themselves.
    #[arg(long)]
    super_seed: bool,
    /// HTTP server limits.
    #[command(flatten)]
    http: http::HttpArgs,
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
    if let Some(ctl) = cli.ctl.clone() {
        return ctl_mode::run(cli, ctl);
    }
    let Some(origin) = cli.origin.clone() else {
        bail!("give --origin URL (standalone) or --ctl URL --token T (ctl mode)");
    };
    let url = origin::OriginUrl::parse(&origin)?;
    let tls = if url.https { Some(origin::client_config(cli.origin_ca.as_deref())?) } else { None };
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
    let swarm = Arc::new(
        Swarm::start(SwarmConfig { listen: Some(cli.listen_bt), ..SwarmConfig::default() })
            .with_context(|| format!("cannot listen for BitTorrent on {}", cli.listen_bt))?,
    );
    let task = match &cli.torrent {
        Some(path) => Arc::new(known_task(&cli, &swarm, origin, path)?),
        None => {
            let len = rt
                .block_on(origin::origin_length(&url, &config))
                .context("cannot learn the origin file's length")?;
            Arc::new(url_only_task(&cli, origin, &url, len)?)
        }
    };
    println!("{}", task.id);
    tracing::info!(task = %task.id, resumed = task.counters.resumed_pieces.load(Ordering::Relaxed), pieces = task.layout.piece_count(), bt = ?swarm.listen_addr(), http = %cli.listen_http, "task started");
    rt.block_on(async move {
        let listener = http::bind(cli.listen_http)
            .await
            .with_context(|| format!("cannot listen for HTTP on {}", cli.listen_http))?;
        let server = Arc::new(http::Server::new(vec![task.clone()], cli.http.config()));
        tokio::spawn(http::serve(listener, server.clone()));
        tokio::spawn(announce_self(server, swarm.peer_id(), swarm.listen_addr().unwrap_or(cli.listen_bt)));
        let (pull_task, pull_swarm, max_peers, super_seed) = (task.clone(), swarm.clone(), cli.max_peers, cli.super_seed);
        let web_seed = format!("http://{}/tasks/{}/data", cli.listen_http, task.id);
        let torrent_out = cli.data_dir.join(format!("{}.torrent", task.id));
        tokio::spawn(async move {
            origin::pull(pull_task.clone(), config).await;
            pull_task.sync();
            if pull_task.growing().is_some() && pull_task.is_complete() {
                if let Err(e) = seed_url_only(&pull_task, &pull_swarm, &web_seed, &torrent_out, max_peers, super_seed) {
                    tracing::error!(task = %pull_task.id, error = %e, "cannot seed the finished URL-only task");
                }
            }
        });
        tokio::signal::ctrl_c().await.context("waiting for a signal")?;
        tracing::info!("shutting down");
        task.sync();
        drop(swarm);
        Ok(())
    })
}

/// Keeps the relay registered as a seed of each task's torrent in its own tracker.
async fn announce_self(server: Arc<http::Server>, peer_id: floodgate_engine::types::PeerId, bt: SocketAddr) {
    loop {
        let tasks = server.tasks();
        for task in &tasks {
            if let Some(t) = task.torrent() {
                server.tracker.register_seed(t.info_hash(), peer_id, bt);
            }
        }
        // Sooner while a URL-only task may still be waiting for its torrent.
        let wait = if tasks.iter().all(|t| t.torrent().is_some()) {
            http::SELF_ANNOUNCE_EVERY
        } else {
            std::time::Duration::from_secs(1)
        };
        tokio::time::sleep(wait).await;
    }
}

/// A hash-known task: the torrent's data under `<data-dir>/<info-hash>/`, resumed from the
/// pieces already correct there.
fn known_task(cli: &Cli, swarm: &Swarm, origin: String, torrent_path: &Path) -> anyhow::Result<Task> {
    let bytes =
        std::fs::read(torrent_path).with_context(|| format!("cannot read {}", torrent_path.display()))?;
    let meta = Metainfo::from_bytes(&bytes)
        .with_context(|| format!("{} is not a valid .torrent", torrent_path.display()))?;
    let root = cli.data_dir.join(meta.info_hash().to_hex());
    std::fs::create_dir_all(&root).with_context(|| format!("cannot create {}", root.display()))?;
    let verified = resume::verified_on_disk(&meta, &root);
    let resumed = verified.count_ones();
    let store = Store::open(meta.layout(), &root, StoreConfig::default())
        .with_context(|| format!("cannot open the data files under {}", root.display()))?;
    let mut add = AddTorrent::new(&meta, store).with_verified(verified);
    add.max_peers = cli.max_peers;
    add.session.super_seed = cli.super_seed;
    let torrent = swarm.add_torrent(add)?;
    torrent.disable_peer_downloads();
    let task = Task::known(origin, &meta, torrent, cli.serve_threshold);
    task.counters.resumed_pieces.store(u64::from(resumed), Ordering::Relaxed);
    Ok(task)
}

/// A URL-only task: id from the URL, pieces sized for the length, data under `<data-dir>/<id>/`.
fn url_only_task(cli: &Cli, origin: String, url: &origin::OriginUrl, len: u64) -> anyhow::Result<Task> {
    let id = floodgate_engine::types::hex(&floodgate_engine::hash::sha1(origin.as_bytes()));
    let name = url
        .target
        .split('?')
        .next()
        .and_then(|p| p.rsplit('/').next())
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)))
        .filter(|n| !n.starts_with('.'))
        .unwrap_or("data")
        .to_string();
    if len == 0 {
        bail!("the origin file is empty");
    }
    let layout =
        Layout::single(name.clone(), len, piece_length_for(len)).context("cannot lay out the file")?;
    let root = cli.data_dir.join(&id);
    std::fs::create_dir_all(&root).with_context(|| format!("cannot create {}", root.display()))?;
    let store = Store::open(layout, &root, StoreConfig::default())
        .with_context(|| format!("cannot open the data files under {}", root.display()))?;
    let journal = cli.data_dir.join(format!("{id}.pieces"));
    Task::url_only(id, origin, name, store, cli.serve_threshold, &journal)
        .with_context(|| format!("cannot open the piece journal {}", journal.display()))
}

/// Builds the finished URL-only task's torrent (url-list: this relay), saves it, and seeds it.
fn seed_url_only(
    task: &Task,
    swarm: &Swarm,
    web_seed: &str,
    out: &Path,
    max_peers: usize,
    super_seed: bool,
) -> anyhow::Result<()> {
    let growing = task.growing().context("not a URL-only task")?;
    let (file, meta) = growing.build_torrent(&task.name, web_seed).context("hashes missing")?;
    std::fs::write(out, &file).with_context(|| format!("cannot write {}", out.display()))?;
    let root = swarm_root(out, &task.id);
    let store = Store::open(meta.layout(), &root, StoreConfig::default())?;
    let mut add = AddTorrent::new(&meta, store).with_verified(Bitfield::full(meta.piece_count()));
    add.max_peers = max_peers;
    add.session.super_seed = super_seed;
    let torrent = swarm.add_torrent(add)?;
    torrent.disable_peer_downloads();
    tracing::info!(task = %task.id, info_hash = %meta.info_hash(), torrent = %out.display(), "URL-only task complete; seeding");
    task.set_seeding(file, torrent);
    Ok(())
}

/// The data directory of task `id`, beside its saved torrent.
fn swarm_root(torrent_out: &Path, id: &str) -> PathBuf {
    torrent_out.parent().map_or_else(|| PathBuf::from(id), |d| d.join(id))
}
