//! A standalone tracker: a blocking accept loop serving a [`TrackerServer`] over HTTP/1.1.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::{TrackerConfig, TrackerServer};
use crate::http::status::reason;
use crate::http::{parse_request, MAX_HEAD_BYTES};

/// Most connections served at once; more are closed at once.
const MAX_CONNECTIONS: usize = 256;
/// How long one connection may take to send its request and read the answer.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);

/// A running tracker on its own threads; stops when dropped.
pub struct TrackerRunner {
    addr: SocketAddr,
    server: Arc<Mutex<TrackerServer>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TrackerRunner {
    /// Binds `addr` and serves `/announce` and `/scrape` there (one request per connection).
    pub fn start(addr: SocketAddr, config: TrackerConfig) -> std::io::Result<TrackerRunner> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let server = Arc::new(Mutex::new(TrackerServer::new(config)));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (server.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("fg-tracker".into())
            .spawn(move || accept_loop(&listener, &s, &st))?;
        Ok(TrackerRunner { addr, server, stop, thread: Some(thread) })
    }

    /// The address the tracker listens on (the real port when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The tracker's state, shared with the serving threads.
    pub fn server(&self) -> &Arc<Mutex<TrackerServer>> {
        &self.server
    }
}

impl Drop for TrackerRunner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, server: &Arc<Mutex<TrackerServer>>, stop: &AtomicBool) {
    let active = Arc::new(AtomicUsize::new(0));
    let mut last_purge = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, peer)) => {
                if active.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
                    continue;
                }
                active.fetch_add(1, Ordering::Relaxed);
                let (server, active) = (server.clone(), active.clone());
                let spawned = std::thread::Builder::new().name("fg-tracker-conn".into()).spawn({
                    let active = active.clone();
                    move || {
                        let _ = serve_one(stream, peer, &server);
                        active.fetch_sub(1, Ordering::Relaxed);
                    }
                });
                if spawned.is_err() {
                    active.fetch_sub(1, Ordering::Relaxed);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
        if last_purge.elapsed() >= Duration::from_secs(30) {
            last_purge = Instant::now();
            server.lock().purge_expired(last_purge);
        }
    }
}

/// Reads one request head, answers it, closes.
fn serve_one(mut stream: TcpStream, peer: SocketAddr, server: &Mutex<TrackerServer>) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(CONNECTION_TIMEOUT))?;
    stream.set_write_timeout(Some(CONNECTION_TIMEOUT))?;
    let deadline = Instant::now() + CONNECTION_TIMEOUT;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let (status, body) = loop {
        match parse_request(&buf) {
            Ok(Some((head, _))) => break server.lock().handle(&head.target, peer.ip(), Instant::now()),
            Ok(None) => {}
            Err(_) => break (400, b"bad request".to_vec()),
        }
        if Instant::now() >= deadline || buf.len() > MAX_HEAD_BYTES {
            return Ok(());
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
    };
    let reason = reason(status);
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(&body)?;
    stream.flush()
}
