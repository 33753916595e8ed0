//! Several origins (mirrors) of one file: a standalone relay given `--origin` more than once
//! spreads its pull over them by measured speed, fails over when one dies, and refuses a
//! mirror whose length or bytes disagree, while the file it serves stays byte-identical.

use std::time::Duration;

use floodgate_tests::wait_for;
use rand::RngCore;

use super::{curl, path, Fixture, Origin, Relay};

/// Bytes pulled from each of the task's sources (`/tasks` `mirrors`), in order.
fn mirror_bytes(task: &serde_json::Value) -> Vec<u64> {
    task["mirrors"]
        .as_array()
        .map(|a| a.iter().map(|m| m["bytes"].as_u64().unwrap_or(0)).collect())
        .unwrap_or_default()
}

/// Why the task's source `i` was refused ("" if it was not).
fn refused(task: &serde_json::Value, i: usize) -> String {
    task["mirrors"][i]["refused"].as_str().unwrap_or("").to_string()
}

/// `GET url` as text.
fn get_text(url: &str) -> String {
    let (code, body) = curl(url, &[]);
    assert_eq!(code, 200, "GET {url}");
    String::from_utf8_lossy(&body).into_owned()
}

/// A file of `len` random bytes beside the fixture's, for a mirror serving something else.
fn other_file(fx: &Fixture, len: usize) -> std::path::PathBuf {
    let mut data = vec![0u8; len];
    rand::rng().fill_bytes(&mut data);
    let file = fx.dir.path().join("other.bin");
    std::fs::write(&file, &data).expect("write the other file");
    file
}

#[test]
fn two_capped_mirrors_are_both_used_and_the_faster_serves_more() {
    let len = 16 * 1024 * 1024;
    let fx = Fixture::new(len);
    let fast = Origin::start(&fx.file, &["--rate", "4000000"]);
    let slow = Origin::start(&fx.file, &["--rate", "1500000"]);
    let relay = Relay::start(&fx, &fast.url(), &fx.dir.path().join("relay"), &["--origin", &slow.url()]);
    let task = relay.wait_state("complete", Duration::from_secs(60));
    let (code, body) = curl(&relay.data_url(), &[]);
    assert_eq!(code, 200);
    assert!(body == fx.data, "served bytes differ");
    let bytes = mirror_bytes(&task);
    eprintln!("bytes per mirror: {bytes:?}");
    assert_eq!(bytes.len(), 2, "{task}");
    assert!(bytes[1] > 0, "the second mirror was used: {task}");
    assert!(bytes[0] > bytes[1], "the faster mirror served more: {task}");
    assert!(bytes.iter().sum::<u64>() >= len as u64, "{task}");
    // Both origins really served what the relay counted.
    let (_, fast_served) = fast.stats();
    let (_, slow_served) = slow.stats();
    assert!(fast_served > slow_served && slow_served > 0, "fast {fast_served}, slow {slow_served}");
    let metrics = get_text(&format!("http://{}/metrics", relay.http));
    assert!(metrics.contains("floodgate_relay_origin_mirror_bytes_total{"), "{metrics}");
}

#[test]
fn a_mirror_killed_mid_pull_leaves_the_pull_to_the_other() {
    let len = 16 * 1024 * 1024;
    let fx = Fixture::new(len);
    let first = Origin::start(&fx.file, &["--rate", "2000000"]);
    let second = Origin::start(&fx.file, &["--rate", "2000000"]);
    let relay = Relay::start(&fx, &first.url(), &fx.dir.path().join("relay"), &["--origin", &second.url()]);
    // Kill the primary once both are in use and the pull is under way.
    let under_way = wait_for(Duration::from_secs(30), || {
        let t = relay.task();
        let b = mirror_bytes(&t);
        (b.len() == 2 && b[0] > 0 && b[1] > 0 && t["bytes_verified"].as_u64().unwrap_or(0) > 2 << 20)
            .then_some(())
    });
    assert!(under_way.is_some(), "both mirrors in use: {}", relay.task());
    drop(first);
    let task = relay.wait_state("complete", Duration::from_secs(60));
    let (code, body) = curl(&relay.data_url(), &[]);
    assert_eq!(code, 200);
    assert!(body == fx.data, "served bytes differ");
    let bytes = mirror_bytes(&task);
    assert!(bytes[1] > bytes[0], "the survivor brought the rest: {task}");
    assert!(task["mirrors"][0]["failures"].as_u64().unwrap_or(0) >= 1, "the dead mirror's failures: {task}");
    assert_eq!(refused(&task, 0), "", "a dead mirror rests, it is not refused: {task}");
}

#[test]
fn a_mirror_of_another_length_is_refused() {
    let len = 6 * 1024 * 1024;
    let fx = Fixture::new(len);
    let origin = Origin::start(&fx.file, &["--rate", "3000000"]);
    let other = other_file(&fx, len + 1);
    let wrong = Origin::start(&other, &[]);
    let relay = Relay::start(&fx, &origin.url(), &fx.dir.path().join("relay"), &["--origin", &wrong.url()]);
    let task = relay.wait_state("complete", Duration::from_secs(60));
    let (code, body) = curl(&relay.data_url(), &[]);
    assert_eq!(code, 200);
    assert!(body == fx.data, "served bytes differ");
    let why = refused(&task, 1);
    assert!(why.contains("length"), "refused for its length: {task}");
    assert_eq!(mirror_bytes(&task)[1], 0, "nothing taken from it: {task}");
    let (_, served) = wrong.stats();
    assert_eq!(served, 0, "only probed (HEAD), never read");
    let metrics = get_text(&format!("http://{}/metrics", relay.http));
    let line = metrics
        .lines()
        .find(|l| {
            l.starts_with("floodgate_relay_origin_mirror_refused{") && l.contains(&wrong.addr.to_string())
        })
        .unwrap_or_else(|| panic!("no refusal metric for the mirror: {metrics}"));
    assert!(line.ends_with(" 1"), "{line}");
}

#[test]
fn a_hash_known_mirror_serving_other_bytes_is_refused_by_the_hashes() {
    let len = 6 * 1024 * 1024;
    let fx = Fixture::new(len);
    let origin = Origin::start(&fx.file, &["--rate", "2000000"]);
    let other = other_file(&fx, len);
    let wrong = Origin::start(&other, &[]);
    let relay = Relay::start(&fx, &origin.url(), &fx.dir.path().join("relay"), &["--origin", &wrong.url()]);
    let task = relay.wait_state("complete", Duration::from_secs(60));
    let (code, body) = curl(&relay.data_url(), &[]);
    assert_eq!(code, 200);
    assert!(body == fx.data, "served bytes differ");
    assert!(refused(&task, 1).contains("hash"), "refused by a piece hash: {task}");
}

#[test]
fn a_url_only_mirror_serving_other_bytes_is_refused_and_the_hashes_stay_right() {
    let len = 6 * 1024 * 1024;
    let fx = Fixture::new(len);
    let origin = Origin::start(&fx.file, &["--rate", "2000000"]);
    let other = other_file(&fx, len);
    let wrong = Origin::start(&other, &[]);
    let relay = Relay::launch(&origin.url(), None, &fx.dir.path().join("relay"), &["--origin", &wrong.url()]);
    let task = relay.wait_state("complete", Duration::from_secs(60));
    let (code, body) = curl(&relay.data_url(), &[]);
    assert_eq!(code, 200);
    assert!(body == fx.data, "served bytes differ");
    assert!(refused(&task, 1).contains("other bytes"), "refused when vetted: {task}");
    // At most the one piece it was vetted with came from it.
    let piece = task["piece_length"].as_u64().unwrap_or(0);
    assert!(mirror_bytes(&task)[1] <= piece, "{task}");
    // The .torrent the relay built from the pulled bytes describes the origin's file.
    let torrent_url = format!("http://{}/tasks/{}.torrent", relay.http, relay.id);
    let torrent = wait_for(Duration::from_secs(10), || Some(curl(&torrent_url, &[])).filter(|r| r.0 == 200))
        .expect("the torrent is published")
        .1;
    let made = fx.dir.path().join("made.torrent");
    std::fs::write(&made, &torrent).expect("write the torrent");
    let check = std::process::Command::new(floodgate_tests::bin("floodgate"))
        .args(["verify", path(&made), "--data", path(fx.dir.path())])
        .output()
        .expect("run floodgate verify");
    assert!(check.status.success(), "the origin's file matches the relay's hashes: {check:?}");
}

/// The relay's status pages show the origin and its mirrors without credentials or query.
#[test]
fn origin_credentials_are_not_shown_in_tasks_or_metrics() {
    let fx = Fixture::new(2 * 1024 * 1024 + 7);
    let origin = Origin::start(&fx.file, &[]);
    let with_secret = format!("http://fg:secret@127.0.0.1:{}/blob.bin?sig=abc", origin.addr.port());
    let relay = Relay::start(&fx, &with_secret, &fx.dir.path().join("relay"), &[]);
    let task = relay.wait_state("complete", Duration::from_secs(30));
    let shown = format!("{task} {}", get_text(&format!("http://{}/metrics", relay.http)));
    assert!(task["origin"].as_str().is_some_and(|o| o.contains("127.0.0.1")), "{task}");
    assert!(!shown.contains("secret") && !shown.contains("sig=abc"), "{shown}");
}
