//! What `seed` and `get` share: opening the store and the swarm, and resolving magnet links
//! (announcing is `super::announcer`).

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use floodgate_engine::http::redact;
use floodgate_engine::magnet::Magnet;
use floodgate_engine::metainfo::Metainfo;
use floodgate_engine::peer::{FleetKey, SuperSeeding};
use floodgate_engine::piece_map::Bitfield;
use floodgate_engine::store::{Store, StoreConfig};
use floodgate_engine::swarm::magnet::{fetch_metadata, FetchConfig};
use floodgate_engine::swarm::{AddTorrent, Swarm, SwarmConfig, TorrentHandle};
use floodgate_engine::tracker::AnnounceRequest;
use floodgate_engine::types::PeerId;

use super::announcer::{is_usable, rand_key, Schedule, TrackerIo};

/// Fetches the metadata of a magnet link (BEP 9) from `extra` peers, the link's `x.pe` peers and
/// the peers its `http://` and `https://` trackers name, within `timeout`. Returns the metainfo (with the link's
/// trackers as its tracker tier) and the link's `x.pe` peers.
pub(super) fn resolve_magnet(
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
    let mut io = TrackerIo::new().context("cannot start the tracker client")?;
    for url in magnet.trackers.iter().filter(|u| is_usable(u)) {
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
        match io.announce(url, &req, Schedule::TORRENT.timeout.min(timeout)) {
            Ok(resp) => peers.extend(resp.peers.into_iter().filter(|p| !p.ip().is_unspecified())),
            Err(e) => tracing::warn!("announce to {} failed: {e:#}", redact(url)),
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
pub(crate) struct Limits {
    /// Upload limit, bytes per second (0 = unlimited).
    #[arg(long, default_value_t = 0)]
    pub upload_limit: u64,
    /// Download limit, bytes per second (0 = unlimited).
    #[arg(long, default_value_t = 0)]
    pub download_limit: u64,
}

/// Fleet membership from the command line.
#[derive(clap::Args, Debug, Clone, Default)]
pub(crate) struct Fleet {
    /// Secret shared by cooperating Floodgate peers: peers proving they hold it (in the BEP 10
    /// handshake, bound to both peer ids; the secret never travels) are served without
    /// tit-for-tat, outside the upload slots. Agents derive it from their distribution.
    #[arg(long, env = "FLOODGATE_FLEET_KEY", hide_env_values = true)]
    pub fleet_key: Option<String>,
}

impl Fleet {
    /// The key, if one was given.
    pub(crate) fn key(&self) -> Option<FleetKey> {
        self.fleet_key.as_deref().map(|s| FleetKey::from_secret(s.as_bytes()))
    }
}

/// Starts a swarm listening on `listen` and adds the torrent with its store under `root`
/// (super-seeding, BEP 16, as `super_seed` says; fleet peers recognised with `fleet`).
pub(super) fn start(
    meta: &Metainfo,
    root: &Path,
    listen: SocketAddr,
    verified: Bitfield,
    limits: Limits,
    super_seed: SuperSeeding,
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
