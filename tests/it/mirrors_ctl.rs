//! Mirrors through ctl: `floodgate-ctl dist create URL --mirror URL2` on SQLite, one
//! `floodgate-relay --ctl` and one `floodgate agent`. The mirror is on another host name
//! (`localhost` against the origin's `127.0.0.1`) with its own limits row: the relay's lease
//! counts against it, the relay pulls from both, `dist get` shows the mirror redacted, and the
//! agent ends with the origin's bytes.

use std::time::Duration;

use floodgate_tests::{free_addr, wait_for, wait_for_listen};

use crate::ctl::{sqlite_db, Ctl};
use crate::e2e::{ctl_json, spawn_agent, spawn_relay};
use crate::relay::{json, Fixture, Origin};

/// File size of the distribution.
const SIZE: usize = 8 * 1024 * 1024;
/// The mirror host's rate limit, bytes/s: the lease (and so the whole pull) stays within it.
const MIRROR_HOST_RATE: i64 = 2_000_000;

#[test]
fn dist_create_with_a_mirror_end_to_end() {
    let fx = Fixture::new(SIZE);
    let origin = Origin::start(&fx.file, &["--rate", "3000000"]);
    let mirror = Origin::start(&fx.file, &["--rate", "3000000"]);
    // Credentials and a query, to see them redacted.
    let mirror_url = format!("http://fg:secret@localhost:{}/blob.bin?sig=abc", mirror.addr.port());
    let (_db_dir, db) = sqlite_db();
    let ctl = Ctl::start(&db, &[]);
    let rate = MIRROR_HOST_RATE.to_string();
    assert!(
        ctl_json(&ctl, &["limits", "set", "--origin", "localhost", "--rate", &rate]).is_some(),
        "limits set for the mirror's host"
    );

    let (bt, http) = (free_addr(), free_addr());
    let _relay = spawn_relay(&ctl, "relay-m", &fx.dir.path().join("relay"), bt, http);
    assert!(wait_for_listen(http, Duration::from_secs(30)), "relay did not listen on {http}");
    let out = fx.dir.path().join("agent");
    let _agent = spawn_agent(&ctl, "agent-m", "mirrors", &out);
    let registered = wait_for(Duration::from_secs(30), || {
        let clients = ctl_json(&ctl, &["clients"])?.to_string();
        let relays = ctl_json(&ctl, &["relays"])?.to_string();
        (clients.contains("agent-m") && relays.contains("relay-m")).then_some(())
    });
    assert!(registered.is_some(), "relay and agent did not register within 30 s");

    let url = origin.url();
    let created = ctl_json(&ctl, &["dist", "create", &url, "--mirror", &mirror_url, "--targets", "all"])
        .expect("dist create --mirror");
    let id = created["id"].as_str().expect("dist id").to_string();

    // Shown redacted, in JSON and in text.
    let d = ctl_json(&ctl, &["dist", "get", &id]).expect("dist get");
    let shown = d["mirror_urls"][0].as_str().unwrap_or("");
    assert!(shown.starts_with(&format!("http://localhost:{}/blob.bin", mirror.addr.port())), "{d}");
    assert!(!d.to_string().contains("secret") && !d.to_string().contains("sig=abc"), "{d}");
    let text = std::process::Command::new(floodgate_tests::bin("floodgate-ctl"))
        .args(["dist", "get", &id, "--ctl", &ctl.url(), "--token", crate::ctl::ADMIN])
        .output()
        .expect("dist get (text)");
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    assert!(text.contains("mirror:") && text.contains("localhost") && !text.contains("secret"), "{text}");

    // While the relay pulls, its lease counts against the mirror host's limits row.
    let counted = wait_for(Duration::from_secs(30), || {
        let limits = ctl_json(&ctl, &["limits", "get"])?;
        let row = limits.as_array()?.iter().find(|r| r["origin"] == "localhost")?.clone();
        (row["live_leases"].as_i64() == Some(1)).then_some(row)
    });
    let row = counted.expect("the lease counts against the mirror host's limits");
    let used = row["used_rate_bps"].as_i64().unwrap_or(i64::MAX);
    assert!(used > 0 && used <= MIRROR_HOST_RATE, "{row}");

    let file = out.join("blob.bin");
    let done =
        wait_for(Duration::from_secs(60), || std::fs::read(&file).is_ok_and(|b| b == fx.data).then_some(()));
    assert!(done.is_some(), "the agent did not get the file within 60 s");
    let task = json(&format!("http://{http}/tasks")).and_then(|t| t.as_array()?.first().cloned());
    let task = task.expect("the relay's task");
    let mirrors = task["mirrors"].as_array().cloned().unwrap_or_default();
    assert_eq!(mirrors.len(), 2, "{task}");
    assert!(mirrors.iter().all(|m| m["bytes"].as_u64().unwrap_or(0) > 0), "both URLs served: {task}");
    assert!(!task["mirrors"].to_string().contains("secret"), "{task}");
    let (_, a) = origin.stats();
    let (_, b) = mirror.stats();
    assert!(a > 0 && b > 0 && a + b <= SIZE as u64 * 12 / 10, "origin {a} B, mirror {b} B");
}
