//! A real BitTorrent client (aria2c) downloads from the relay while it pulls, finding it through
//! the relay's built-in tracker (the torrent's announce URL).

use std::process::{Command, Stdio};
use std::time::Duration;

use floodgate_tests::{bin, free_addr};

use super::{path, Fixture, Origin, Relay, PIECE};
use crate::interop::require;

/// A relay pulling a `len`-byte file from a 3 MB/s origin, for a torrent that announces to
/// the relay's own tracker.
fn pulling_relay(len: usize) -> (Fixture, std::path::PathBuf, Origin, Relay) {
    let fx = Fixture::new(len);
    let http = free_addr();
    let torrent = fx.dir.path().join("tracked.torrent");
    let status = Command::new(bin("floodgate"))
        .args(["make-torrent", path(&fx.file), "-o", path(&torrent), "--piece-size", &PIECE.to_string()])
        .args(["--tracker", &format!("http://{http}/announce")])
        .stdout(Stdio::null())
        .status()
        .expect("make-torrent");
    assert!(status.success());
    let origin = Origin::start(&fx.file, &["--rate", "3000000"]);
    let relay = Relay::start_at(&torrent, &origin.url(), &fx.dir.path().join("relay"), http);
    (fx, torrent, origin, relay)
}

#[test]
fn aria2c_downloads_from_the_relay_during_the_pull() {
    require(Command::new("aria2c").arg("--version"), "aria2c");
    let len = 10 * 1024 * 1024 + 99;
    let (fx, torrent, _origin, relay) = pulling_relay(len);

    let out = fx.dir.path().join("aria");
    let output = Command::new("timeout")
        .args(["90", "aria2c", "--dir", path(&out), "--seed-time=0", "--enable-dht=false"])
        .args(["--enable-dht6=false", "--bt-enable-lpd=false", "--enable-peer-exchange=false"])
        .args(["--summary-interval=0", "--console-log-level=warn", "--bt-stop-timeout=60"])
        .args(["--listen-port", &free_addr().port().to_string(), "--check-integrity=true"])
        .arg(path(&torrent))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("run aria2c");
    assert!(output.status.success(), "aria2c failed: {}", String::from_utf8_lossy(&output.stderr));
    assert!(std::fs::read(out.join("blob.bin")).expect("aria2c's file") == fx.data, "aria2c's bytes differ");
    let task = relay.wait_state("complete", Duration::from_secs(30));
    assert!(task["bt_bytes"].as_u64().unwrap_or(0) > 0, "aria2c got its bytes over BitTorrent: {task}");
}

/// libtorrent downloads from the relay while it pulls: the relay super-seeds automatically
/// (its default) while it is incomplete, revealing pieces as they land, and libtorrent must
/// still end with every piece (it drops a seed it is not interested in when the HAVE that
/// completes the seed's set arrives; see `engine/src/peer/super_seed.rs`). It finds the relay
/// through the relay's tracker only. Before the relay held back its second-to-last piece while
/// pulling, libtorrent dropped it at the last HAVE in 3 of 5 runs and found it again only at its
/// next announce, 60 s later.
#[test]
fn libtorrent_downloads_from_the_relay_during_the_pull() {
    require(Command::new("/usr/bin/python3").args(["-c", "import libtorrent"]), "python3-libtorrent");
    let len = 6 * 1024 * 1024 + 5;
    let (fx, torrent, _origin, relay) = pulling_relay(len);

    let out = fx.dir.path().join("lt");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/bench/lt_get.py");
    let output = Command::new("timeout")
        .args(["90", "/usr/bin/python3", path(&script), path(&torrent), path(&out)])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("run libtorrent");
    assert!(output.status.success(), "libtorrent failed: {}", String::from_utf8_lossy(&output.stderr));
    assert!(
        std::fs::read(out.join("blob.bin")).expect("libtorrent's file") == fx.data,
        "libtorrent's bytes differ"
    );
    let task = relay.wait_state("complete", Duration::from_secs(30));
    assert!(task["bt_bytes"].as_u64().unwrap_or(0) > 0, "libtorrent got its bytes over BitTorrent: {task}");
}
