//! Magnet links (BEP 9 metadata over BEP 10): `floodgate get magnet:...` from a floodgate seed and
//! from a real libtorrent seed, on 127.0.0.1, every wait bounded.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use floodgate_engine::metainfo::Metainfo;
use floodgate_tests::{bin, free_addr, free_port, wait_for_listen, ChildGuard};
use rand::RngCore;

/// A random file in `dir/src/payload.bin` and its torrent (16 KiB pieces), and the magnet link.
fn fixture(dir: &Path, len: usize) -> (Vec<u8>, PathBuf, String) {
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    let mut data = vec![0u8; len];
    rand::rng().fill_bytes(&mut data);
    std::fs::write(src.join("payload.bin"), &data).unwrap();
    let torrent = dir.join("payload.torrent");
    let status = Command::new(bin("floodgate"))
        .args(["make-torrent", src.join("payload.bin").to_str().unwrap(), "-o", torrent.to_str().unwrap()])
        .args(["--piece-size", "16384"])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let meta = Metainfo::from_bytes(&std::fs::read(&torrent).unwrap()).unwrap();
    // Several metadata pieces: 16 KiB pieces of 14 MiB make an info dict of > 16 KiB.
    assert!(meta.info_bytes().len() > 16384);
    (data, torrent, format!("magnet:?xt=urn:btih:{}", meta.info_hash().to_hex()))
}

fn get_magnet(magnet: &str, out: &Path, peer: &str) -> bool {
    Command::new("timeout")
        .arg("90")
        .arg(bin("floodgate"))
        .args(["get", magnet, "-o", out.to_str().unwrap(), "--no-seed", "--peer", peer])
        .args(["--timeout", "60", "--listen", &free_addr().to_string()])
        .stdout(Stdio::null())
        .status()
        .unwrap()
        .success()
}

#[test]
fn get_magnet_from_a_floodgate_seed() {
    let dir = tempfile::tempdir().unwrap();
    let (data, torrent, magnet) = fixture(dir.path(), 14 * 1024 * 1024 + 123);
    let addr = free_addr();
    let _seed = ChildGuard::spawn(
        Command::new(bin("floodgate"))
            .args(["seed", torrent.to_str().unwrap(), "--data", dir.path().join("src").to_str().unwrap()])
            .args(["--listen", &addr.to_string(), "--seed-for", "120"])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .unwrap();
    assert!(wait_for_listen(addr, Duration::from_secs(20)), "floodgate seed did not start");
    let out = dir.path().join("dl");
    assert!(get_magnet(&magnet, &out, &addr.to_string()), "floodgate get magnet failed");
    assert_eq!(std::fs::read(out.join("payload.bin")).unwrap(), data);
}

#[test]
fn get_magnet_from_a_libtorrent_seed() {
    let has_lt = Command::new("/usr/bin/python3")
        .args(["-c", "import libtorrent"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(has_lt, "python3-libtorrent is not installed: run tools/ci-setup.sh");
    let dir = tempfile::tempdir().unwrap();
    let (data, torrent, magnet) = fixture(dir.path(), 14 * 1024 * 1024 + 777);
    let port = free_port();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/bench/lt_seed.py");
    let mut seed = ChildGuard::spawn(
        Command::new("/usr/bin/python3")
            .arg(script)
            .args([torrent.to_str().unwrap(), dir.path().join("src").to_str().unwrap(), &port.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
    )
    .unwrap();
    let stdout = seed.0.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
    assert_eq!(line.trim(), "ready", "libtorrent seed did not start");
    let out = dir.path().join("dl");
    assert!(
        get_magnet(&magnet, &out, &format!("127.0.0.1:{port}")),
        "floodgate get magnet from libtorrent failed"
    );
    assert_eq!(std::fs::read(out.join("payload.bin")).unwrap(), data);
}

/// libtorrent resolving a magnet link against a floodgate seed (our `ut_metadata` answers).
const LT_MAGNET_GET: &str = r#"
import libtorrent as lt, sys, time
magnet, out, peer, port = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
ses = lt.session({"listen_interfaces": "127.0.0.1:" + port, "enable_dht": False, "enable_lsd": False,
                  "enable_upnp": False, "enable_natpmp": False, "alert_mask": 0})
p = lt.parse_magnet_uri(magnet)
p.save_path = out
h = ses.add_torrent(p)
host, pport = peer.rsplit(":", 1)
h.connect_peer((host, int(pport)))
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    if h.status().is_seeding:
        sys.exit(0)
    time.sleep(0.1)
sys.exit(1)
"#;

/// The seed's default: automatic super-seeding (libtorrent must not drop us at the last reveal).
#[test]
fn libtorrent_resolves_a_magnet_from_a_floodgate_seed() {
    libtorrent_resolves_a_magnet_from(&[]);
}

/// Super-seeding throughout: the last reveal must not make libtorrent drop us either.
#[test]
fn libtorrent_resolves_a_magnet_from_a_super_seeding_floodgate_seed() {
    libtorrent_resolves_a_magnet_from(&["--super-seed"]);
}

/// libtorrent fetches a magnet's metadata and data from a floodgate seed run with `seed_flags`.
fn libtorrent_resolves_a_magnet_from(seed_flags: &[&str]) {
    let has_lt = Command::new("/usr/bin/python3")
        .args(["-c", "import libtorrent"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(has_lt, "python3-libtorrent is not installed: run tools/ci-setup.sh");
    let dir = tempfile::tempdir().unwrap();
    let (data, torrent, magnet) = fixture(dir.path(), 14 * 1024 * 1024 + 5);
    let addr = free_addr();
    let _seed = ChildGuard::spawn(
        Command::new(bin("floodgate"))
            .args(["seed", torrent.to_str().unwrap(), "--data", dir.path().join("src").to_str().unwrap()])
            .args(["--listen", &addr.to_string(), "--seed-for", "120"])
            .args(seed_flags)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .unwrap();
    assert!(wait_for_listen(addr, Duration::from_secs(20)), "floodgate seed did not start");
    let out = dir.path().join("dl");
    std::fs::create_dir_all(&out).unwrap();
    let status = Command::new("timeout")
        .args(["90", "/usr/bin/python3", "-c", LT_MAGNET_GET])
        .args([&magnet, out.to_str().unwrap(), &addr.to_string(), &free_port().to_string()])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "libtorrent could not resolve the magnet from floodgate");
    assert_eq!(std::fs::read(out.join("payload.bin")).unwrap(), data);
}
