//! ctl's byte accounting across a relay's kill -9: a throttled `fg-origin`, `floodgate-ctl` on
//! SQLite and one `floodgate-relay --ctl` pulling a distribution with no clients. The relay is
//! killed mid-pull, started again on the same data directory and finishes; ctl's origin bytes
//! for the distribution must then match what the origin served (before the relay kept its
//! counters on disk, all it pulled since its last heartbeat was lost: here, with heartbeats
//! every 10 s, everything the killed process pulled).

use std::time::{Duration, Instant};

use floodgate_tests::{free_addr, wait_for, wait_for_listen};

use super::{sqlite_db, Ctl};
use crate::e2e::{ctl_json, spawn_relay};
use crate::relay::{path, Fixture, Origin, PIECE};

/// File size: 3 MiB in 48 pieces.
const SIZE: usize = 3 * 1024 * 1024;
/// The relay's origin connections (`--origin-conns` default).
const ORIGIN_CONNS: u64 = 3;

/// ctl's origin bytes for `id` (0 until it answers).
fn ctl_origin_bytes(ctl: &Ctl, id: &str) -> u64 {
    ctl_json(ctl, &["dist", "get", id]).and_then(|d| d["stats"]["origin_bytes"].as_u64()).unwrap_or(0)
}

#[test]
fn a_relay_killed_mid_pull_loses_no_origin_bytes_in_ctl() {
    let fx = Fixture::new(SIZE);
    // ~6 s for the whole file: the kill comes well inside the pull, between heartbeats.
    // A 64 KiB send buffer keeps the origin's count within a chunk of the wire per connection.
    let origin = Origin::start(&fx.file, &["--rate", "500000", "--send-buffer", "65536"]);
    let (_db_dir, db) = sqlite_db();
    // Heartbeats every 10 s (a third of the timeout, halved): the killed process never
    // reported, so without its counters on disk ctl would miss all it pulled.
    let ctl = Ctl::start(&db, &["--relay-timeout-secs", "60"]);
    let relay_dir = fx.dir.path().join("relay");
    let (bt, http) = (free_addr(), free_addr());
    let mut relay = spawn_relay(&ctl, "relay-1", &relay_dir, bt, http);
    assert!(wait_for_listen(http, Duration::from_secs(30)), "relay did not listen on {http}");
    let registered = wait_for(Duration::from_secs(30), || {
        ctl_json(&ctl, &["relays"])?.to_string().contains("relay-1").then_some(())
    });
    assert!(registered.is_some(), "the relay did not register with ctl");

    let url = origin.url();
    let created =
        ctl_json(&ctl, &["dist", "create", &url, "--torrent", path(&fx.torrent), "--targets", "all"])
            .expect("dist create");
    let id = created["id"].as_str().expect("dist id").to_string();
    assert_eq!(created["relay_ids"][0].as_str(), Some("relay-1"), "{created}");

    // Kill -9 once a third of the file came from the origin.
    let pulling = wait_for(Duration::from_secs(30), || (origin.stats().1 >= SIZE as u64 / 3).then_some(()));
    assert!(pulling.is_some(), "the relay did not pull from the origin");
    relay.kill();
    let at_kill = origin.stats().1;
    assert!(at_kill < SIZE as u64, "the relay must die mid-pull (the origin served {at_kill} bytes)");

    let _relay = spawn_relay(&ctl, "relay-1", &relay_dir, bt, http);
    // Done when the origin served the file and neither count moved for 3 s (longer than the
    // relay's heartbeat period with ctl's default timeout is not needed: the relay reports
    // at once when its pull ends).
    let mut last = (0, 0);
    let mut still_since = Instant::now();
    let settled = wait_for(Duration::from_secs(60), || {
        let now = (origin.stats().1, ctl_origin_bytes(&ctl, &id));
        if now != last {
            (last, still_since) = (now, Instant::now());
        }
        (now.0 >= SIZE as u64 && still_since.elapsed() >= Duration::from_secs(3)).then_some(now)
    });
    let (served, counted) = settled.unwrap_or_else(|| {
        panic!("the pull did not finish and settle within 60 s (origin served, ctl counted: {last:?})")
    });
    println!("origin served {served}, ctl counts {counted} (the origin had served {at_kill} at the kill)");
    // The relay's count on disk trails what it read by less than a piece. The origin also
    // counts the chunk (64 KiB = one piece here) each of the relay's 3 connections had on the
    // wire when the process died, which the relay never read: served - 4 pieces at the least.
    let slack_below = (1 + ORIGIN_CONNS) * PIECE;
    assert!(
        counted + slack_below >= served && counted <= served + PIECE,
        "ctl counts {counted} origin bytes, the origin served {served} (killed at {at_kill}): \
         they must agree to within a piece, plus a chunk per origin connection below"
    );
    assert!(counted >= SIZE as u64, "ctl counts {counted} origin bytes, less than the file ({SIZE})");
}
