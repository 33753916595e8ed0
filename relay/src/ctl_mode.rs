//! Ctl mode: the relay takes its tasks from `floodgate-ctl`.
//!
//! It registers (advertising `bt://` and `http://` addresses), heartbeats with per-distribution
//! counters, watches its task stream and runs each assigned distribution exactly like a
//! standalone task (pull from the origin, verify, seed while pulling, serve HTTP Range and the
//! tracker), and stops a distribution when ctl cancels it. Lost connections are retried with
//! backoff; streams replay open tasks, so events are applied idempotently by `dist_id`.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use floodgate_engine::swarm::{Swarm, SwarmConfig};
use floodgate_engine::types::InfoHash;
use floodgate_proto::v1 as pb;
use floodgate_proto::{
    retry_unless_permanent, retry_until_ok, watch_forever, Backoff, Bearer, CtlTarget, WatchConfig,
    FIRST_BACKOFF,
};
use parking_lot::Mutex;
use pb::lease_service_client::LeaseServiceClient;
use pb::relay_service_client::RelayServiceClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::cli::Cli;
use crate::digest::{self, DigestError};
use crate::http;
use crate::lease::{Keeper, LeaseClient, Signals, Want};
use crate::ledger::{Ledger, Totals};
use crate::origin::{self, PullConfig, Quota};
use crate::setup::{announce_self, known_task, seed_url_only, url_only_task};
use crate::task::Task;

/// Time limit of one unary call to ctl.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait between reconnect attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(15);

type Client = RelayServiceClient<InterceptedService<Channel, Bearer>>;

/// One distribution this relay runs.
struct Running {
    task: Arc<Task>,
    info_hash: Option<InfoHash>,
    /// The lease keeper of its pull.
    lease: Arc<Signals>,
    /// The pull's origin budget (and its latency average).
    quota: Arc<Quota>,
    /// What earlier lives of this counting instance counted for the distribution
    /// (`ledger.rs`); reported totals are these plus the task's counters.
    base: Totals,
    /// The origin bytes reported at the previous heartbeat, for this distribution's rate.
    last_origin: u64,
}

impl Running {
    /// The distribution's totals over the instance's lives.
    fn totals(&self) -> Totals {
        Totals {
            origin_bytes: self.base.origin_bytes + self.task.counters.origin_bytes.load(Ordering::Relaxed),
            served: self.base.served
                + self.task.counters.http_bytes.load(Ordering::Relaxed)
                + self.task.bt_stats().0,
        }
    }
}

/// The time and origin retries at the last heartbeat, for rates and deltas.
#[derive(Clone, Copy)]
struct LastBeat {
    at: std::time::Instant,
    origin_retries: u64,
}

/// What the loops share.
struct Relay {
    cli: Cli,
    id: String,
    client: Client,
    leases: LeaseClient,
    swarm: Arc<Swarm>,
    server: Arc<http::Server>,
    running: Mutex<HashMap<String, Running>>,
    /// Wakes the heartbeat loop for an immediate heartbeat (a pull ended).
    beat_now: tokio::sync::Notify,
    /// Totals at the previous heartbeat.
    last_beat: Mutex<LastBeat>,
    /// The counters on disk and the instance they are reported under.
    ledger: Ledger,
    /// Whether a heartbeat got the totals of the distributions in the ledger that do not run
    /// in this process (a pull the previous process was killed in that ctl did not assign
    /// again) through to ctl.
    idle_reported: std::sync::atomic::AtomicBool,
}

/// Runs the relay in ctl mode until interrupted.
pub(crate) fn run(cli: Cli, ctl: String) -> anyhow::Result<()> {
    let token = cli.token.clone().context("--token (or FLOODGATE_TOKEN) is required with --ctl")?;
    let auth = Bearer::new(&token).context("the token is not valid ASCII")?;
    let id = cli.id.clone().unwrap_or_else(|| format!("relay-{}", cli.listen_http).replace([':', '.'], "-"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("fg-relay")
        .build()
        .context("cannot start the async runtime")?;
    let swarm = Arc::new(
        Swarm::start(SwarmConfig { listen: Some(cli.listen_bt), ..SwarmConfig::default() })
            .with_context(|| format!("cannot listen for BitTorrent on {}", cli.listen_bt))?,
    );
    std::fs::create_dir_all(&cli.data_dir)
        .with_context(|| format!("cannot create {}", cli.data_dir.display()))?;
    let ledger = Ledger::open(&cli.data_dir, &id, floodgate_proto::process_instance());
    rt.block_on(async move {
        let target = CtlTarget {
            ca: cli.ctl_ca.clone(),
            client_cert: cli.ctl_client_cert.clone(),
            client_key: cli.ctl_client_key.clone(),
            ..CtlTarget::new(ctl.clone(), "ctl-")
        };
        let channel = target.connect_or_lazy().await?;
        let client = RelayServiceClient::with_interceptor(channel.clone(), auth.clone())
            .max_decoding_message_size(64 << 20);
        let leases = LeaseServiceClient::with_interceptor(channel, auth);
        let listener = http::bind(cli.listen_http)
            .await
            .with_context(|| format!("cannot listen for HTTP on {}", cli.listen_http))?;
        let server = Arc::new(http::Server::new(Vec::new(), cli.http.config()));
        tokio::spawn(http::serve(listener, server.clone()));
        let bt = swarm.listen_addr().unwrap_or(cli.listen_bt);
        tokio::spawn(announce_self(server.clone(), swarm.peer_id(), bt));
        let relay = Arc::new(Relay {
            cli,
            id,
            client,
            leases,
            swarm,
            server,
            running: Mutex::new(HashMap::new()),
            beat_now: tokio::sync::Notify::new(),
            last_beat: Mutex::new(LastBeat { at: std::time::Instant::now(), origin_retries: 0 }),
            ledger,
            idle_reported: std::sync::atomic::AtomicBool::new(false),
        });
        let interval = relay.register_first(&target).await?;
        tracing::info!(id = %relay.id, %ctl, "registered with ctl");
        tokio::spawn(relay.clone().heartbeat_loop(interval));
        tokio::spawn(relay.clone().watch_loop());
        tokio::signal::ctrl_c().await.context("waiting for a signal")?;
        tracing::info!("shutting down");
        for r in relay.running.lock().values() {
            r.task.sync();
        }
        Ok(())
    })
}

impl Relay {
    /// Registers once; returns the heartbeat interval.
    async fn register(&self) -> anyhow::Result<Duration> {
        let bt = self.swarm.listen_addr().unwrap_or(self.cli.listen_bt);
        let req = pb::RegisterRelayRequest {
            id: self.id.clone(),
            addresses: vec![format!("bt://{bt}"), format!("http://{}", self.cli.listen_http)],
            zone: self.cli.zone.clone().unwrap_or_default(),
            capacity_bps: 0,
        };
        let resp = tokio::time::timeout(CALL_TIMEOUT, self.client.clone().register_relay(req))
            .await
            .context("RegisterRelay timed out")??;
        let ms = resp.into_inner().heartbeat_interval_ms;
        Ok(Duration::from_millis(u64::from(ms)).clamp(Duration::from_millis(500), Duration::from_secs(60)))
    }

    /// The first registration: retried while ctl is not reachable, but a certificate problem
    /// (ctl refuses ours, or we do not trust ctl's) ends the relay with the flag that fixes it
    /// (the first connect does not always see ctl's refusal; the first call does).
    async fn register_first(&self, target: &CtlTarget) -> anyhow::Result<Duration> {
        let backoff = Backoff::new(FIRST_BACKOFF, MAX_BACKOFF);
        let permanent = |e: &anyhow::Error| target.classify(&**e).is_permanent();
        retry_unless_permanent("cannot register with ctl", backoff, || self.register(), permanent)
            .await
            .map_err(|e| target.classify(&*e).into())
    }

    /// Registers, retrying with backoff until ctl answers.
    async fn register_until_ok(&self) -> Duration {
        let backoff = Backoff::new(FIRST_BACKOFF, MAX_BACKOFF);
        retry_until_ok("cannot register with ctl", backoff, || self.register()).await
    }

    /// Heartbeats at half the asked interval; re-registers when ctl forgot this relay.
    async fn heartbeat_loop(self: Arc<Self>, mut interval: Duration) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(interval / 2) => {}
                () = self.beat_now.notified() => {}
            }
            let (req, with_idle) = self.heartbeat();
            match tokio::time::timeout(CALL_TIMEOUT, self.client.clone().relay_heartbeat(req)).await {
                Ok(Ok(_)) => {
                    if with_idle {
                        self.idle_reported.store(true, Ordering::Relaxed);
                    }
                }
                Ok(Err(s)) if s.code() == tonic::Code::NotFound => {
                    tracing::warn!("ctl does not know this relay; registering again");
                    interval = self.register_until_ok().await;
                }
                Ok(Err(s)) => tracing::warn!(error = %s, "heartbeat failed"),
                Err(_) => tracing::warn!("heartbeat timed out"),
            }
        }
    }

    /// The heartbeat with every distribution's counters (and its origin pull rate), the
    /// relay's whole origin pull rate and errors since the last one, the origin's response
    /// latency, and the load (peers / max peers). The totals are written to the ledger first,
    /// so that ctl never holds more than the file. Until one heartbeat got through, it also
    /// carries the ledger's totals of distributions not running here (returned `true` then).
    fn heartbeat(&self) -> (pb::RelayHeartbeatRequest, bool) {
        let mut running = self.running.lock();
        let (mut origin_retries, mut peers) = (0, 0);
        let mut latency: Option<Duration> = None;
        for r in running.values() {
            origin_retries += r.task.counters.origin_retries.load(Ordering::Relaxed);
            peers += r.task.bt_stats().1;
            if r.task.state() == crate::task::TaskState::Pulling {
                latency = latency.max(r.quota.latency());
            }
        }
        let now = std::time::Instant::now();
        let last = std::mem::replace(&mut *self.last_beat.lock(), LastBeat { at: now, origin_retries });
        let secs = now.duration_since(last.at).as_secs_f64().max(0.001);
        let (mut total_served, mut origin_rate_bps) = (0, 0);
        let mut recorded = Vec::with_capacity(running.len());
        let mut tasks: Vec<pb::RelayTaskStatus> = running
            .iter_mut()
            .map(|(dist, r)| {
                let totals = r.totals();
                let rate = (totals.origin_bytes.saturating_sub(r.last_origin) as f64 / secs) as u64;
                r.last_origin = totals.origin_bytes;
                origin_rate_bps += rate;
                total_served += totals.served;
                recorded.push((dist.clone(), totals));
                pb::RelayTaskStatus {
                    dist_id: dist.clone(),
                    origin_bytes: totals.origin_bytes,
                    bytes_served: totals.served,
                    size: r.task.layout.total_length(),
                    complete: r.task.is_complete(),
                    origin_rate_bps: Some(rate),
                }
            })
            .collect();
        self.ledger.record(&recorded, &|d| running.contains_key(d));
        let with_idle = !self.idle_reported.load(Ordering::Relaxed);
        if with_idle {
            for (dist, t) in self.ledger.all() {
                if !running.contains_key(&dist) {
                    tasks.push(pb::RelayTaskStatus {
                        dist_id: dist,
                        origin_bytes: t.origin_bytes,
                        bytes_served: t.served,
                        size: 0,
                        complete: false,
                        origin_rate_bps: Some(0),
                    });
                }
            }
        }
        let req = pb::RelayHeartbeatRequest {
            id: self.id.clone(),
            load: (peers as f64 / self.cli.max_peers.max(1) as f64).min(1.0),
            origin_rate_bps,
            origin_latency_ms: latency.map_or(0.0, |l| l.as_secs_f64() * 1000.0),
            origin_errors: origin_retries.saturating_sub(last.origin_retries),
            bytes_served: total_served,
            tasks,
            instance: self.ledger.instance(),
        };
        (req, with_idle)
    }

    /// Keeps `dist`'s totals in the ledger while it runs here: before each pulled piece is
    /// stored (`PullConfig::before_import`: every piece on disk is counted) and every 100 ms
    /// (bytes of pieces still coming in, and bytes served), so a kill -9 loses less than a
    /// piece of pulled bytes.
    async fn keep_ledger(self: Arc<Self>, dist: String, task: Arc<Task>) {
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if !self.record(&dist, &task) {
                return;
            }
        }
    }

    /// Writes `dist`'s totals to the ledger; false once it no longer runs this `task`.
    fn record(&self, dist: &str, task: &Arc<Task>) -> bool {
        let running = self.running.lock();
        let Some(r) = running.get(dist).filter(|r| Arc::ptr_eq(&r.task, task)) else { return false };
        self.ledger.record(&[(dist.to_string(), r.totals())], &|d| running.contains_key(d));
        true
    }

    /// Watches the task stream forever, reconnecting with backoff (registering again when ctl
    /// forgot this relay).
    async fn watch_loop(self: Arc<Self>) {
        let config =
            WatchConfig { call_timeout: CALL_TIMEOUT, backoff: Backoff::new(FIRST_BACKOFF, MAX_BACKOFF) };
        let open = || {
            let mut client = self.client.clone();
            let req = pb::WatchRelayTasksRequest { relay_id: self.id.clone() };
            async move { client.watch_relay_tasks(req).await }
        };
        watch_forever(config, open, |ev| self.apply(ev), || self.register_until_ok()).await;
    }

    /// Applies one event idempotently.
    async fn apply(self: &Arc<Self>, ev: pb::RelayTaskEvent) {
        match ev.event {
            Some(pb::relay_task_event::Event::Assign(t)) => {
                if self.running.lock().contains_key(&t.dist_id) {
                    return;
                }
                let dist = t.dist_id.clone();
                if let Err(e) = self.start(t).await {
                    tracing::error!(dist = %dist, error = format!("{e:#}"), "cannot start the distribution");
                }
            }
            Some(pb::relay_task_event::Event::CancelDistId(dist)) => self.cancel(&dist),
            Some(pb::relay_task_event::Event::RenewLeases(_)) => {
                tracing::info!("ctl lowered origin limits; renewing leases now");
                for r in self.running.lock().values() {
                    r.lease.renew.notify_one();
                }
            }
            None => {}
        }
    }

    /// Starts one distribution: a hash-known task when ctl has its .torrent, else URL-only.
    async fn start(self: &Arc<Self>, t: pb::RelayTask) -> anyhow::Result<()> {
        if t.dist_id.is_empty() || !t.dist_id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
        {
            anyhow::bail!("bad dist id {:?}", t.dist_id);
        }
        let url = origin::HttpUrl::parse(&t.origin_url)?;
        let sha256 = floodgate_proto::Sha256Digest::parse_optional(&t.sha256)
            .with_context(|| format!("ctl sent a bad sha256 {:?}", t.sha256))?;
        let mut mirrors = Vec::new();
        for m in &t.mirror_urls {
            match origin::HttpUrl::parse(m) {
                Ok(_) => mirrors.push(m.clone()),
                Err(e) => tracing::warn!(dist = %t.dist_id, error = %e, "ignoring a bad mirror URL from ctl"),
            }
        }
        let https = url.https || mirrors.iter().any(|m| origin::HttpUrl::parse(m).is_ok_and(|u| u.https));
        let tls = if https { Some(origin::client_config(self.cli.origin_ca.as_deref())?) } else { None };
        // Origin use is what ctl's lease grants: nothing until the first grant.
        let quota = Arc::new(Quota::paused());
        let mut config = PullConfig {
            conns: usize::from(self.cli.origin_conns),
            rate: self.cli.origin_rate,
            io_timeout: Duration::from_secs(self.cli.origin_timeout.max(1)),
            tls,
            quota: Some(quota.clone()),
            ..PullConfig::default()
        };
        let task = if t.has_torrent {
            let req = pb::DistributionMetaRequest { dist_id: t.dist_id.clone() };
            let meta = tokio::time::timeout(CALL_TIMEOUT, self.client.clone().get_distribution_meta(req))
                .await
                .context("GetDistributionMeta timed out")??
                .into_inner();
            let path = self.cli.data_dir.join(format!("{}.torrent", t.dist_id));
            std::fs::write(&path, &meta.torrent)
                .with_context(|| format!("cannot write {}", path.display()))?;
            self.adopt_url_only_data(&t.origin_url, &meta.torrent);
            Arc::new(
                known_task(&self.cli.task_options(), &self.swarm, t.origin_url.clone(), &path)?
                    .with_mirrors(&mirrors),
            )
        } else {
            let len = origin::origin_length(&url, &config)
                .await
                .context("cannot learn the origin file's length")?;
            Arc::new(
                url_only_task(
                    &self.cli.task_options(),
                    &self.swarm,
                    t.origin_url.clone(),
                    &url,
                    len,
                    Some(&t.dist_id),
                )?
                .with_mirrors(&mirrors),
            )
        };
        let info_hash = task.torrent().map(|h| h.info_hash());
        self.server.add_task(task.clone());
        let signals = Arc::new(Signals::default());
        let base = self.ledger.base(&t.dist_id);
        self.running.lock().insert(
            t.dist_id.clone(),
            Running {
                task: task.clone(),
                info_hash,
                lease: signals.clone(),
                quota: quota.clone(),
                base,
                last_origin: base.origin_bytes,
            },
        );
        tokio::spawn(self.clone().keep_ledger(t.dist_id.clone(), task.clone()));
        let (weak, hook_dist, hook_task) = (Arc::downgrade(self), t.dist_id.clone(), task.clone());
        config.before_import = Some(origin::ImportHook(Arc::new(move || {
            if let Some(relay) = weak.upgrade() {
                relay.record(&hook_dist, &hook_task);
            }
        })));
        let keeper = Keeper {
            client: self.leases.clone(),
            relay_id: self.id.clone(),
            origin: t.origin_url.clone(),
            mirrors,
            quota,
            want: Want {
                conns: i64::from(self.cli.origin_conns),
                rate_bps: i64::try_from(self.cli.origin_rate).unwrap_or(i64::MAX),
            },
            task: task.clone(),
            signals: signals.clone(),
        };
        tokio::spawn(keeper.run());
        tracing::info!(dist = %t.dist_id, task = %task.id, pieces = task.layout.piece_count(), "distribution started");
        let (relay, dist) = (self.clone(), t.dist_id);
        tokio::spawn(async move {
            origin::pull(task.clone(), config).await;
            signals.done.notify_one();
            task.sync();
            let web_seed = format!("http://{}/tasks/{}/data", relay.cli.listen_http, task.id);
            let out = relay.cli.data_dir.join(format!("{}.torrent", task.id));
            let still_ours = relay.running.lock().contains_key(&dist);
            let checked = match sha256 {
                Some(want) if still_ours && task.growing().is_some() && task.is_complete() => {
                    relay.check_digest(&dist, &task, want).await
                }
                _ => true,
            };
            if still_ours && checked && task.growing().is_some() && task.is_complete() {
                match seed_url_only(
                    &task,
                    &relay.swarm,
                    &web_seed,
                    &out,
                    relay.cli.max_peers,
                    relay.cli.task_options().super_seed,
                ) {
                    Ok(()) => {
                        relay.server.task_seeding(&task);
                        if let Some(r) = relay.running.lock().get_mut(&dist) {
                            r.info_hash = task.torrent().map(|h| h.info_hash());
                        }
                        if let Some(file) = task.torrent_file() {
                            relay.publish_torrent(&dist, file.to_vec()).await;
                        }
                    }
                    Err(e) => {
                        tracing::error!(task = %task.id, error = %e, "cannot seed the finished URL-only task")
                    }
                }
            }
            tracing::info!(dist = %dist, state = task.state().name(), "pull ended");
            // Report the final origin bytes now rather than at the next tick.
            relay.beat_now.notify_one();
        });
        Ok(())
    }

    /// The `checking` state of a finished URL-only pull with a SHA-256: hashes the whole file
    /// (off the async threads) and returns whether it matches. On a mismatch (or a file that
    /// cannot be read) the task is rejected: no `.torrent` is made, its data is not served any
    /// more (HTTP answers 503, the provisional swarm is left), and a mismatch is reported to ctl,
    /// which fails the distribution.
    async fn check_digest(&self, dist: &str, task: &Arc<Task>, want: floodgate_proto::Sha256Digest) -> bool {
        if !task.begin_check() {
            tracing::warn!(dist, task = %task.id, state = task.state().name(), "not checking the SHA-256 of a task that is not complete");
            return false;
        }
        tracing::info!(dist, task = %task.id, "checking the file's SHA-256");
        let t = task.clone();
        let len = task.layout.total_length();
        let result = tokio::task::spawn_blocking(move || match t.store() {
            Some(store) => digest::check(store, len, want),
            None => Err(DigestError::Read("the task has no store".into())),
        })
        .await
        .unwrap_or_else(|e| Err(DigestError::Read(format!("the check stopped: {e}"))));
        let err = match result {
            Ok(()) => {
                task.end_check(Ok(()));
                tracing::info!(dist, task = %task.id, sha256 = %want, "the file matches its SHA-256");
                return true;
            }
            Err(e) => e,
        };
        task.end_check(Err(err.to_string()));
        if let Some(p) = task.provisional() {
            self.swarm.remove_torrent(&p.info_hash());
        }
        if let DigestError::Mismatch { expected, actual } = err {
            self.report_mismatch(dist, expected, actual).await;
        }
        false
    }

    /// Tells ctl the pulled file does not match the distribution's SHA-256. Retried for about
    /// a minute; a refusal (the distribution is gone or not this relay's) ends it.
    async fn report_mismatch(
        &self,
        dist: &str,
        expected: floodgate_proto::Sha256Digest,
        actual: floodgate_proto::Sha256Digest,
    ) {
        let mut backoff = Backoff::new(FIRST_BACKOFF, MAX_BACKOFF);
        for attempt in 1..=8 {
            let req = pb::ReportDigestMismatchRequest {
                relay_id: self.id.clone(),
                dist_id: dist.to_string(),
                expected: expected.to_string(),
                actual: actual.to_string(),
            };
            match tokio::time::timeout(CALL_TIMEOUT, self.client.clone().report_digest_mismatch(req)).await {
                Ok(Ok(r)) => {
                    tracing::info!(dist, failed = r.into_inner().failed, "SHA-256 mismatch reported to ctl");
                    return;
                }
                Ok(Err(s)) if s.code() != tonic::Code::Unavailable && s.code() != tonic::Code::Unknown => {
                    tracing::error!(dist, error = %s, "ctl refused the SHA-256 mismatch report");
                    return;
                }
                Ok(Err(s)) => {
                    tracing::warn!(dist, attempt, error = %s, "cannot report the mismatch; retrying")
                }
                Err(_) => tracing::warn!(dist, attempt, "reporting the mismatch timed out; retrying"),
            }
            backoff.wait().await;
        }
    }

    /// Sends a finished URL-only pull's `.torrent` to ctl, which pushes it to the clients.
    /// Retried for about a minute; another relay of the distribution may publish it too.
    async fn publish_torrent(&self, dist: &str, torrent: Vec<u8>) {
        let mut backoff = Backoff::new(FIRST_BACKOFF, MAX_BACKOFF);
        for attempt in 1..=8 {
            let req = pb::PublishTorrentRequest {
                relay_id: self.id.clone(),
                dist_id: dist.to_string(),
                torrent: torrent.clone(),
            };
            match tokio::time::timeout(CALL_TIMEOUT, self.client.clone().publish_torrent(req)).await {
                Ok(Ok(r)) => {
                    tracing::info!(dist, stored = r.into_inner().stored, "torrent published to ctl");
                    return;
                }
                Ok(Err(s))
                    if matches!(
                        s.code(),
                        tonic::Code::InvalidArgument
                            | tonic::Code::FailedPrecondition
                            | tonic::Code::PermissionDenied
                            | tonic::Code::NotFound
                    ) =>
                {
                    tracing::error!(dist, error = %s, "ctl refused this relay's torrent");
                    return;
                }
                Ok(Err(s)) => {
                    tracing::warn!(dist, attempt, error = %s, "cannot publish the torrent; retrying")
                }
                Err(_) => tracing::warn!(dist, attempt, "publishing the torrent timed out; retrying"),
            }
            backoff.wait().await;
        }
    }

    /// After a restart, a distribution whose torrent this relay made from a URL-only pull comes
    /// back hash-known: move the pulled data from the URL-only directory (`<sha1(url)>/`) to
    /// the info-hash directory so it resumes instead of pulling again.
    fn adopt_url_only_data(&self, origin_url: &str, torrent: &[u8]) {
        let Ok(meta) = floodgate_engine::metainfo::Metainfo::from_bytes(torrent) else { return };
        let known = self.cli.data_dir.join(meta.info_hash().to_hex());
        let url_id = floodgate_engine::metainfo::url_task_id(origin_url);
        let pulled = self.cli.data_dir.join(url_id);
        if known.exists() || !pulled.is_dir() {
            return;
        }
        match std::fs::rename(&pulled, &known) {
            Ok(()) => {
                tracing::info!(from = %pulled.display(), to = %known.display(), "resuming a URL-only pull's data under its info-hash")
            }
            Err(e) => tracing::warn!(error = %e, "cannot move the URL-only data; it will be pulled again"),
        }
    }

    /// Stops a distribution and drops its data.
    fn cancel(&self, dist: &str) {
        // The final totals stay in the ledger: if ctl assigns the distribution again, this
        // instance counts on from them.
        self.record(
            dist,
            &match self.running.lock().get(dist) {
                Some(r) => r.task.clone(),
                None => return,
            },
        );
        let Some(r) = self.running.lock().remove(dist) else { return };
        r.task.fail("cancelled by ctl".into());
        let shared = self.running.lock().values().any(|o| o.task.id == r.task.id);
        if shared {
            return;
        }
        self.server.remove_task(&r.task.id);
        if let Some(h) = r.info_hash {
            self.swarm.remove_torrent(&h);
        }
        if let Some(p) = r.task.provisional() {
            self.swarm.remove_torrent(&p.info_hash());
        }
        let dir = self.cli.data_dir.join(&r.task.id);
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            tracing::debug!(dir = %dir.display(), error = %e, "cannot remove the cancelled task's data");
        }
        tracing::info!(dist = %dist, task = %r.task.id, "distribution cancelled");
    }
}
