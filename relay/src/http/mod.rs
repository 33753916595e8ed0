//! The relay's HTTP server: Range-served task data, `.torrent` files, `/tasks`, `/metrics`.
//!
//! Hand-written HTTP/1.1 over the `engine::http` sans-IO parser, on tokio: a relay serves
//! thousands of slow readers, each bounded in memory (one head buffer of at most 16 KiB; bodies
//! go from the page cache to the socket with `sendfile`, cold ranges read in first off the
//! runtime: `warm.rs`) and in time (a deadline for each whole
//! request head, keep-alive idle time, and a minimum pace for bodies). Per-IP connection and
//! request-rate limits keep one client from taking the server.

mod body;
mod config;
mod conn;
mod data;
mod framing;
mod hashes;
mod limits;
mod metrics;
mod pages;
mod response;
mod tracker;
mod validators;
mod warm;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::RwLock;
use tokio::net::TcpListener;

use crate::task::Task;
pub(crate) use config::{HttpArgs, ServerConfig};
use limits::PerIpLimits;
pub(crate) use tracker::{Tracker, SELF_ANNOUNCE_EVERY};
use validators::Validators;

/// The answer to a connection over its IP's limit, written without waiting before closing.
const TOO_MANY_CONNECTIONS: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\n\
    content-length: 21\r\nconnection: close\r\nretry-after: 1\r\n\r\ntoo many connections\n";

/// A task as the server serves it: with its validators, fixed when the task was added.
pub(super) struct Served {
    task: Arc<Task>,
    validators: Validators,
}

impl Served {
    fn new(task: Arc<Task>) -> Self {
        // Last-Modified: when the task started (its bytes are fixed by the task id from then on).
        let started = SystemTime::now().checked_sub(task.started.elapsed()).unwrap_or_else(SystemTime::now);
        let validators = Validators::new(task.etag(), started);
        Served { task, validators }
    }
}

/// What every connection shares.
pub(crate) struct Server {
    /// The relay's tasks (added and removed at run time in ctl mode).
    tasks: RwLock<Vec<Arc<Served>>>,
    /// Limits.
    pub config: ServerConfig,
    /// The built-in tracker (`/announce`, `/scrape`).
    pub tracker: Tracker,
    limits: PerIpLimits,
    /// Reads cold ranges into the page cache off the runtime, bounded.
    warm: warm::Warm,
}

impl Server {
    /// A server over `tasks`.
    pub(crate) fn new(tasks: Vec<Arc<Task>>, config: ServerConfig) -> Self {
        let server = Server {
            tasks: RwLock::new(Vec::new()),
            limits: PerIpLimits::new(config.per_ip_conns, config.per_ip_rate),
            config,
            tracker: Tracker::default(),
            warm: warm::Warm::default(),
        };
        for task in tasks {
            server.add_task(task);
        }
        server
    }

    /// A snapshot of the current tasks.
    pub(crate) fn tasks(&self) -> Vec<Arc<Task>> {
        self.tasks.read().iter().map(|s| s.task.clone()).collect()
    }

    /// Adds `task` (replacing a task with the same id); its tracker tracks the task's torrent.
    /// A URL-only task's torrent comes later: see [`Server::task_seeding`].
    pub(crate) fn add_task(&self, task: Arc<Task>) {
        self.task_seeding(&task);
        let served = Arc::new(Served::new(task));
        let mut tasks = self.tasks.write();
        tasks.retain(|s| !s.task.id.eq_ignore_ascii_case(&served.task.id));
        tasks.push(served);
    }

    /// Tells the tracker to track `task`'s torrent, if it has one yet (a URL-only task gets its
    /// torrent when its pull completes).
    pub(crate) fn task_seeding(&self, task: &Task) {
        for t in [task.torrent(), task.provisional()].into_iter().flatten() {
            self.tracker.allow(t.info_hash());
        }
    }

    /// Removes the task with id `id`, if any, and stops tracking its torrent.
    pub(crate) fn remove_task(&self, id: &str) {
        let mut tasks = self.tasks.write();
        tasks.retain(|s| {
            let removed = s.task.id.eq_ignore_ascii_case(id);
            for t in [s.task.torrent(), s.task.provisional()].into_iter().flatten().filter(|_| removed) {
                self.tracker.disallow(&t.info_hash());
            }
            !removed
        });
    }

    /// The task with id `id`.
    pub(crate) fn task(&self, id: &str) -> Option<Arc<Task>> {
        self.served(id).map(|s| s.task.clone())
    }

    fn served(&self, id: &str) -> Option<Arc<Served>> {
        // A finished URL-only task is found by its info-hash too (clients that have its
        // `.torrent` name it so).
        let named = |s: &&Arc<Served>| {
            s.task.id.eq_ignore_ascii_case(id)
                || s.task.torrent().is_some_and(|t| t.info_hash().to_hex().eq_ignore_ascii_case(id))
        };
        self.tasks.read().iter().find(named).cloned()
    }

    fn admit(&self, ip: IpAddr) -> bool {
        self.limits.admit(ip)
    }

    fn leave(&self, ip: IpAddr) {
        self.limits.leave(ip)
    }

    /// Whether `ip` may make one more request now.
    fn allow_request(&self, ip: IpAddr) -> bool {
        self.limits.allow_request(ip)
    }
}

/// Accepts connections on `listener` forever.
pub(crate) async fn serve(listener: TcpListener, server: Arc<Server>) {
    loop {
        let (sock, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let ip = peer.ip();
        if !server.admit(ip) {
            tracing::debug!(%peer, "per-IP connection limit; closing");
            // A fresh socket's send buffer is empty: this small write never waits.
            let _ = sock.try_write(TOO_MANY_CONNECTIONS);
            continue;
        }
        let server = server.clone();
        tokio::spawn(async move {
            let _ = sock.set_nodelay(true);
            if let Err(e) = conn::handle(sock, peer, &server).await {
                tracing::debug!(%peer, error = %e, "connection ended");
            }
            server.leave(ip);
        });
    }
}

/// Binds the HTTP listener.
pub(crate) async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}
