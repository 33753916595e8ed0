//! HTTP Range (curl) and BitTorrent (`floodgate get`) readers get byte-identical data while the
//! relay is still pulling, and the origin serves the file once.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use floodgate_tests::{bin, free_addr};

use super::{curl, path, Fixture, Origin, Relay};

#[test]
fn curl_ranges_and_bittorrent_get_identical_bytes_during_the_pull() {
    let started = Instant::now();
    let len = 12 * 1024 * 1024 + 777;
    let fx = Fixture::new(len);
    // 3 MB/s: the pull takes about 4 s.
    let origin = Origin::start(&fx.file, &["--rate", "3000000"]);
    let relay = Relay::start(&fx, &origin.url(), &fx.dir.path().join("relay"), &[]);

    // A range near the end is pulled first (demand-driven) and served before the pull is done.
    let (s, e) = (len - 300_000, len - 1000);
    let t0 = Instant::now();
    let (code, body) = curl(&relay.data_url(), &["-r", &format!("{s}-{e}")]);
    let range_secs = t0.elapsed().as_secs_f64();
    assert_eq!(code, 206);
    assert!(body == fx.data[s..=e], "range bytes differ");
    let task = relay.task();
    assert_eq!(task["state"], "pulling", "the pull was still running: {task}");
    assert!(range_secs < 3.0, "the demanded range took {range_secs:.2} s");

    // BitTorrent and a whole-file GET, both started while pulling.
    let out = fx.dir.path().join("bt");
    let get = Command::new(bin("floodgate"))
        .args(["get", path(&fx.torrent), "-o", path(&out), "--peer", &relay.bt.to_string()])
        .args(["--json", "--timeout", "60", "--no-seed", "--listen", &free_addr().to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn floodgate get");
    let (code, whole) = curl(&relay.data_url(), &[]);
    assert_eq!(code, 200);
    assert!(whole == fx.data, "whole-file GET differs");
    let output = get.wait_with_output().expect("floodgate get");
    assert!(output.status.success(), "floodgate get failed");
    assert!(std::fs::read(out.join("blob.bin")).expect("downloaded file") == fx.data, "BT download differs");

    let task = relay.wait_state("complete", Duration::from_secs(30));
    assert!(task["bt_bytes"].as_u64().unwrap_or(0) > 0, "nothing went out over BitTorrent: {task}");
    let (_, origin_bytes) = origin.stats();
    assert_eq!(origin_bytes, len as u64, "the origin served the file exactly once");

    // Status codes and validators.
    let etag = format!("\"{}\"", relay.id);
    assert_eq!(curl(&relay.data_url(), &["-r", &format!("{len}-")]).0, 416);
    assert_eq!(curl(&relay.data_url(), &["-H", &format!("If-None-Match: {etag}")]).0, 304);
    let (code, body) = curl(&relay.data_url(), &["-r", "0-99", "-H", "If-Range: \"other\""]);
    assert_eq!((code, body.len()), (200, len), "If-Range mismatch gives the whole file");
    let (code, body) = curl(&relay.data_url(), &["-r", "-100", "-H", &format!("If-Range: {etag}")]);
    assert_eq!(code, 206);
    assert!(body == fx.data[len - 100..]);
    let (code, head) = curl(&relay.data_url(), &["-I"]);
    assert_eq!(code, 200);
    assert!(String::from_utf8_lossy(&head).to_ascii_lowercase().contains(&format!("content-length: {len}")));
    let (code, torrent) = curl(&format!("http://{}/tasks/{}.torrent", relay.http, relay.id), &[]);
    assert_eq!(code, 200);
    assert!(torrent == std::fs::read(&fx.torrent).expect("torrent file"));
    let (code, metrics) = curl(&format!("http://{}/metrics", relay.http), &[]);
    assert_eq!(code, 200);
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(metrics.contains(&format!("floodgate_relay_origin_bytes_total{{task=\"{}\"}} {len}", relay.id)));
    assert!(metrics.contains("protocol=\"bt\""));
    eprintln!("relay serve test: range in {range_secs:.2} s, total {:.1} s", started.elapsed().as_secs_f64());
}
