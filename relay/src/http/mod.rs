//! The relay's HTTP server: Range-served task data, `.torrent` files, `/tasks`, `/metrics`.
//!
//! Hand-written HTTP/1.1 over the `engine::http` sans-IO parser, on tokio: a relay serves
//! thousands of slow readers, each bounded in memory (one head buffer of at most 16 KiB, one
//! body chunk at a time) and in time (head, idle and write timeouts). Per-IP connection and
//! request-rate limits keep one client from taking the server.

mod conn;
mod data;
mod pages;
mod tracker;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use floodgate_engine::ratelimit::TokenBucket;
use parking_lot::{Mutex, RwLock};
use tokio::net::TcpListener;

use crate::task::Task;
pub use tracker::{Tracker, SELF_ANNOUNCE_EVERY};

/// Limits of the HTTP server.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Connections one IP address may hold.
    pub per_ip_conns: usize,
    /// Requests per second one IP address may make (burst the same).
    pub per_ip_rate: u64,
    /// Time for a client to send a request head (and keep-alive idle time).
    pub head_timeout: Duration,
    /// Time for one body chunk to be written (slow-client timeout).
    pub write_timeout: Duration,
    /// How long a request waits for bytes not pulled yet.
    pub data_wait: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            per_ip_conns: 64,
            per_ip_rate: 200,
            head_timeout: Duration::from_secs(15),
            write_timeout: Duration::from_secs(30),
            data_wait: Duration::from_secs(60),
        }
    }
}

struct PerIp {
    conns: usize,
    requests: TokenBucket,
}

/// What every connection shares.
pub struct Server {
    /// The relay's tasks (added and removed at run time in ctl mode).
    tasks: RwLock<Vec<Arc<Task>>>,
    /// Limits.
    pub config: ServerConfig,
    /// The built-in tracker (`/announce`, `/scrape`).
    pub tracker: Tracker,
    ips: Mutex<HashMap<IpAddr, PerIp>>,
}

impl Server {
    /// A server over `tasks`.
    pub fn new(tasks: Vec<Arc<Task>>, config: ServerConfig) -> Self {
        Server {
            tasks: RwLock::new(tasks),
            config,
            tracker: Tracker::default(),
            ips: Mutex::new(HashMap::new()),
        }
    }

    /// A snapshot of the current tasks.
    pub fn tasks(&self) -> Vec<Arc<Task>> {
        self.tasks.read().clone()
    }

    /// Adds `task` (replacing a task with the same id).
    pub fn add_task(&self, task: Arc<Task>) {
        let mut tasks = self.tasks.write();
        tasks.retain(|t| !t.id.eq_ignore_ascii_case(&task.id));
        tasks.push(task);
    }

    /// Removes the task with id `id`, if any.
    pub fn remove_task(&self, id: &str) {
        self.tasks.write().retain(|t| !t.id.eq_ignore_ascii_case(id));
    }

    /// The task with id `id`.
    pub fn task(&self, id: &str) -> Option<Arc<Task>> {
        self.tasks.read().iter().find(|t| t.id.eq_ignore_ascii_case(id)).cloned()
    }

    fn admit(&self, ip: IpAddr) -> bool {
        let mut ips = self.ips.lock();
        let rate = self.config.per_ip_rate;
        let e = ips
            .entry(ip)
            .or_insert_with(|| PerIp { conns: 0, requests: TokenBucket::new(rate, rate, Instant::now()) });
        if e.conns >= self.config.per_ip_conns {
            return false;
        }
        e.conns += 1;
        true
    }

    fn leave(&self, ip: IpAddr) {
        let mut ips = self.ips.lock();
        if let Some(e) = ips.get_mut(&ip) {
            e.conns = e.conns.saturating_sub(1);
            if e.conns == 0 {
                ips.remove(&ip);
            }
        }
    }

    /// Whether `ip` may make one more request now.
    fn allow_request(&self, ip: IpAddr) -> bool {
        self.ips.lock().get(&ip).is_none_or(|e| e.requests.try_take(1, Instant::now()))
    }
}

/// Accepts connections on `listener` forever.
pub async fn serve(listener: TcpListener, server: Arc<Server>) {
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
            drop(sock);
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
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}
