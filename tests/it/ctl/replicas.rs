//! Two `floodgate-ctl serve` replicas on one fresh PostgreSQL database with real `floodgate
//! agent`s spread over both (each given both replicas, `--ctl` repeated, its own first): a
//! distribution created on one replica reaches the agents of the other; killing that replica
//! (-9) mid-download moves its agents to the survivor, and every agent ends with its file
//! once, byte-identical, with one assignment row per agent in ctl. A second distribution
//! created after the kill reaches every agent through the survivor.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use floodgate_tests::{bin, free_addr, wait_for, wait_for_listen, ChildGuard};

use super::postgres::PgDb;
use super::{Ctl, CLIENT};
use crate::e2e::{ctl_json, spawn_relay};
use crate::relay::{path, Fixture, Origin, PIECE};

/// File size of the first distribution (the one downloading while a replica dies).
const SIZE: usize = 6 * 1024 * 1024;
/// Agents per replica.
const PER_REPLICA: usize = 2;

/// Starts `floodgate agent` as `id` given the replicas `ctls` in that order, logging to `log`.
fn spawn_agent(ctls: &[&Ctl], id: &str, out: &Path, log: &Path) -> ChildGuard {
    let mut cmd = Command::new(bin("floodgate"));
    cmd.arg("agent");
    for c in ctls {
        cmd.args(["--ctl", &c.url()]);
    }
    let log = std::fs::File::create(log).expect("agent log file");
    cmd.args(["--token", CLIENT, "--id", id, "--labels", "fleet", "--zone", "z1"])
        .args(["-o", path(out), "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log);
    ChildGuard::spawn(&mut cmd).expect("spawn floodgate agent")
}

/// A second file, `second.bin` (another name than the fixture's `blob.bin`), and its torrent.
fn second_file(dir: &Path) -> (Vec<u8>, PathBuf, PathBuf) {
    let data: Vec<u8> = (0..256 * 1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let file = dir.join("second.bin");
    std::fs::write(&file, &data).expect("write second file");
    let torrent = dir.join("second.torrent");
    let status = Command::new(bin("floodgate"))
        .args(["make-torrent", path(&file), "-o", path(&torrent), "--piece-size", &PIECE.to_string()])
        .stdout(Stdio::null())
        .status()
        .expect("run make-torrent");
    assert!(status.success(), "make-torrent failed");
    (data, file, torrent)
}

/// Whether `file` holds exactly `want`.
fn same(file: &Path, want: &[u8]) -> bool {
    std::fs::read(file).is_ok_and(|got| got == want)
}

/// The non-hidden files in `dir` (the downloads; the agent's own records start with a dot).
fn downloads(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    v.retain(|n| !n.starts_with('.'));
    v.sort();
    v
}

/// `SELECT` through psql on `db`, one row per line.
fn psql_rows(db: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-d", db, "-At", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .expect("psql is not installed: run tools/setup-postgres.sh");
    assert!(out.status.success(), "psql: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits until ctl `via` shows distribution `id` done with `n` clients done.
fn wait_done(via: &Ctl, id: &str, n: u64) -> serde_json::Value {
    let d = wait_for(Duration::from_secs(60), || {
        let d = ctl_json(via, &["dist", "get", id])?;
        (d["state"] == "done" && d["stats"]["done"].as_u64() == Some(n)).then_some(d)
    });
    d.unwrap_or_else(|| {
        panic!("distribution {id} not done within 60 s: {:?}", ctl_json(via, &["dist", "get", id]))
    })
}

#[test]
fn killed_replica_moves_its_agents_without_losing_or_repeating_a_task() {
    let pg = PgDb::create();
    let fx = Fixture::new(SIZE);
    let second_dir = tempfile::tempdir().expect("tempdir");
    let (second_data, second_file, second_torrent) = second_file(second_dir.path());
    // ~4 s for the whole file from the origin: the agents are mid-download when a replica dies.
    let origin = Origin::start(&fx.file, &["--rate", "1500000"]);
    let origin2 = Origin::start(&second_file, &[]);
    let survivor = Ctl::start(&pg.url, &[]);
    let mut victim = Ctl::start(&pg.url, &[]);

    // The relay stays on the survivor (a relay takes one ctl).
    let (bt, http) = (free_addr(), free_addr());
    let _relay = spawn_relay(&survivor, "relay-1", &fx.dir.path().join("relay"), bt, http);
    assert!(wait_for_listen(http, Duration::from_secs(30)), "relay did not listen on {http}");

    let mut agents = Vec::new();
    let mut outs: Vec<(String, PathBuf, PathBuf)> = Vec::new();
    for i in 0..2 * PER_REPLICA {
        // Even agents use the victim first, odd ones the survivor.
        let id = format!("agent-{i}");
        let ctls: [&Ctl; 2] = if i % 2 == 0 { [&victim, &survivor] } else { [&survivor, &victim] };
        let out = fx.dir.path().join(&id);
        let log = fx.dir.path().join(format!("{id}.log"));
        agents.push(spawn_agent(&ctls, &id, &out, &log));
        outs.push((id, out, log));
    }
    let registered = wait_for(Duration::from_secs(30), || {
        let clients = ctl_json(&survivor, &["clients"])?.to_string();
        let relays = ctl_json(&survivor, &["relays"])?.to_string();
        (outs.iter().all(|(id, ..)| clients.contains(id.as_str())) && relays.contains("relay-1"))
            .then_some(())
    });
    assert!(registered.is_some(), "agents and relay did not register within 30 s");

    // Created on the survivor: the victim's agents hear of it through the victim (NOTIFY).
    let url = origin.url();
    let created =
        ctl_json(&survivor, &["dist", "create", &url, "--targets", "all", "--torrent", path(&fx.torrent)])
            .expect("dist create");
    let id = created["id"].as_str().expect("dist id").to_string();
    assert_eq!(created["target_count"].as_u64(), Some(2 * PER_REPLICA as u64), "{created}");
    let files: Vec<PathBuf> = outs.iter().map(|(_, out, _)| out.join("blob.bin")).collect();

    // Every agent under way (each reported bytes), then the victim dies.
    let started = wait_for(Duration::from_secs(30), || {
        let rows = psql_rows(
            &pg.name,
            &format!("SELECT COUNT(*) FROM client_assignments WHERE dist_id = '{id}' AND bytes_bt + bytes_http_relay > 0"),
        );
        (rows.trim() == (2 * PER_REPLICA).to_string()).then_some(())
    });
    assert!(started.is_some(), "not every agent reported progress within 30 s");
    victim.child.kill();
    assert!(!files.iter().all(|f| same(f, &fx.data)), "the replica must die mid-download");

    let done = wait_for(Duration::from_secs(60), || files.iter().all(|f| same(f, &fx.data)).then_some(()));
    assert!(done.is_some(), "not every agent got a byte-identical file within 60 s of the kill");
    wait_done(&survivor, &id, 2 * PER_REPLICA as u64);

    // A distribution created after the kill reaches every agent, the moved ones too.
    let url2 = origin2.url();
    let created2 = ctl_json(
        &survivor,
        &["dist", "create", &url2, "--targets", "all", "--torrent", path(&second_torrent)],
    )
    .expect("second dist create");
    let id2 = created2["id"].as_str().expect("dist id").to_string();
    wait_done(&survivor, &id2, 2 * PER_REPLICA as u64);

    // One assignment row per agent and distribution, each done.
    let rows = psql_rows(
        &pg.name,
        "SELECT dist_id, client_id, COUNT(*), MIN(state) FROM client_assignments GROUP BY dist_id, client_id",
    );
    let rows: Vec<&str> = rows.lines().collect();
    assert_eq!(rows.len(), 2 * 2 * PER_REPLICA, "{rows:?}");
    assert!(rows.iter().all(|r| r.ends_with("|1|done")), "{rows:?}");
    // Each agent holds each file once; the victim's agents said they moved.
    for (i, (agent, out, log)) in outs.iter().enumerate() {
        assert_eq!(downloads(out), ["blob.bin", "second.bin"], "{agent}: each file once, nothing else");
        assert!(same(&out.join("blob.bin"), &fx.data), "{agent}: blob.bin differs");
        assert!(same(&out.join("second.bin"), &second_data), "{agent}: second.bin differs");
        let log = std::fs::read_to_string(log).unwrap_or_default();
        if i % 2 == 0 {
            assert!(log.contains("switching ctl replica"), "{agent} never left the killed replica: {log}");
        }
    }
    drop(agents);
}
