//! `floodgate seed --tracker-listen` and `floodgate get` finding each other through the built-in
//! HTTP tracker only (no `--peer`), real processes on 127.0.0.1.

use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use floodgate_engine::bencode::decode;
use floodgate_fetch::{get_response, HttpUrl};
use floodgate_tests::{bin, free_addr, wait_for, wait_for_listen, ChildGuard};
use rand::RngCore;

/// `(complete, incomplete, downloaded)` of the tracker's only torrent, from a full scrape.
fn scrape(tracker: SocketAddr) -> Option<(i64, i64, i64)> {
    let url = HttpUrl::parse(&format!("http://{tracker}/scrape")).ok()?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
    let (status, body) =
        rt.block_on(get_response(&mut None, &url, Duration::from_secs(5), None, 1 << 16)).ok()?;
    if status != 200 {
        return None;
    }
    let v = decode(&body).ok()?;
    let files = v.as_dict()?.get(b"files")?.as_dict()?.iter().next().map(|(_, f)| f.clone())?;
    let f = files.as_dict()?;
    Some((f.get(b"complete")?.as_int()?, f.get(b"incomplete")?.as_int()?, f.get(b"downloaded")?.as_int()?))
}

fn get(torrent: &Path, out: &Path) -> std::process::Child {
    Command::new(bin("floodgate"))
        .args(["get", torrent.to_str().unwrap(), "-o", out.to_str().unwrap(), "--json", "--timeout", "60"])
        .args(["--listen", &free_addr().to_string(), "--seed-for", "8"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn get")
}

#[test]
fn two_downloaders_find_the_seed_and_each_other_through_the_tracker() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let mut data = vec![0u8; 4 * 1024 * 1024 + 777];
    rand::rng().fill_bytes(&mut data);
    std::fs::write(src.join("t.bin"), &data).unwrap();
    let tracker = free_addr();
    let torrent = dir.path().join("t.torrent");
    let status = Command::new(bin("floodgate"))
        .args(["make-torrent", src.join("t.bin").to_str().unwrap(), "-o", torrent.to_str().unwrap()])
        .args(["--piece-size", "65536", "--tracker", &format!("http://{tracker}/announce")])
        .stdout(Stdio::null())
        .status()
        .expect("run make-torrent");
    assert!(status.success(), "make-torrent failed");

    let seed_addr = free_addr();
    let _seed = ChildGuard::spawn(
        Command::new(bin("floodgate"))
            .args(["seed", torrent.to_str().unwrap(), "--data", src.to_str().unwrap()])
            .args(["--listen", &seed_addr.to_string(), "--tracker-listen", &tracker.to_string()])
            .args(["--seed-for", "120"])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .expect("spawn seed");
    assert!(wait_for_listen(tracker, Duration::from_secs(20)), "tracker did not start");
    assert!(wait_for_listen(seed_addr, Duration::from_secs(20)), "seeder did not start");
    // The seed announces itself to its own tracker.
    let seen = wait_for(Duration::from_secs(20), || scrape(tracker).filter(|s| s.0 == 1));
    assert_eq!(seen, Some((1, 0, 0)), "the seed never announced");

    // The first downloader announces before the second starts, so the second hears of both.
    let out_a = dir.path().join("a");
    let mut a = ChildGuard(get(&torrent, &out_a));
    let two = wait_for(Duration::from_secs(30), || scrape(tracker).filter(|s| s.0 + s.1 >= 2));
    assert!(two.is_some(), "the first downloader never announced");
    let out_b = dir.path().join("b");
    let mut b = ChildGuard(get(&torrent, &out_b));

    let mut reports = Vec::new();
    for (child, out) in [(&mut a, &out_a), (&mut b, &out_b)] {
        // `get` bounds itself: --timeout 60, then --seed-for 8.
        let mut stdout = Vec::new();
        child.0.stdout.take().expect("piped stdout").read_to_end(&mut stdout).unwrap();
        let status = child.0.wait().unwrap();
        assert!(status.success(), "get into {} failed", out.display());
        let report: serde_json::Value = serde_json::from_slice(&stdout).expect("one JSON object");
        assert_eq!(report["hash_failures"], 0);
        assert_eq!(std::fs::read(out.join("t.bin")).unwrap(), data, "{} differs", out.display());
        reports.push(report);
    }
    // The second downloader dialled both the seed and the first downloader.
    assert!(reports[1]["peers"].as_u64().unwrap() >= 2, "second get saw {}", reports[1]["peers"]);
    // Both said `completed`, then `stopped`: the seed is alone again.
    let end = wait_for(Duration::from_secs(10), || scrape(tracker).filter(|s| *s == (1, 0, 2)));
    assert_eq!(end, Some((1, 0, 2)), "scrape after both downloads: {:?}", scrape(tracker));
}
