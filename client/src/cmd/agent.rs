//! `floodgate agent`: take download tasks from `floodgate-ctl`, download them over BitTorrent
//! from the task's relays (and the peers their trackers name), report progress, then seed.
//!
//! Tasks arrive on the `WatchTasks` stream (replayed on every reconnect), so they are applied
//! idempotently by `dist_id` and `revision`: a higher revision only updates the relay set.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use floodgate_engine::gapfill::SwitchConfig;
use floodgate_engine::metainfo::Metainfo;
use floodgate_engine::store::{Store, StoreConfig};
use floodgate_engine::swarm::{AddTorrent, Swarm, SwarmConfig, TorrentHandle};
use floodgate_engine::tracker::{announce, AnnounceRequest, Event};
use floodgate_engine::types::{InfoHash, PeerId};
use floodgate_fetch::HttpUrl;
use floodgate_proto::v1 as pb;
use floodgate_proto::{retry_until_ok, watch_forever, Backoff, Bearer, WatchConfig, FIRST_BACKOFF};
use parking_lot::Mutex;
use pb::client_service_client::ClientServiceClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::gapfill::{GapFillConfig, GapFiller, HttpOptions, SourceKind};

#[path = "agent_metrics.rs"]
mod metrics;

/// Time limit of one unary call to ctl.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait between reconnect attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(15);
/// How often progress is reported by default.
const REPORT_EVERY: Duration = Duration::from_secs(2);

/// Arguments of `agent`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Control plane URL, e.g. http://ctl.example:7400.
    #[arg(long)]
    pub ctl: String,
    /// Client token for the control plane.
    #[arg(long, env = "FLOODGATE_TOKEN", hide_env_values = true)]
    pub token: String,
    /// This client's id.
    #[arg(long)]
    pub id: String,
    /// Labels, comma-separated (distributions can target them).
    #[arg(long, value_delimiter = ',')]
    pub labels: Vec<String>,
    /// Zone (relays in the same zone are preferred).
    #[arg(long, default_value = "")]
    pub zone: String,
    /// Download directory.
    #[arg(short, long, default_value = ".")]
    pub output: PathBuf,
    /// Address to accept peers on.
    #[arg(long, default_value = "0.0.0.0:0")]
    pub listen: SocketAddr,
    /// HTTP gap-filling defaults; a distribution's own settings (its `DistConfig`) win.
    #[command(flatten)]
    pub http: HttpOptions,
    /// Prometheus `/metrics`.
    #[command(flatten)]
    pub metrics: metrics::MetricsArgs,
}

type Client = ClientServiceClient<InterceptedService<Channel, Bearer>>;

/// One task being downloaded or seeded.
struct Job {
    revision: u64,
    info_hash: InfoHash,
    torrent: TorrentHandle,
    relays: Arc<Mutex<Vec<pb::RelayEndpoint>>>,
    stop: Arc<AtomicBool>,
    files: Vec<PathBuf>,
    /// HTTP gap-filling from the relays (`None` with `--no-http`).
    filler: Option<Arc<GapFiller>>,
}

/// What the loops share.
struct Agent {
    args: Args,
    client: Client,
    swarm: Swarm,
    jobs: Mutex<HashMap<String, Job>>,
}

/// Runs the agent until interrupted.
pub fn run(args: Args) -> anyhow::Result<()> {
    let auth = Bearer::new(&args.token).context("the token is not valid ASCII")?;
    std::fs::create_dir_all(&args.output)
        .with_context(|| format!("cannot create {}", args.output.display()))?;
    let swarm = Swarm::start(SwarmConfig { listen: Some(args.listen), ..SwarmConfig::default() })
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("fg-agent")
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async move {
        let channel = Channel::from_shared(args.ctl.clone())
            .with_context(|| format!("bad ctl URL {}", args.ctl))?
            .connect_timeout(Duration::from_secs(5))
            .connect_lazy();
        let client = ClientServiceClient::with_interceptor(channel, auth).max_decoding_message_size(64 << 20);
        let agent = Arc::new(Agent { args, client, swarm, jobs: Mutex::new(HashMap::new()) });
        metrics::start(&agent).await?;
        agent.register_until_ok().await;
        tracing::info!(id = %agent.args.id, "registered with ctl");
        tokio::spawn(agent.clone().watch_loop());
        tokio::signal::ctrl_c().await.context("waiting for a signal")?;
        tracing::info!("shutting down");
        for job in agent.jobs.lock().values() {
            job.stop.store(true, Ordering::Relaxed);
            let _ = job.torrent.sync();
        }
        Ok(())
    })
}

impl Agent {
    async fn register(&self) -> anyhow::Result<()> {
        let req = pb::RegisterClientRequest {
            id: self.args.id.clone(),
            labels: self.args.labels.clone(),
            zone: self.args.zone.clone(),
        };
        tokio::time::timeout(CALL_TIMEOUT, self.client.clone().register_client(req))
            .await
            .context("RegisterClient timed out")??;
        Ok(())
    }

    /// Registers, retrying with backoff until ctl answers.
    async fn register_until_ok(&self) {
        retry_until_ok("cannot register with ctl", Backoff::new(FIRST_BACKOFF, MAX_BACKOFF), || {
            self.register()
        })
        .await
    }

    /// Watches the task stream forever, reconnecting with backoff.
    async fn watch_loop(self: Arc<Self>) {
        let config =
            WatchConfig { call_timeout: CALL_TIMEOUT, backoff: Backoff::new(FIRST_BACKOFF, MAX_BACKOFF) };
        let open = || {
            let mut client = self.client.clone();
            let req = pb::WatchTasksRequest { client_id: self.args.id.clone() };
            async move { client.watch_tasks(req).await }
        };
        watch_forever(config, open, |ev| self.apply(ev), || self.register_until_ok()).await;
    }

    /// Applies one event idempotently by (dist_id, revision).
    async fn apply(self: &Arc<Self>, ev: pb::TaskEvent) {
        match ev.event {
            Some(pb::task_event::Event::Assign(task)) => {
                {
                    let mut jobs = self.jobs.lock();
                    if let Some(job) = jobs.get_mut(&task.dist_id) {
                        if task.revision > job.revision {
                            tracing::info!(dist = %task.dist_id, revision = task.revision, "task updated");
                            job.revision = task.revision;
                            *job.relays.lock() = task.relays.clone();
                            for addr in bt_addrs(&task.relays) {
                                job.torrent.connect(addr);
                            }
                            if let Some(f) = &job.filler {
                                f.add_sources(relay_sources(&task.relays, &job.info_hash));
                            }
                        }
                        return;
                    }
                }
                let dist = task.dist_id.clone();
                if let Err(e) = self.start(task).await {
                    let reason = format!("{e:#}");
                    tracing::error!(dist = %dist, error = %reason, "cannot start the task");
                    let state = pb::TaskState::Failed;
                    self.report(&dist, state, Bytes::default(), 0, reason).await;
                }
            }
            Some(pb::task_event::Event::CancelDistId(dist)) => self.cancel(&dist),
            None => {}
        }
    }

    /// Fetches the task's .torrent, adds it to the swarm, dials the relays and starts the
    /// progress reporter and the tracker announcer.
    async fn start(self: &Arc<Self>, task: pb::Task) -> anyhow::Result<()> {
        if !task.has_torrent {
            // URL-only: the relay publishes the .torrent when its pull completes, and ctl
            // pushes this task again with it.
            tracing::info!(dist = %task.dist_id, "waiting for the relay to publish the distribution's .torrent");
            return Ok(());
        }
        let req = pb::DistributionMetaRequest { dist_id: task.dist_id.clone() };
        let meta = tokio::time::timeout(CALL_TIMEOUT, self.client.clone().get_distribution_meta(req))
            .await
            .context("GetDistributionMeta timed out")??
            .into_inner();
        let meta = Metainfo::from_bytes_lenient(&meta.torrent).context("ctl sent an invalid .torrent")?;
        let root = self.args.output.clone();
        let verified = floodgate_engine::store::verified_on_disk(&meta, &root);
        let store = Store::open(meta.layout(), &root, StoreConfig::default())
            .with_context(|| format!("cannot open the data files under {}", root.display()))?;
        let torrent = self.swarm.add_torrent(AddTorrent::new(&meta, store).with_verified(verified))?;
        let relays = Arc::new(Mutex::new(task.relays.clone()));
        let stop = Arc::new(AtomicBool::new(false));
        for addr in bt_addrs(&task.relays) {
            torrent.connect(addr);
        }
        let files = meta.layout().files().iter().map(|f| root.join(&f.path)).collect();
        let filler = if self.args.http.no_http {
            None
        } else {
            let switch = self.args.http.switch(dist_switch(task.config.as_ref()))?;
            let config = GapFillConfig { switch, ..GapFillConfig::default() };
            let mut sources = relay_sources(&task.relays, &meta.info_hash());
            for url in &self.args.http.http_sources {
                sources.push((HttpUrl::parse(url).context("bad --http-source")?, SourceKind::WebSeed));
            }
            let config = GapFillConfig { tls: super::get::tls_for(&sources)?, ..config };
            let handle = tokio::runtime::Handle::current();
            Some(Arc::new(GapFiller::start(&handle, torrent.clone(), sources, config)))
        };
        let job = Job {
            revision: task.revision,
            info_hash: meta.info_hash(),
            torrent: torrent.clone(),
            relays: relays.clone(),
            stop: stop.clone(),
            files,
            filler: filler.clone(),
        };
        self.jobs.lock().insert(task.dist_id.clone(), job);
        tracing::info!(dist = %task.dist_id, info_hash = %meta.info_hash(), pieces = meta.piece_count(), "task started");
        let ctx = AnnounceCtx {
            torrent: torrent.clone(),
            peer_id: self.swarm.peer_id(),
            port: self.swarm.listen_addr().map_or(self.args.listen.port(), |a| a.port()),
            relays,
            stop: stop.clone(),
        };
        std::thread::Builder::new()
            .name("fg-agent-announce".into())
            .spawn(move || announce_loop(ctx))
            .context("cannot start the announce thread")?;
        let every = match task.config.as_ref().map_or(0, |c| c.check_interval_ms) {
            0 => REPORT_EVERY,
            ms => Duration::from_millis(u64::from(ms))
                .clamp(Duration::from_millis(500), Duration::from_secs(30)),
        };
        tokio::spawn(self.clone().drive(task.dist_id, torrent, stop, every, filler));
        Ok(())
    }

    /// Reports progress every `every` until the download ends, then DONE or FAILED.
    async fn drive(
        self: Arc<Self>,
        dist: String,
        torrent: TorrentHandle,
        stop: Arc<AtomicBool>,
        every: Duration,
        filler: Option<Arc<GapFiller>>,
    ) {
        let http = || filler.as_ref().map(|f| f.report()).unwrap_or_default();
        let started = Instant::now();
        let mut last = (Instant::now(), torrent.stats().bytes_verified);
        let mut redial = Instant::now() + Duration::from_secs(1);
        // Connected peers that give nothing (e.g. agents that dialed each other before the
        // relay had the task) count as starving too.
        let mut progress = (Instant::now(), torrent.stats().bytes_verified);
        loop {
            tokio::time::sleep(every.min(Duration::from_millis(250))).await;
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let s = torrent.stats();
            if let Some(e) = &s.store_error {
                self.report(
                    &dist,
                    pb::TaskState::Failed,
                    Bytes::of(&s, &http()),
                    0,
                    format!("cannot write: {e}"),
                )
                .await;
                return;
            }
            if torrent.is_complete() {
                if let Err(e) = torrent.sync() {
                    let reason = format!("cannot flush the download: {e}");
                    self.report(&dist, pb::TaskState::Failed, Bytes::of(&s, &http()), 0, reason).await;
                    return;
                }
                let secs = started.elapsed().as_secs_f64();
                tracing::info!(dist = %dist, bytes = s.total_length, seconds = secs, peers = s.peers_seen, "download complete; seeding");
                let speed = (s.total_length as f64 / secs.max(1e-3)) as u64;
                self.report(&dist, pb::TaskState::Done, Bytes::of(&s, &http()), speed, String::new()).await;
                return;
            }
            if s.bytes_verified != progress.1 {
                progress = (Instant::now(), s.bytes_verified);
            }
            // Before the first byte the relays may still be setting the task up (they hear of
            // it at the same time as we do): look again every second, later every 5 s.
            let patience =
                if s.bytes_verified == 0 { Duration::from_secs(1) } else { Duration::from_secs(3) };
            let stalled = progress.0.elapsed() >= patience;
            if (s.peers == 0 || stalled) && Instant::now() >= redial {
                if let Some(job) = self.jobs.lock().get(&dist) {
                    for addr in bt_addrs(&job.relays.lock()) {
                        torrent.connect(addr);
                    }
                }
                redial =
                    Instant::now() + if s.bytes_verified == 0 { patience } else { Duration::from_secs(5) };
            }
            if last.0.elapsed() >= every {
                let speed =
                    (s.bytes_verified.saturating_sub(last.1) as f64 / last.0.elapsed().as_secs_f64()) as u64;
                last = (Instant::now(), s.bytes_verified);
                self.report(&dist, pb::TaskState::Running, Bytes::of(&s, &http()), speed, String::new())
                    .await;
            }
        }
    }

    /// Sends one progress report; a `cancelled` answer cancels the task.
    async fn report(&self, dist: &str, state: pb::TaskState, bytes: Bytes, speed_bps: u64, reason: String) {
        let req = pb::ProgressReport {
            client_id: self.args.id.clone(),
            dist_id: dist.to_string(),
            bytes_bt: bytes.bt,
            bytes_http_relay: bytes.http_relay,
            bytes_http_origin: bytes.http_origin,
            speed_bps,
            state: state as i32,
            reason,
            ..Default::default()
        };
        // The final report matters: retry it a few times.
        let attempts = if state == pb::TaskState::Running { 1 } else { 5 };
        for attempt in 0..attempts {
            match tokio::time::timeout(CALL_TIMEOUT, self.client.clone().report_progress(req.clone())).await {
                Ok(Ok(resp)) => {
                    if resp.into_inner().cancelled {
                        self.cancel(dist);
                    }
                    return;
                }
                Ok(Err(e)) => tracing::warn!(dist, error = %e, "progress report failed"),
                Err(_) => tracing::warn!(dist, "progress report timed out"),
            }
            tokio::time::sleep(Duration::from_millis(500 << attempt)).await;
        }
    }

    /// Stops a task; drops its data unless it was complete.
    fn cancel(&self, dist: &str) {
        let Some(job) = self.jobs.lock().remove(dist) else { return };
        job.stop.store(true, Ordering::Relaxed);
        let complete = job.torrent.is_complete();
        self.swarm.remove_torrent(&job.info_hash);
        if !complete {
            for f in &job.files {
                let _ = std::fs::remove_file(f);
            }
        }
        tracing::info!(dist, complete, "task cancelled");
    }
}

/// Bytes received by source, as reported to ctl.
#[derive(Clone, Copy, Debug, Default)]
struct Bytes {
    bt: u64,
    http_relay: u64,
    http_origin: u64,
}

impl Bytes {
    fn of(s: &floodgate_engine::swarm::TorrentStats, http: &crate::gapfill::GapFillReport) -> Self {
        Bytes {
            bt: s.downloaded,
            http_relay: http.bytes_of(SourceKind::Relay) + http.bytes_of(SourceKind::WebSeed),
            http_origin: http.bytes_of(SourceKind::Origin),
        }
    }
}

/// The switch settings a distribution asks for (0 fields keep the defaults).
fn dist_switch(config: Option<&pb::DistConfig>) -> SwitchConfig {
    let base = SwitchConfig::default();
    let Some(c) = config else { return base };
    let ms = |v: u32, d: Duration| if v == 0 { d } else { Duration::from_millis(u64::from(v)) };
    SwitchConfig {
        threshold: if c.bt_slow_threshold_bps == 0 { base.threshold } else { c.bt_slow_threshold_bps },
        interval: ms(c.check_interval_ms, base.interval),
        window: ms(c.window_ms, base.window),
        cooldown: ms(c.cooldown_ms, base.cooldown),
        share_percent: match c.http_share_percent {
            0 => base.share_percent,
            p => p.clamp(1, 100) as u8,
        },
        ..base
    }
}

/// The relays' HTTP Range endpoints of a task (`http://RELAY/tasks/<info-hash>/data`).
fn relay_sources(relays: &[pb::RelayEndpoint], info_hash: &InfoHash) -> Vec<(HttpUrl, SourceKind)> {
    addrs(relays, "http://")
        .into_iter()
        .filter_map(|a| HttpUrl::parse(&format!("http://{a}/tasks/{}/data", info_hash.to_hex())).ok())
        .map(|u| (u, SourceKind::Relay))
        .collect()
}

/// The BitTorrent addresses (`bt://HOST:PORT`) of `relays`.
fn bt_addrs(relays: &[pb::RelayEndpoint]) -> Vec<SocketAddr> {
    addrs(relays, "bt://")
}

/// The addresses with `scheme` of `relays` that parse as socket addresses.
fn addrs(relays: &[pb::RelayEndpoint], scheme: &str) -> Vec<SocketAddr> {
    relays
        .iter()
        .flat_map(|r| r.addresses.iter())
        .filter_map(|a| a.strip_prefix(scheme))
        .filter_map(|a| a.trim_end_matches('/').parse().ok())
        .collect()
}

/// What the announce thread works with.
struct AnnounceCtx {
    torrent: TorrentHandle,
    peer_id: PeerId,
    port: u16,
    relays: Arc<Mutex<Vec<pb::RelayEndpoint>>>,
    stop: Arc<AtomicBool>,
}

/// Announces to every relay's tracker (`http://RELAY/announce`) and dials the peers it names:
/// every 15 s, every 3 s while no peer is connected or none gave anything for 3 s.
fn announce_loop(ctx: AnnounceCtx) {
    let mut dialed: HashSet<SocketAddr> = HashSet::new();
    let mut started = false;
    let mut was_complete = ctx.torrent.is_complete();
    let mut next = Instant::now();
    let mut progress = (Instant::now(), ctx.torrent.stats().bytes_verified);
    while !ctx.stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(200));
        let complete = ctx.torrent.is_complete();
        let s = ctx.torrent.stats();
        if s.bytes_verified != progress.1 {
            progress = (Instant::now(), s.bytes_verified);
        }
        // No peer, or peers that give nothing for 3 s: ask again soon and dial everyone anew.
        let starving = !complete && (s.peers == 0 || progress.0.elapsed() >= Duration::from_secs(3));
        if Instant::now() < next && complete == was_complete {
            continue;
        }
        if starving {
            dialed.clear();
        }
        let event = if !started {
            Some(Event::Started)
        } else if complete && !was_complete {
            Some(Event::Completed)
        } else {
            None
        };
        was_complete = complete;
        let req = AnnounceRequest {
            info_hash: ctx.torrent.info_hash(),
            peer_id: ctx.peer_id,
            port: ctx.port,
            uploaded: s.uploaded,
            downloaded: s.downloaded,
            left: s.total_length.saturating_sub(s.bytes_verified),
            event,
            numwant: Some(50),
            key: None,
        };
        let trackers = addrs(&ctx.relays.lock(), "http://");
        for t in trackers {
            let url = format!("http://{t}/announce");
            match announce(&url, &req, Duration::from_secs(5)) {
                Ok(resp) => {
                    started = true;
                    for peer in resp.peers {
                        let own = peer.port() == ctx.port && peer.ip().is_loopback();
                        if !own && !peer.ip().is_unspecified() && dialed.insert(peer) {
                            ctx.torrent.connect(peer);
                        }
                    }
                }
                Err(e) => tracing::debug!(%url, error = %e, "announce failed"),
            }
        }
        next = Instant::now() + if starving { Duration::from_secs(3) } else { Duration::from_secs(15) };
    }
}
