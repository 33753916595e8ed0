//! What `seed` and `get` share: opening the store, the swarm, and
//! announcing to the torrent's trackers, and resolving magnet links.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use floodgate_engine::magnet::Magnet;
use floodgate_engine::metainfo::Metainfo;
use floodgate_engine::peer::FleetKey;
use floodgate_engine::piece_map::Bitfield;
use floodgate_engine::store::{Store, StoreConfig};
use floodgate_engine::swarm::magnet::{fetch_metadata, FetchConfig};
use floodgate_engine::swarm::{AddTorrent, Swarm, SwarmConfig, TorrentHandle};
use floodgate_engine::tracker::{announce, AnnounceRequest, Event};
use floodgate_engine::types::PeerId;

/// Fetches the metadata of a magnet link (BEP 9) from `extra` peers, the link's `x.pe` peers and
/// the peers its `http://` trackers name, within `timeout`. Returns the metainfo (with the link's
/// trackers as its tracker tier) and the link's `x.pe` peers.
pub fn resolve_magnet(
    uri: &str,
    extra: &[SocketAddr],
    timeout: Duration,
) -> anyhow::Result<(Metainfo, Vec<SocketAddr>)> {
    let magnet = Magnet::parse(uri).context("invalid magnet link")?;
    let started = Instant::now();
    let peer_id = PeerId::generate();
    let mut peers: Vec<SocketAddr> = extra.to_vec();
    for p in &magnet.peers {
        if !peers.contains(p) {
            peers.push(*p);
        }
    }
    for url in magnet.trackers.iter().filter(|u| u.to_ascii_lowercase().starts_with("http://")) {
        let req = AnnounceRequest {
            info_hash: magnet.info_hash,
            peer_id,
            port: 0,
            uploaded: 0,
            downloaded: 0,
            left: 1,
            event: None,
            numwant: Some(50),
            key: Some(rand_key()),
        };
        match announce(url, &req, ANNOUNCE_TIMEOUT.min(timeout)) {
            Ok(resp) => peers.extend(resp.peers.into_iter().filter(|p| !p.ip().is_unspecified())),
            Err(e) => tracing::warn!("announce to {url} failed: {e}"),
        }
    }
    peers.dedup();
    let config =
        FetchConfig { peer_id, timeout: timeout.saturating_sub(started.elapsed()), ..FetchConfig::default() };
    let mut meta = fetch_metadata(magnet.info_hash, &peers, &config)
        .with_context(|| format!("cannot fetch the metadata of {}", magnet.info_hash.to_hex()))?;
    if !magnet.trackers.is_empty() {
        meta.announce_list = vec![magnet.trackers.clone()];
    }
    if meta.url_list.is_empty() {
        // The link's `ws=` web seeds serve as the torrent's BEP 19 `url-list`.
        meta.url_list = magnet.web_seeds.clone();
    }
    Ok((meta, magnet.peers))
}

/// Upload and download limits from the command line, bytes per second (0: unlimited).
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct Limits {
    /// Upload limit, bytes per second (0 = unlimited).
    #[arg(long, default_value_t = 0)]
    pub upload_limit: u64,
    /// Download limit, bytes per second (0 = unlimited).
    #[arg(long, default_value_t = 0)]
    pub download_limit: u64,
}

/// Fleet membership from the command line.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct Fleet {
    /// Secret shared by cooperating Floodgate peers: peers proving they hold it (in the BEP 10
    /// handshake, bound to both peer ids; the secret never travels) are served without
    /// tit-for-tat, outside the upload slots. Agents derive it from their distribution.
    #[arg(long, env = "FLOODGATE_FLEET_KEY", hide_env_values = true)]
    pub fleet_key: Option<String>,
}

impl Fleet {
    /// The key, if one was given.
    pub fn key(&self) -> Option<FleetKey> {
        self.fleet_key.as_deref().map(|s| FleetKey::from_secret(s.as_bytes()))
    }
}

/// Starts a swarm listening on `listen` and adds the torrent with its store under `root`
/// (super-seeding, BEP 16, when `super_seed`; fleet peers recognised with `fleet`).
pub fn start(
    meta: &Metainfo,
    root: &Path,
    listen: SocketAddr,
    verified: Bitfield,
    limits: Limits,
    super_seed: bool,
    fleet: Option<FleetKey>,
) -> anyhow::Result<(Swarm, TorrentHandle)> {
    let store = Store::open(meta.layout(), root, StoreConfig::default())
        .with_context(|| format!("cannot open the data files under {}", root.display()))?;
    let config = SwarmConfig {
        listen: Some(listen),
        upload_limit: limits.upload_limit,
        download_limit: limits.download_limit,
        ..SwarmConfig::default()
    };
    let swarm = Swarm::start(config).with_context(|| format!("cannot listen on {listen}"))?;
    let mut add = AddTorrent::new(meta, store).with_verified(verified);
    add.session.super_seed = super_seed;
    add.session.fleet = fleet;
    let torrent = swarm.add_torrent(add)?;
    Ok((swarm, torrent))
}

/// Announces a torrent to its HTTP trackers on a thread of its own and dials the peers they
/// return: `started` first, then again at the tracker's interval (sooner while no peer is
/// connected), `completed` when the download finishes, `stopped` when dropped.
pub struct Announcer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// One tier of trackers (BEP 12): tried in order, the one that answers moves to the front.
struct Tier {
    urls: Vec<String>,
    started: bool,
    completed_due: bool,
    next: Instant,
    last: Option<Instant>,
    min_interval: Duration,
    failures: u32,
}

/// What the announcer thread works with.
struct AnnounceCtx {
    torrent: TorrentHandle,
    peer_id: PeerId,
    listen: SocketAddr,
    key: u32,
    dialed: HashSet<SocketAddr>,
}

impl Announcer {
    /// Starts announcing `meta`'s `http://` trackers for `torrent`, announcing the port of
    /// `listen` (the swarm's listen address). `None` when the torrent names no usable tracker.
    pub fn start(
        meta: &Metainfo,
        torrent: TorrentHandle,
        peer_id: PeerId,
        listen: SocketAddr,
    ) -> Option<Self> {
        let mut tiers = Vec::new();
        for tier in meta.trackers() {
            let (http, other): (Vec<String>, Vec<String>) =
                tier.into_iter().partition(|u| u.to_ascii_lowercase().starts_with("http://"));
            for u in other {
                tracing::warn!("skipping tracker {u}: only http:// trackers are supported");
            }
            if !http.is_empty() {
                tiers.push(Tier {
                    urls: http,
                    started: false,
                    completed_due: false,
                    next: Instant::now(),
                    last: None,
                    min_interval: Duration::from_secs(5),
                    failures: 0,
                });
            }
        }
        if tiers.is_empty() {
            return None;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let ctx = AnnounceCtx { torrent, peer_id, listen, key: rand_key(), dialed: HashSet::new() };
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("fg-announce".into())
            .spawn(move || announce_loop(ctx, tiers, &flag))
            .ok()?;
        Some(Announcer { stop, thread: Some(thread) })
    }
}

impl Drop for Announcer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A key for announces from the peer id's randomness (no extra dependency).
fn rand_key() -> u32 {
    let id = PeerId::generate().0;
    u32::from_be_bytes([id[8], id[9], id[10], id[11]]) ^ std::process::id()
}

const ANNOUNCE_TIMEOUT: Duration = Duration::from_secs(10);
const STOPPED_TIMEOUT: Duration = Duration::from_secs(3);
/// Shortest wait between announces while starving for peers.
const STARVING_INTERVAL: Duration = Duration::from_secs(10);

fn announce_loop(mut ctx: AnnounceCtx, mut tiers: Vec<Tier>, stop: &AtomicBool) {
    let mut was_complete = ctx.torrent.is_complete();
    while !stop.load(Ordering::Relaxed) {
        let complete = ctx.torrent.is_complete();
        if complete && !was_complete {
            for t in &mut tiers {
                t.completed_due = true;
                t.next = Instant::now();
            }
        }
        was_complete = complete;
        let starving = !complete && ctx.torrent.stats().peers == 0;
        if starving {
            // Every peer is gone: dial what the trackers tell us again, even if seen before.
            ctx.dialed.clear();
        }
        for t in &mut tiers {
            let now = Instant::now();
            let soon = t.last.map_or(now, |l| l + t.min_interval.max(STARVING_INTERVAL));
            let due = now >= t.next || (starving && t.failures == 0 && now >= soon);
            if due && !stop.load(Ordering::Relaxed) {
                announce_tier(&mut ctx, t);
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // Finished just before stopping (`get --no-seed`): say `completed` first, so trackers count it.
    let completed_late = ctx.torrent.is_complete() && !was_complete;
    for t in tiers.iter_mut().filter(|t| t.started) {
        let Some(url) = t.urls.first() else { continue };
        let mut events = vec![Event::Stopped];
        if t.completed_due || completed_late {
            events.insert(0, Event::Completed);
        }
        for event in events {
            if let Err(e) = announce(url, &request(&ctx, Some(event)), STOPPED_TIMEOUT) {
                tracing::debug!("{} announce to {url} failed: {e}", event.as_str());
            }
        }
    }
}

fn request(ctx: &AnnounceCtx, event: Option<Event>) -> AnnounceRequest {
    let s = ctx.torrent.stats();
    AnnounceRequest {
        info_hash: ctx.torrent.info_hash(),
        peer_id: ctx.peer_id,
        port: ctx.listen.port(),
        uploaded: s.uploaded,
        downloaded: s.downloaded,
        left: s.total_length.saturating_sub(s.bytes_verified),
        event,
        numwant: Some(50),
        key: Some(ctx.key),
    }
}

/// Announces to the first tracker of the tier that answers and dials the new peers it names.
fn announce_tier(ctx: &mut AnnounceCtx, tier: &mut Tier) {
    let event = if !tier.started {
        Some(Event::Started)
    } else if tier.completed_due {
        Some(Event::Completed)
    } else {
        None
    };
    let req = request(ctx, event);
    tier.last = Some(Instant::now());
    for i in 0..tier.urls.len() {
        let Some(url) = tier.urls.get(i).cloned() else { break };
        match announce(&url, &req, ANNOUNCE_TIMEOUT) {
            Ok(resp) => {
                if let Some(w) = &resp.warning {
                    tracing::warn!("tracker {url}: {w}");
                }
                tracing::debug!("tracker {url}: {} peers", resp.peers.len());
                tier.urls.remove(i);
                tier.urls.insert(0, url);
                tier.started = true;
                tier.completed_due = false;
                tier.failures = 0;
                tier.min_interval = Duration::from_secs(resp.min_interval.unwrap_or(5).into());
                let interval =
                    Duration::from_secs(resp.interval.clamp(5, 3600).into()).max(tier.min_interval);
                tier.next = Instant::now() + interval;
                for peer in resp.peers {
                    if !is_self(peer, ctx.listen) && ctx.dialed.insert(peer) {
                        ctx.torrent.connect(peer);
                    }
                }
                return;
            }
            Err(e) => tracing::warn!("announce to {url} failed: {e}"),
        }
    }
    tier.failures = tier.failures.saturating_add(1);
    let backoff = 5u64.saturating_mul(1 << tier.failures.min(6)).min(300);
    tier.next = Instant::now() + Duration::from_secs(backoff);
}

/// Whether `peer` is our own listening address as a tracker would report it.
fn is_self(peer: SocketAddr, listen: SocketAddr) -> bool {
    if peer.ip().is_unspecified() {
        return true;
    }
    peer.port() == listen.port()
        && (peer.ip() == listen.ip() || (listen.ip().is_unspecified() && peer.ip().is_loopback()))
}

#[cfg(test)]
mod tests {
    use super::is_self;

    #[test]
    fn own_address_is_not_dialled() {
        let a = |s: &str| s.parse::<std::net::SocketAddr>().unwrap();
        assert!(is_self(a("127.0.0.1:7000"), a("127.0.0.1:7000")));
        assert!(is_self(a("127.0.0.1:7000"), a("0.0.0.0:7000")));
        assert!(is_self(a("0.0.0.0:9"), a("127.0.0.1:7000")));
        assert!(!is_self(a("127.0.0.1:7001"), a("127.0.0.1:7000")));
        assert!(!is_self(a("10.0.0.1:7000"), a("127.0.0.1:7000")));
    }
}
