//! The relay's pull-and-seed side: an origin that stalls mid-pull, a URL-only task resumed
//! after `kill -9`, BitTorrent demand steering the pull order, and BitTorrent serving before
//! the whole-file threshold.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use floodgate_engine::metainfo::Metainfo;
use floodgate_tests::{bin, free_addr, wait_for, wait_for_listen, ChildGuard};

use crate::relay::{curl, json, path, Fixture, Origin, Relay, PIECE};

/// `fg-origin` on a chosen address (so a relay can be pointed at it before it is up).
fn origin_at(file: &Path, addr: std::net::SocketAddr, extra: &[&str]) -> ChildGuard {
    let child = ChildGuard::spawn(
        Command::new(bin("fg-origin"))
            .args(["--file", path(file), "--listen", &addr.to_string()])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .expect("spawn fg-origin");
    assert!(wait_for_listen(addr, Duration::from_secs(20)), "fg-origin did not listen");
    child
}

/// `floodgate get` of the fixture's torrent from `peer` into `out`, in the background.
fn bt_get(fx: &Fixture, out: &Path, peer: std::net::SocketAddr) -> ChildGuard {
    ChildGuard::spawn(
        Command::new(bin("floodgate"))
            .args(["get", path(&fx.torrent), "-o", path(out), "--peer", &peer.to_string()])
            .args(["--json", "--timeout", "60", "--no-seed", "--listen", &free_addr().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .expect("spawn floodgate get")
}

/// Waits (bounded) for a background `floodgate get` to finish; true if it succeeded.
fn wait_exit(child: &mut ChildGuard, timeout: Duration) -> bool {
    wait_for(timeout, || child.0.try_wait().ok().flatten()).is_some_and(|s| s.success())
}

/// A field of the task as a number.
fn num(task: &serde_json::Value, key: &str) -> u64 {
    task[key].as_u64().unwrap_or(0)
}

#[test]
fn origin_stalling_mid_pull_times_out_retries_and_completes() {
    let len = 6 * 1024 * 1024 + 11;
    let fx = Fixture::new(len);
    // Every third data request gets its head, then not one body byte.
    let origin = Origin::start(&fx.file, &["--stall-every", "3"]);
    let started = Instant::now();
    let relay = Relay::start(&fx, &origin.url(), &fx.dir.path().join("relay"), &["--origin-timeout", "1"]);
    let task = relay.wait_state("complete", Duration::from_secs(60));
    let secs = started.elapsed().as_secs_f64();
    assert!(num(&task, "origin_retries") >= 1, "the stalled request was retried: {task}");
    assert!(secs >= 1.0, "a stall costs the 1 s timeout at least ({secs:.2} s)");
    let (requests, bytes) = origin.stats();
    assert!(requests >= 3, "the third request (a stall) was made: {requests}");
    assert_eq!(bytes, len as u64, "stalled requests sent no body; every byte came once");
    let (code, body) = curl(&relay.data_url(), &[]);
    assert_eq!(code, 200);
    assert!(body == fx.data, "served bytes differ after stalls");
}

#[test]
fn url_only_task_resumes_after_kill_9_without_pulling_verified_pieces_again() {
    let len = 10 * 1024 * 1024 + 3;
    let fx = Fixture::new(len);
    let origin = Origin::start(&fx.file, &["--rate", "2500000"]);
    let data_dir = fx.dir.path().join("relay");
    let mut relay = Relay::start_url_only(&origin.url(), &data_dir);
    let first = relay.task();
    let (pieces, piece_len) = (num(&first, "pieces"), num(&first, "piece_length"));
    wait_for(Duration::from_secs(30), || {
        Some(()).filter(|_| num(&relay.task(), "pieces_verified") >= pieces * 2 / 5)
    })
    .expect("the pull makes progress");
    relay.child.kill();
    // Let the origin notice the dead connections (bytes it wrote meanwhile still count).
    std::thread::sleep(Duration::from_millis(500));
    let (_, before) = origin.stats();
    assert!(before < len as u64, "killed mid-pull");

    let relay = Relay::start_url_only(&origin.url(), &data_dir);
    let task = relay.wait_state("complete", Duration::from_secs(60));
    let resumed = num(&task, "resumed_pieces");
    assert!(resumed >= pieces / 3, "most landed pieces survived kill -9: {task}");
    let (_, after) = origin.stats();
    let second = after - before;
    assert!(
        second <= (pieces - resumed) * piece_len,
        "re-pulled {second} bytes for {} missing pieces of {piece_len}",
        pieces - resumed
    );
    let (code, body) = curl(&relay.data_url(), &[]);
    assert_eq!(code, 200);
    assert!(body == fx.data, "resumed data differs");
    // The torrent built at the end has the right hash for resumed pieces too.
    let torrent_url = format!("http://{}/tasks/{}.torrent", relay.http, relay.id);
    let torrent = wait_for(Duration::from_secs(10), || Some(curl(&torrent_url, &[])).filter(|r| r.0 == 200))
        .expect("the torrent is published")
        .1;
    let meta = Metainfo::from_bytes(&torrent).expect("a valid torrent");
    for (i, h) in meta.piece_hashes().iter().enumerate() {
        let chunk = &fx.data[i * piece_len as usize..((i + 1) * piece_len as usize).min(len)];
        assert_eq!(*h, floodgate_engine::hash::sha1(chunk), "piece {i}");
    }
}

#[test]
fn pieces_no_bittorrent_peer_has_are_pulled_first() {
    let len = 8 * 1024 * 1024;
    let half = len / 2;
    let fx = Fixture::new(len);
    // The origin is not up yet: the relay retries its probe while the client connects.
    let origin_addr = free_addr();
    let relay =
        Relay::start(&fx, &format!("http://{origin_addr}/blob.bin"), &fx.dir.path().join("relay"), &[]);
    // A client that has the first half already (the second half zeroed).
    let out = fx.dir.path().join("client");
    std::fs::create_dir_all(&out).expect("mkdir");
    let mut partial = fx.data[..half].to_vec();
    partial.resize(len, 0);
    std::fs::write(out.join("blob.bin"), &partial).expect("write partial file");
    let mut client = bt_get(&fx, &out, relay.bt);
    wait_for(Duration::from_secs(10), || Some(()).filter(|_| num(&relay.task(), "peers") >= 1))
        .expect("the client connected to the relay");
    // Its bitfield follows the handshake at once; leave it a moment to land.
    std::thread::sleep(Duration::from_millis(300));
    let _origin = origin_at(&fx.file, origin_addr, &["--rate", "4000000"]);

    relay.wait_state("complete", Duration::from_secs(60));
    assert!(wait_exit(&mut client, Duration::from_secs(30)), "floodgate get failed");
    assert!(std::fs::read(out.join("blob.bin")).expect("downloaded file") == fx.data, "BT download differs");
    let log = json(&format!("http://{origin_addr}/__log")).expect("origin request log");
    let starts: Vec<u64> = log.as_array().expect("a list").iter().filter_map(|r| r[0].as_u64()).collect();
    let first_low = starts.iter().position(|&s| s < half as u64).expect("the first half was pulled");
    let high_after = starts[first_low..].iter().filter(|&&s| s >= half as u64).count();
    assert!(
        first_low > 0 && high_after == 0,
        "every request for the half the peer lacks came before any for the half it has: {starts:?}"
    );
    // Sanity: the log covers the file once, in whole pieces.
    let total: u64 = log.as_array().expect("a list").iter().map(|r| num_at(r, 1) - num_at(r, 0)).sum();
    assert_eq!(total, len as u64);
    assert!(starts.iter().all(|s| s % PIECE == 0));
}

fn num_at(v: &serde_json::Value, i: usize) -> u64 {
    v[i].as_u64().unwrap_or(0)
}

/// BitTorrent peers only request pieces the relay announced, each a specific range, so they are
/// served at once, like an HTTP Range request; the threshold holds back whole-file GETs only.
#[test]
fn bittorrent_is_served_before_the_whole_file_threshold() {
    let len = 16 * 1024 * 1024;
    let fx = Fixture::new(len);
    // 300 KB/s: the 10% threshold (1.6 MiB) takes about 5.6 s.
    let origin = Origin::start(&fx.file, &["--rate", "300000"]);
    let relay = Relay::start(&fx, &origin.url(), &fx.dir.path().join("relay"), &["--serve-threshold", "10"]);
    let threshold = len as u64 / 10;
    let _client = bt_get(&fx, &fx.dir.path().join("client"), relay.bt);
    let task = wait_for(Duration::from_secs(30), || Some(relay.task()).filter(|t| num(t, "bt_bytes") > 0))
        .expect("the client got bytes over BitTorrent");
    assert!(
        num(&task, "bytes_verified") < threshold,
        "BitTorrent served before the threshold was reached: {task}"
    );
    // Meanwhile a whole-file GET waits for the threshold; a range is served at once.
    let (code, _) = curl(&relay.data_url(), &["--max-time", "1"]);
    assert_eq!(code, 0, "the whole-file GET waited (curl gave up)");
    let (code, body) = curl(&relay.data_url(), &["-r", "0-99"]);
    assert_eq!(code, 206);
    assert!(body == fx.data[..100]);
    assert!(num(&relay.task(), "bytes_verified") < threshold, "still under the threshold");
}

/// A URL-only pull killed mid-way, then the origin file changes (same length, new ETag) before
/// the restart: the resumed pieces belong to the old file and must be dropped, never mixed
/// with the new bytes.
#[test]
fn url_only_resume_starts_over_when_the_origin_file_changed() {
    let len = 8 * 1024 * 1024 + 5;
    let fx = Fixture::new(len);
    let addr = free_addr();
    let url = format!("http://{addr}/blob.bin");
    let data_dir = fx.dir.path().join("relay");
    let origin = origin_at(&fx.file, addr, &["--rate", "2500000"]);
    let mut relay = Relay::start_url_only(&url, &data_dir);
    let pieces = num(&relay.task(), "pieces");
    wait_for(Duration::from_secs(30), || {
        Some(()).filter(|_| num(&relay.task(), "pieces_verified") >= pieces / 3)
    })
    .expect("the pull makes progress");
    relay.child.kill();
    drop(origin);

    // New content, same length, a different modification time (so a different ETag).
    let new: Vec<u8> = fx.data.iter().map(|b| b ^ 0x5a).collect();
    std::fs::write(&fx.file, &new).expect("rewrite the origin file");
    let later = std::time::SystemTime::now() + Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&fx.file)
        .and_then(|f| f.set_modified(later))
        .expect("set mtime");
    let _origin = origin_at(&fx.file, addr, &[]);

    let relay = Relay::start_url_only(&url, &data_dir);
    let task = relay.wait_state("complete", Duration::from_secs(60));
    assert_eq!(num(&task, "resumed_pieces"), 0, "old pieces were dropped: {task}");
    let (code, body) = curl(&relay.data_url(), &[]);
    assert_eq!(code, 200);
    assert!(body == new, "the relay serves a mix of the old and the new file");
}
