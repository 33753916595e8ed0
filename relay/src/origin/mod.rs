//! Origin pull: parallel HTTP/1.1 Range requests over keep-alive connections, validated
//! (Content-Length, Content-Range, ETag), bounded by a [`Quota`], retried with backoff, each
//! piece imported (hash-checked, written, announced) as it lands. The HTTP side is the shared
//! fetcher (`floodgate_fetch`); this module keeps the pull's policy: which runs, how many
//! workers, when the task fails.
//!
//! A task may have mirrors, other URLs of the same file (`Task::sources`, the origin first).
//! The workers (still `conns` of them, under the one quota) spread their runs over them as
//! `mirrors.rs` decides. A mirror is probed before its first run and refused when its length
//! differs from the origin's. ETags are compared per mirror only (each response with the ETag
//! of its own mirror's probe): two servers may tag the same bytes differently, so the bytes
//! decide. Hash-known tasks: a piece failing its hash refuses the mirror, the piece is pulled
//! from another. URL-only tasks (the hashes come from the bytes pulled): a mirror is used only
//! after it served a landed piece byte for byte like ours, and is spot-checked so every
//! eighth run; a mirror that differs is refused. That cannot catch a mirror that differs only
//! in pieces it was the first to serve; a distribution's `--sha256` does.

mod mirrors;
mod schedule;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use floodgate_engine::swarm::ImportOutcome;
use floodgate_engine::types::PieceIndex;
use floodgate_fetch::{backoff, Conn, FetchError as OriginError, Flow, RunSpec, Tally, Validators};
pub(crate) use floodgate_fetch::{client_config, ClientConfig, HttpUrl, Quota};
use mirrors::{Choice, Policy};
use parking_lot::Mutex;
use schedule::{Run, Schedule};

use crate::task::Task;

/// How a pull runs.
#[derive(Clone, Debug)]
pub(crate) struct PullConfig {
    /// Parallel connections to the origin (2–8).
    pub conns: usize,
    /// Origin bandwidth limit in bytes/s (0 = unlimited).
    pub rate: u64,
    /// Bound on every connect, read and write.
    pub io_timeout: Duration,
    /// Failed requests in a row (one worker) before the task fails.
    pub max_attempts: u32,
    /// Most bytes one Range request asks for.
    pub max_run_bytes: u64,
    /// TLS client settings for https origins.
    pub tls: Option<Arc<ClientConfig>>,
    /// The origin budget, when someone else sets it (ctl leases); `None`: fixed from `rate`
    /// and `conns`. `conns` workers are started either way; the quota says how many run.
    pub quota: Option<Arc<Quota>>,
    /// Called before each pulled piece is written to the store, with the piece's bytes already
    /// in `origin_bytes`: ctl mode writes its counters to disk there, so no piece a restart
    /// resumes from disk was pulled without being counted.
    pub before_import: Option<ImportHook>,
}

/// What [`PullConfig::before_import`] calls.
#[derive(Clone)]
pub(crate) struct ImportHook(pub Arc<dyn Fn() + Send + Sync>);

impl std::fmt::Debug for ImportHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ImportHook")
    }
}

impl Default for PullConfig {
    fn default() -> Self {
        PullConfig {
            conns: 3,
            rate: 0,
            io_timeout: Duration::from_secs(10),
            max_attempts: 8,
            max_run_bytes: 1 << 20,
            tls: None,
            quota: None,
            before_import: None,
        }
    }
}

/// One URL of the file and the validators its probe found.
struct MirrorUrl {
    url: HttpUrl,
    /// Known once probed (the primary's before the workers start).
    validators: Mutex<Option<Validators>>,
}

struct Puller {
    task: Arc<Task>,
    config: PullConfig,
    schedule: Schedule,
    quota: Arc<Quota>,
    /// The task's sources in order: the origin, then its mirrors (`task.sources`).
    mirrors: Vec<MirrorUrl>,
    policy: Mutex<Policy>,
    /// Why the last mirror was refused (the task's failure when none is left).
    last_refusal: Mutex<Option<String>>,
    /// Picks the landed piece the next vetting or spot check asks for.
    checks: AtomicU64,
}

/// Pulls every missing piece of `task` from its origin and mirrors; returns when complete or
/// failed.
pub(crate) async fn pull(task: Arc<Task>, config: PullConfig) {
    if task.check_complete() {
        return;
    }
    let url = match HttpUrl::parse(&task.origin) {
        Ok(u) => u,
        Err(e) => return task.fail(e.to_string()),
    };
    let validators = match probe(&task.counters, &task.id, &url, &config).await {
        Ok(v) => v,
        Err(e) => return task.fail(format!("origin probe: {e}")),
    };
    if let Some(growing) = task.growing() {
        if !growing.check_origin(validators.etag.as_deref()) {
            tracing::warn!(task = %task.id, etag = ?validators.etag, "the origin file changed since the partial pull; starting over");
            task.counters.resumed_pieces.store(0, Ordering::Relaxed);
        }
    }
    if validators.length != task.layout.total_length() {
        return task.fail(format!(
            "origin file is {} bytes, the torrent describes {}",
            validators.length,
            task.layout.total_length()
        ));
    }
    let quota = config.quota.clone().unwrap_or_else(|| Arc::new(Quota::fixed(config.rate, config.conns)));
    let pieces = task.layout.piece_count();
    let schedule = Schedule::new(pieces, config.max_run_bytes);
    let mut policy = Policy::new(task.sources.len(), task.growing().is_some());
    let mut mirrors = vec![MirrorUrl { url, validators: Mutex::new(Some(validators)) }];
    for (i, source) in task.sources.iter().enumerate().skip(1) {
        let url = HttpUrl::parse(&source.url).unwrap_or_else(|e| {
            tracing::warn!(task = %task.id, mirror = %source.label, error = %e, "mirror refused: bad URL");
            source.refuse(e.to_string());
            policy.refuse(i);
            // Never used (refused); a placeholder keeps the indices of `task.sources`.
            mirrors[0].url.clone()
        });
        mirrors.push(MirrorUrl { url, validators: Mutex::new(None) });
    }
    let puller = Arc::new(Puller {
        task: task.clone(),
        config,
        schedule,
        quota,
        mirrors,
        policy: Mutex::new(policy),
        last_refusal: Mutex::new(None),
        checks: AtomicU64::new(0),
    });
    let workers: Vec<_> = (0..puller.config.conns).map(|i| tokio::spawn(puller.clone().worker(i))).collect();
    for w in workers {
        let _ = w.await;
    }
    if !task.check_complete() {
        task.fail("pull ended with pieces missing".into());
    }
}

/// The origin file's length (HEAD, with retries), for a URL-only task's layout.
pub(crate) async fn origin_length(url: &HttpUrl, config: &PullConfig) -> Result<u64, OriginError> {
    probe(&crate::task::Counters::default(), "-", url, config).await.map(|v| v.length)
}

/// HEAD the origin (with retries) to learn the length and ETag.
async fn probe(
    counters: &crate::task::Counters,
    id: &str,
    url: &HttpUrl,
    config: &PullConfig,
) -> Result<Validators, OriginError> {
    let tally = Tally { requests: &counters.origin_requests, bytes: &counters.origin_bytes };
    floodgate_fetch::probe(
        url,
        config.io_timeout,
        config.tls.as_ref(),
        config.max_attempts,
        tally,
        |e, attempt| {
            counters.origin_retries.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(task = %id, error = %e, attempt, "origin probe failed; retrying");
        },
    )
    .await
}

/// Why a mirror's bytes were not taken.
#[derive(Debug)]
enum CheckError {
    /// It served other bytes for a verified piece.
    Differs(u32),
    /// The request failed.
    Fetch(OriginError),
}

impl Puller {
    async fn worker(self: Arc<Self>, id: usize) {
        let task = &self.task;
        // One connection per worker, to the mirror of its last run.
        let mut conn: Option<Conn> = None;
        let mut conn_mirror = 0;
        let mut failures = 0u32;
        loop {
            if task.state() != crate::task::TaskState::Pulling {
                return;
            }
            if !self.quota.may_run(id) {
                // The grant shrank below this worker: hand the connection back and wait.
                conn = None;
                tokio::select! {
                    () = self.quota.wait_turn(id) => {}
                    () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
            let Some(run) = self.schedule.next(task) else {
                if task.check_complete() || !self.schedule.any_claimed() {
                    return;
                }
                // Others hold the last claims; one may fail and hand its run back.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let choice = self.policy.lock().choose(Instant::now(), task.verified_count() > 0);
            let ticket = match choice {
                Choice::Run(t) => t,
                Choice::Prepare(m) => {
                    self.schedule.release(run, task);
                    self.prepare(m).await;
                    continue;
                }
                Choice::Wait => {
                    self.schedule.release(run, task);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                Choice::NoneLeft => {
                    self.schedule.release(run, task);
                    let why = self.last_refusal.lock().clone();
                    return task.fail(why.unwrap_or_else(|| "every origin mirror was refused".into()));
                }
            };
            let m = ticket.mirror;
            if conn_mirror != m {
                conn = None;
                conn_mirror = m;
            }
            let before = task.verified_count();
            let started = Instant::now();
            let mut result = Ok(0);
            if ticket.spot_check {
                result = self.check(&mut conn, m).await.map(|()| 0);
            }
            if result.is_ok() {
                result = self.fetch(&mut conn, run, m).await.map_err(CheckError::Fetch);
            }
            self.schedule.release(run, task);
            let source = &task.sources[m];
            let e = match result {
                Ok(bytes) => {
                    self.policy.lock().done(ticket, bytes, started.elapsed());
                    source.runs.fetch_add(1, Ordering::Relaxed);
                    failures = 0;
                    continue;
                }
                Err(CheckError::Differs(piece)) => {
                    conn = None;
                    self.policy.lock().failed(ticket, Instant::now());
                    self.refuse(m, format!("served other bytes for verified piece {piece}"));
                    continue;
                }
                Err(CheckError::Fetch(e)) => e,
            };
            conn = None;
            if matches!(e, OriginError::Store(_)) {
                self.policy.lock().returned(ticket);
                return task.fail(e.to_string());
            }
            self.policy.lock().failed(ticket, Instant::now());
            source.failures.fetch_add(1, Ordering::Relaxed);
            if e.is_fatal() {
                // A refused range, a changed file, a piece failing its hash: this mirror is
                // out; its pieces come from the others (the task fails when none is left).
                self.refuse(m, e.to_string());
                continue;
            }
            // A request that delivered pieces before failing is progress, not a streak.
            if task.verified_count() > before {
                failures = 0;
            }
            failures += 1;
            task.counters.origin_retries.fetch_add(1, Ordering::Relaxed);
            if failures >= self.config.max_attempts {
                return task.fail(format!("origin failed {failures} times in a row: {e}"));
            }
            tracing::warn!(task = %task.id, worker = id, mirror = %source.label, error = %e, failures, "origin request failed; retrying");
            tokio::time::sleep(backoff(failures - 1)).await;
        }
    }

    /// Refuses mirror `m` for the rest of the pull.
    fn refuse(&self, m: usize, why: String) {
        let source = &self.task.sources[m];
        if self.mirrors.len() > 1 {
            tracing::warn!(task = %self.task.id, mirror = %source.label, reason = %why, "mirror refused");
        }
        source.refuse(why.clone());
        self.policy.lock().refuse(m);
        *self.last_refusal.lock() = Some(why);
    }

    /// Probes mirror `m` (and for a URL-only task vets it against a landed piece); it takes
    /// runs when that passes, is refused when it disagrees, rests when it cannot be reached.
    async fn prepare(&self, m: usize) {
        let task = &self.task;
        let source = &task.sources[m];
        let mut config = self.config.clone();
        config.max_attempts = 2;
        let v = match probe(&task.counters, &task.id, &self.mirrors[m].url, &config).await {
            Ok(v) => v,
            Err(e) if e.is_fatal() => return self.refuse(m, format!("probe: {e}")),
            Err(e) => {
                source.failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(task = %task.id, mirror = %source.label, error = %e, "mirror probe failed; it rests");
                return self.policy.lock().prepare_failed(m, Instant::now());
            }
        };
        let want = task.layout.total_length();
        if v.length != want {
            return self.refuse(m, format!("length {} differs from the origin's {want}", v.length));
        }
        *self.mirrors[m].validators.lock() = Some(v);
        if task.growing().is_some() {
            let mut conn = None;
            match self.check(&mut conn, m).await {
                Ok(()) => {}
                Err(CheckError::Differs(p)) => {
                    return self.refuse(m, format!("served other bytes for verified piece {p}"))
                }
                Err(CheckError::Fetch(e)) if e.is_fatal() => return self.refuse(m, e.to_string()),
                Err(CheckError::Fetch(e)) => {
                    source.failures.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(task = %task.id, mirror = %source.label, error = %e, "mirror vetting failed; it rests");
                    return self.policy.lock().prepare_failed(m, Instant::now());
                }
            }
        }
        tracing::info!(task = %task.id, mirror = %source.label, "mirror ready");
        self.policy.lock().ready(m);
    }

    /// Fetches one verified piece from mirror `m` and compares it with ours, byte for byte.
    async fn check(&self, slot: &mut Option<Conn>, m: usize) -> Result<(), CheckError> {
        let task = &self.task;
        let n = task.layout.piece_count();
        // A spread of landed pieces: golden-ratio steps, then the next landed one.
        let k = self.checks.fetch_add(1, Ordering::Relaxed);
        let from = ((k.wrapping_mul(0x9E37_79B9) ^ (m as u64)) % u64::from(n)) as u32;
        let Some(piece) = (0..n).map(|i| (from + i) % n).find(|&p| task.has(p)) else {
            // Nothing landed: nothing to compare with yet (the policy waits for a piece).
            return Ok(());
        };
        let layout = &task.layout;
        let size = layout.piece_size(PieceIndex(piece));
        let start = layout.piece_offset(PieceIndex(piece));
        let ours = task
            .read(start, size as usize)
            .map_err(|e| CheckError::Fetch(OriginError::Io(std::io::Error::other(e))))?;
        let Some(validators) = self.mirrors[m].validators.lock().clone() else {
            return Err(CheckError::Fetch(OriginError::Unusable("mirror not probed".into())));
        };
        let counters = &task.counters;
        let tally = Tally { requests: &counters.origin_requests, bytes: &counters.origin_bytes };
        let spec = RunSpec { start, piece_sizes: &[size] };
        let mut differs = false;
        let r = floodgate_fetch::fetch_run(
            slot,
            &self.mirrors[m].url,
            self.config.io_timeout,
            self.config.tls.as_ref(),
            &validators,
            &self.quota,
            spec,
            tally,
            |_, data| {
                task.sources[m].bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
                differs = data != &ours[..];
                if differs {
                    Err(OriginError::HashMismatch(piece))
                } else {
                    Ok(Flow::Continue)
                }
            },
        )
        .await;
        match r {
            _ if differs => Err(CheckError::Differs(piece)),
            Ok(()) => Ok(()),
            Err(e) => Err(CheckError::Fetch(e)),
        }
    }

    /// Fetches one run from mirror `m` with a Range request, importing each piece as soon as it
    /// is whole; returns the bytes of the pieces it delivered.
    async fn fetch(&self, slot: &mut Option<Conn>, run: Run, m: usize) -> Result<u64, OriginError> {
        let layout = &self.task.layout;
        let sizes: Vec<u32> =
            (run.first..run.first + run.count).map(|p| layout.piece_size(PieceIndex(p))).collect();
        let spec = RunSpec { start: layout.piece_offset(PieceIndex(run.first)), piece_sizes: &sizes };
        let counters = &self.task.counters;
        let tally = Tally { requests: &counters.origin_requests, bytes: &counters.origin_bytes };
        let Some(validators) = self.mirrors[m].validators.lock().clone() else {
            return Err(OriginError::Unusable("mirror not probed".into()));
        };
        let (url, timeout, tls) = (&self.mirrors[m].url, self.config.io_timeout, self.config.tls.as_ref());
        let source = &self.task.sources[m];
        let mut delivered = 0u64;
        floodgate_fetch::fetch_run(
            slot,
            url,
            timeout,
            tls,
            &validators,
            &self.quota,
            spec,
            tally,
            |i, data| {
                source.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
                delivered += data.len() as u64;
                self.import(run.first + i as u32, data).map(|()| Flow::Continue)
            },
        )
        .await
        .map(|()| delivered)
    }

    fn import(&self, piece: u32, data: &[u8]) -> Result<(), OriginError> {
        let task = &self.task;
        let outcome = tokio::task::block_in_place(|| {
            if let Some(hook) = &self.config.before_import {
                (hook.0)();
            }
            task.import(piece, data)
        })?;
        match outcome {
            ImportOutcome::Verified | ImportOutcome::Busy => {
                task.counters.pulled_pieces.fetch_add(1, Ordering::Relaxed);
                task.piece_landed();
                Ok(())
            }
            ImportOutcome::AlreadyHad => Ok(()),
            // Same validators yet different bytes: the origin is not serving this torrent's file.
            ImportOutcome::HashMismatch => Err(OriginError::HashMismatch(piece)),
        }
    }
}
