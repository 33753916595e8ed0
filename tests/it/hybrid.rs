//! The hybrid client: `floodgate get` over BitTorrent and HTTP Range at once, with real
//! processes on 127.0.0.1 (a `floodgate seed`, `fg-origin` as the HTTP source).

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use floodgate_tests::{bin, free_addr, wait_for_listen, ChildGuard};

use crate::relay::{path, Fixture, Origin};

/// A `floodgate seed` of the fixture (extra flags, e.g. an upload limit).
fn seed(fx: &Fixture, extra: &[&str]) -> (ChildGuard, SocketAddr) {
    let addr = free_addr();
    let data_dir = fx.file.parent().expect("file has a directory");
    let child = ChildGuard::spawn(
        Command::new(bin("floodgate"))
            .args(["seed", path(&fx.torrent), "--data", path(data_dir), "--listen", &addr.to_string()])
            .args(["--seed-for", "120"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .expect("spawn seed");
    assert!(wait_for_listen(addr, Duration::from_secs(20)), "seed did not listen");
    (child, addr)
}

/// Runs `floodgate get` of `torrent` into `out` to completion; returns its JSON summary.
pub(crate) fn get(torrent: &Path, out: &Path, args: &[&str]) -> serde_json::Value {
    let output = Command::new(bin("floodgate"))
        .args(["get", path(torrent), "-o", path(out), "--json", "--no-seed", "--timeout", "90"])
        .args(["--listen", &free_addr().to_string()])
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .expect("run get");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("get printed no JSON ({e}): {}", String::from_utf8_lossy(&output.stdout)));
    assert!(output.status.success(), "get failed: {report}");
    report
}

fn switches_to(report: &serde_json::Value) -> Vec<String> {
    report["switches"]
        .as_array()
        .expect("switches")
        .iter()
        .map(|s| s["to"].as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn no_reachable_peer_downloads_everything_over_http_from_web_seeds() {
    let fx = Fixture::new(6 * 1024 * 1024 + 777);
    let origin = Origin::start(&fx.file, &[]);
    // A torrent whose BEP 19 url-list names the origin; no peer, no tracker.
    let torrent = fx.dir.path().join("ws.torrent");
    let status = Command::new(bin("floodgate"))
        .args(["make-torrent", path(&fx.file), "-o", path(&torrent), "--piece-size", "65536"])
        .args(["--web-seed", &origin.url()])
        .stdout(Stdio::null())
        .status()
        .expect("make-torrent");
    assert!(status.success());
    let out = fx.dir.path().join("out");
    let r = get(&torrent, &out, &["--check-interval", "0.2"]);
    assert_eq!(std::fs::read(out.join("blob.bin")).unwrap(), fx.data);
    assert_eq!(r["bt_bytes"], 0);
    assert!(r["http_bytes"].as_u64().unwrap() >= fx.data.len() as u64, "{r}");
    assert_eq!(r["http_bytes_by_source"][origin.url()], r["http_bytes"], "{r}");
    assert_eq!(switches_to(&r), ["full"], "{r}");
    assert_eq!(r["switches"][0]["reason"], "no peer connected");
    // The origin served the file about once: runs of adjacent pieces, no piece twice.
    let (requests, body) = origin.stats();
    assert!(body <= fx.data.len() as u64 + 64 * 1024, "origin served {body} bytes");
    assert!(requests < 20, "{requests} requests for 97 pieces: runs are merged");
}

#[test]
fn corrupt_http_source_is_demoted_and_the_file_is_correct() {
    let fx = Fixture::new(4 * 1024 * 1024);
    let mut bad = fx.data.clone();
    for i in (0..bad.len()).step_by(300_000) {
        bad[i] ^= 0xff;
    }
    let bad_file = fx.dir.path().join("bad.bin");
    std::fs::write(&bad_file, &bad).unwrap();
    let bad_origin = Origin::start(&bad_file, &[]);
    // The good source is slower, so the bad one surely delivers (and is caught) first.
    let good_origin = Origin::start(&fx.file, &["--rate", "2000000"]);
    let out = fx.dir.path().join("out");
    let r = get(
        &fx.torrent,
        &out,
        &["--http-source", &bad_origin.url(), "--http-source", &good_origin.url(), "--check-interval", "0.2"],
    );
    assert_eq!(std::fs::read(out.join("blob.bin")).unwrap(), fx.data, "only verified bytes are written");
    assert!(r["http_hash_failures"].as_u64().unwrap() >= 1, "{r}");
    let from_bad = r["http_bytes_by_source"][bad_origin.url()].as_u64().unwrap();
    let from_good = r["http_bytes_by_source"][good_origin.url()].as_u64().unwrap();
    assert!(from_good >= fx.data.len() as u64 / 2, "the good source carried the download: {r}");
    assert!(from_bad < fx.data.len() as u64, "the bad source was dropped: {r}");
}

#[test]
fn fast_bittorrent_uses_almost_no_http() {
    let fx = Fixture::new(16 * 1024 * 1024);
    let (_seed, addr) = seed(&fx, &[]);
    let origin = Origin::start(&fx.file, &[]);
    let out = fx.dir.path().join("out");
    let r = get(
        &fx.torrent,
        &out,
        &[
            "--peer",
            &addr.to_string(),
            "--http-source",
            &origin.url(),
            "--check-interval",
            "0.2",
            "--window",
            "2",
        ],
    );
    assert_eq!(std::fs::read(out.join("blob.bin")).unwrap(), fx.data);
    let http = r["http_bytes"].as_u64().unwrap();
    assert!(http * 20 <= fx.data.len() as u64, "HTTP took {http} of {} bytes: {r}", fx.data.len());
}

#[test]
fn slow_bittorrent_is_topped_up_to_the_threshold_over_http() {
    let fx = Fixture::new(24 * 1024 * 1024);
    let seed_rate = 300_000u64;
    let threshold = 2_000_000u64;
    let (_seed, addr) = seed(&fx, &["--upload-limit", &seed_rate.to_string()]);
    let origin = Origin::start(&fx.file, &[]);
    let out = fx.dir.path().join("out");
    let r = get(
        &fx.torrent,
        &out,
        &[
            "--peer",
            &addr.to_string(),
            "--http-source",
            &origin.url(),
            "--bt-threshold",
            &threshold.to_string(),
            "--check-interval",
            "0.5",
            "--window",
            "3",
        ],
    );
    assert_eq!(std::fs::read(out.join("blob.bin")).unwrap(), fx.data);
    let first = &r["switches"][0];
    assert_eq!(first["from"], "off", "{r}");
    assert_eq!(first["to"], "partial", "BT was slow with a useful peer: {r}");
    let at = first["at_s"].as_f64().unwrap();
    let seconds = r["seconds"].as_f64().unwrap();
    // Before the switch at most the seed's rate (plus a second of burst) came in; the rest came
    // after it, at no less than the threshold overall.
    let before = seed_rate as f64 * (at + 1.0);
    let rate_after = (fx.data.len() as f64 - before) / (seconds - at);
    assert!(rate_after >= threshold as f64, "{rate_after:.0} B/s after the switch: {r}");
    assert!(r["bt_bytes"].as_u64().unwrap() > 0, "BitTorrent still contributed: {r}");
}

#[test]
fn a_killed_http_download_resumes_without_fetching_verified_pieces_again() {
    let fx = Fixture::new(6 * 1024 * 1024);
    // ~3 s for the whole file, so the first run is killed half way.
    let origin = Origin::start(&fx.file, &["--rate", "2000000"]);
    let out = fx.dir.path().join("out");
    let mut first = ChildGuard::spawn(
        Command::new(bin("floodgate"))
            .args(["get", path(&fx.torrent), "-o", path(&out), "--no-seed", "--timeout", "60"])
            .args(["--listen", &free_addr().to_string(), "--http-source", &origin.url()])
            .args(["--check-interval", "0.2"])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .expect("spawn get");
    let half = floodgate_tests::wait_for(Duration::from_secs(30), || {
        (origin.stats().1 >= fx.data.len() as u64 / 2).then_some(())
    });
    assert!(half.is_some(), "the first run fetched nothing");
    first.kill();
    let (_, before) = origin.stats();
    assert!(before < fx.data.len() as u64, "killed before the end");
    let r = get(&fx.torrent, &out, &["--http-source", &origin.url(), "--check-interval", "0.2"]);
    assert_eq!(std::fs::read(out.join("blob.bin")).unwrap(), fx.data);
    assert!(r["resumed_pieces"].as_u64().unwrap() > 0, "{r}");
    // Only what was in flight at the kill is fetched twice: at most a piece per HTTP worker.
    let (_, total) = origin.stats();
    let slack = 4 * 64 * 1024 + 64 * 1024;
    assert!(total <= fx.data.len() as u64 + slack, "origin served {total} bytes for {}", fx.data.len());
}
