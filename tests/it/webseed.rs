//! BEP 19 web seeds of a multi-file torrent: `floodgate get` with no BitTorrent peer fetches
//! every file from nginx serving the torrent's directory (one Range request per file segment,
//! names percent-encoded), and a web seed with one corrupt file is demoted while a good one
//! completes the download.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use floodgate_tests::bin;
use rand::RngCore;

use crate::hybrid::get;
use crate::interop::require;
use crate::relay::path;
use crate::relay_http::{nginx_binary, Nginx};

/// The torrent's name (a directory) and its files in stream order: a space, a zero-length
/// file, a subdirectory, unicode and `%` in names; 64 KiB pieces line up with no file boundary.
const NAME: &str = "my set";
const FILES: &[(&str, usize)] =
    &[("a big.bin", 1_300_003), ("empty.txt", 0), ("sub dir/ü 100%.bin", 700_001), ("z.bin", 500_009)];

/// Random contents of [`FILES`], written under `www/good/my set` (nginx's root is `www`).
struct Fixture {
    dir: tempfile::TempDir,
    data: Vec<Vec<u8>>,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let data: Vec<Vec<u8>> = FILES
            .iter()
            .map(|&(_, len)| {
                let mut d = vec![0u8; len];
                rand::rng().fill_bytes(&mut d);
                d
            })
            .collect();
        let fx = Fixture { dir, data };
        fx.write_copy("good", |_, d| d.to_vec());
        fx
    }

    fn www(&self) -> PathBuf {
        self.dir.path().join("www")
    }

    /// Writes the files under `www/<seed>/my set`, each through `edit(index, bytes)`.
    fn write_copy(&self, seed: &str, edit: impl Fn(usize, &[u8]) -> Vec<u8>) {
        for (i, (name, _)) in FILES.iter().enumerate() {
            let p = self.www().join(seed).join(NAME).join(name);
            std::fs::create_dir_all(p.parent().expect("a parent")).expect("mkdir");
            std::fs::write(&p, edit(i, &self.data[i])).expect("write a file");
        }
    }

    /// A torrent of `www/good/my set` whose url-list is `web_seeds`; no tracker.
    fn torrent(&self, web_seeds: &[String]) -> PathBuf {
        let torrent = self.dir.path().join("set.torrent");
        let mut cmd = Command::new(bin("floodgate"));
        cmd.args(["make-torrent", path(&self.www().join("good").join(NAME)), "-o", path(&torrent)]);
        cmd.args(["--piece-size", "65536"]);
        for w in web_seeds {
            cmd.args(["--web-seed", w]);
        }
        assert!(cmd.stdout(Stdio::null()).status().expect("make-torrent").success());
        torrent
    }

    fn total(&self) -> u64 {
        self.data.iter().map(|d| d.len() as u64).sum()
    }

    /// Every file under `out/my set` is byte-identical to the fixture's.
    fn assert_downloaded(&self, out: &Path) {
        for (i, (name, _)) in FILES.iter().enumerate() {
            let got = std::fs::read(out.join(NAME).join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(got == self.data[i], "{name} differs ({} bytes, want {})", got.len(), self.data[i].len());
        }
    }
}

fn nginx(fx: &Fixture) -> Nginx {
    let nginx = nginx_binary();
    require(Command::new(&nginx).arg("-v"), "nginx");
    Nginx::start(&nginx, &fx.www())
}

#[test]
fn a_multi_file_torrent_downloads_from_its_web_seed_alone() {
    let fx = Fixture::new();
    let server = nginx(&fx);
    // No trailing `/`: BEP 19 says one is appended.
    let seed = format!("http://{}/good", server.addr);
    let torrent = fx.torrent(std::slice::from_ref(&seed));
    let info =
        Command::new(bin("floodgate")).args(["info", path(&torrent), "--json"]).output().expect("info");
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).expect("info prints JSON");
    assert_eq!(info["web_seeds"], serde_json::json!([seed]), "{info}");
    let text = Command::new(bin("floodgate")).args(["info", path(&torrent)]).output().expect("info");
    assert!(String::from_utf8_lossy(&text.stdout).contains(&format!("web seed:     {seed}")));

    let out = fx.dir.path().join("out");
    let r = get(&torrent, &out, &["--check-interval", "0.2"]);
    fx.assert_downloaded(&out);
    assert_eq!(r["bt_bytes"], 0, "no peer: {r}");
    assert_eq!(r["hash_failures"], 0, "{r}");
    assert_eq!(r["http_hash_failures"], 0, "{r}");
    let http = r["http_bytes"].as_u64().expect("http_bytes");
    assert!(http >= fx.total(), "every byte came over HTTP: {r}");
    assert!(http <= fx.total() + 4 * 65536, "about once: {r}");
    assert_eq!(r["http_bytes_by_source"][&seed], r["http_bytes"], "{r}");
}

#[test]
fn a_web_seed_with_a_corrupt_file_is_demoted_and_a_good_one_completes() {
    let fx = Fixture::new();
    // The bad copy differs in its first (and largest) file, every 100 kB.
    fx.write_copy("bad", |i, d| {
        let mut d = d.to_vec();
        if i == 0 {
            for b in d.iter_mut().step_by(100_000) {
                *b ^= 0xff;
            }
        }
        d
    });
    let server = nginx(&fx);
    // The bad seed is listed first, so it is used from the start (sources of one kind keep
    // their order until one is demoted or measured faster).
    let bad = format!("http://{}/bad/", server.addr);
    let good = format!("http://{}/good/", server.addr);
    let torrent = fx.torrent(&[bad.clone(), good.clone()]);
    let out = fx.dir.path().join("out");
    let r = get(&torrent, &out, &["--check-interval", "0.2"]);
    fx.assert_downloaded(&out);
    assert_eq!(r["bt_bytes"], 0, "{r}");
    assert!(r["http_hash_failures"].as_u64().expect("http_hash_failures") >= 1, "{r}");
    let from_bad = r["http_bytes_by_source"][&bad].as_u64().expect("bytes of the bad seed");
    let from_good = r["http_bytes_by_source"][&good].as_u64().expect("bytes of the good seed");
    assert!(from_bad > 0, "the bad seed was tried: {r}");
    assert!(from_good >= fx.total() / 2, "the good seed carried the download: {r}");
    assert!(from_bad < fx.total(), "the bad seed was demoted: {r}");
}
