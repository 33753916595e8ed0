//! Task setup, shared by standalone and ctl mode: a hash-known task from its `.torrent`, a
//! URL-only task from its origin, seeding a finished URL-only task, and keeping the relay
//! registered as a seed in its own tracker.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use anyhow::{bail, Context};
use floodgate_engine::hash::PieceHashes;
use floodgate_engine::layout::Layout;
use floodgate_engine::metainfo::{
    piece_length_for, provisional_info_hash, url_file_name, url_task_id, Metainfo,
};
use floodgate_engine::peer::SuperSeeding;
use floodgate_engine::piece_map::Bitfield;
use floodgate_engine::store::{verified_on_disk, Store, StoreConfig};
use floodgate_engine::swarm::{AddTorrent, Swarm};

use crate::http;
use crate::origin::HttpUrl;
use crate::task::Task;

/// What setting up a task needs from the relay's configuration.
#[derive(Clone, Debug)]
pub(crate) struct TaskOptions {
    /// Directory holding task data and state.
    pub data_dir: PathBuf,
    /// BitTorrent connections at once, per torrent.
    pub max_peers: usize,
    /// Super-seeding (BEP 16) for the task's torrent.
    pub super_seed: SuperSeeding,
    /// Percent of the file verified before whole-file requests are served.
    pub serve_threshold: u8,
}

/// Keeps the relay registered as a seed of each task's torrent in its own tracker.
pub(crate) async fn announce_self(
    server: Arc<http::Server>,
    peer_id: floodgate_engine::types::PeerId,
    bt: SocketAddr,
) {
    loop {
        let tasks = server.tasks();
        for task in &tasks {
            for t in [task.torrent(), task.provisional()].into_iter().flatten() {
                server.tracker.register_seed(t.info_hash(), peer_id, bt);
            }
        }
        // Sooner while a URL-only task may still be waiting for its torrent.
        let wait = if tasks.iter().all(|t| t.torrent().is_some()) {
            http::SELF_ANNOUNCE_EVERY
        } else {
            std::time::Duration::from_secs(1)
        };
        tokio::time::sleep(wait).await;
    }
}

/// A hash-known task: the torrent's data under `<data-dir>/<info-hash>/`, resumed from the
/// pieces already correct there.
pub(crate) fn known_task(
    opts: &TaskOptions,
    swarm: &Swarm,
    origin: String,
    torrent_path: &Path,
) -> anyhow::Result<Task> {
    let bytes =
        std::fs::read(torrent_path).with_context(|| format!("cannot read {}", torrent_path.display()))?;
    let meta = Metainfo::from_bytes(&bytes)
        .with_context(|| format!("{} is not a valid .torrent", torrent_path.display()))?;
    let root = opts.data_dir.join(meta.info_hash().to_hex());
    std::fs::create_dir_all(&root).with_context(|| format!("cannot create {}", root.display()))?;
    let verified = verified_on_disk(&meta, &root);
    let resumed = verified.count_ones();
    let store = Store::open(meta.layout(), &root, StoreConfig::default())
        .with_context(|| format!("cannot open the data files under {}", root.display()))?;
    let mut add = AddTorrent::new(&meta, store).with_verified(verified);
    add.max_peers = opts.max_peers;
    add.session.super_seed = opts.super_seed;
    let torrent = swarm.add_torrent(add)?;
    torrent.disable_peer_downloads();
    let task = Task::known(origin, &meta, torrent, opts.serve_threshold);
    task.counters.resumed_pieces.store(u64::from(resumed), Ordering::Relaxed);
    Ok(task)
}

/// A URL-only task: id and file name from the URL, pieces sized for the length (so every relay
/// of the URL lays it out the same way), data under `<data-dir>/<id>/`. With `provisional`
/// (the distribution's id) its landed pieces are also offered in the distribution's
/// provisional swarm, where its clients trade them during the pull.
pub(crate) fn url_only_task(
    opts: &TaskOptions,
    swarm: &Swarm,
    origin: String,
    url: &HttpUrl,
    len: u64,
    provisional: Option<&str>,
) -> anyhow::Result<Task> {
    let id = url_task_id(&origin);
    let name = url_file_name(&url.target);
    if len == 0 {
        bail!("the origin file is empty");
    }
    let layout =
        Layout::single(name.clone(), len, piece_length_for(len)).context("cannot lay out the file")?;
    let root = opts.data_dir.join(&id);
    std::fs::create_dir_all(&root).with_context(|| format!("cannot create {}", root.display()))?;
    let store = Store::open(layout.clone(), &root, StoreConfig::default())
        .with_context(|| format!("cannot open the data files under {}", root.display()))?;
    let journal = opts.data_dir.join(format!("{id}.pieces"));
    let task = Task::url_only(id, origin, name, store, opts.serve_threshold, &journal)
        .with_context(|| format!("cannot open the piece journal {}", journal.display()))?;
    if let (Some(key), Some(growing)) = (provisional, task.growing()) {
        // A second handle on the same files: the pull writes, the swarm reads verified pieces.
        let store = Store::open(layout.clone(), &root, StoreConfig::default())
            .with_context(|| format!("cannot open the data files under {}", root.display()))?;
        let hashes = PieceHashes::partial(&growing.hashes());
        let mut add = AddTorrent::provisional(provisional_info_hash(key), layout, hashes, store)
            .with_verified(growing.landed());
        add.max_peers = opts.max_peers;
        add.session.super_seed = opts.super_seed;
        // Everyone in the provisional swarm is of the distribution: a fleet.
        add.session.fleet = Some(floodgate_engine::peer::FleetKey::for_distribution(key));
        let torrent = swarm.add_torrent(add)?;
        torrent.disable_peer_downloads();
        task.set_provisional(torrent);
    }
    Ok(task)
}

/// Builds the finished URL-only task's torrent (url-list: this relay), saves it, and seeds it.
pub(crate) fn seed_url_only(
    task: &Task,
    swarm: &Swarm,
    web_seed: &str,
    out: &Path,
    max_peers: usize,
    super_seed: SuperSeeding,
) -> anyhow::Result<()> {
    let growing = task.growing().context("not a URL-only task")?;
    let (file, meta) = growing.build_torrent(&task.name, web_seed).context("hashes missing")?;
    std::fs::write(out, &file).with_context(|| format!("cannot write {}", out.display()))?;
    let root = swarm_root(out, &task.id);
    let store = Store::open(meta.layout(), &root, StoreConfig::default())?;
    let mut add = AddTorrent::new(&meta, store).with_verified(Bitfield::full(meta.piece_count()));
    add.max_peers = max_peers;
    add.session.super_seed = super_seed;
    let torrent = swarm.add_torrent(add)?;
    torrent.disable_peer_downloads();
    tracing::info!(task = %task.id, info_hash = %meta.info_hash(), torrent = %out.display(), "URL-only task complete; seeding");
    task.set_seeding(file, torrent);
    Ok(())
}

/// The data directory of task `id`, beside its saved torrent.
fn swarm_root(torrent_out: &Path, id: &str) -> PathBuf {
    torrent_out.parent().map_or_else(|| PathBuf::from(id), |d| d.join(id))
}
