//! `floodgate agent`: take download tasks from `floodgate-ctl`, download them over BitTorrent
//! from the task's relays (and the peers their trackers name), report progress, then seed.
//!
//! Tasks arrive on the `WatchTasks` stream (replayed on every reconnect), so they are applied
//! idempotently by `dist_id` and `revision`: a higher revision only updates the relay set.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use floodgate_engine::gapfill::SwitchConfig;
use floodgate_engine::hash::PieceHashes;
use floodgate_engine::metainfo::{provisional_info_hash, url_task_id, Metainfo};
use floodgate_engine::peer::FleetKey;
use floodgate_engine::piece_map::Bitfield;
use floodgate_engine::store::{verified_on_disk_against, Store, StoreConfig};
use floodgate_engine::swarm::{AddTorrent, Swarm, SwarmConfig, TorrentHandle};
use floodgate_engine::types::InfoHash;
use floodgate_fetch::HttpUrl;
use floodgate_proto::v1 as pb;
use floodgate_proto::{
    retry_unless_permanent, retry_until_ok, watch_forever, Backoff, Bearer, CtlTarget, WatchConfig,
    FIRST_BACKOFF,
};
use parking_lot::Mutex;
use pb::client_service_client::ClientServiceClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use super::announcer::{Announcer, Schedule, Setup, Trackers};
use super::hash_feed;
use super::provisional_record::ProvisionalRecord;
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
pub(crate) struct Args {
    /// Control plane URL, e.g. http://ctl.example:7400. Repeat it for ctl replicas (on one
    /// PostgreSQL): the agent uses one at a time and moves to the next, in turn, when a call
    /// to it fails or its task stream ends.
    #[arg(long, required = true)]
    pub ctl: Vec<String>,
    /// Extra CA certificates (PEM) trusted for an https:// control plane, besides the system roots.
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// Client certificate (PEM) presented to the control plane (when it runs with
    /// `--tls-client-ca`).
    #[arg(long, requires = "client_key")]
    pub client_cert: Option<PathBuf>,
    /// Private key (PEM) of --client-cert.
    #[arg(long, requires = "client_cert")]
    pub client_key: Option<PathBuf>,
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

/// The ctl replicas given with `--ctl` and the one in use.
struct Ctls {
    targets: Vec<CtlTarget>,
    clients: Vec<Client>,
    current: AtomicUsize,
}

impl Ctls {
    /// Index of the replica in use.
    fn current(&self) -> usize {
        self.current.load(Ordering::Acquire) % self.clients.len()
    }

    /// A client of the replica in use.
    fn client(&self) -> Client {
        self.clients[self.current()].clone()
    }

    /// A call to replica `failed` failed: move to the next one, unless another caller already
    /// moved on from it.
    fn failed(&self, failed: usize) {
        let next = (failed + 1) % self.clients.len();
        if next != failed
            && self.current.compare_exchange(failed, next, Ordering::AcqRel, Ordering::Acquire).is_ok()
        {
            tracing::warn!(from = %self.targets[failed].url, to = %self.targets[next].url, "switching ctl replica");
        }
    }
}

/// One task being downloaded or seeded.
struct Job {
    revision: u64,
    /// The task as last pushed (a provisional job is promoted with it).
    task: pb::Task,
    /// A URL-only task in its provisional swarm, waiting for the `.torrent`.
    provisional: bool,
    /// The relays' name for the task's data (`/tasks/<id>/data`): the info-hash in hex, or
    /// for a provisional job the relays' URL-only task id.
    data_id: String,
    info_hash: InfoHash,
    torrent: TorrentHandle,
    relays: Arc<Mutex<Vec<pb::RelayEndpoint>>>,
    stop: Arc<AtomicBool>,
    files: Vec<PathBuf>,
    /// HTTP gap-filling from the relays (`None` with `--no-http`).
    filler: Option<Arc<GapFiller>>,
    /// What an earlier phase counted (a promoted job's provisional swarm).
    earlier: Earlier,
}

/// What a promoted job's provisional phase counted: reported to ctl (received bytes) and added
/// to the metrics on top of the standard job's own, so no counter goes back when a job changes
/// swarms.
#[derive(Clone, Copy, Debug, Default)]
struct Earlier {
    received: Bytes,
    uploaded: u64,
    bt_hash_failures: u64,
    http_hash_failures: u64,
}

impl Earlier {
    /// `self` plus what a job's torrent and gap-filler counted.
    fn plus(self, s: &floodgate_engine::swarm::TorrentStats, http: &crate::gapfill::GapFillReport) -> Self {
        Earlier {
            received: self.received + Bytes::of(s, http),
            uploaded: self.uploaded + s.uploaded,
            bt_hash_failures: self.bt_hash_failures + s.hash_failures,
            http_hash_failures: self.http_hash_failures + http.hash_failures,
        }
    }
}

/// What the loops share.
struct Agent {
    args: Args,
    ctl: Ctls,
    swarm: Swarm,
    jobs: Mutex<HashMap<String, Job>>,
    /// URL-only tasks waiting for a relay's first hash list (lock after `jobs`).
    waiting: Mutex<HashSet<String>>,
    /// Provisional jobs being moved to the standard swarm (lock after `jobs`).
    promoting: Mutex<HashSet<String>>,
    /// Per distribution, the relays (by [`relay_key`]) whose piece hashes disagreed with
    /// another relay's: not used for it again, in any swarm, by any means (lock after `jobs`).
    excluded: Mutex<HashMap<String, HashSet<String>>>,
    /// The provisional jobs started and not yet promoted, failed or cancelled, on disk so a
    /// restarted agent can clean up after those that ended while it was down.
    record: ProvisionalRecord,
}

/// What a provisional job hands to its standard successor: pieces verified, and against
/// which hashes (only those the `.torrent` confirms are kept, without hashing them again).
struct Carry {
    verified: Bitfield,
    hashes: Vec<Option<[u8; 20]>>,
    /// What the provisional swarm and HTTP counted, reported on top of the new job's.
    earlier: Earlier,
}

/// Runs the agent until interrupted.
pub(crate) fn run(args: Args) -> anyhow::Result<()> {
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
        let targets: Vec<CtlTarget> = args
            .ctl
            .iter()
            .map(|url| CtlTarget {
                ca: args.ca.clone(),
                client_cert: args.client_cert.clone(),
                client_key: args.client_key.clone(),
                ..CtlTarget::new(url.clone(), "")
            })
            .collect();
        let mut clients = Vec::with_capacity(targets.len());
        for (i, target) in targets.iter().enumerate() {
            // The first one is checked now; the others connect when first used.
            let channel =
                if i == 0 { target.connect_or_lazy().await? } else { target.endpoint()?.connect_lazy() };
            clients.push(
                ClientServiceClient::with_interceptor(channel, auth.clone())
                    .max_decoding_message_size(64 << 20),
            );
        }
        let ctl = Ctls { targets, clients, current: AtomicUsize::new(0) };
        let output = args.output.clone();
        let agent = Arc::new(Agent {
            args,
            ctl,
            swarm,
            jobs: Mutex::new(HashMap::new()),
            waiting: Mutex::new(HashSet::new()),
            promoting: Mutex::new(HashSet::new()),
            excluded: Mutex::new(HashMap::new()),
            record: ProvisionalRecord::load(&output),
        });
        metrics::start(&agent).await?;
        agent.register_first().await?;
        tracing::info!(id = %agent.args.id, "registered with ctl");
        tokio::spawn(agent.clone().clean_up_recorded());
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
        let used = self.ctl.current();
        let r = tokio::time::timeout(CALL_TIMEOUT, self.ctl.client().register_client(req)).await;
        let r = r.context("RegisterClient timed out").and_then(|r| r.map_err(anyhow::Error::from));
        if r.is_err() {
            self.ctl.failed(used);
        }
        r.map(|_| ())
    }

    /// The first registration: retried while ctl is not reachable, but a certificate problem
    /// (ctl refuses ours, or we do not trust ctl's) ends the agent with the flag that fixes it.
    /// The TLS handshake can look complete to us before ctl's refusal arrives, so the first
    /// connect does not always see it; the first call does.
    async fn register_first(&self) -> anyhow::Result<()> {
        let backoff = Backoff::new(FIRST_BACKOFF, MAX_BACKOFF);
        // A failed call has already moved on: the replica it went to is the one before.
        let before =
            || &self.ctl.targets[(self.ctl.current() + self.ctl.targets.len() - 1) % self.ctl.targets.len()];
        let permanent = |e: &anyhow::Error| before().classify(&**e).is_permanent();
        retry_unless_permanent("cannot register with ctl", backoff, || self.register(), permanent)
            .await
            .map_err(|e| before().classify(&*e).into())
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
        // Every open after the first follows a stream that ended or could not be opened:
        // the replica it was on is given up for the next one (a no-op with one `--ctl`).
        let mut last: Option<usize> = None;
        let open = || {
            if let Some(used) = last {
                self.ctl.failed(used);
            }
            last = Some(self.ctl.current());
            let mut client = self.ctl.client();
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
                            let relays = self.usable_relays(&task.dist_id, &task.relays);
                            for addr in bt_addrs(&relays) {
                                job.torrent.connect(addr);
                            }
                            if let Some(f) = &job.filler {
                                f.add_sources(relay_sources(&relays, &job.data_id));
                            }
                            *job.relays.lock() = relays;
                        }
                        let promote = job.provisional && task.has_torrent;
                        job.task = pb::Task {
                            has_torrent: job.task.has_torrent || task.has_torrent,
                            ..task.clone()
                        };
                        drop(jobs);
                        if promote {
                            tokio::spawn(self.clone().promote(task.dist_id.clone()));
                        }
                        return;
                    }
                    if self.promoting.lock().contains(&task.dist_id) {
                        return;
                    }
                    let mut waiting = self.waiting.lock();
                    if waiting.contains(&task.dist_id) {
                        if !task.has_torrent {
                            return;
                        }
                        // The .torrent came before any relay's hash list: start normally.
                        waiting.remove(&task.dist_id);
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
            Some(pb::task_event::Event::Failed(f)) => self.fail(&f.dist_id, f.reason).await,
            None => {}
        }
    }

    /// Starts a task: from its `.torrent`, or (URL-only, no `.torrent` yet) in the
    /// distribution's provisional swarm as soon as a relay publishes its first hashes.
    async fn start(self: &Arc<Self>, task: pb::Task) -> anyhow::Result<()> {
        if !task.has_torrent {
            tracing::info!(dist = %task.dist_id, "URL-only distribution: starting from the relays' growing hash lists");
            self.waiting.lock().insert(task.dist_id.clone());
            tokio::spawn(self.clone().start_provisional(task));
            return Ok(());
        }
        self.start_known(task, None).await
    }

    /// Waits for a relay's hash list of a URL-only task (the relays hear of the task when we
    /// do), then joins the provisional swarm. Gives up when the wait is cancelled or replaced.
    async fn start_provisional(self: Arc<Self>, task: pb::Task) {
        let dist = task.dist_id.clone();
        let id = url_task_id(&task.origin_url);
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
        let list = loop {
            if !self.waiting.lock().contains(&dist) {
                return;
            }
            let mut got = None;
            for relay in addrs(&task.relays, "http://") {
                let url = match hash_feed::list_url(&relay.to_string(), &id, "") {
                    Ok(u) => u,
                    Err(e) => {
                        tracing::warn!(%relay, error = %e, "bad relay address");
                        continue;
                    }
                };
                match hash_feed::fetch_list(&mut None, &url).await {
                    Ok(list) => {
                        got = Some(list);
                        break;
                    }
                    Err(e) => tracing::debug!(%relay, error = %e, "no hash list yet"),
                }
            }
            if let Some(list) = got {
                break list;
            }
            backoff.wait().await;
        };
        if let Err(e) = self.join_provisional(task, id, list) {
            let reason = format!("{e:#}");
            tracing::error!(dist = %dist, error = %reason, "cannot start the URL-only task");
            self.report(&dist, pb::TaskState::Failed, Bytes::default(), 0, reason).await;
        }
    }

    /// Adds the provisional torrent (layout and hashes from the relay's list; pieces already
    /// correct on disk kept) and runs it like any task, following the relays' hash lists.
    fn join_provisional(
        self: &Arc<Self>,
        task: pb::Task,
        id: String,
        list: hash_feed::HashList,
    ) -> anyhow::Result<()> {
        let layout = list.layout()?;
        let hashes = list.decoded();
        if hashes.len() != layout.piece_count() as usize {
            anyhow::bail!(
                "the relay's hash list has {} entries for {} pieces",
                hashes.len(),
                layout.piece_count()
            );
        }
        let root = self.args.output.clone();
        let files: Vec<PathBuf> = layout.files().iter().map(|f| root.join(&f.path)).collect();
        // Recorded before any file is created: a restarted agent cleans up after it.
        self.record.add(&task.dist_id, &files);
        let verified = verified_on_disk_against(&layout, &hashes, &root);
        let store = Store::open(layout.clone(), &root, StoreConfig::default())
            .with_context(|| format!("cannot open the data files under {}", root.display()))?;
        let info_hash = provisional_info_hash(&task.dist_id);
        let mut add =
            AddTorrent::provisional(info_hash, layout.clone(), PieceHashes::partial(&hashes), store)
                .with_verified(verified);
        add.session.fleet = Some(FleetKey::for_distribution(&task.dist_id));
        {
            // Still wanted? (cancelled, or replaced by a start from the .torrent meanwhile)
            let jobs = self.jobs.lock();
            let mut waiting = self.waiting.lock();
            if jobs.contains_key(&task.dist_id) || !waiting.remove(&task.dist_id) {
                return Ok(());
            }
        }
        let torrent = self.swarm.add_torrent(add)?;
        tracing::info!(dist = %task.dist_id, task = %id, pieces = layout.piece_count(), hashes_known = torrent.piece_hashes().known_count(), "provisional swarm joined");
        let stop = self.launch(task.clone(), torrent.clone(), id.clone(), files, true, Earlier::default())?;
        for endpoint in self.usable_relays(&task.dist_id, &task.relays) {
            for relay in addrs(std::slice::from_ref(&endpoint), "http://") {
                let (agent, id, torrent, stop, dist, endpoint) = (
                    self.clone(),
                    id.clone(),
                    torrent.clone(),
                    stop.clone(),
                    task.dist_id.clone(),
                    endpoint.clone(),
                );
                tokio::spawn(async move {
                    match hash_feed::follow(relay.to_string(), id, torrent.clone(), stop.clone()).await {
                        Ok(hash_feed::Followed::Complete) => agent.await_torrent(dist, stop).await,
                        Ok(hash_feed::Followed::Stopped) => {}
                        Ok(hash_feed::Followed::Conflict(c)) => {
                            agent.hash_conflict(dist, endpoint, relay, c, &torrent).await
                        }
                        Err(e) => {
                            tracing::warn!(%relay, error = %e, "stopped following the relay's hash list")
                        }
                    }
                });
            }
        }
        Ok(())
    }

    /// `relays` without those excluded for `dist` (their hashes disagreed with another's).
    fn usable_relays(&self, dist: &str, relays: &[pb::RelayEndpoint]) -> Vec<pb::RelayEndpoint> {
        let excluded = self.excluded.lock();
        let Some(out) = excluded.get(dist) else { return relays.to_vec() };
        relays.iter().filter(|r| !out.contains(&relay_key(r))).cloned().collect()
    }

    /// The relay `endpoint` (whose hash list we read at `http`) published a hash for a piece
    /// that disagrees with the one already taken (from another relay of `dist`): it is not
    /// used for `dist` again. Its BitTorrent addresses are banned in the provisional swarm
    /// (`torrent`), its HTTP sources dropped from the gap-filler for good (the standard
    /// swarm's job, after the move, never gets them), it is left out of the dial and tracker
    /// lists, and the conflict is reported to ctl (retried until ctl answers). Pieces
    /// verified so far stay: each matched the hash taken first.
    async fn hash_conflict(
        self: Arc<Self>,
        dist: String,
        endpoint: pb::RelayEndpoint,
        http: SocketAddr,
        c: floodgate_engine::hash::HashConflict,
        torrent: &TorrentHandle,
    ) {
        let key = relay_key(&endpoint);
        if !self.excluded.lock().entry(dist.clone()).or_default().insert(key.clone()) {
            return;
        }
        for addr in bt_addrs(std::slice::from_ref(&endpoint)) {
            torrent.ban_ip(addr.ip());
        }
        let mut dropped = 0;
        let mut served = 0;
        if let Some(job) = self.jobs.lock().get(&dist) {
            job.relays.lock().retain(|r| relay_key(r) != key);
            if let Some(f) = &job.filler {
                for a in addrs(std::slice::from_ref(&endpoint), "http://") {
                    dropped += f.exclude_relay(a, "its piece hashes disagree with another relay's");
                }
                served = f
                    .report()
                    .by_source
                    .iter()
                    .filter(|(url, kind, _)| {
                        *kind == SourceKind::Relay && url.starts_with(&format!("http://{http}/"))
                    })
                    .map(|s| s.2)
                    .sum::<u64>();
            }
        }
        let relay = if endpoint.relay_id.is_empty() { http.to_string() } else { endpoint.relay_id.clone() };
        tracing::error!(dist = %dist, %relay, piece = c.piece, first = %hash_feed::hex(&c.known), relay_hash = %hash_feed::hex(&c.given), http_sources_dropped = dropped, http_bytes_from_relay = served, "hash conflict: this relay is no longer used for the distribution");
        let req = pb::ReportHashConflictRequest {
            client_id: self.args.id.clone(),
            dist_id: dist.clone(),
            relay,
            piece: c.piece,
            hash_seen_first: hash_feed::hex(&c.known),
            hash_from_relay: hash_feed::hex(&c.given),
        };
        let attempt = || {
            let (mut client, req) = (self.ctl.client(), req.clone());
            async move {
                match tokio::time::timeout(CALL_TIMEOUT, client.report_hash_conflict(req)).await {
                    Ok(r) => r.map(|r| r.into_inner()),
                    Err(_) => Err(tonic::Status::deadline_exceeded("ReportHashConflict timed out")),
                }
            }
        };
        let permanent = |e: &tonic::Status| {
            use tonic::Code;
            matches!(
                e.code(),
                Code::InvalidArgument | Code::PermissionDenied | Code::NotFound | Code::Unimplemented
            )
        };
        let backoff = Backoff::new(FIRST_BACKOFF, MAX_BACKOFF);
        match retry_unless_permanent("cannot report a hash conflict to ctl", backoff, attempt, permanent)
            .await
        {
            Ok(r) => tracing::info!(dist = %dist, recorded = r.recorded, "hash conflict reported to ctl"),
            Err(e) => tracing::warn!(dist = %dist, error = %e, "ctl refused the hash conflict report"),
        }
    }

    /// After a restart: asks ctl about every provisional job an earlier run recorded and
    /// deletes the data of those that failed (reporting FAILED, like a live job told so) or
    /// were cancelled or removed; keeps those still active (the task stream resumes them) and
    /// those whose `.torrent` is out (promoted, or promoted on resume). A distribution ctl
    /// cannot be asked about now stays recorded for the next start.
    async fn clean_up_recorded(self: Arc<Self>) {
        for dist in self.record.dists() {
            // Unless the task stream's replay got to it first (`fail` takes the entry).
            let ours = || self.record.contains(&dist) && !self.jobs.lock().contains_key(&dist);
            let req = pb::DistributionMetaRequest { dist_id: dist.clone() };
            let got = tokio::time::timeout(CALL_TIMEOUT, self.ctl.client().get_distribution_meta(req)).await;
            match got {
                Ok(Ok(meta)) => {
                    let meta = meta.into_inner();
                    match meta.state.as_str() {
                        "failed" => {
                            let reason = if meta.failure_reason.is_empty() {
                                "the distribution failed".to_string()
                            } else {
                                meta.failure_reason
                            };
                            if ours() {
                                self.fail(&dist, reason).await;
                            }
                        }
                        "cancelled" => {
                            if ours() {
                                self.cancel(&dist);
                            }
                        }
                        "active" if meta.torrent.is_empty() => {
                            tracing::info!(dist, "provisional job of an earlier run still active: resumes")
                        }
                        _ => {
                            // Its .torrent is out: the files are (or will be) the standard download's.
                            self.record.take(&dist);
                        }
                    }
                }
                Ok(Err(e)) if e.code() == tonic::Code::NotFound => {
                    tracing::info!(dist, "the distribution of a provisional job of an earlier run is gone");
                    self.cancel(&dist);
                }
                Ok(Err(e)) => {
                    tracing::warn!(dist, error = %e, "cannot ask ctl about a provisional job of an earlier run")
                }
                Err(_) => {
                    tracing::warn!(dist, "asking ctl about a provisional job of an earlier run timed out")
                }
            }
        }
    }

    /// Every hash is in: waits until ctl has the `.torrent` (the relay publishes it right
    /// after its pull) and moves the job to the standard swarm.
    async fn await_torrent(self: Arc<Self>, dist: String, stop: Arc<AtomicBool>) {
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
        while !stop.load(Ordering::Relaxed) {
            let req = pb::DistributionMetaRequest { dist_id: dist.clone() };
            let got = tokio::time::timeout(CALL_TIMEOUT, self.ctl.client().get_distribution_meta(req)).await;
            if let Ok(Ok(meta)) = got {
                if !meta.into_inner().torrent.is_empty() {
                    self.promote(dist).await;
                    return;
                }
            }
            backoff.wait().await;
        }
    }

    /// Moves a provisional job to the standard swarm of the published `.torrent`: the pieces
    /// verified against hashes the `.torrent` confirms are kept as they are (not downloaded or
    /// hashed again), the provisional torrent is dropped.
    async fn promote(self: Arc<Self>, dist: String) {
        let job = {
            let mut jobs = self.jobs.lock();
            if !jobs.get(&dist).is_some_and(|j| j.provisional) {
                return;
            }
            self.promoting.lock().insert(dist.clone());
            jobs.remove(&dist)
        };
        let Some(job) = job else { return };
        job.stop.store(true, Ordering::Relaxed);
        let http = job.filler.as_ref().map(|f| f.report()).unwrap_or_default();
        let carry = Carry {
            verified: job.torrent.piece_map().verified().snapshot(),
            hashes: job.torrent.piece_hashes().to_options(),
            earlier: job.earlier.plus(&job.torrent.stats(), &http),
        };
        if let Err(e) = job.torrent.sync() {
            tracing::warn!(dist = %dist, error = %e, "cannot flush the provisional download");
        }
        self.swarm.remove_torrent(&job.info_hash);
        drop(job.filler);
        let task = pb::Task { has_torrent: true, ..job.task };
        tracing::info!(dist = %dist, kept = carry.verified.count_ones(), "moving to the standard swarm");
        let started = self.start_known(task, Some(carry)).await;
        if started.is_ok() {
            // The files are the standard download's now.
            self.record.take(&dist);
        }
        self.promoting.lock().remove(&dist);
        if let Err(e) = started {
            let reason = format!("{e:#}");
            tracing::error!(dist = %dist, error = %reason, "cannot move to the standard swarm");
            self.report(&dist, pb::TaskState::Failed, Bytes::default(), 0, reason).await;
        }
    }

    /// Fetches the task's .torrent, adds it to the swarm (with what `carry` verified already,
    /// else what is correct on disk), dials the relays and starts the progress reporter and
    /// the tracker announcer.
    async fn start_known(self: &Arc<Self>, task: pb::Task, carry: Option<Carry>) -> anyhow::Result<()> {
        let earlier = carry.as_ref().map_or_else(Earlier::default, |c| c.earlier);
        let req = pb::DistributionMetaRequest { dist_id: task.dist_id.clone() };
        let meta = tokio::time::timeout(CALL_TIMEOUT, self.ctl.client().get_distribution_meta(req))
            .await
            .context("GetDistributionMeta timed out")??
            .into_inner();
        let meta = Metainfo::from_bytes_lenient(&meta.torrent).context("ctl sent an invalid .torrent")?;
        let root = self.args.output.clone();
        let verified = match carry.filter(|c| c.verified.len() == meta.piece_count()) {
            Some(c) => confirmed(&meta, &c),
            None => floodgate_engine::store::verified_on_disk(&meta, &root),
        };
        let store = Store::open(meta.layout(), &root, StoreConfig::default())
            .with_context(|| format!("cannot open the data files under {}", root.display()))?;
        let mut add = AddTorrent::new(&meta, store).with_verified(verified);
        // The distribution's agents are one fleet: no tit-for-tat among them.
        add.session.fleet = Some(FleetKey::for_distribution(&task.dist_id));
        let torrent = self.swarm.add_torrent(add)?;
        let files = meta.layout().files().iter().map(|f| root.join(&f.path)).collect();
        tracing::info!(dist = %task.dist_id, info_hash = %meta.info_hash(), pieces = meta.piece_count(), "task started");
        self.launch(task, torrent, meta.info_hash().to_hex(), files, false, earlier)?;
        Ok(())
    }

    /// Runs a torrent for a task: dials the relays, starts HTTP gap-filling from them (their
    /// `/tasks/<data_id>/data`), the tracker announcer and the progress reporter. Returns the
    /// job's stop flag.
    fn launch(
        self: &Arc<Self>,
        task: pb::Task,
        torrent: TorrentHandle,
        data_id: String,
        files: Vec<PathBuf>,
        provisional: bool,
        earlier: Earlier,
    ) -> anyhow::Result<Arc<AtomicBool>> {
        let usable = self.usable_relays(&task.dist_id, &task.relays);
        let relays = Arc::new(Mutex::new(usable.clone()));
        let stop = Arc::new(AtomicBool::new(false));
        for addr in bt_addrs(&usable) {
            torrent.connect(addr);
        }
        let filler = if self.args.http.no_http {
            None
        } else {
            let switch = self.args.http.switch(dist_switch(task.config.as_ref()))?;
            let config = GapFillConfig { switch, ..GapFillConfig::default() };
            let mut sources = relay_sources(&usable, &data_id);
            for url in &self.args.http.http_sources {
                sources.push((HttpUrl::parse(url).context("bad --http-source")?, SourceKind::WebSeed));
            }
            let config = GapFillConfig { tls: super::get::tls_for(&sources)?, ..config };
            let handle = tokio::runtime::Handle::current();
            Some(Arc::new(GapFiller::start(&handle, torrent.clone(), sources, config)))
        };
        let job = Job {
            revision: task.revision,
            task: task.clone(),
            provisional,
            data_id,
            info_hash: torrent.info_hash(),
            torrent: torrent.clone(),
            relays: relays.clone(),
            stop: stop.clone(),
            files,
            filler: filler.clone(),
            earlier,
        };
        self.jobs.lock().insert(task.dist_id.clone(), job);
        let announce = Setup {
            torrent: torrent.clone(),
            peer_id: self.swarm.peer_id(),
            listen: self.swarm.listen_addr().unwrap_or(self.args.listen),
            schedule: Schedule::RELAYS,
            trackers: relay_trackers(relays),
            stop: stop.clone(),
        };
        Announcer::start(announce).context("cannot start the announce thread")?.detach();
        let every = match task.config.as_ref().map_or(0, |c| c.check_interval_ms) {
            0 => REPORT_EVERY,
            ms => Duration::from_millis(u64::from(ms))
                .clamp(Duration::from_millis(500), Duration::from_secs(30)),
        };
        tokio::spawn(self.clone().drive(
            task.dist_id,
            torrent,
            stop.clone(),
            every,
            filler,
            earlier.received,
            provisional,
        ));
        Ok(stop)
    }

    /// Reports progress every `every` until the download ends, then DONE or FAILED. A
    /// provisional job never reports DONE: complete, it keeps reporting RUNNING until it is
    /// promoted to the published `.torrent` (whose job reports DONE) or its distribution
    /// fails; the relays publish that `.torrent` only after the whole file passed its checks.
    #[allow(clippy::too_many_arguments)]
    async fn drive(
        self: Arc<Self>,
        dist: String,
        torrent: TorrentHandle,
        stop: Arc<AtomicBool>,
        every: Duration,
        filler: Option<Arc<GapFiller>>,
        base: Bytes,
        provisional: bool,
    ) {
        let mut waiting_for_torrent = false;
        let http = || filler.as_ref().map(|f| f.report()).unwrap_or_default();
        let started = Instant::now();
        let mut last = (Instant::now(), torrent.stats().bytes_verified);
        // The relays hear of the task when we do and may refuse our first dial while they set
        // it up: before the first byte, dial again soon (50 ms, doubling).
        let mut redial_wait = Duration::from_millis(50);
        let mut redial = Instant::now() + redial_wait;
        // Connected peers that give nothing (e.g. agents that dialed each other before the
        // relay had the task) count as starving too.
        let mut progress = (Instant::now(), torrent.stats().bytes_verified);
        // Logged once, when a job that started empty verifies its first piece (benchmarks
        // read its timestamp; polled finely until then).
        let mut first_piece_pending = progress.1 == 0;
        loop {
            let tick =
                if first_piece_pending { Duration::from_millis(20) } else { Duration::from_millis(250) };
            tokio::time::sleep(every.min(tick)).await;
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let s = torrent.stats();
            if first_piece_pending && s.bytes_verified > 0 {
                first_piece_pending = false;
                tracing::info!(dist = %dist, after_ms = started.elapsed().as_millis() as u64, "first piece verified");
            }
            if let Some(e) = &s.store_error {
                self.report(
                    &dist,
                    pb::TaskState::Failed,
                    base + Bytes::of(&s, &http()),
                    0,
                    format!("cannot write: {e}"),
                )
                .await;
                return;
            }
            if provisional && torrent.is_complete() {
                if !waiting_for_torrent {
                    waiting_for_torrent = true;
                    if let Err(e) = torrent.sync() {
                        tracing::warn!(dist = %dist, error = %e, "cannot flush the provisional download");
                    }
                    tracing::info!(dist = %dist, "every piece verified; waiting for the relays' checked .torrent");
                }
            } else if torrent.is_complete() {
                if let Err(e) = torrent.sync() {
                    let reason = format!("cannot flush the download: {e}");
                    self.report(&dist, pb::TaskState::Failed, base + Bytes::of(&s, &http()), 0, reason).await;
                    return;
                }
                let secs = started.elapsed().as_secs_f64();
                tracing::info!(dist = %dist, bytes = s.total_length, seconds = secs, peers = s.peers_seen, "download complete; seeding");
                let speed = (s.total_length as f64 / secs.max(1e-3)) as u64;
                self.report(&dist, pb::TaskState::Done, base + Bytes::of(&s, &http()), speed, String::new())
                    .await;
                return;
            }
            if s.bytes_verified != progress.1 {
                progress = (Instant::now(), s.bytes_verified);
            }
            // Before the first byte the relays may still be setting the task up (they hear of
            // it at the same time as we do): peers that give nothing for 300 ms count as a
            // stall; later 3 s.
            let patience =
                if s.bytes_verified == 0 { Duration::from_millis(300) } else { Duration::from_secs(3) };
            let stalled = progress.0.elapsed() >= patience;
            if (s.peers == 0 || stalled) && Instant::now() >= redial {
                if let Some(job) = self.jobs.lock().get(&dist) {
                    for addr in bt_addrs(&job.relays.lock()) {
                        torrent.connect(addr);
                    }
                }
                redial_wait = if s.bytes_verified == 0 {
                    (redial_wait * 2).min(Duration::from_secs(1))
                } else {
                    Duration::from_secs(5)
                };
                redial = Instant::now() + redial_wait;
            }
            if last.0.elapsed() >= every {
                let speed =
                    (s.bytes_verified.saturating_sub(last.1) as f64 / last.0.elapsed().as_secs_f64()) as u64;
                last = (Instant::now(), s.bytes_verified);
                let failed = self
                    .report(
                        &dist,
                        pb::TaskState::Running,
                        base + Bytes::of(&s, &http()),
                        speed,
                        String::new(),
                    )
                    .await;
                if let Some(reason) = failed {
                    self.fail(&dist, reason).await;
                    return;
                }
            }
        }
    }

    /// Sends one progress report; a `cancelled` answer cancels the task. Returns ctl's reason
    /// when it failed the distribution (the caller stops the job with [`Agent::fail`]).
    async fn report(
        &self,
        dist: &str,
        state: pb::TaskState,
        bytes: Bytes,
        speed_bps: u64,
        reason: String,
    ) -> Option<String> {
        let req = pb::ProgressReport {
            client_id: self.args.id.clone(),
            dist_id: dist.to_string(),
            bytes_bt: bytes.bt,
            bytes_http_relay: bytes.http_relay,
            bytes_http_origin: bytes.http_origin,
            speed_bps,
            state: state as i32,
            reason,
            instance: floodgate_proto::process_instance(),
            ..Default::default()
        };
        // The final report matters: retry it a few times.
        let attempts = if state == pb::TaskState::Running { 1 } else { 5 };
        for attempt in 0..attempts {
            let used = self.ctl.current();
            match tokio::time::timeout(CALL_TIMEOUT, self.ctl.client().report_progress(req.clone())).await {
                Ok(Ok(resp)) => {
                    let resp = resp.into_inner();
                    if resp.cancelled {
                        self.cancel(dist);
                    }
                    return (!resp.failed_reason.is_empty()).then_some(resp.failed_reason);
                }
                Ok(Err(e)) => {
                    tracing::warn!(dist, error = %e, "progress report failed");
                    if e.code() == tonic::Code::Unavailable {
                        self.ctl.failed(used);
                    }
                }
                Err(_) => {
                    tracing::warn!(dist, "progress report timed out");
                    self.ctl.failed(used);
                }
            }
            tokio::time::sleep(Duration::from_millis(500 << attempt)).await;
        }
        None
    }

    /// ctl failed the distribution (e.g. the file did not match its SHA-256): stops the job,
    /// deletes its data unless it is a finished standard download (a provisional one is never
    /// kept), and reports FAILED with the reason. Without a job (already stopped, or this
    /// process started after the failure) it only reports FAILED, so ctl closes the assignment.
    async fn fail(&self, dist: &str, reason: String) {
        self.waiting.lock().remove(dist);
        let job = self.jobs.lock().remove(dist);
        let recorded = self.record.take(dist);
        let mut bytes = Bytes::default();
        if let Some(job) = job {
            job.stop.store(true, Ordering::Relaxed);
            let http = job.filler.as_ref().map(|f| f.report()).unwrap_or_default();
            bytes = job.earlier.received + Bytes::of(&job.torrent.stats(), &http);
            let keep = !job.provisional && job.torrent.is_complete();
            self.swarm.remove_torrent(&job.info_hash);
            if !keep {
                delete(&job.files);
            }
            tracing::error!(dist, %reason, deleted = !keep, "distribution failed");
        } else if let Some(files) = recorded {
            // A provisional job of an earlier run of this agent (it stopped before hearing).
            delete(&files);
            tracing::error!(dist, %reason, deleted = true, "distribution failed; deleted the provisional data of an earlier run");
        } else {
            tracing::warn!(dist, %reason, "distribution failed");
        }
        self.report(dist, pb::TaskState::Failed, bytes, 0, reason).await;
    }

    /// Stops a task; drops its data unless it was complete. Without a job, drops the
    /// provisional data an earlier run of this agent recorded for it.
    fn cancel(&self, dist: &str) {
        self.waiting.lock().remove(dist);
        let recorded = self.record.take(dist);
        let Some(job) = self.jobs.lock().remove(dist) else {
            if let Some(files) = recorded {
                delete(&files);
                tracing::info!(dist, "task cancelled; deleted the provisional data of an earlier run");
            }
            return;
        };
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

/// Deletes a download's files (a failure is logged at debug level: most often already gone).
fn delete(files: &[PathBuf]) {
    for f in files {
        if let Err(e) = std::fs::remove_file(f) {
            tracing::debug!(file = %f.display(), error = %e, "cannot delete the download");
        }
    }
}

/// Bytes received by source, as reported to ctl.
#[derive(Clone, Copy, Debug, Default)]
struct Bytes {
    bt: u64,
    http_relay: u64,
    http_origin: u64,
}

impl std::ops::Add for Bytes {
    type Output = Bytes;
    fn add(self, o: Bytes) -> Bytes {
        Bytes {
            bt: self.bt + o.bt,
            http_relay: self.http_relay + o.http_relay,
            http_origin: self.http_origin + o.http_origin,
        }
    }
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

/// The pieces `carry` verified whose hashes the `.torrent` confirms.
fn confirmed(meta: &Metainfo, carry: &Carry) -> Bitfield {
    let mut bits = Bitfield::new(meta.piece_count());
    for p in carry.verified.view().iter_ones() {
        if carry.hashes.get(p.get()).copied().flatten() == meta.piece_hashes().get(p.get()).copied() {
            bits.set(p);
        }
    }
    bits
}

/// What identifies a relay among a task's: its id, or (none given) its addresses.
fn relay_key(r: &pb::RelayEndpoint) -> String {
    if r.relay_id.is_empty() {
        r.addresses.join(" ")
    } else {
        r.relay_id.clone()
    }
}

/// The relays' HTTP Range endpoints of a task (`http://RELAY/tasks/<data_id>/data`).
fn relay_sources(relays: &[pb::RelayEndpoint], data_id: &str) -> Vec<(HttpUrl, SourceKind)> {
    addrs(relays, "http://")
        .into_iter()
        .filter_map(|a| HttpUrl::parse(&format!("http://{a}/tasks/{data_id}/data")).ok())
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

/// Every relay's tracker (`http://RELAY/announce`), each its own tier, read from `relays`
/// whenever the announcer looks (a task update changes the list).
fn relay_trackers(relays: Arc<Mutex<Vec<pb::RelayEndpoint>>>) -> Trackers {
    Box::new(move || {
        addrs(&relays.lock(), "http://").into_iter().map(|a| vec![format!("http://{a}/announce")]).collect()
    })
}
