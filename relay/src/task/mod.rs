//! One relay task: the torrent being pulled and served, its state, the demand queue that lets
//! HTTP readers jump the pull order, and the counters `/tasks` and `/metrics` report.

mod growing;
mod sources;

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use floodgate_engine::layout::Layout;
use floodgate_engine::metainfo::Metainfo;
use floodgate_engine::piece_map::PieceMapError;
use floodgate_engine::store::Store;
use floodgate_engine::swarm::{ImportError, ImportOutcome, TorrentHandle};
use floodgate_engine::types::PieceIndex;
use parking_lot::Mutex;
pub(crate) use sources::Source;
use tokio::sync::watch;

pub(crate) use growing::Growing;

/// Where a task is in its life.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TaskState {
    /// Pulling from the origin (and serving what is verified).
    Pulling,
    /// Every piece is verified; with a whole-file SHA-256, also the digest.
    Complete,
    /// Every piece is verified and the whole file is being hashed against the distribution's
    /// SHA-256; its `.torrent` is neither built nor published before this ends.
    Checking,
    /// The pull failed for good; verified pieces are still served, nothing else.
    Failed(String),
    /// The whole file did not match its SHA-256 (or could not be checked): nothing of it is
    /// served any more, no `.torrent` is made.
    Rejected(String),
}

impl TaskState {
    /// A short name for JSON and metrics.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            TaskState::Pulling => "pulling",
            TaskState::Complete => "complete",
            TaskState::Checking => "checking",
            TaskState::Failed(_) | TaskState::Rejected(_) => "failed",
        }
    }

    /// Why the task failed, if it did.
    pub(crate) fn error(&self) -> Option<&str> {
        match self {
            TaskState::Failed(e) | TaskState::Rejected(e) => Some(e),
            _ => None,
        }
    }
}

/// Why a wait for bytes ended without them.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WaitError {
    /// The task failed; the bytes will never come.
    #[error("task failed: {0}")]
    Failed(String),
    /// The bytes did not arrive in time.
    #[error("timed out waiting for piece {0}")]
    Timeout(u32),
}

/// Counters of one task (monotonic, relaxed).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Body bytes received from the origin.
    pub origin_bytes: AtomicU64,
    /// Requests sent to the origin.
    pub origin_requests: AtomicU64,
    /// Origin requests that failed and were retried.
    pub origin_retries: AtomicU64,
    /// Body bytes sent over HTTP.
    pub http_bytes: AtomicU64,
    /// HTTP `sendfile` runs whose pages were not all cached and were read in off the runtime.
    pub http_cold_runs: AtomicU64,
    /// Bytes in those runs.
    pub http_cold_bytes: AtomicU64,
    /// Pieces found verified on disk at start (resume).
    pub resumed_pieces: AtomicU64,
    /// Pieces imported from the origin.
    pub pulled_pieces: AtomicU64,
}

/// Pieces that readers are waiting for, pulled before the rest (bounded: one entry per piece).
#[derive(Debug, Default)]
pub(crate) struct Demand {
    queue: Mutex<VecDeque<u32>>,
}

impl Demand {
    /// Asks for `piece` to be pulled soon (ignored if already queued).
    pub(crate) fn push(&self, piece: u32) {
        let mut q = self.queue.lock();
        if !q.contains(&piece) && q.len() < 4096 {
            q.push_back(piece);
        }
    }

    /// The oldest wanted piece.
    pub(crate) fn pop(&self) -> Option<u32> {
        self.queue.lock().pop_front()
    }
}

/// One task: a file pulled from `origin` and served while pulling.
pub(crate) struct Task {
    /// The task id (the info-hash in hex when known; else derived from the URL).
    pub id: String,
    /// The origin URL.
    pub origin: String,
    /// Every URL of the file, the origin first, then its mirrors (see [`Task::with_mirrors`]).
    pub sources: Vec<Source>,
    /// The file's name.
    pub name: String,
    /// Pieces onto the file.
    pub layout: Arc<Layout>,
    /// Pieces readers wait for.
    pub demand: Demand,
    /// Counters.
    pub counters: Counters,
    /// Bytes verified before plain (non-range) requests are served. BitTorrent is not held
    /// back: a peer requests only pieces the relay announced, each a specific range that is
    /// verified already, so it can never overtake the pull; waiting would only delay its first
    /// byte (the fast-start goal is a client's first piece within 1 s of the relay's).
    pub threshold_bytes: u64,
    /// When the task started.
    pub started: Instant,
    /// URL-only content (hashed as it lands); `None` for a hash-known task.
    growing: Option<Growing>,
    /// The torrent in the swarm: from the start when hashes are known, at completion otherwise.
    torrent: OnceLock<TorrentHandle>,
    /// The `.torrent` file: from the start when hashes are known, at completion otherwise.
    torrent_file: OnceLock<Vec<u8>>,
    /// A URL-only task's provisional swarm (clients trade pieces there during the pull).
    provisional: OnceLock<TorrentHandle>,
    state: Mutex<TaskState>,
    changed: watch::Sender<u64>,
    /// Whether a piece landed in this run yet.
    first_landed: AtomicBool,
}

impl Task {
    fn base(id: String, origin: String, name: String, layout: Arc<Layout>, threshold_percent: u8) -> Self {
        let total = layout.total_length();
        let threshold_bytes = (total.saturating_mul(u64::from(threshold_percent)) / 100).max(1).min(total);
        Task {
            id,
            sources: vec![Source::new(origin.clone())],
            origin,
            name,
            layout,
            demand: Demand::default(),
            counters: Counters::default(),
            threshold_bytes,
            started: Instant::now(),
            growing: None,
            torrent: OnceLock::new(),
            torrent_file: OnceLock::new(),
            provisional: OnceLock::new(),
            state: Mutex::new(TaskState::Pulling),
            changed: watch::channel(0).0,
            first_landed: AtomicBool::new(false),
        }
    }

    /// A hash-known task over a torrent already in the swarm.
    pub(crate) fn known(
        origin: String,
        meta: &Metainfo,
        torrent: TorrentHandle,
        threshold_percent: u8,
    ) -> Self {
        let layout = Arc::new(meta.layout());
        let task =
            Task::base(meta.info_hash().to_hex(), origin, meta.name().to_string(), layout, threshold_percent);
        let _ = task.torrent_file.set(meta.to_bytes());
        let _ = task.torrent.set(torrent);
        task.check_complete();
        task
    }

    /// A URL-only task writing into `store`: pieces are hashed as they land and recorded in
    /// `journal`; pieces a previous run recorded there and still correct on disk are kept.
    pub(crate) fn url_only(
        id: String,
        origin: String,
        name: String,
        store: Store,
        threshold_percent: u8,
        journal: &Path,
    ) -> std::io::Result<Self> {
        let layout = Arc::new(store.layout().clone());
        let mut task = Task::base(id, origin, name, layout.clone(), threshold_percent);
        let growing = Growing::open(layout, store, journal)?;
        task.counters.resumed_pieces.store(u64::from(growing.count()), Ordering::Relaxed);
        task.growing = Some(growing);
        task.check_complete();
        Ok(task)
    }

    /// Adds mirrors: other URLs of the same file the pull may use besides the origin
    /// (duplicates of a URL already listed are dropped).
    pub(crate) fn with_mirrors(mut self, mirrors: &[String]) -> Self {
        for m in mirrors {
            if !self.sources.iter().any(|s| &s.url == m) {
                self.sources.push(Source::new(m.clone()));
            }
        }
        self
    }

    /// The URL-only content, if this is a URL-only task.
    pub(crate) fn growing(&self) -> Option<&Growing> {
        self.growing.as_ref()
    }

    /// The torrent in the swarm, once there is one.
    pub(crate) fn torrent(&self) -> Option<&TorrentHandle> {
        self.torrent.get()
    }

    /// The `.torrent` file, once there is one.
    pub(crate) fn torrent_file(&self) -> Option<&[u8]> {
        self.torrent_file.get().map(Vec::as_slice)
    }

    /// Serves a URL-only task in its provisional swarm: every landed piece is adopted there
    /// (announced to the distribution's clients with its hash) as it lands.
    pub(crate) fn set_provisional(&self, torrent: TorrentHandle) {
        let _ = self.provisional.set(torrent);
    }

    /// The provisional swarm's torrent, if this URL-only task has one.
    pub(crate) fn provisional(&self) -> Option<&TorrentHandle> {
        self.provisional.get()
    }

    /// Publishes a URL-only task's torrent once it is complete and seeding.
    pub(crate) fn set_seeding(&self, file: Vec<u8>, torrent: TorrentHandle) {
        let _ = self.torrent_file.set(file);
        let _ = self.torrent.set(torrent);
    }

    /// Pieces verified (landed, for a URL-only task).
    pub(crate) fn verified_count(&self) -> u32 {
        match (&self.growing, self.torrent.get()) {
            (Some(g), _) => g.count(),
            (None, Some(t)) => t.piece_map().verified_count(),
            (None, None) => 0,
        }
    }

    /// Bytes in verified pieces.
    pub(crate) fn verified_bytes(&self) -> u64 {
        match (&self.growing, self.torrent.get()) {
            (Some(g), _) => g.bytes(),
            (None, Some(t)) => t.piece_map().verified_bytes(),
            (None, None) => 0,
        }
    }

    /// Whether every piece is verified.
    pub(crate) fn is_complete(&self) -> bool {
        self.verified_count() == self.layout.piece_count()
    }

    /// BitTorrent (bytes uploaded, connected peers), the provisional swarm's included.
    pub(crate) fn bt_stats(&self) -> (u64, usize) {
        [self.torrent.get(), self.provisional.get()].into_iter().flatten().fold((0, 0), |(up, peers), t| {
            let s = t.stats();
            (up + s.uploaded, peers + s.peers)
        })
    }

    /// Adds a piece from the origin: hash-checked (known) or hashed (URL-only), written, announced.
    pub(crate) fn import(&self, piece: u32, data: &[u8]) -> Result<ImportOutcome, ImportError> {
        match (&self.growing, self.torrent.get()) {
            (Some(g), _) => {
                if !g.land(piece, data)? {
                    return Ok(ImportOutcome::AlreadyHad);
                }
                if let (Some(p), Some(hash)) = (self.provisional.get(), g.hash(piece)) {
                    // The bytes are on disk already (same files): no second write or hash.
                    if let Err(e) = p.adopt_piece(PieceIndex(piece), data, hash) {
                        tracing::warn!(task = %self.id, piece, error = %e, "cannot offer the piece in the provisional swarm");
                    }
                }
                Ok(ImportOutcome::Verified)
            }
            (None, Some(t)) => t.import_piece(PieceIndex(piece), data),
            // Never: a task is built with its growing store or its torrent. Without either it
            // holds no piece at all.
            (None, None) => {
                Err(ImportError::PieceMap(PieceMapError::PieceOutOfRange { index: piece, count: 0 }))
            }
        }
    }

    /// Reads verified bytes back.
    pub(crate) fn read(&self, offset: u64, len: usize) -> Result<bytes::Bytes, String> {
        match (&self.growing, self.torrent.get()) {
            (Some(g), _) => g.read(offset, len).map_err(|e| e.to_string()),
            (None, Some(t)) => t.read(offset, len).map_err(|e| e.to_string()),
            (None, None) => Err("task has no store".into()),
        }
    }

    /// The store holding the task's bytes (read verified ranges only).
    pub(crate) fn store(&self) -> Option<&Store> {
        match (&self.growing, self.torrent.get()) {
            (Some(g), _) => Some(g.store()),
            (None, Some(t)) => Some(t.store()),
            (None, None) => None,
        }
    }

    /// Flushes written data.
    pub(crate) fn sync(&self) {
        let r = match (&self.growing, self.torrent.get()) {
            (Some(g), _) => g.sync(),
            (None, Some(t)) => t.sync(),
            (None, None) => Ok(()),
        };
        if let Err(e) = r {
            tracing::warn!(task = %self.id, error = %e, "sync failed");
        }
    }

    /// The task's entity tag (strong: the content is fixed by the info-hash).
    pub(crate) fn etag(&self) -> String {
        format!("\"{}\"", self.id)
    }

    /// The current state.
    pub(crate) fn state(&self) -> TaskState {
        self.state.lock().clone()
    }

    /// Fails the task (first reason wins) and wakes every waiter.
    pub(crate) fn fail(&self, reason: String) {
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

    /// Enters the `checking` state (from `complete`); false in any other state.
    pub(crate) fn begin_check(&self) -> bool {
        let mut s = self.state.lock();
        if *s != TaskState::Complete {
            return false;
        }
        *s = TaskState::Checking;
        drop(s);
        self.changed.send_modify(|n| *n += 1);
        true
    }

    /// Ends the `checking` state: back to `complete` when the digest matched, else rejected
    /// with `Err`'s reason (nothing is served from then on). Wakes every waiter.
    pub(crate) fn end_check(&self, result: Result<(), String>) {
        {
            let mut s = self.state.lock();
            if *s != TaskState::Checking {
                return;
            }
            *s = match result {
                Ok(()) => TaskState::Complete,
                Err(reason) => {
                    tracing::error!(task = %self.id, %reason, "task rejected");
                    TaskState::Rejected(reason)
                }
            };
        }
        self.changed.send_modify(|n| *n += 1);
    }

    /// Why nothing of this task may be served (its file failed the SHA-256 check), if so.
    pub(crate) fn rejected(&self) -> Option<String> {
        match &*self.state.lock() {
            TaskState::Rejected(e) => Some(e.clone()),
            _ => None,
        }
    }

    /// Marks the task complete if every piece is verified.
    pub(crate) fn check_complete(&self) -> bool {
        if !self.is_complete() {
            return false;
        }
        let mut s = self.state.lock();
        if *s == TaskState::Pulling {
            tracing::info!(task = %self.id, after_ms = self.started.elapsed().as_millis() as u64, "pull complete");
            *s = TaskState::Complete;
        }
        true
    }

    /// Wakes readers after a piece was verified (and logs the first one of this run, the
    /// moment serving can start: a fast-start benchmark reads its timestamp).
    pub(crate) fn piece_landed(&self) {
        if !self.first_landed.swap(true, Ordering::Relaxed) {
            tracing::info!(task = %self.id, after_ms = self.started.elapsed().as_millis() as u64, "first piece verified");
        }
        self.changed.send_modify(|n| *n += 1);
    }

    /// Whether `piece` is verified.
    pub(crate) fn has(&self, piece: u32) -> bool {
        match (&self.growing, self.torrent.get()) {
            (Some(g), _) => g.has(piece),
            (None, Some(t)) => {
                piece < self.layout.piece_count() && t.piece_map().verified().has(PieceIndex(piece))
            }
            (None, None) => false,
        }
    }

    /// How many connected BitTorrent peers have `piece` (0 while a URL-only task has no torrent).
    pub(crate) fn peers_with(&self, piece: u32) -> u32 {
        match (&self.growing, self.torrent.get()) {
            (None, Some(t)) if piece < self.layout.piece_count() => {
                t.piece_map().availability(PieceIndex(piece))
            }
            _ => 0,
        }
    }

    /// The piece holding byte `offset`.
    pub(crate) fn piece_of(&self, offset: u64) -> u32 {
        (offset / u64::from(self.layout.piece_length())) as u32
    }

    /// A receiver that wakes when a piece lands or the state changes.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Waits until `piece` is verified, asking for it first; gives up at `timeout` or on failure.
    pub(crate) async fn wait_piece(&self, piece: u32, timeout: Duration) -> Result<(), WaitError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut rx = self.changed.subscribe();
        loop {
            if let Some(e) = self.rejected() {
                return Err(WaitError::Failed(e));
            }
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
    pub(crate) async fn wait_threshold(&self, timeout: Duration) -> Result<(), WaitError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut rx = self.changed.subscribe();
        loop {
            if let Some(e) = self.rejected() {
                return Err(WaitError::Failed(e));
            }
            if self.verified_bytes() >= self.threshold_bytes {
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
