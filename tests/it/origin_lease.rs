//! Origin leases end to end: a relay in ctl mode pulls only what its lease from ctl grants.
//! An unthrottled `fg-origin`, `floodgate-ctl` on SQLite with a global rate limit, and one
//! `floodgate-relay --ctl`. The relay's measured pull rate must follow the limit, drop within
//! about a second when the admin lowers it (ctl shrinks the live lease and tells the relay to
//! renew: the lease's TTL is far longer than the test's phases), and recover when the limit is
//! lifted; the file ends byte-identical.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use floodgate_tests::{bin, free_addr, wait_for, wait_for_listen, ChildGuard};

use crate::ctl::{sqlite_db, Ctl, RELAY};
use crate::e2e::ctl_json;
use crate::relay::{curl, json, path, Fixture, Origin};

/// File size: large enough that the throttled phases cannot finish it.
const SIZE: usize = 24 * 1024 * 1024;
/// First global limit, bytes/s.
const FIRST_RATE: u64 = 2_000_000;
/// The lowered limit.
const LOW_RATE: u64 = 400_000;
/// Length of one rate measurement.
const WINDOW: Duration = Duration::from_secs(3);

/// The relay's task list entry for the one task it runs.
fn relay_task(http: std::net::SocketAddr) -> Option<serde_json::Value> {
    let tasks = json(&format!("http://{http}/tasks"))?;
    tasks.as_array()?.first().cloned()
}

fn origin_bytes(http: std::net::SocketAddr) -> u64 {
    relay_task(http).and_then(|t| t["origin_bytes"].as_u64()).unwrap_or(0)
}

/// Bytes the relay pulled during `WINDOW`.
fn pulled_in_window(http: std::net::SocketAddr) -> u64 {
    let before = origin_bytes(http);
    std::thread::sleep(WINDOW);
    origin_bytes(http) - before
}

#[test]
fn relay_pull_follows_ctl_leases() {
    let fx = Fixture::new(SIZE);
    let origin = Origin::start(&fx.file, &[]);
    let (_db_dir, db) = sqlite_db();
    // The default lease TTL (30 s, renewed every 10 s): changes within the test can only reach
    // the relay through ctl's push.
    let ctl = Ctl::start(&db, &[]);
    let rate = FIRST_RATE.to_string();
    assert!(ctl_json(&ctl, &["limits", "set", "--rate", &rate]).is_some(), "limits set");

    let (bt, http) = (free_addr(), free_addr());
    let _relay = ChildGuard::spawn(
        Command::new(bin("floodgate-relay"))
            .args(["--ctl", &ctl.url(), "--token", RELAY, "--id", "relay-lease"])
            .args(["--data-dir", path(&fx.dir.path().join("relay"))])
            .args(["--listen-bt", &bt.to_string(), "--listen-http", &http.to_string()])
            .args(["--origin-conns", "3"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null()),
    )
    .expect("spawn floodgate-relay --ctl");
    assert!(wait_for_listen(http, Duration::from_secs(30)), "relay did not listen on {http}");
    let registered = wait_for(Duration::from_secs(30), || {
        ctl_json(&ctl, &["relays"])?.to_string().contains("relay-lease").then_some(())
    });
    assert!(registered.is_some(), "the relay did not register within 30 s");

    let created = ctl_json(
        &ctl,
        &["dist", "create", &origin.url(), "--torrent", path(&fx.torrent), "--targets", "all"],
    )
    .expect("dist create");
    assert!(created["id"].as_str().is_some(), "{created}");
    let started = wait_for(Duration::from_secs(30), || (origin_bytes(http) > 0).then_some(()));
    assert!(started.is_some(), "the relay pulled nothing within 30 s");

    // Phase 1: the lease holds the pull to the global limit (plus one burst of a quarter second).
    let first = pulled_in_window(http);
    eprintln!("pulled {first} B in {WINDOW:?} under {FIRST_RATE} B/s");
    let secs = WINDOW.as_secs();
    assert!(
        first <= FIRST_RATE * secs + FIRST_RATE / 2,
        "pulled {first} B in {secs} s under a {FIRST_RATE} B/s limit"
    );
    assert!(
        first >= FIRST_RATE * secs / 3,
        "pulled only {first} B in {secs} s under a {FIRST_RATE} B/s limit"
    );
    let limits = ctl_json(&ctl, &["limits", "get"]).expect("limits get");
    let global = &limits.as_array().and_then(|a| a.first()).cloned().unwrap_or_default();
    assert_eq!(global["live_leases"].as_i64(), Some(1), "{limits}");
    let granted = global["used_rate_bps"].as_i64().unwrap_or(i64::MAX);
    assert!(granted > 0 && granted <= FIRST_RATE as i64, "{limits}");

    // Phase 2: a lower limit shrinks the live lease at once; the relay slows down within ~1 s.
    let low = LOW_RATE.to_string();
    let lowered_at = Instant::now();
    assert!(ctl_json(&ctl, &["limits", "set", "--rate", &low]).is_some(), "limits set lower");
    std::thread::sleep(Duration::from_millis(1200));
    let second = pulled_in_window(http);
    eprintln!("pulled {second} B in {WINDOW:?} under {LOW_RATE} B/s");
    assert!(
        second <= LOW_RATE * secs + LOW_RATE / 2 + 256 * 1024,
        "pulled {second} B in {secs} s after lowering the limit to {LOW_RATE} B/s ({:?} ago)",
        lowered_at.elapsed()
    );
    assert!(second > 0, "the pull stopped instead of slowing down");

    // Phase 3: no limit: the rest comes at full speed and is byte-identical.
    assert!(ctl_json(&ctl, &["limits", "set"]).is_some(), "limits lifted");
    let done = wait_for(Duration::from_secs(30), || {
        let t = relay_task(http)?;
        (t["state"] == "complete" || t["state"] == "seeding").then_some(t)
    });
    let task = done.unwrap_or_else(|| panic!("the pull did not finish within 30 s: {:?}", relay_task(http)));
    let id = task["id"].as_str().expect("task id");
    let (status, body) = curl(&format!("http://{http}/tasks/{id}/data"), &[]);
    assert_eq!(status, 200);
    assert!(body == fx.data, "the relay's file differs from the origin's");
    let (_, served) = origin.stats();
    assert!(served <= SIZE as u64 * 11 / 10, "the origin served {served} B for a {SIZE} B file");
}
