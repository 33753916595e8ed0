//! The main job end to end, driven by ctl: a throttled `fg-origin`, `floodgate-ctl` on SQLite,
//! one `floodgate-relay --ctl`, two `floodgate agent`s, and a distribution created with
//! `floodgate-ctl dist create`. Both agents must end with the origin's bytes, and ctl must show
//! the distribution done with about one file pulled from the origin.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use floodgate_tests::{bin, free_addr, wait_for, wait_for_listen, ChildGuard};

use crate::ctl::{sqlite_db, Ctl, ADMIN, CLIENT, RELAY};
use crate::relay::{path, Fixture, Origin};

/// File size of the distribution.
const SIZE: usize = 6 * 1024 * 1024;

/// Runs `floodgate-ctl ARGS --ctl URL --token ADMIN --json` and parses its stdout.
pub(crate) fn ctl_json(ctl: &Ctl, args: &[&str]) -> Option<serde_json::Value> {
    let out = Command::new(bin("floodgate-ctl"))
        .args(args)
        .args(["--ctl", &ctl.url(), "--token", ADMIN, "--json"])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

/// Starts `floodgate-relay --ctl` as `id` in zone z1, listening on `bt` and `http`.
pub(crate) fn spawn_relay(
    ctl: &Ctl,
    id: &str,
    data_dir: &Path,
    bt: SocketAddr,
    http: SocketAddr,
) -> ChildGuard {
    ChildGuard::spawn(
        Command::new(bin("floodgate-relay"))
            .args(["--ctl", &ctl.url(), "--token", RELAY, "--id", id, "--zone", "z1"])
            .args(["--data-dir", path(data_dir)])
            .args(["--listen-bt", &bt.to_string(), "--listen-http", &http.to_string()])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null()),
    )
    .expect("spawn floodgate-relay --ctl")
}

/// Starts `floodgate agent` as `id` in zone z1 with `labels`, downloading into `out`.
pub(crate) fn spawn_agent(ctl: &Ctl, id: &str, labels: &str, out: &Path) -> ChildGuard {
    spawn_agent_with(ctl, id, labels, out, &[])
}

/// Like [`spawn_agent`], with `extra` flags.
pub(crate) fn spawn_agent_with(ctl: &Ctl, id: &str, labels: &str, out: &Path, extra: &[&str]) -> ChildGuard {
    ChildGuard::spawn(
        Command::new(bin("floodgate"))
            .args(["agent", "--ctl", &ctl.url(), "--token", CLIENT, "--id", id])
            .args(["--labels", labels, "--zone", "z1", "-o", path(out), "--listen", "127.0.0.1:0"])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null()),
    )
    .expect("spawn floodgate agent")
}

/// Whether `file` holds exactly `want`.
fn same(file: &Path, want: &[u8]) -> bool {
    std::fs::read(file).is_ok_and(|got| got == want)
}

#[test]
fn origin_ctl_relay_agents() {
    run(Meta::Torrent, false);
}

/// The relay serving a distribution is killed (SIGKILL) while the agents download: ctl replaces
/// it after missed heartbeats, the agents take the new relay's BitTorrent and HTTP Range, and
/// every agent still ends byte-identical.
#[test]
fn relay_killed_mid_download_every_agent_still_finishes() {
    run(Meta::Torrent, true);
}

/// A URL-only distribution (no .torrent given): the relay hashes while pulling, publishes the
/// .torrent it made to ctl, ctl pushes the task again, and the agents download it.
#[test]
fn url_only_distribution_through_ctl() {
    run(Meta::UrlOnly, false);
}

/// What the distribution is created with.
#[derive(PartialEq)]
enum Meta {
    Torrent,
    UrlOnly,
}

fn run(meta: Meta, kill_relay: bool) {
    let fx = Fixture::new(SIZE);
    // ~2 s for the whole file from the origin (4 s when a relay dies): the agents start while
    // the relay still pulls.
    let rate = if kill_relay { "1500000" } else { "3000000" };
    let origin = Origin::start(&fx.file, &["--rate", rate]);
    let (_db_dir, db) = sqlite_db();
    let ctl = Ctl::start(&db, if kill_relay { &["--relay-timeout-secs", "2"] } else { &[] });

    let relay_count = if kill_relay { 2 } else { 1 };
    let mut relays = Vec::new();
    for i in 1..=relay_count {
        let (bt, http) = (free_addr(), free_addr());
        let relay_dir = fx.dir.path().join(format!("relay{i}"));
        let child = spawn_relay(&ctl, &format!("relay-{i}"), &relay_dir, bt, http);
        assert!(wait_for_listen(http, Duration::from_secs(30)), "relay did not listen on {http}");
        relays.push(child);
    }

    let mut agents = Vec::new();
    let mut outs = Vec::new();
    for i in 1..=2 {
        let out = fx.dir.path().join(format!("agent{i}"));
        agents.push(spawn_agent(&ctl, &format!("agent-{i}"), "e2e,web", &out));
        outs.push(out);
    }

    // Everyone registered before the distribution is created (targets are resolved then).
    let registered = wait_for(Duration::from_secs(30), || {
        let clients = ctl_json(&ctl, &["clients"])?.to_string();
        let relays = ctl_json(&ctl, &["relays"])?.to_string();
        let all_relays = (1..=relay_count).all(|i| relays.contains(&format!("relay-{i}")));
        (clients.contains("agent-1") && clients.contains("agent-2") && all_relays).then_some(())
    });
    assert!(registered.is_some(), "relay and agents did not register with ctl within 30 s");

    let url = origin.url();
    let mut create = vec!["dist", "create", &url, "--targets", "all"];
    if meta == Meta::Torrent {
        create.extend(["--torrent", path(&fx.torrent)]);
    }
    let created = ctl_json(&ctl, &create).expect("dist create");
    let id = created["id"].as_str().expect("dist id").to_string();
    assert_eq!(created["target_count"].as_u64(), Some(2), "{created}");

    let files: Vec<_> = outs.iter().map(|o| o.join("blob.bin")).collect();
    if kill_relay {
        // Kill the assigned relay once the agents are under way (before the pull is over).
        let assigned = created["relay_ids"][0].as_str().expect("a relay assigned").to_string();
        let i: usize = assigned.trim_start_matches("relay-").parse().expect("relay-N");
        let started = wait_for(Duration::from_secs(30), || {
            let d = ctl_json(&ctl, &["dist", "get", &id])?;
            (d["stats"]["progress"].as_f64().unwrap_or(0.0) > 0.05).then_some(())
        });
        assert!(started.is_some(), "the agents made no progress");
        relays[i - 1].kill();
        assert!(!files.iter().all(|f| same(f, &fx.data)), "the relay must die mid-download");
    }
    let done = wait_for(Duration::from_secs(60), || files.iter().all(|f| same(f, &fx.data)).then_some(()));
    assert!(done.is_some(), "both agents did not get byte-identical files within 60 s");

    let dist = wait_for(Duration::from_secs(30), || {
        let d = ctl_json(&ctl, &["dist", "get", &id])?;
        let origin_bytes = d["stats"]["origin_bytes"].as_u64().unwrap_or(0);
        (d["state"] == "done" && origin_bytes >= SIZE as u64).then_some(d)
    });
    let dist = dist.unwrap_or_else(|| {
        panic!(
            "ctl did not show the distribution done within 30 s: {:?}",
            ctl_json(&ctl, &["dist", "get", &id])
        )
    });
    assert_eq!(dist["stats"]["done"].as_u64(), Some(2), "{dist}");
    let delivered: u64 = ["bytes_bt", "bytes_http_relay", "bytes_http_origin"]
        .iter()
        .map(|k| dist["stats"][k].as_u64().unwrap_or(0))
        .sum();
    assert!(delivered >= 2 * SIZE as u64, "agents report what they received by source: {dist}");
    if kill_relay {
        // A second relay pulled the file again; nothing else came from the origin.
        let (_, served) = origin.stats();
        assert!(served <= SIZE as u64 * 5 / 2, "the origin served {served} bytes for a {SIZE}-byte file");
        return;
    }
    let origin_bytes = dist["stats"]["origin_bytes"].as_u64().unwrap_or(0);
    assert!(origin_bytes <= SIZE as u64 * 11 / 10, "ctl origin bytes {origin_bytes} for a {SIZE}-byte file");
    let (_, served) = origin.stats();
    assert!(served <= SIZE as u64 * 3 / 2, "the origin served {served} bytes for a {SIZE}-byte file");
    drop(agents);
}
