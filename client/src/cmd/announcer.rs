//! The one tracker announcer of the client: [`Policy`], a sans-IO state machine that decides
//! when to announce to which trackers with which event (time passed in), and [`Announcer`], a
//! thin driver thread doing the I/O with `floodgate_fetch::announce` and dialing the peers the
//! policy hands out. `get`/`seed` announce to the torrent's tiers (BEP 12) with
//! [`Schedule::TORRENT`]; the agent to every relay's tracker with [`Schedule::RELAYS`],
//! following the relay list as it changes.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use floodgate_engine::http::redact;
use floodgate_engine::metainfo::Metainfo;
use floodgate_engine::swarm::TorrentHandle;
use floodgate_engine::tracker::{AnnounceRequest, AnnounceResponse, Event};
use floodgate_engine::types::PeerId;
use floodgate_fetch::ClientConfig;

/// How often to announce, per tier of trackers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Schedule {
    /// Bounds on the tracker's `interval` (the wait is also at least its `min interval`).
    pub interval: (Duration, Duration),
    /// The `min interval` assumed when a tracker gives none.
    pub default_min_interval: Duration,
    /// Wait between announces while starving for peers.
    pub starving: Duration,
    /// Whether a tracker's `min interval` also holds back the announces while starving.
    pub starving_obeys_min_interval: bool,
    /// Connected peers that verified nothing for this long count as starving too (`None`: only
    /// having no peer is starving).
    pub stall: Option<Duration>,
    /// Wait after a tier's first failed announce, doubled after each further one, and its cap.
    pub retry: (Duration, Duration),
    /// Time limit of one announce.
    pub timeout: Duration,
    /// Time limit of each final `completed` / `stopped` announce.
    pub stop_timeout: Duration,
}

impl Schedule {
    /// A torrent's own trackers (`get`, `seed`): the tracker's interval within 5 s–1 h; every
    /// 10 s (at least the tracker's min interval) while no peer is connected; a failed tier is
    /// tried again after 10 s, 20 s, 40 s ... up to 5 min.
    pub(super) const TORRENT: Schedule = Schedule {
        interval: (Duration::from_secs(5), Duration::from_secs(3600)),
        default_min_interval: Duration::from_secs(5),
        starving: Duration::from_secs(10),
        starving_obeys_min_interval: true,
        stall: None,
        retry: (Duration::from_secs(10), Duration::from_secs(300)),
        timeout: Duration::from_secs(10),
        stop_timeout: Duration::from_secs(3),
    };

    /// The relays' trackers (the agent): every 15 s; every 3 s while no peer is connected or
    /// none verified anything for 3 s (the relays are ours: their min interval is not waited
    /// for); a failed relay is tried again after 3 s, 6 s, 12 s, then every 15 s.
    pub(super) const RELAYS: Schedule = Schedule {
        interval: (Duration::from_secs(15), Duration::from_secs(15)),
        default_min_interval: Duration::from_secs(5),
        starving: Duration::from_secs(3),
        starving_obeys_min_interval: false,
        stall: Some(Duration::from_secs(3)),
        retry: (Duration::from_secs(3), Duration::from_secs(15)),
        timeout: Duration::from_secs(5),
        stop_timeout: Duration::from_secs(3),
    };

    /// The wait after `failures` failed announces in a row (at least 1).
    fn retry_after(&self, failures: u32) -> Duration {
        let doubled = self.retry.0.saturating_mul(1 << failures.saturating_sub(1).min(16));
        doubled.min(self.retry.1)
    }
}

/// What the policy needs to know of the torrent, read by the driver before each step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct SwarmState {
    /// Every piece is verified.
    pub complete: bool,
    /// Peers connected now.
    pub peers: usize,
    /// Bytes verified so far.
    pub verified: u64,
}

impl SwarmState {
    /// The state of `torrent` now.
    pub(super) fn of(torrent: &TorrentHandle) -> SwarmState {
        let s = torrent.stats();
        SwarmState { complete: torrent.is_complete(), peers: s.peers, verified: s.bytes_verified }
    }
}

/// An announce to make now: to the tier's trackers in this order, until one answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Due {
    /// Which tier (pass it back to [`Policy::handle_answer`] or [`Policy::handle_failure`]).
    pub tier: usize,
    /// The event to send.
    pub event: Option<Event>,
    /// The tier's tracker URLs, the last one that answered first.
    pub urls: Vec<String>,
}

/// One tier of trackers (BEP 12): tried in order, the one that answers moves to the front.
#[derive(Debug)]
struct Tier {
    urls: Vec<String>,
    /// A `started` was answered.
    started: bool,
    /// The download completed since the last answered announce: `completed` is owed.
    completed_due: bool,
    /// When the next regular announce is due.
    next: Instant,
    /// When the last announce was made.
    last: Option<Instant>,
    /// The tracker's `min interval`.
    min_interval: Duration,
    /// Failed announces in a row.
    failures: u32,
    /// The event of the announce handed out and not reported yet.
    in_flight: Option<Option<Event>>,
}

impl Tier {
    fn new(urls: Vec<String>, schedule: &Schedule, now: Instant) -> Tier {
        Tier {
            urls,
            started: false,
            completed_due: false,
            next: now,
            last: None,
            min_interval: schedule.default_min_interval,
            failures: 0,
            in_flight: None,
        }
    }

    fn same_trackers(&self, urls: &[String]) -> bool {
        self.urls.len() == urls.len() && urls.iter().all(|u| self.urls.contains(u))
    }
}

/// When to announce to which trackers, and which peers to dial: `started` first, then at the
/// tracker's interval within the [`Schedule`], sooner while starving for peers, `completed`
/// once the download completes, `completed`/`stopped` at the end ([`Policy::stopping`]).
///
/// Calling order, each step: [`Policy::set_tiers`] (when the tracker list may change),
/// [`Policy::observe`], then [`Policy::poll_announce`] until `None`, reporting each announce
/// with [`Policy::handle_answer`] or [`Policy::handle_failure`] before polling again.
#[derive(Debug)]
pub(super) struct Policy {
    schedule: Schedule,
    listen: SocketAddr,
    tiers: Vec<Tier>,
    was_complete: bool,
    /// When the verified byte count last changed, and to what.
    progress: (Instant, u64),
    starving: bool,
    /// Peers handed out to dial since the last time every peer was lost.
    dialed: HashSet<SocketAddr>,
}

impl Policy {
    /// A policy for `tiers` of tracker URLs, announcing the port of `listen`; `swarm` is the
    /// torrent's state at the start (a torrent complete from the start never says `completed`).
    pub(super) fn new(
        schedule: Schedule,
        listen: SocketAddr,
        tiers: Vec<Vec<String>>,
        swarm: SwarmState,
        now: Instant,
    ) -> Policy {
        let mut p = Policy {
            schedule,
            listen,
            tiers: Vec::new(),
            was_complete: swarm.complete,
            progress: (now, swarm.verified),
            starving: false,
            dialed: HashSet::new(),
        };
        p.set_tiers(tiers, now);
        p
    }

    /// Replaces the tiers: a tier with the same trackers as an old one keeps its state, a new
    /// one is announced to (`started`) at once, a tier gone is forgotten.
    pub(super) fn set_tiers(&mut self, tiers: Vec<Vec<String>>, now: Instant) {
        let unchanged = tiers.len() == self.tiers.len()
            && tiers.iter().zip(&self.tiers).all(|(new, old)| old.same_trackers(new));
        if unchanged {
            return;
        }
        let mut old = std::mem::take(&mut self.tiers);
        for urls in tiers.into_iter().filter(|t| !t.is_empty()) {
            match old.iter().position(|t| t.same_trackers(&urls)) {
                Some(i) => self.tiers.push(old.swap_remove(i)),
                None => self.tiers.push(Tier::new(urls, &self.schedule, now)),
            }
        }
    }

    /// Takes in the torrent's state: a completion makes `completed` due on every tier now;
    /// starving (no peer, or a stall) forgets which peers were dialed, so all are dialed again.
    pub(super) fn observe(&mut self, swarm: SwarmState, now: Instant) {
        if swarm.verified != self.progress.1 {
            self.progress = (now, swarm.verified);
        }
        if swarm.complete && !self.was_complete {
            for t in &mut self.tiers {
                t.completed_due = true;
                t.next = now;
            }
        }
        self.was_complete = swarm.complete;
        let stalled =
            self.schedule.stall.is_some_and(|d| now.saturating_duration_since(self.progress.0) >= d);
        self.starving = !swarm.complete && (swarm.peers == 0 || stalled);
        if self.starving {
            self.dialed.clear();
        }
    }

    /// Whether the torrent starves for peers (as last observed).
    #[cfg(test)]
    pub(super) fn is_starving(&self) -> bool {
        self.starving
    }

    /// The next announce due at `now`, if any: a tier whose interval (or retry wait) is over,
    /// or, while starving, one that answered last time and was last asked long enough ago.
    pub(super) fn poll_announce(&mut self, now: Instant) -> Option<Due> {
        let (schedule, starving) = (self.schedule, self.starving);
        for (i, t) in self.tiers.iter_mut().enumerate() {
            if t.in_flight.is_some() {
                continue;
            }
            let wait = if schedule.starving_obeys_min_interval {
                schedule.starving.max(t.min_interval)
            } else {
                schedule.starving
            };
            let soon = t.last.map_or(now, |l| l + wait);
            if now >= t.next || (starving && t.failures == 0 && now >= soon) {
                let event = if !t.started {
                    Some(Event::Started)
                } else if t.completed_due {
                    Some(Event::Completed)
                } else {
                    None
                };
                t.in_flight = Some(event);
                t.last = Some(now);
                return Some(Due { tier: i, event, urls: t.urls.clone() });
            }
        }
        None
    }

    /// Tier `tier`'s tracker `url` (its index in [`Due::urls`]) answered `resp`: it moves to the
    /// front, the next regular announce is scheduled. Returns the peers to dial: new ones, not
    /// ourselves.
    pub(super) fn handle_answer(
        &mut self,
        tier: usize,
        url: usize,
        resp: &AnnounceResponse,
        now: Instant,
    ) -> Vec<SocketAddr> {
        let schedule = self.schedule;
        let Some(t) = self.tiers.get_mut(tier) else { return Vec::new() };
        let sent = t.in_flight.take().flatten();
        if url < t.urls.len() {
            let u = t.urls.remove(url);
            t.urls.insert(0, u);
        }
        t.started = true;
        if sent == Some(Event::Completed) {
            t.completed_due = false;
        }
        t.failures = 0;
        t.min_interval = resp.min_interval.map_or(schedule.default_min_interval, secs);
        let (lo, hi) = schedule.interval;
        let interval = secs(resp.interval).clamp(lo, hi).max(t.min_interval);
        // A `completed` still owed (the download finished before `started` was answered) goes now.
        t.next = if t.completed_due { now } else { now + interval };
        let listen = self.listen;
        resp.peers.iter().copied().filter(|p| !is_self(*p, listen) && self.dialed.insert(*p)).collect()
    }

    /// No tracker of tier `tier` answered: it is tried again after the retry wait. Returns how
    /// many announces in a row failed.
    pub(super) fn handle_failure(&mut self, tier: usize, now: Instant) -> u32 {
        let schedule = self.schedule;
        let Some(t) = self.tiers.get_mut(tier) else { return 0 };
        t.in_flight = None;
        t.failures = t.failures.saturating_add(1);
        t.next = now + schedule.retry_after(t.failures);
        t.failures
    }

    /// The announces to make when stopping: for every tier that was answered, its first tracker
    /// and the events (`completed` if still owed, then `stopped`). Call [`Policy::observe`]
    /// first so that a completion just before the end is counted.
    pub(super) fn stopping(&self) -> Vec<(String, Vec<Event>)> {
        self.tiers
            .iter()
            .filter(|t| t.started)
            .filter_map(|t| {
                let url = t.urls.first()?.clone();
                let mut events = vec![Event::Stopped];
                if t.completed_due {
                    events.insert(0, Event::Completed);
                }
                Some((url, events))
            })
            .collect()
    }
}

fn secs(s: u32) -> Duration {
    Duration::from_secs(u64::from(s))
}

/// Whether `peer` is our own listening address as a tracker would report it (or unusable).
fn is_self(peer: SocketAddr, listen: SocketAddr) -> bool {
    if peer.ip().is_unspecified() {
        return true;
    }
    peer.port() == listen.port() && (peer.ip() == listen.ip() || peer.ip().is_loopback())
}

/// The tracker I/O of one thread: a small runtime for `floodgate_fetch::announce` and the TLS
/// setup, made when an `https` tracker first needs it.
pub(super) struct TrackerIo {
    rt: tokio::runtime::Runtime,
    tls: Option<Arc<ClientConfig>>,
}

impl TrackerIo {
    /// A runtime on the calling thread (which must not be inside another runtime).
    pub(super) fn new() -> std::io::Result<TrackerIo> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        Ok(TrackerIo { rt, tls: None })
    }

    /// Announces `req` to `url` within `timeout`.
    pub(super) fn announce(
        &mut self,
        url: &str,
        req: &AnnounceRequest,
        timeout: Duration,
    ) -> anyhow::Result<AnnounceResponse> {
        if self.tls.is_none() && is_https(url) {
            self.tls = Some(floodgate_fetch::client_config(None)?);
        }
        Ok(self.rt.block_on(floodgate_fetch::announce(url, req, timeout, self.tls.as_ref()))?)
    }
}

/// Whether a tracker URL can be announced to (`http://` or `https://`).
pub(super) fn is_usable(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    lower.starts_with("http://") || is_https(&lower)
}

fn is_https(url: &str) -> bool {
    url.get(..8).is_some_and(|s| s.eq_ignore_ascii_case("https://"))
}

/// A key for announces from the peer id's randomness (no extra dependency).
pub(super) fn rand_key() -> u32 {
    let id = PeerId::generate().0;
    u32::from_be_bytes([id[8], id[9], id[10], id[11]]) ^ std::process::id()
}

/// Where the announcer finds its tiers of tracker URLs; asked before every step, so a list that
/// changes (the agent's relays) is followed.
pub(super) type Trackers = Box<dyn FnMut() -> Vec<Vec<String>> + Send>;

/// What an [`Announcer`] announces and how.
pub(super) struct Setup {
    /// The torrent (its info-hash and progress are announced; peers are dialed on it).
    pub torrent: TorrentHandle,
    /// Our peer id.
    pub peer_id: PeerId,
    /// Our listen address (its port is announced; peers at it are not dialed).
    pub listen: SocketAddr,
    /// The schedule.
    pub schedule: Schedule,
    /// The trackers.
    pub trackers: Trackers,
    /// Set to stop: the thread says `completed`/`stopped` and ends.
    pub stop: Arc<AtomicBool>,
}

/// Runs a [`Policy`] on a thread of its own; dropping it stops the thread (after the final
/// `stopped` announces) and waits for it, unless [`Announcer::detach`]ed.
pub(super) struct Announcer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// How often the driver looks at the torrent and the clock.
const TICK: Duration = Duration::from_millis(100);

impl Announcer {
    /// Starts announcing on a new thread.
    pub(super) fn start(setup: Setup) -> std::io::Result<Announcer> {
        let stop = setup.stop.clone();
        let thread = std::thread::Builder::new().name("fg-announce".into()).spawn(move || drive(setup))?;
        Ok(Announcer { stop, thread: Some(thread) })
    }

    /// Starts announcing `meta`'s `http://` and `https://` trackers (its tiers) for `torrent`
    /// with [`Schedule::TORRENT`]. `None` when the torrent names no usable tracker.
    pub(super) fn for_torrent(
        meta: &Metainfo,
        torrent: TorrentHandle,
        peer_id: PeerId,
        listen: SocketAddr,
    ) -> Option<Announcer> {
        let mut tiers = Vec::new();
        for tier in meta.trackers() {
            let (usable, other): (Vec<String>, Vec<String>) = tier.into_iter().partition(|u| is_usable(u));
            for u in other {
                tracing::warn!(
                    "skipping tracker {}: only http:// and https:// trackers are supported",
                    redact(&u)
                );
            }
            if !usable.is_empty() {
                tiers.push(usable);
            }
        }
        if tiers.is_empty() {
            return None;
        }
        let setup = Setup {
            torrent,
            peer_id,
            listen,
            schedule: Schedule::TORRENT,
            trackers: Box::new(move || tiers.clone()),
            stop: Arc::new(AtomicBool::new(false)),
        };
        match Announcer::start(setup) {
            Ok(a) => Some(a),
            Err(e) => {
                tracing::warn!(error = %e, "cannot start the announce thread");
                None
            }
        }
    }

    /// Lets the thread run on until its stop flag is set by someone else.
    pub(super) fn detach(mut self) {
        self.thread = None;
    }
}

impl Drop for Announcer {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.stop.store(true, Ordering::Relaxed);
            let _ = t.join();
        }
    }
}

/// The announce of `torrent` now, with `event`.
fn request(setup: &Setup, key: u32, event: Option<Event>) -> AnnounceRequest {
    let s = setup.torrent.stats();
    AnnounceRequest {
        info_hash: setup.torrent.info_hash(),
        peer_id: setup.peer_id,
        port: setup.listen.port(),
        uploaded: s.uploaded,
        downloaded: s.downloaded,
        left: s.total_length.saturating_sub(s.bytes_verified),
        event,
        numwant: Some(50),
        key: Some(key),
    }
}

/// The driver: steps the policy every [`TICK`], makes the announces it asks for and dials the
/// peers it hands out; at the stop, the final announces.
fn drive(mut setup: Setup) {
    let mut io = match TrackerIo::new() {
        Ok(io) => io,
        Err(e) => {
            tracing::warn!(error = %e, "cannot start the announcer's runtime; not announcing");
            return;
        }
    };
    let key = rand_key();
    let tiers = (setup.trackers)();
    let mut policy =
        Policy::new(setup.schedule, setup.listen, tiers, SwarmState::of(&setup.torrent), Instant::now());
    let stopped = |s: &Setup| s.stop.load(Ordering::Relaxed);
    while !stopped(&setup) {
        policy.set_tiers((setup.trackers)(), Instant::now());
        policy.observe(SwarmState::of(&setup.torrent), Instant::now());
        while let Some(due) = policy.poll_announce(Instant::now()) {
            let req = request(&setup, key, due.event);
            let mut answered = None;
            let mut last_error = None;
            for (i, url) in due.urls.iter().enumerate() {
                match io.announce(url, &req, setup.schedule.timeout) {
                    Ok(resp) => {
                        if let Some(w) = &resp.warning {
                            tracing::warn!("tracker {}: {w}", redact(url));
                        }
                        tracing::debug!("tracker {}: {} peers", redact(url), resp.peers.len());
                        answered = Some((i, resp));
                        break;
                    }
                    Err(e) => {
                        tracing::debug!("announce to {} failed: {e:#}", redact(url));
                        last_error = Some((redact(url), e));
                    }
                }
            }
            match answered {
                Some((i, resp)) => {
                    for peer in policy.handle_answer(due.tier, i, &resp, Instant::now()) {
                        setup.torrent.connect(peer);
                    }
                }
                None => {
                    if policy.handle_failure(due.tier, Instant::now()) == 1 {
                        if let Some((url, e)) = last_error {
                            tracing::warn!("announce to {url} failed: {e:#}");
                        }
                    }
                }
            }
            if stopped(&setup) {
                break;
            }
        }
        std::thread::sleep(TICK);
    }
    // Finished just before stopping (`get --no-seed`): `completed` is said first.
    policy.observe(SwarmState::of(&setup.torrent), Instant::now());
    for (url, events) in policy.stopping() {
        for event in events {
            let req = request(&setup, key, Some(event));
            if let Err(e) = io.announce(&url, &req, setup.schedule.stop_timeout) {
                tracing::debug!("{} announce to {} failed: {e:#}", event.as_str(), redact(&url));
            }
        }
    }
}

#[cfg(test)]
#[path = "announcer_tests.rs"]
mod tests;
