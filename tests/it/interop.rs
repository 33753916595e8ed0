//! Interop with real BitTorrent clients on 127.0.0.1: libtorrent (python3-libtorrent) and aria2.
//! `tools/ci-setup.sh` installs them; a missing client fails the test with that hint.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use floodgate_tests::{bin, free_addr, free_port, wait_for_listen, ChildGuard};
use rand::RngCore;

fn bench_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/bench").join(name)
}

/// Fails the test with the `tools/ci-setup.sh` hint unless `check` runs and succeeds: a test that
/// needs an outside tool must not pass silently without it.
pub(crate) fn require(check: &mut Command, what: &str) {
    let ok = check.stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success());
    assert!(ok, "{what} is not installed: run tools/ci-setup.sh");
}

/// A random file in `dir/src/payload.bin` and its torrent (64 KiB pieces, optional tracker).
fn fixture(dir: &Path, len: usize, tracker: Option<&str>) -> (Vec<u8>, PathBuf) {
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    let mut data = vec![0u8; len];
    rand::rng().fill_bytes(&mut data);
    std::fs::write(src.join("payload.bin"), &data).unwrap();
    let torrent = dir.join("payload.torrent");
    let mut cmd = Command::new(bin("floodgate"));
    cmd.args(["make-torrent", src.join("payload.bin").to_str().unwrap(), "-o", torrent.to_str().unwrap()]);
    cmd.args(["--piece-size", "65536"]);
    if let Some(t) = tracker {
        cmd.args(["--tracker", t]);
    }
    assert!(cmd.stdout(Stdio::null()).status().unwrap().success());
    (data, torrent)
}

fn floodgate_seed(torrent: &Path, data: &Path, extra: &[&str]) -> (ChildGuard, std::net::SocketAddr) {
    let addr = free_addr();
    let child = ChildGuard::spawn(
        Command::new(bin("floodgate"))
            .args(["seed", torrent.to_str().unwrap(), "--data", data.to_str().unwrap()])
            .args(["--listen", &addr.to_string(), "--seed-for", "120"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .unwrap();
    assert!(wait_for_listen(addr, Duration::from_secs(20)), "floodgate seed did not start");
    (child, addr)
}

#[test]
fn floodgate_downloads_from_a_libtorrent_seed() {
    require(Command::new("/usr/bin/python3").args(["-c", "import libtorrent"]), "python3-libtorrent");
    let dir = tempfile::tempdir().unwrap();
    let (data, torrent) = fixture(dir.path(), 5 * 1024 * 1024 + 777, None);
    let port = free_port();
    let mut seed = ChildGuard::spawn(
        Command::new("/usr/bin/python3")
            .arg(bench_script("lt_seed.py"))
            .args([torrent.to_str().unwrap(), dir.path().join("src").to_str().unwrap(), &port.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
    )
    .unwrap();
    let mut line = String::new();
    let stdout = seed.0.stdout.take().unwrap();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready", "libtorrent seed did not start");
    let out = dir.path().join("dl");
    let status = Command::new(bin("floodgate"))
        .args(["get", torrent.to_str().unwrap(), "-o", out.to_str().unwrap(), "--no-seed"])
        .args([
            "--peer",
            &format!("127.0.0.1:{port}"),
            "--timeout",
            "60",
            "--listen",
            &free_addr().to_string(),
        ])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "floodgate get from libtorrent failed");
    assert_eq!(std::fs::read(out.join("payload.bin")).unwrap(), data);
}

#[test]
fn libtorrent_downloads_from_floodgate() {
    require(Command::new("/usr/bin/python3").args(["-c", "import libtorrent"]), "python3-libtorrent");
    let dir = tempfile::tempdir().unwrap();
    let (data, torrent) = fixture(dir.path(), 5 * 1024 * 1024 + 333, None);
    let (_seed, addr) = floodgate_seed(&torrent, &dir.path().join("src"), &[]);
    let out = dir.path().join("dl");
    std::fs::create_dir_all(&out).unwrap();
    let status = Command::new("timeout")
        .args(["60", "/usr/bin/python3"])
        .arg(bench_script("lt_get.py"))
        .args([torrent.to_str().unwrap(), out.to_str().unwrap(), &addr.to_string()])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "libtorrent download from floodgate failed");
    assert_eq!(std::fs::read(out.join("payload.bin")).unwrap(), data);
}

#[test]
fn aria2_downloads_from_floodgate_through_its_tracker() {
    require(Command::new("aria2c").arg("--version"), "aria2");
    let dir = tempfile::tempdir().unwrap();
    let tracker = free_addr();
    let (data, torrent) =
        fixture(dir.path(), 3 * 1024 * 1024 + 5, Some(&format!("http://{tracker}/announce")));
    let (_seed, _addr) =
        floodgate_seed(&torrent, &dir.path().join("src"), &["--tracker-listen", &tracker.to_string()]);
    assert!(wait_for_listen(tracker, Duration::from_secs(10)), "built-in tracker did not start");
    let out = dir.path().join("dl");
    let status = Command::new("timeout")
        .args(["60", "aria2c", "-q", "--seed-time=0", "--enable-dht=false", "--bt-enable-lpd=false"])
        .args(["--enable-peer-exchange=false", "--file-allocation=none", "--bt-tracker-interval=1"])
        .arg(format!("--listen-port={}", free_port()))
        .args(["-d", out.to_str().unwrap(), torrent.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "aria2c failed");
    assert_eq!(std::fs::read(out.join("payload.bin")).unwrap(), data);
}
