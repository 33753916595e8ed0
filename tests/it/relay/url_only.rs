//! URL-only tasks: the relay hashes pieces as they land, publishes the growing hash list, serves
//! Range requests while pulling, and at the end publishes a standard .torrent (BEP 19 url-list
//! pointing at itself) that a BitTorrent client can download from it.

use std::process::{Command, Stdio};
use std::time::Duration;

use floodgate_engine::hash::sha1;
use floodgate_engine::metainfo::Metainfo;
use floodgate_engine::types::hex;
use floodgate_tests::{bin, free_addr, wait_for};

use super::{curl, json, path, Fixture, Origin, Relay};

#[test]
fn url_only_task_hashes_as_it_pulls_then_publishes_a_torrent() {
    let len = 8 * 1024 * 1024 + 4321;
    let fx = Fixture::new(len);
    let origin = Origin::start(&fx.file, &["--rate", "3000000"]);
    let relay = Relay::start_url_only(&origin.url(), &fx.dir.path().join("relay"));

    // While pulling: a range near the end, and a partial hash list that matches the data.
    let (s, e) = (len - 100_000, len - 1);
    let (code, body) = curl(&relay.data_url(), &["-r", &format!("{s}-{e}")]);
    assert_eq!(code, 206);
    assert!(body == fx.data[s..=e], "range bytes differ");
    let hashes_url = format!("http://{}/tasks/{}/hashes", relay.http, relay.id);
    let list = json(&hashes_url).expect("hash list");
    assert_eq!(list["complete"], false, "listed while pulling: {list}");
    let pl = list["piece_length"].as_u64().expect("piece length") as usize;
    let hashes = list["hashes"].as_array().expect("hashes").clone();
    let known = hashes.iter().filter(|h| h.is_string()).count();
    assert!(known > 0 && known < hashes.len(), "some pieces hashed so far: {known}");
    for (i, h) in hashes.iter().enumerate() {
        if let Some(h) = h.as_str() {
            assert_eq!(h, hex(&sha1(&fx.data[i * pl..((i + 1) * pl).min(len)])), "piece {i}");
        }
    }
    assert_eq!(curl(&format!("http://{}/tasks/{}.torrent", relay.http, relay.id), &[]).0, 404);

    // At the end: a torrent with the relay as web seed; a BitTorrent client gets the file.
    relay.wait_state("complete", Duration::from_secs(30));
    let torrent_url = format!("http://{}/tasks/{}.torrent", relay.http, relay.id);
    let torrent = wait_for(Duration::from_secs(10), || Some(curl(&torrent_url, &[])).filter(|r| r.0 == 200))
        .expect("the torrent is published")
        .1;
    let meta = Metainfo::from_bytes(&torrent).expect("a valid torrent");
    assert_eq!(meta.total_length(), len as u64);
    assert_eq!(meta.url_list, vec![relay.data_url()]);
    let torrent_path = fx.dir.path().join("built.torrent");
    std::fs::write(&torrent_path, &torrent).expect("write torrent");
    let out = fx.dir.path().join("bt");
    let output = Command::new(bin("floodgate"))
        .args(["get", path(&torrent_path), "-o", path(&out), "--peer", &relay.bt.to_string()])
        .args(["--json", "--timeout", "60", "--no-seed", "--listen", &free_addr().to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .output()
        .expect("floodgate get");
    assert!(output.status.success(), "floodgate get failed");
    assert!(std::fs::read(out.join("blob.bin")).expect("downloaded file") == fx.data, "BT download differs");
    let (_, origin_bytes) = origin.stats();
    assert_eq!(origin_bytes, len as u64, "the origin served the file once");
}
