//! BitTorrent between real `floodgate` processes on 127.0.0.1.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use floodgate_tests::{bin, free_addr, wait_for_listen, ChildGuard};
use rand::RngCore;

/// Writes `len` random bytes to `path`.
fn random_file(path: &Path, len: usize) -> Vec<u8> {
    let mut data = vec![0u8; len];
    rand::rng().fill_bytes(&mut data);
    std::fs::write(path, &data).expect("write test file");
    data
}

fn make_torrent(data: &Path, out: &Path) {
    let status = Command::new(bin("floodgate"))
        .args(["make-torrent", data.to_str().unwrap(), "-o", out.to_str().unwrap(), "--piece-size", "65536"])
        .stdout(Stdio::null())
        .status()
        .expect("run make-torrent");
    assert!(status.success(), "make-torrent failed");
}

fn seed(torrent: &Path, data_dir: &Path) -> (ChildGuard, std::net::SocketAddr) {
    let addr = free_addr();
    let child = ChildGuard::spawn(
        Command::new(bin("floodgate"))
            .args(["seed", torrent.to_str().unwrap(), "--data", data_dir.to_str().unwrap()])
            .args(["--listen", &addr.to_string(), "--seed-for", "120"])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .expect("spawn seed");
    assert!(wait_for_listen(addr, Duration::from_secs(20)), "seeder did not start listening");
    (child, addr)
}

fn get(torrent: &Path, out: &Path, peers: &[std::net::SocketAddr]) -> std::process::Child {
    let mut cmd = Command::new(bin("floodgate"));
    cmd.args(["get", torrent.to_str().unwrap(), "-o", out.to_str().unwrap(), "--json", "--timeout", "60"]);
    cmd.args(["--listen", &free_addr().to_string(), "--seed-for", "5"]);
    for p in peers {
        cmd.args(["--peer", &p.to_string()]);
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("spawn get")
}

#[test]
fn seed_to_three_downloaders_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let data = random_file(&src.join("blob.bin"), 9 * 1024 * 1024 + 12345);
    let torrent = dir.path().join("blob.torrent");
    make_torrent(&src.join("blob.bin"), &torrent);
    let (_seeder, addr) = seed(&torrent, &src);

    let outs: Vec<_> = (0..3).map(|i| dir.path().join(format!("dl{i}"))).collect();
    let children: Vec<_> = outs.iter().map(|o| get(&torrent, o, &[addr])).collect();
    for (child, out) in children.into_iter().zip(&outs) {
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "get failed for {}", out.display());
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("one JSON object");
        assert_eq!(report["bytes"], data.len() as u64);
        assert!(report["bt_bytes"].as_u64().unwrap() >= data.len() as u64);
        assert_eq!(report["hash_failures"], 0);
        assert_eq!(std::fs::read(out.join("blob.bin")).unwrap(), data, "{} differs", out.display());
    }
}

#[test]
fn hostile_peer_does_not_disturb_the_seeder() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let data = random_file(&src.join("f.bin"), 2 * 1024 * 1024);
    let torrent = dir.path().join("f.torrent");
    make_torrent(&src.join("f.bin"), &torrent);
    let (_seeder, addr) = seed(&torrent, &src);

    // Garbage instead of a handshake, then a valid-looking handshake with a huge message.
    for payload in [&b"GET / HTTP/1.1\r\n\r\n"[..], &[0xffu8; 200][..]] {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = s.write_all(payload);
        let mut buf = [0u8; 64];
        // The seeder closes the connection (read returns 0 or an error), it never answers junk.
        assert!(matches!(s.read(&mut buf), Ok(0) | Err(_)));
    }
    let out = dir.path().join("dl");
    let output = get(&torrent, &out, &[addr]).wait_with_output().unwrap();
    assert!(output.status.success());
    assert_eq!(std::fs::read(out.join("f.bin")).unwrap(), data);
}

#[test]
fn get_fails_clearly_without_peers() {
    let dir = tempfile::tempdir().unwrap();
    let data_path = dir.path().join("x.bin");
    random_file(&data_path, 100_000);
    let torrent = dir.path().join("x.torrent");
    make_torrent(&data_path, &torrent);
    let out = Command::new(bin("floodgate"))
        .args(["get", torrent.to_str().unwrap(), "-o", dir.path().join("dl").to_str().unwrap(), "--no-seed"])
        .args(["--timeout", "2", "--peer", &free_addr().to_string()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("timed out"),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn download_limit_flag_slows_the_download() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let data = random_file(&src.join("f.bin"), 3 * 1024 * 1024);
    let torrent = dir.path().join("f.torrent");
    make_torrent(&src.join("f.bin"), &torrent);
    let (_seeder, addr) = seed(&torrent, &src);
    let out = dir.path().join("dl");
    let rate: u64 = 1024 * 1024;
    let started = std::time::Instant::now();
    let status = Command::new(bin("floodgate"))
        .args(["get", torrent.to_str().unwrap(), "-o", out.to_str().unwrap(), "--no-seed", "--timeout", "60"])
        .args(["--peer", &addr.to_string(), "--listen", &free_addr().to_string()])
        .args(["--download-limit", &rate.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    let took = started.elapsed().as_secs_f64();
    assert!(status.success());
    assert_eq!(std::fs::read(out.join("f.bin")).unwrap(), data);
    // 3 MiB at 1 MiB/s, less one 64 KiB+ burst: not much under 2.9 s.
    let floor = (data.len() as f64 - (rate / 10).max(64 * 1024) as f64) / rate as f64;
    assert!(took >= floor * 0.95, "took {took:.2} s with a {rate} B/s limit (floor {floor:.2} s)");
}

/// Super-seeding (`floodgate seed --super-seed`): with the seed's upload the bottleneck, the
/// seed reveals different pieces to each downloader, they trade the rest through the tracker,
/// and the seed sends about one copy of the file instead of one per downloader.
#[test]
fn super_seed_sends_about_one_copy() {
    three_downloaders_from_a_slow_seed(&["--super-seed"]);
}

/// With no flag the seed super-seeds by itself while the swarm lacks a copy of some piece
/// (here: the whole run, its upload is the limit), so it too sends about one copy.
#[test]
fn a_slow_seed_with_automatic_super_seeding_sends_about_one_copy() {
    three_downloaders_from_a_slow_seed(&[]);
}

/// One seed limited to 4 MB/s with `seed_flags`, three downloaders through its tracker: every
/// file correct, and the seed sent between one and one and a half copies of it.
fn three_downloaders_from_a_slow_seed(seed_flags: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let len = 4 * 1024 * 1024 + 777;
    let data = random_file(&src.join("blob.bin"), len);
    let torrent = dir.path().join("blob.torrent");
    let tracker = free_addr();
    let status = Command::new(bin("floodgate"))
        .args(["make-torrent", src.join("blob.bin").to_str().unwrap(), "-o", torrent.to_str().unwrap()])
        .args(["--piece-size", "65536", "--tracker", &format!("http://{tracker}/announce")])
        .stdout(Stdio::null())
        .status()
        .expect("run make-torrent");
    assert!(status.success(), "make-torrent failed");
    let addr = free_addr();
    let mut seed = ChildGuard::spawn(
        Command::new(bin("floodgate"))
            .args(["seed", torrent.to_str().unwrap(), "--data", src.to_str().unwrap()])
            .args(seed_flags)
            .args(["--listen", &addr.to_string(), "--tracker-listen", &tracker.to_string()])
            // 4 MB/s: the seed alone needs ~1 s per copy, so three copies would show.
            .args(["--upload-limit", "4000000", "--seed-for", "12"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    )
    .expect("spawn seed");
    assert!(wait_for_listen(addr, Duration::from_secs(20)), "seeder did not start listening");
    assert!(wait_for_listen(tracker, Duration::from_secs(20)), "tracker did not start listening");

    let outs: Vec<_> = (0..3).map(|i| dir.path().join(format!("dl{i}"))).collect();
    let children: Vec<_> = outs
        .iter()
        .map(|o| {
            Command::new(bin("floodgate"))
                .args(["get", torrent.to_str().unwrap(), "-o", o.to_str().unwrap(), "--json"])
                .args(["--timeout", "60", "--listen", &free_addr().to_string(), "--seed-for", "8"])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn get")
        })
        .collect();
    for (child, out) in children.into_iter().zip(&outs) {
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "get failed for {}", out.display());
        assert_eq!(std::fs::read(out.join("blob.bin")).unwrap(), data, "{} differs", out.display());
    }
    // The seed reports its upload when --seed-for ends.
    let status = floodgate_tests::wait_for(Duration::from_secs(30), || seed.0.try_wait().ok().flatten());
    assert!(status.is_some(), "the seed did not stop after --seed-for");
    let mut err = String::new();
    seed.0.stderr.take().expect("piped stderr").read_to_string(&mut err).expect("read seed stderr");
    let uploaded: u64 = err
        .split("done seeding: ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no upload total in the seed's output: {err}"));
    assert!(uploaded >= len as u64, "the seed sent less than the file: {uploaded}");
    assert!(
        uploaded <= len as u64 * 3 / 2,
        "a seed with {seed_flags:?} sent {uploaded} bytes for a {len}-byte file to 3 downloaders (about one copy expected)"
    );
}
