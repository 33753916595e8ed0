//! `floodgate-relay` in standalone mode against the `fg-origin` simulator: serving over HTTP
//! Range and BitTorrent while the pull runs, origin faults, and resume after `kill -9`.

mod bt_client;
mod faults;
mod mirrors;
mod resume;
mod serve;
mod url_only;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use floodgate_tests::{bin, free_addr, wait_for, wait_for_listen, ChildGuard};
use rand::RngCore;

/// Piece size of the test torrents.
pub(crate) const PIECE: u64 = 64 * 1024;

/// A test file, its torrent, and a scratch directory.
pub(crate) struct Fixture {
    pub dir: tempfile::TempDir,
    pub data: Vec<u8>,
    pub file: PathBuf,
    pub torrent: PathBuf,
}

impl Fixture {
    /// `len` random bytes and a torrent of them with 64 KiB pieces.
    pub(crate) fn new(len: usize) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut data = vec![0u8; len];
        rand::rng().fill_bytes(&mut data);
        let file = dir.path().join("blob.bin");
        std::fs::write(&file, &data).expect("write test file");
        let torrent = dir.path().join("blob.torrent");
        let status = Command::new(bin("floodgate"))
            .args(["make-torrent", path(&file), "-o", path(&torrent), "--piece-size", &PIECE.to_string()])
            .stdout(Stdio::null())
            .status()
            .expect("run make-torrent");
        assert!(status.success(), "make-torrent failed");
        Fixture { dir, data, file, torrent }
    }
}

pub(crate) fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// A running `fg-origin`.
pub(crate) struct Origin {
    pub addr: SocketAddr,
    _child: ChildGuard,
}

impl Origin {
    /// Starts `fg-origin` on `file` with extra flags.
    pub(crate) fn start(file: &Path, extra: &[&str]) -> Self {
        let mut child = ChildGuard::spawn(
            Command::new(bin("fg-origin"))
                .args(["--file", path(file), "--listen", "127.0.0.1:0", "--print-addr"])
                .args(extra)
                .stdout(Stdio::piped())
                .stderr(Stdio::null()),
        )
        .expect("spawn fg-origin");
        let line = first_line(&mut child, Duration::from_secs(20)).expect("fg-origin printed its address");
        let addr = line.trim().parse().expect("an address");
        Origin { addr, _child: child }
    }

    /// `GET /__stats` -> (requests, body_bytes).
    pub(crate) fn stats(&self) -> (u64, u64) {
        let v = json(&format!("http://{}/__stats", self.addr)).expect("origin stats");
        (v["requests"].as_u64().unwrap_or(0), v["body_bytes"].as_u64().unwrap_or(0))
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}/blob.bin", self.addr)
    }
}

/// A running relay.
pub(crate) struct Relay {
    pub id: String,
    pub http: SocketAddr,
    pub bt: SocketAddr,
    pub child: ChildGuard,
}

impl Relay {
    /// Starts `floodgate-relay` for the fixture's torrent pulling from `origin`.
    pub(crate) fn start(fx: &Fixture, origin: &str, data_dir: &Path, extra: &[&str]) -> Self {
        Relay::launch(origin, Some(&fx.torrent), data_dir, extra)
    }

    /// Starts a URL-only `floodgate-relay` (no .torrent: it hashes pieces as they land).
    pub(crate) fn start_url_only(origin: &str, data_dir: &Path) -> Self {
        Relay::launch(origin, None, data_dir, &[])
    }

    /// Starts a relay for `torrent` with its HTTP server (and tracker) on `http`.
    pub(crate) fn start_at(torrent: &Path, origin: &str, data_dir: &Path, http: SocketAddr) -> Self {
        Relay::launch_at(origin, Some(torrent), data_dir, &[], http)
    }

    fn launch(origin: &str, torrent: Option<&Path>, data_dir: &Path, extra: &[&str]) -> Self {
        Relay::launch_at(origin, torrent, data_dir, extra, free_addr())
    }

    fn launch_at(
        origin: &str,
        torrent: Option<&Path>,
        data_dir: &Path,
        extra: &[&str],
        http: SocketAddr,
    ) -> Self {
        let bt = free_addr();
        let torrent_args = torrent.map(|t| vec!["--torrent", path(t)]).unwrap_or_default();
        let mut child = ChildGuard::spawn(
            Command::new(bin("floodgate-relay"))
                .args(["--origin", origin, "--data-dir", path(data_dir)])
                .args(torrent_args)
                .args(["--listen-bt", &bt.to_string(), "--listen-http", &http.to_string()])
                .args(extra)
                .stdout(Stdio::piped())
                .stderr(Stdio::null()),
        )
        .expect("spawn floodgate-relay");
        let id = first_line(&mut child, Duration::from_secs(30)).expect("relay printed the task id");
        let id = id.trim().to_string();
        assert_eq!(id.len(), 40, "task id is 40 hex digits: {id:?}");
        assert!(wait_for_listen(http, Duration::from_secs(20)), "relay HTTP did not listen");
        Relay { id, http, bt, child }
    }

    /// This relay's task from `GET /tasks`.
    pub(crate) fn task(&self) -> serde_json::Value {
        let list = json(&format!("http://{}/tasks", self.http)).expect("GET /tasks");
        list.as_array()
            .and_then(|a| a.iter().find(|t| t["id"] == self.id.as_str()).cloned())
            .expect("the task is listed")
    }

    /// Waits (bounded) until the task's state is `state`.
    pub(crate) fn wait_state(&self, state: &str, timeout: Duration) -> serde_json::Value {
        wait_for(timeout, || Some(self.task()).filter(|t| t["state"] == state))
            .unwrap_or_else(|| panic!("task never reached {state}: {}", self.task()))
    }

    pub(crate) fn data_url(&self) -> String {
        format!("http://{}/tasks/{}/data", self.http, self.id)
    }
}

/// The first stdout line of a child, bounded in time.
fn first_line(child: &mut ChildGuard, timeout: Duration) -> Option<String> {
    let out = child.0.stdout.take()?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(out).read_line(&mut line);
        let _ = tx.send(line);
    });
    rx.recv_timeout(timeout).ok().filter(|l| !l.is_empty())
}

/// `curl` a URL (bounded); returns (status, body).
pub(crate) fn curl(url: &str, args: &[&str]) -> (u16, Vec<u8>) {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "60", "-w", "\n%{http_code}"])
        .args(args)
        .arg(url)
        .output()
        .expect("run curl");
    let mut body = out.stdout;
    let split = body.iter().rposition(|&b| b == b'\n').unwrap_or(0);
    let code = String::from_utf8_lossy(&body[split + 1..]).trim().parse().unwrap_or(0);
    body.truncate(split);
    (code, body)
}

/// `curl` a JSON document.
pub(crate) fn json(url: &str) -> Option<serde_json::Value> {
    let (code, body) = curl(url, &[]);
    (code == 200).then(|| serde_json::from_slice(&body).ok()).flatten()
}

/// Seeds the relay's tracker counts for `info_hash` (hex) in a `/scrape`, if it answers.
pub(crate) fn seeds_in_scrape(http: SocketAddr, info_hash: &str) -> Option<u64> {
    let raw: Vec<u8> = (0..20)
        .map(|i| u8::from_str_radix(info_hash.get(2 * i..2 * i + 2)?, 16).ok())
        .collect::<Option<_>>()?;
    let encoded: String = raw.iter().map(|b| format!("%{b:02X}")).collect();
    let (code, body) = curl(&format!("http://{http}/scrape?info_hash={encoded}"), &[]);
    if code != 200 {
        return None;
    }
    let at = body.windows(11).position(|w| w == b"8:completei")? + 11;
    let digits: String = body[at..].iter().take_while(|b| b.is_ascii_digit()).map(|&b| b as char).collect();
    digits.parse().ok()
}
