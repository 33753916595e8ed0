//! One relay task: the torrent being pulled and served, its state, the demand queue that lets
//! HTTP readers jump the pull order, and the counters `/tasks` and `/metrics` report.

use std::collections::VecDeque;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use floodgate_engine::metainfo::Metainfo;
use floodgate_engine::swarm::TorrentHandle;
use floodgate_engine::types::PieceIndex;
use parking_lot::Mutex;
use tokio::sync::watch;

/// Where a task is in its life.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskState {
    /// Pulling from the origin (and serving what is verified).
    Pulling,
    /// Every piece is verified.
    Complete,
    /// The pull failed for good; verified pieces are still served, nothing else.
    Failed(String),
}

impl TaskState {
    /// A short name for JSON and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            TaskState::Pulling => "pulling",
            TaskState::Complete => "complete",
            TaskState::Failed(_) => "failed",
        }
    }
}

/// Why a wait for bytes ended without them.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// The task failed; the bytes will never come.
    #[error("task failed: {0}")]
    Failed(String),
    /// The bytes did not arrive in time.
    #[error("timed out waiting for piece {0}")]
    Timeout(u32),
}

/// Counters of one task (monotonic, relaxed).
#[derive(Debug, Default)]
pub struct Counters {
    /// Body bytes received from the origin.
    pub origin_bytes: AtomicU64,
    /// Requests sent to the origin.
    pub origin_requests: AtomicU64,
    /// Origin requests that failed and were retried.
    pub origin_retries: AtomicU64,
    /// Body bytes sent over HTTP.
    pub http_bytes: AtomicU64,
    /// Pieces found verified on disk at start (resume).
    pub resumed_pieces: AtomicU64,
    /// Pieces imported from the origin.
    pub pulled_pieces: AtomicU64,
}

/// Pieces that readers are waiting for, pulled before the rest (bounded: one entry per piece).
#[derive(Debug, Default)]
pub struct Demand {
    queue: Mutex<VecDeque<u32>>,
}

impl Demand {
    /// Asks for `piece` to be pulled soon (ignored if already queued).
    pub fn push(&self, piece: u32) {
        let mut q = self.queue.lock();
        if !q.contains(&piece) && q.len() < 4096 {
            q.push_back(piece);
        }
    }

    /// The oldest wanted piece.
    pub fn pop(&self) -> Option<u32> {
        self.queue.lock().pop_front()
    }
}

/// One task: a torrent pulled from `origin` and served while pulling.
pub struct Task {
    /// The task id (the info-hash in hex).
    pub id: String,
    /// The origin URL.
    pub origin: String,
    /// The torrent's metainfo.
    pub meta: Metainfo,
    /// The torrent in the swarm (BitTorrent seeding and the store).
    pub torrent: TorrentHandle,
    /// Pieces readers wait for.
    pub demand: Demand,
    /// Counters.
    pub counters: Counters,
    /// Bytes verified before plain (non-range) requests are served.
    pub threshold_bytes: u64,
    /// When the task started.
    pub started: Instant,
    state: Mutex<TaskState>,
    changed: watch::Sender<u64>,
}

impl Task {
    /// A task over a torrent already in the swarm.
    pub fn new(origin: String, meta: Metainfo, torrent: TorrentHandle, threshold_percent: u8) -> Self {
        let total = meta.total_length();
        let threshold_bytes = (total.saturating_mul(u64::from(threshold_percent)) / 100).max(1).min(total);
        let state = if torrent.is_complete() { TaskState::Complete } else { TaskState::Pulling };
        Task {
            id: meta.info_hash().to_hex(),
            origin,
            meta,
            torrent,
            demand: Demand::default(),
            counters: Counters::default(),
            threshold_bytes,
            started: Instant::now(),
            state: Mutex::new(state),
            changed: watch::channel(0).0,
        }
    }

    /// The task's entity tag (strong: the content is fixed by the info-hash).
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.id)
    }

    /// The current state.
    pub fn state(&self) -> TaskState {
        self.state.lock().clone()
    }

    /// Fails the task (first reason wins) and wakes every waiter.
    pub fn fail(&self, reason: String) {
        {
            let mut s = self.state.lock();
            if *s != TaskState::Pulling {
                return;
            }
            tracing::error!(task = %self.id, %reason, "task failed");
            *s = TaskState::Failed(reason);
        }
        self.changed.send_modify(|n| *n += 1);
    }

    /// Marks the task complete if every piece is verified.
    pub fn check_complete(&self) -> bool {
        if !self.torrent.is_complete() {
            return false;
        }
        let mut s = self.state.lock();
        if *s == TaskState::Pulling {
            tracing::info!(task = %self.id, "pull complete");
            *s = TaskState::Complete;
        }
        true
    }

    /// Wakes readers after a piece was verified.
    pub fn piece_landed(&self) {
        self.changed.send_modify(|n| *n += 1);
    }

    /// Whether `piece` is verified.
    pub fn has(&self, piece: u32) -> bool {
        self.torrent.piece_map().verified().has(PieceIndex(piece))
    }

    /// The piece holding byte `offset`.
    pub fn piece_of(&self, offset: u64) -> u32 {
        (offset / u64::from(self.meta.piece_length())) as u32
    }

    /// Waits until `piece` is verified, asking for it first; gives up at `timeout` or on failure.
    pub async fn wait_piece(&self, piece: u32, timeout: Duration) -> Result<(), WaitError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut rx = self.changed.subscribe();
        loop {
            if self.has(piece) {
                return Ok(());
            }
            if let TaskState::Failed(e) = self.state() {
                return Err(WaitError::Failed(e));
            }
            self.demand.push(piece);
            if tokio::time::timeout_at(deadline, rx.changed()).await.is_err() {
                return if self.has(piece) { Ok(()) } else { Err(WaitError::Timeout(piece)) };
            }
        }
    }

    /// Waits until the serving threshold is reached (for requests without a range).
    pub async fn wait_threshold(&self, timeout: Duration) -> Result<(), WaitError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut rx = self.changed.subscribe();
        loop {
            if self.torrent.piece_map().verified_bytes() >= self.threshold_bytes {
                return Ok(());
            }
            if let TaskState::Failed(e) = self.state() {
                return Err(WaitError::Failed(e));
            }
            if tokio::time::timeout_at(deadline, rx.changed()).await.is_err() {
                return Err(WaitError::Timeout(0));
            }
        }
    }
}
