//! Origin pull: parallel HTTP/1.1 Range requests over keep-alive connections, validated
//! (Content-Length, Content-Range, ETag), bounded by a [`Quota`], retried with backoff, each
//! piece imported (hash-checked, written, announced) as it lands. The HTTP side is the shared
//! fetcher (`floodgate_fetch`); this module keeps the pull's policy: which runs, how many
//! workers, when the task fails.

mod schedule;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use floodgate_engine::swarm::ImportOutcome;
use floodgate_engine::types::PieceIndex;
use floodgate_fetch::{backoff, Conn, FetchError as OriginError, Flow, RunSpec, Tally, Validators};
pub(crate) use floodgate_fetch::{client_config, ClientConfig, HttpUrl, Quota};
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

struct Puller {
    task: Arc<Task>,
    url: HttpUrl,
    config: PullConfig,
    schedule: Schedule,
    quota: Arc<Quota>,
    validators: Validators,
}

/// Pulls every missing piece of `task` from its origin; returns when complete or failed.
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
    let puller = Arc::new(Puller { task: task.clone(), url, config, schedule, quota, validators });
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

impl Puller {
    async fn worker(self: Arc<Self>, id: usize) {
        let task = &self.task;
        let mut conn: Option<Conn> = None;
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
            let before = task.verified_count();
            let result = self.fetch(&mut conn, run).await;
            self.schedule.release(run, task);
            match result {
                Ok(()) => failures = 0,
                Err(e) if e.is_fatal() => return task.fail(e.to_string()),
                Err(e) => {
                    conn = None;
                    // A request that delivered pieces before failing is progress, not a streak.
                    if task.verified_count() > before {
                        failures = 0;
                    }
                    failures += 1;
                    task.counters.origin_retries.fetch_add(1, Ordering::Relaxed);
                    if failures >= self.config.max_attempts {
                        return task.fail(format!("origin failed {failures} times in a row: {e}"));
                    }
                    tracing::warn!(task = %task.id, worker = id, error = %e, failures, "origin request failed; retrying");
                    tokio::time::sleep(backoff(failures - 1)).await;
                }
            }
        }
    }

    /// Fetches one run with a Range request, importing each piece as soon as it is whole.
    async fn fetch(&self, slot: &mut Option<Conn>, run: Run) -> Result<(), OriginError> {
        let layout = &self.task.layout;
        let sizes: Vec<u32> =
            (run.first..run.first + run.count).map(|p| layout.piece_size(PieceIndex(p))).collect();
        let spec = RunSpec { start: layout.piece_offset(PieceIndex(run.first)), piece_sizes: &sizes };
        let counters = &self.task.counters;
        let tally = Tally { requests: &counters.origin_requests, bytes: &counters.origin_bytes };
        let (url, timeout, tls) = (&self.url, self.config.io_timeout, self.config.tls.as_ref());
        floodgate_fetch::fetch_run(
            slot,
            url,
            timeout,
            tls,
            &self.validators,
            &self.quota,
            spec,
            tally,
            |i, data| self.import(run.first + i as u32, data).map(|()| Flow::Continue),
        )
        .await
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
