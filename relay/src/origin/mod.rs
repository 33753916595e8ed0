//! Origin pull: parallel HTTP/1.1 Range requests over keep-alive connections, validated
//! (Content-Length, Content-Range, ETag), bounded by a token bucket and a connection count,
//! retried with backoff, each piece imported (hash-checked, written, announced) as it lands.

mod conn;
mod error;
mod quota;
mod schedule;
mod tls;
mod url;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use floodgate_engine::swarm::ImportOutcome;
use floodgate_engine::types::PieceIndex;

pub use conn::OriginConn;
pub use error::OriginError;
pub use quota::Quota;
use schedule::{Run, Schedule};
pub use tls::client_config;
pub use url::OriginUrl;

use crate::task::Task;

/// How a pull runs.
#[derive(Clone, Debug)]
pub struct PullConfig {
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
    pub tls: Option<Arc<tokio_rustls::rustls::ClientConfig>>,
    /// The origin budget, when someone else sets it (ctl leases); `None`: fixed from `rate`
    /// and `conns`. `conns` workers are started either way; the quota says how many run.
    pub quota: Option<Arc<Quota>>,
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
        }
    }
}

/// What a probe of the origin learnt: the validators every later response must match.
#[derive(Clone, Debug)]
struct Validators {
    length: u64,
    etag: Option<String>,
}

struct Puller {
    task: Arc<Task>,
    url: OriginUrl,
    config: PullConfig,
    schedule: Schedule,
    quota: Arc<Quota>,
    validators: Validators,
}

/// Pulls every missing piece of `task` from its origin; returns when complete or failed.
pub async fn pull(task: Arc<Task>, config: PullConfig) {
    if task.check_complete() {
        return;
    }
    let url = match OriginUrl::parse(&task.origin) {
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

/// HEAD the origin (with retries) to learn the length and ETag.
/// The origin file's length (HEAD, with retries), for a URL-only task's layout.
pub async fn origin_length(url: &OriginUrl, config: &PullConfig) -> Result<u64, OriginError> {
    probe(&crate::task::Counters::default(), "-", url, config).await.map(|v| v.length)
}

async fn probe(
    counters: &crate::task::Counters,
    id: &str,
    url: &OriginUrl,
    config: &PullConfig,
) -> Result<Validators, OriginError> {
    let mut attempt = 0;
    loop {
        let r = async {
            let mut conn = OriginConn::connect(url, config.io_timeout, config.tls.as_ref()).await?;
            counters.origin_requests.fetch_add(1, Ordering::Relaxed);
            let head = conn.request(url, true, None).await?;
            check_status(head.status)?;
            let length = head
                .content_length
                .ok_or_else(|| OriginError::Unusable("HEAD without Content-Length".into()))?;
            Ok::<_, OriginError>(Validators { length, etag: head.etag })
        }
        .await;
        match r {
            Ok(v) => return Ok(v),
            Err(e) if e.is_fatal() || attempt + 1 >= config.max_attempts => return Err(e),
            Err(e) => {
                counters.origin_retries.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(task = %id, error = %e, attempt, "origin probe failed; retrying");
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
            }
        }
    }
}

fn check_status(status: u16) -> Result<(), OriginError> {
    match status {
        200..=299 => Ok(()),
        408 | 429 | 500..=599 => Err(OriginError::Status(status)),
        s => Err(OriginError::Refused(s)),
    }
}

/// 100 ms, 200 ms, 400 ms ... capped at 5 s.
fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100u64.saturating_mul(1 << attempt.min(6))).min(Duration::from_secs(5))
}

impl Puller {
    async fn worker(self: Arc<Self>, id: usize) {
        let task = &self.task;
        let mut conn: Option<OriginConn> = None;
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
    async fn fetch(&self, slot: &mut Option<OriginConn>, run: Run) -> Result<(), OriginError> {
        let task = &self.task;
        let layout = &task.layout;
        let start = layout.piece_offset(PieceIndex(run.first));
        let last = PieceIndex(run.first + run.count - 1);
        let end = layout.piece_offset(last) + u64::from(layout.piece_size(last));
        let conn = match slot {
            Some(c) if c.reusable => c,
            _ => slot.insert(
                OriginConn::connect(&self.url, self.config.io_timeout, self.config.tls.as_ref()).await?,
            ),
        };
        task.counters.origin_requests.fetch_add(1, Ordering::Relaxed);
        let whole = start == 0 && end == self.validators.length;
        let asked = std::time::Instant::now();
        let head = conn.request(&self.url, false, Some((start, end))).await?;
        self.quota.record_latency(asked.elapsed());
        if let Err(e) = check_status(head.status) {
            conn.discard_body().await?;
            return Err(e);
        }
        self.validate(&head, start, end, whole)?;
        let mut piece = run.first;
        let mut buf = Vec::with_capacity(layout.piece_size(PieceIndex(piece)) as usize);
        while piece < run.first + run.count {
            let size = layout.piece_size(PieceIndex(piece)) as usize;
            while buf.len() < size {
                let want = (size - buf.len()).min(64 * 1024);
                let allowed = self.quota.take(want as u64).await as usize;
                let got = conn.read_body(&mut buf, allowed).await.map_err(|e| match e {
                    OriginError::Io(_) => OriginError::Truncated { got: buf.len() as u64, want: size as u64 },
                    e => e,
                })?;
                if got < allowed {
                    self.quota.refund((allowed - got) as u64);
                }
                task.counters.origin_bytes.fetch_add(got as u64, Ordering::Relaxed);
            }
            self.import(piece, &buf)?;
            buf.clear();
            piece += 1;
        }
        Ok(())
    }

    fn validate(
        &self,
        head: &floodgate_engine::http::ResponseHead,
        start: u64,
        end: u64,
        whole: bool,
    ) -> Result<(), OriginError> {
        let v = &self.validators;
        if let (Some(want), Some(got)) = (&v.etag, &head.etag) {
            if want != got {
                return Err(OriginError::Changed(format!("ETag was {want}, now {got}")));
            }
        }
        match (head.status, head.content_range) {
            (206, Some(cr)) => {
                if cr.complete_length.is_some_and(|l| l != v.length) {
                    return Err(OriginError::Changed(format!(
                        "length was {}, Content-Range says {:?}",
                        v.length, cr.complete_length
                    )));
                }
                let r = cr.range.ok_or_else(|| OriginError::Unusable("206 without a range".into()))?;
                if r.start != start || r.end != end {
                    return Err(OriginError::Unusable(format!(
                        "asked bytes {start}-{}, got {}-{}",
                        end - 1,
                        r.start,
                        r.end - 1
                    )));
                }
            }
            (206, None) => return Err(OriginError::Unusable("206 without Content-Range".into())),
            (200, _) if whole => {}
            (200, _) => return Err(OriginError::Unusable("origin ignores Range requests".into())),
            (s, _) => return Err(OriginError::Refused(s)),
        }
        if head.content_length != Some(end - start) {
            return Err(OriginError::Unusable(format!(
                "Content-Length {:?} for a range of {} bytes",
                head.content_length,
                end - start
            )));
        }
        Ok(())
    }

    fn import(&self, piece: u32, data: &[u8]) -> Result<(), OriginError> {
        let task = &self.task;
        let outcome = tokio::task::block_in_place(|| task.import(piece, data)).map_err(OriginError::Store)?;
        match outcome {
            ImportOutcome::Imported | ImportOutcome::Busy => {
                task.counters.pulled_pieces.fetch_add(1, Ordering::Relaxed);
                task.piece_landed();
                Ok(())
            }
            ImportOutcome::AlreadyVerified => Ok(()),
            // Same validators yet different bytes: the origin is not serving this torrent's file.
            ImportOutcome::HashMismatch => Err(OriginError::HashMismatch(piece)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(backoff(0), Duration::from_millis(100));
        assert_eq!(backoff(3), Duration::from_millis(800));
        assert_eq!(backoff(30), Duration::from_secs(5));
        assert!(check_status(503).is_err_and(|e| !e.is_fatal()));
        assert!(check_status(404).is_err_and(|e| e.is_fatal()));
        assert!(check_status(206).is_ok());
    }
}
