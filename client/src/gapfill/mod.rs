//! HTTP gap-filling for one download: BitTorrent first, HTTP Range when BitTorrent is slow.
//!
//! The policy is the engine's sans-IO [`Switch`] (when and how much) and [`plan_run`] (which
//! pieces); this is the I/O around it. A control task samples the torrent every interval and
//! sets the shared [`Quota`] from the switch's allowance; worker tasks plan a run of pieces,
//! claim them (so BitTorrent never requests them), fetch them with one Range request from the
//! best source through the shared fetcher, and import each piece: SHA-1 checked, written
//! through the same store, marked in the same piece map and announced to the swarm. A web seed
//! of a multi-file torrent is a BEP 19 directory (`webseed.rs`): its runs are one Range request
//! per file segment, joined into pieces before they are checked; relays and the origin address
//! the torrent as one byte stream whatever its files.

mod options;
mod sources;
mod webseed;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use floodgate_engine::gapfill::{plan_run, Allowance, Change, Level, Sample, Switch, SwitchConfig};
use floodgate_engine::swarm::{HttpClaim, ImportOutcome, TorrentHandle};
use floodgate_engine::types::PieceIndex;
use floodgate_fetch::{ClientConfig, Conn, FetchError, Flow, HttpUrl, Quota, RunPart, Tally, Validators};
use parking_lot::Mutex;

pub(crate) use options::HttpOptions;
pub(crate) use sources::SourceKind;
use sources::{best, Source};
pub(crate) use webseed::file_url as web_seed_file_url;

/// The smallest run [`Shared::claim_run`] splits the remaining work into.
const MIN_SPLIT_BYTES: u64 = 1 << 20;

/// How gap-filling runs.
#[derive(Clone, Debug)]
pub(crate) struct GapFillConfig {
    /// When and how much HTTP (see `floodgate_engine::gapfill`).
    pub switch: SwitchConfig,
    /// Concurrent HTTP requests over all sources.
    pub workers: usize,
    /// Concurrent requests to one source.
    pub per_source: usize,
    /// Most bytes one Range request asks for.
    pub max_run_bytes: u64,
    /// Bound on every connect, read and write.
    pub io_timeout: Duration,
    /// TLS settings for `https` sources (`None`: such sources are dropped).
    pub tls: Option<Arc<ClientConfig>>,
}

impl Default for GapFillConfig {
    fn default() -> Self {
        GapFillConfig {
            switch: SwitchConfig::default(),
            workers: 4,
            per_source: 2,
            max_run_bytes: 4 << 20,
            io_timeout: Duration::from_secs(15),
            tls: None,
        }
    }
}

/// What gap-filling did, for summaries and progress reports.
#[derive(Clone, Debug, Default)]
pub(crate) struct GapFillReport {
    /// Body bytes received over HTTP.
    pub http_bytes: u64,
    /// Bytes received per source (URL shown without credentials), with its kind.
    pub by_source: Vec<(String, SourceKind, u64)>,
    /// Level changes, oldest first.
    pub switches: Vec<Change>,
    /// The level now.
    pub level: Option<Level>,
    /// Pieces whose HTTP bytes failed their hash.
    pub hash_failures: u64,
}

impl GapFillReport {
    /// Bytes received from sources of `kind`.
    pub(crate) fn bytes_of(&self, kind: SourceKind) -> u64 {
        self.by_source.iter().filter(|s| s.1 == kind).map(|s| s.2).sum()
    }
}

struct Shared {
    torrent: TorrentHandle,
    config: GapFillConfig,
    sources: Mutex<Vec<Source>>,
    switch: Mutex<Switch>,
    /// Pieces an HTTP worker is fetching (a claim in the piece map cannot say so when peers
    /// had requested every block).
    in_flight: Mutex<std::collections::HashSet<u32>>,
    quota: Quota,
    http_bytes: AtomicU64,
    requests: AtomicU64,
    hash_failures: AtomicU64,
    stop: AtomicBool,
}

/// A running gap-filler; stops when dropped.
pub(crate) struct GapFiller {
    shared: Arc<Shared>,
}

impl GapFiller {
    /// Starts gap-filling `torrent` from `sources` on the runtime `rt`.
    pub(crate) fn start(
        rt: &tokio::runtime::Handle,
        torrent: TorrentHandle,
        sources: Vec<(HttpUrl, SourceKind)>,
        config: GapFillConfig,
    ) -> GapFiller {
        let workers = config.workers.max(1);
        let shared = Arc::new(Shared {
            switch: Mutex::new(Switch::new(config.switch, Instant::now())),
            quota: Quota::fixed(0, workers),
            sources: Mutex::new(Vec::new()),
            in_flight: Mutex::new(Default::default()),
            torrent,
            config,
            http_bytes: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            hash_failures: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let filler = GapFiller { shared: shared.clone() };
        filler.add_sources(sources);
        rt.spawn(shared.clone().control());
        for _ in 0..workers {
            rt.spawn(shared.clone().worker());
        }
        filler
    }

    /// Adds sources not known yet (an agent's relay set changed). A web seed of a multi-file
    /// torrent is taken as a BEP 19 directory of its files.
    pub(crate) fn add_sources(&self, sources: Vec<(HttpUrl, SourceKind)>) {
        let directory = webseed::is_directory(self.shared.torrent.layout());
        let mut known = self.shared.sources.lock();
        for (url, kind) in sources {
            if !known.iter().any(|s| s.url == url) {
                let per_file = directory && kind == SourceKind::WebSeed;
                tracing::info!(source = %url, ?kind, per_file, "HTTP source");
                let mut source = Source::new(url, kind);
                if per_file {
                    source.files = Some(Default::default());
                }
                known.push(source);
            }
        }
        known.sort_by_key(|s| s.kind);
    }

    /// Stops using the relay whose HTTP address is `addr` for good (`why` is logged): its
    /// sources are dropped and a request on one ends after its current piece. Returns how many
    /// sources were dropped.
    pub(crate) fn exclude_relay(&self, addr: std::net::SocketAddr, why: &str) -> usize {
        let mut n = 0;
        for s in self.shared.sources.lock().iter_mut().filter(|s| s.is_relay_at(addr)) {
            s.exclude(why);
            n += 1;
        }
        n
    }

    /// What gap-filling did so far.
    pub(crate) fn report(&self) -> GapFillReport {
        let sources = self.shared.sources.lock();
        let switch = self.shared.switch.lock();
        GapFillReport {
            http_bytes: self.shared.http_bytes.load(Ordering::Relaxed),
            by_source: sources.iter().map(|s| (s.url.to_string(), s.kind, s.bytes)).collect(),
            switches: switch.changes().to_vec(),
            level: Some(switch.level()),
            hash_failures: self.shared.hash_failures.load(Ordering::Relaxed),
        }
    }
}

impl Drop for GapFiller {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
    }
}

impl Shared {
    fn done(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || self.torrent.is_complete()
    }

    /// Samples the torrent every interval and applies the switch's allowance to the quota.
    async fn control(self: Arc<Self>) {
        let workers = self.config.workers.max(1);
        while !self.done() {
            let due = self.switch.lock().poll_timeout();
            tokio::time::sleep_until(due.into()).await;
            let sample = self.sample();
            let (change, allowance) = {
                let mut switch = self.switch.lock();
                let change = switch.handle_sample(Instant::now(), sample);
                (change, switch.allowance())
            };
            tracing::debug!(?sample, ?allowance, "gap-fill sample");
            if let Some(c) = change {
                tracing::info!(from = c.from.as_str(), to = c.to.as_str(), reason = %c.reason, at_s = c.at.as_secs_f64(), "HTTP gap-filling level");
            }
            match allowance {
                Allowance::Paced { rate, .. } => self.quota.grant(workers, Some(rate), None),
                Allowance::Unlimited | Allowance::None => self.quota.grant(workers, None, None),
            }
        }
    }

    fn sample(&self) -> Sample {
        let s = self.torrent.stats();
        let map = self.torrent.piece_map();
        let verified = map.verified();
        let useful = (0..map.piece_count())
            .map(PieceIndex)
            .any(|p| !verified.has(p) && map.availability(p) > 0 && !map.is_withheld(p));
        Sample {
            bt_bytes: s.downloaded,
            http_bytes: self.http_bytes.load(Ordering::Relaxed),
            remaining: s.total_length.saturating_sub(s.bytes_verified),
            peers: s.peers,
            useful_peers: useful,
        }
    }

    /// One HTTP worker: plan, claim, fetch, import, until the download is complete.
    async fn worker(self: Arc<Self>) {
        let mut conns: Vec<Option<Conn>> = Vec::new();
        while !self.done() {
            let (allowance, level) = {
                let s = self.switch.lock();
                (s.allowance(), s.level())
            };
            let max_bytes = match allowance {
                Allowance::None => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
                Allowance::Paced { bytes, .. } => bytes.min(self.config.max_run_bytes),
                Allowance::Unlimited => self.config.max_run_bytes,
            };
            let Some(src) = self.take_source().await else {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            };
            if conns.len() <= src {
                conns.resize_with(src + 1, || None);
            }
            let mut claimed = self.claim_run(max_bytes, level == Level::Full);
            if claimed.is_empty() && level == Level::Partial && self.torrent.piece_map().in_endgame() {
                // Endgame at the partial level: only pieces BitTorrent has half delivered are
                // left, and without overlap HTTP would sit idle while a slow peer finishes them.
                // Overlap them (the design's endgame rule); whichever source finishes a piece
                // first wins it.
                claimed = self.claim_run(max_bytes, true);
            }
            if claimed.is_empty() {
                self.sources.lock()[src].busy -= 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            tracing::debug!(first = claimed[0].0, count = claimed.len(), src, "HTTP run");
            self.fetch(src, &mut conns[src], &claimed).await;
            tracing::debug!(first = claimed[0].0, "HTTP run done");
            let mut in_flight = self.in_flight.lock();
            for p in &claimed {
                self.torrent.release_http(*p);
                in_flight.remove(&p.0);
            }
            drop(in_flight);
            self.sources.lock()[src].busy -= 1;
        }
    }

    /// Plans a run and claims its pieces; returns the claimed prefix. A run takes at most an
    /// even share of what is left unclaimed (but not less than [`MIN_SPLIT_BYTES`]), so the
    /// workers, and so the sources, split the work instead of the first one taking all of it.
    fn claim_run(&self, max_bytes: u64, overlap: bool) -> Vec<PieceIndex> {
        let map = self.torrent.piece_map();
        let mut in_flight = self.in_flight.lock();
        let open = map.piece_count().saturating_sub(map.verified_count()) as u64;
        let open = open.saturating_sub(in_flight.len() as u64);
        let piece = u64::from(self.torrent.layout().piece_length());
        let share = open * piece / self.config.workers.max(1) as u64;
        let max_bytes = max_bytes.min(share.max(MIN_SPLIT_BYTES));
        // A piece whose hash is not published yet cannot be checked: never fetched.
        let skip = |p: PieceIndex| in_flight.contains(&p.0) || !self.torrent.hash_known(p);
        let Some(run) = plan_run(map, max_bytes.max(1), overlap, skip) else {
            return Vec::new();
        };
        let mut claimed = Vec::new();
        for p in (run.first.0..run.first.0 + run.count).map(PieceIndex) {
            if self.torrent.claim_for_http(p, overlap) == HttpClaim::Unavailable {
                break;
            }
            in_flight.insert(p.0);
            claimed.push(p);
        }
        claimed
    }

    /// Picks the best usable source and marks a worker on it, probing it first if needed (a
    /// BEP 19 directory is not probed: each file's length is the torrent's, checked on every
    /// response, and its ETag is learnt from the first).
    async fn take_source(&self) -> Option<usize> {
        let (i, url, need_probe) = {
            let mut sources = self.sources.lock();
            let i = best(&sources, Instant::now(), self.config.per_source)?;
            sources[i].busy += 1;
            let s = &sources[i];
            (i, s.url.clone(), s.validators.is_none() && s.files.is_none())
        };
        if !need_probe {
            return Some(i);
        }
        let tally = Tally { requests: &self.requests, bytes: &self.http_bytes };
        let tls = self.config.tls.as_ref();
        let probed = floodgate_fetch::probe(&url, self.config.io_timeout, tls, 1, tally, |_, _| {}).await;
        let want = self.torrent.layout().total_length();
        let mut sources = self.sources.lock();
        let s = &mut sources[i];
        match probed {
            Ok(v) if v.length == want => {
                s.validators = Some(v);
                Some(i)
            }
            Ok(v) => {
                s.failed(&format!("serves {} bytes, the torrent has {want}", v.length), true, Instant::now());
                s.busy -= 1;
                None
            }
            Err(e) => {
                s.failed(&e.to_string(), e.is_fatal(), Instant::now());
                s.busy -= 1;
                None
            }
        }
    }

    /// Fetches the claimed run from source `src` and imports its pieces: one Range request, or
    /// one per file segment on a BEP 19 directory.
    async fn fetch(&self, src: usize, conn: &mut Option<Conn>, pieces: &[PieceIndex]) {
        let layout = self.torrent.layout();
        let sizes: Vec<u32> = pieces.iter().map(|&p| layout.piece_size(p)).collect();
        let start = layout.piece_offset(pieces[0]);
        let len: u64 = sizes.iter().map(|&s| u64::from(s)).sum();
        // (URL, first byte, bytes, validators, file) of each request.
        let requests: Vec<(HttpUrl, u64, u64, Validators, Option<usize>)> = {
            let s = &self.sources.lock()[src];
            match (&s.files, &s.validators) {
                (Some(files), _) => webseed::split_run(layout, start, len)
                    .into_iter()
                    .map(|part| {
                        let url = webseed::file_url(&s.url, &layout.files()[part.file].path);
                        (url, part.offset, part.len, files.of(layout, part.file), Some(part.file))
                    })
                    .collect(),
                (None, Some(v)) => vec![(s.url.clone(), start, len, v.clone(), None)],
                (None, None) => return,
            }
        };
        let mut parts: Vec<RunPart<'_>> = requests
            .iter()
            .map(|(url, start, len, v, _)| RunPart { url, start: *start, len: *len, validators: v.clone() })
            .collect();
        let received = AtomicU64::new(0);
        let tally = Tally { requests: &self.requests, bytes: &received };
        let started = Instant::now();
        let mut bad_piece = None;
        let tls = self.config.tls.as_ref();
        let result = floodgate_fetch::fetch_parts(
            conn,
            self.config.io_timeout,
            tls,
            &self.quota,
            &mut parts,
            &sizes,
            tally,
            |i, data| {
                let piece = pieces[i];
                let outcome = tokio::task::block_in_place(|| self.torrent.import_piece(piece, data))?;
                if outcome == ImportOutcome::HashMismatch {
                    bad_piece = Some(piece);
                    return Err(FetchError::HashMismatch(piece.0));
                }
                // Stop early when BitTorrent brought the rest of the run meanwhile.
                let verified = self.torrent.piece_map().verified();
                let rest_done = pieces[i + 1..].iter().all(|p| verified.has(*p));
                // A source dropped meanwhile (its relay's hashes disagree with another's) is
                // not read any further.
                let dropped = self.sources.lock()[src].dropped.is_some();
                Ok(if rest_done || dropped || self.stop.load(Ordering::Relaxed) {
                    Flow::Stop
                } else {
                    Flow::Continue
                })
            },
        )
        .await;
        let got = received.load(Ordering::Relaxed);
        self.http_bytes.fetch_add(got, Ordering::Relaxed);
        let mut sources = self.sources.lock();
        let s = &mut sources[src];
        s.bytes += got;
        if let Some(files) = &mut s.files {
            for (part, file) in parts.iter().zip(requests.iter().map(|r| r.4)) {
                if let Some(f) = file {
                    files.learn(f, part.validators.etag.clone());
                }
            }
        }
        match result {
            Ok(()) => s.succeeded(got, started.elapsed()),
            Err(FetchError::HashMismatch(_)) => {
                self.hash_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(source = %s.url, piece = bad_piece.map(|p| p.0), "HTTP piece failed its hash; source demoted");
                s.struck();
            }
            Err(e) => {
                tracing::warn!(source = %s.url, error = %e, "HTTP request failed");
                s.failed(&e.to_string(), e.is_fatal(), Instant::now());
            }
        }
    }
}
