//! URL-only distributions with a whole-file SHA-256 (`dist create --sha256`): nothing is
//! reported done or published as the final `.torrent` unless the pulled file matches. A
//! mismatch fails the distribution with the reason, the relay publishes nothing and stops
//! serving the data, and the agents delete their provisional data and report failed.

use std::process::{Command, Stdio};
use std::time::Duration;

use floodgate_proto::v1 as pb;
use floodgate_tests::{bin, wait_for};
use sha2::{Digest, Sha256};

use crate::ctl::postgres::PgDb;
use crate::ctl::{sqlite_db, Ctl};
use crate::e2e::{ctl_json, spawn_agent};
use crate::faststart::UrlOnlySetup;
use crate::relay::{curl, json};

/// File size: 3 MiB, pulled at 2 MB/s (about 1.6 s).
const SIZE: usize = 3 * 1024 * 1024;
const RATE: &str = "2000000";
const AGENTS: usize = 2;

/// Lowercase hex SHA-256 of `data`.
fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

/// A digest that is valid but not `data`'s (its last digit changed).
fn wrong_digest(data: &[u8]) -> String {
    let mut d = sha256_hex(data);
    let last = if d.ends_with('0') { "1" } else { "0" };
    d.replace_range(63.., last);
    d
}

/// The agents `agent-1..=AGENTS` of `setup`, and the file each writes.
fn agents(setup: &UrlOnlySetup) -> (Vec<floodgate_tests::ChildGuard>, Vec<String>, Vec<std::path::PathBuf>) {
    let outs: Vec<_> = (1..=AGENTS).map(|i| setup.fx.dir.path().join(format!("agent{i}"))).collect();
    let guards = outs
        .iter()
        .enumerate()
        .map(|(i, o)| spawn_agent(&setup.ctl, &format!("agent-{}", i + 1), "dg", o))
        .collect();
    let names = (1..=AGENTS).map(|i| format!("agent-{i}")).collect();
    let files = outs.iter().map(|o| o.join("blob.bin")).collect();
    (guards, names, files)
}

/// The distribution as `dist get --json` shows it once `pred` holds (60 s at most).
fn wait_dist(
    ctl: &Ctl,
    dist: &str,
    what: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    wait_for(Duration::from_secs(60), || ctl_json(ctl, &["dist", "get", dist]).filter(|d| pred(d)))
        .unwrap_or_else(|| panic!("{what} within 60 s; now {:?}", ctl_json(ctl, &["dist", "get", dist])))
}

#[test]
fn the_right_digest_ends_done_with_the_torrent_published() {
    let setup = UrlOnlySetup::start(SIZE, RATE);
    let (_agents, names, files) = agents(&setup);
    let digest = sha256_hex(&setup.fx.data);
    let dist = setup.create_when_registered_with(&names, &["--sha256", &digest.to_uppercase()]);
    let d = wait_dist(&setup.ctl, &dist, "the distribution must be done", |d| d["state"] == "done");
    assert_eq!(d["sha256"], digest.as_str(), "ctl keeps the digest in lowercase: {d}");
    assert_eq!(d["failure_reason"], "", "{d}");
    assert_eq!(d["has_torrent"], true, "the relay published the .torrent after the check: {d}");
    assert_eq!(d["stats"]["done"], AGENTS as u64, "{d}");
    for f in &files {
        assert!(
            std::fs::read(f).is_ok_and(|got| got == setup.fx.data),
            "{} must be byte-identical",
            f.display()
        );
    }
    let task =
        json(&format!("http://{}/tasks", setup.http)).and_then(|t| t.get(0).cloned()).expect("relay task");
    assert_eq!(task["state"], "complete", "{task}");
    assert!(task["info_hash"].is_string(), "the relay made the final torrent: {task}");
}

/// A wrong digest on the database behind `setup`: the distribution fails with the reason,
/// nothing is published, the relay stops serving the data and the agents delete theirs.
fn wrong_digest_fails(setup: UrlOnlySetup) {
    let (_agents, names, files) = agents(&setup);
    let (ctl, http) = (&setup.ctl, setup.http);
    let wrong = wrong_digest(&setup.fx.data);
    let dist = setup.create_when_registered_with(&names, &["--sha256", &wrong]);
    let d = wait_dist(ctl, &dist, "the distribution must fail", |d| d["state"] == "failed");
    let reason = d["failure_reason"].as_str().unwrap_or_default().to_string();
    assert!(reason.contains("SHA-256 mismatch"), "the reason names the mismatch: {d}");
    assert!(reason.contains(&wrong), "the reason names the expected digest: {d}");
    assert!(reason.contains(&sha256_hex(&setup.fx.data)), "the reason names the file's digest: {d}");
    assert_eq!(d["has_torrent"], false, "no .torrent may be published: {d}");

    // The agents stop, report failed with the reason, and delete their provisional data.
    let d =
        wait_dist(ctl, &dist, "every agent must report failed", |d| d["stats"]["failed"] == AGENTS as u64);
    assert_eq!(d["stats"]["done"], 0, "{d}");
    let gone = wait_for(Duration::from_secs(30), || files.iter().all(|f| !f.exists()).then_some(()));
    assert!(gone.is_some(), "the agents must delete their provisional data: {files:?}");

    // The relay shows the task failed, made no torrent, and serves none of the data.
    let task = json(&format!("http://{http}/tasks")).and_then(|t| t.get(0).cloned()).expect("relay task");
    assert_eq!(task["state"], "failed", "{task}");
    assert!(task["error"].as_str().is_some_and(|e| e.contains("SHA-256 mismatch")), "{task}");
    assert!(task["info_hash"].is_null() && task["torrent"].is_null(), "no torrent: {task}");
    let id = task["id"].as_str().expect("task id");
    let (code, body) = curl(&format!("http://{http}/tasks/{id}/data"), &["-r", "0-99"]);
    assert_eq!(code, 503, "the data must not be served: {}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("SHA-256 mismatch"));

    // The text output shows the reason too.
    let out = Command::new(bin("floodgate-ctl"))
        .args(["dist", "get", &dist, "--ctl", &ctl.url(), "--token", crate::ctl::ADMIN])
        .stderr(Stdio::null())
        .output()
        .expect("run floodgate-ctl dist get");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("failed:    SHA-256 mismatch"), "dist get shows the reason: {text}");
}

#[test]
fn a_wrong_digest_fails_the_distribution_and_publishes_nothing() {
    wrong_digest_fails(UrlOnlySetup::start(SIZE, RATE));
}

#[test]
fn a_wrong_digest_fails_the_distribution_on_postgres() {
    let pg = PgDb::create();
    let url = pg.url.clone();
    wrong_digest_fails(UrlOnlySetup::start_on(SIZE, RATE, &url, Box::new(pg)));
}

#[test]
fn a_malformed_sha256_is_refused_by_the_cli() {
    // Refused while parsing the arguments: no ctl is needed (nothing listens on port 9).
    for (bad, why) in
        [("abc", "64 hex digits, got 3 characters"), (&"z".repeat(64)[..], "found 'z' at position 0")]
    {
        let out = Command::new(bin("floodgate-ctl"))
            .args(["dist", "create", "http://127.0.0.1:9/f", "--targets", "all", "--sha256", bad])
            .args(["--ctl", "http://127.0.0.1:9", "--token", "t"])
            .output()
            .expect("run floodgate-ctl");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "--sha256 {bad} must be refused");
        assert!(err.contains("--sha256") && err.contains(why), "a clear error for {bad:?}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctl_refuses_bad_digests_and_foreign_mismatch_reports() {
    let (_dir, db) = sqlite_db();
    let ctl = Ctl::start(&db, &[]);
    let mut admin = ctl.admin().await;
    let create = |sha256: &str, torrent: Vec<u8>| pb::CreateDistributionRequest {
        origin_url: "http://127.0.0.1:9/f.bin".into(),
        sha256: sha256.into(),
        torrent,
        targets: Some(pb::TargetSelector { all: true, ..Default::default() }),
        ..Default::default()
    };
    let e = admin.create_distribution(create("12ab", Vec::new())).await.expect_err("a short digest");
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("sha256"), "{e:?}");
    let fx = crate::relay::Fixture::new(64 * 1024);
    let torrent = std::fs::read(&fx.torrent).expect("fixture torrent");
    let digest = sha256_hex(&fx.data);
    let e = admin.create_distribution(create(&digest, torrent)).await.expect_err("digest with a torrent");
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
    // Its relay registers first, so ctl's monitor has no relay to add when "stranger" comes.
    let mut relay = ctl.relay().await;
    relay
        .register_relay(pb::RegisterRelayRequest { id: "owner".into(), ..Default::default() })
        .await
        .expect("register");
    let created = admin.create_distribution(create(&digest, Vec::new())).await.expect("create").into_inner();
    assert_eq!(created.relay_ids, ["owner"], "{created:?}");
    let id = created.id;

    // A relay not assigned to it cannot fail it.
    relay
        .register_relay(pb::RegisterRelayRequest { id: "stranger".into(), ..Default::default() })
        .await
        .expect("register");
    let report = |relay_id: &str, expected: &str| pb::ReportDigestMismatchRequest {
        relay_id: relay_id.into(),
        dist_id: id.clone(),
        expected: expected.into(),
        actual: wrong_digest(&fx.data),
    };
    let e = relay.report_digest_mismatch(report("stranger", &digest)).await.expect_err("not assigned");
    assert_eq!(e.code(), tonic::Code::PermissionDenied, "{e:?}");
    let d = admin
        .get_distribution(pb::GetDistributionRequest { id: id.clone() })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(d.state, pb::DistState::Active as i32, "{d:?}");
    assert_eq!(d.sha256, digest);
}

/// How the distribution ends while the agent is down.
#[derive(Clone, Copy, Debug)]
enum WhileDown {
    /// The relay's digest check fails.
    Mismatch,
    /// An admin cancels it.
    Cancel,
}

/// One agent starts a URL-only distribution with a wrong digest and is killed -9 once its
/// provisional job has written data; while it is down the distribution fails (the relay's
/// check) or is cancelled. Restarted on the same directory, the agent must delete the
/// provisional data it recorded (and, failed, report FAILED): nothing is left on disk.
fn restarted_agent_cleans_up(how: WhileDown) {
    // 3 MiB at 1 MB/s: about 3 s of pull, time to kill the agent mid-way.
    let setup = UrlOnlySetup::start(SIZE, "1000000");
    let out = setup.fx.dir.path().join("agent1");
    let (file, record) = (out.join("blob.bin"), out.join(".floodgate-provisional.json"));
    let mut agent = spawn_agent(&setup.ctl, "agent-1", "dg", &out);
    let wrong = wrong_digest(&setup.fx.data);
    let dist = setup.create_when_registered_with(&["agent-1".to_string()], &["--sha256", &wrong]);
    let started = wait_for(Duration::from_secs(30), || {
        let recorded = std::fs::read_to_string(&record).is_ok_and(|r| r.contains(&dist));
        let some_data = std::fs::metadata(&file).is_ok_and(|m| m.len() > 0);
        (recorded && some_data).then_some(())
    });
    assert!(started.is_some(), "the agent must record its provisional job and write data");
    agent.kill();
    let running = ctl_json(&setup.ctl, &["dist", "get", &dist]).expect("dist get");
    assert_eq!(running["state"], "active", "killed before the pull ended: {running}");

    match how {
        WhileDown::Mismatch => {
            let d = wait_dist(&setup.ctl, &dist, "the distribution must fail", |d| d["state"] == "failed");
            assert!(d["failure_reason"].as_str().is_some_and(|r| r.contains("SHA-256 mismatch")), "{d}");
        }
        WhileDown::Cancel => {
            ctl_json(&setup.ctl, &["dist", "cancel", &dist]).expect("dist cancel");
            wait_dist(&setup.ctl, &dist, "the distribution must be cancelled", |d| d["state"] == "cancelled");
        }
    }
    assert!(file.exists(), "nobody deleted the provisional data while the agent was down");

    let _agent = spawn_agent(&setup.ctl, "agent-1", "dg", &out);
    let gone = wait_for(Duration::from_secs(30), || (!file.exists()).then_some(()));
    assert!(gone.is_some(), "the restarted agent must delete its provisional data ({how:?})");
    let forgotten = wait_for(Duration::from_secs(10), || {
        std::fs::read_to_string(&record).is_ok_and(|r| !r.contains(&dist)).then_some(())
    });
    assert!(forgotten.is_some(), "the record drops the distribution: {:?}", std::fs::read_to_string(&record));
    if let WhileDown::Mismatch = how {
        let d = wait_dist(&setup.ctl, &dist, "the restarted agent must report failed", |d| {
            d["stats"]["failed"] == 1
        });
        assert_eq!(d["stats"]["done"], 0, "{d}");
    }
}

#[test]
fn an_agent_killed_during_a_failing_check_deletes_its_data_after_a_restart() {
    restarted_agent_cleans_up(WhileDown::Mismatch);
}

#[test]
fn an_agent_killed_before_a_cancel_deletes_its_data_after_a_restart() {
    restarted_agent_cleans_up(WhileDown::Cancel);
}

/// ctl is killed -9 while the agent's provisional job runs and stays down while the relay's
/// check fails; restarted on the same database and port, it hears the relay's (retried)
/// mismatch report, and the agent, connected again, must end FAILED with the reason and
/// delete its provisional data.
#[test]
fn an_agent_that_lost_ctl_during_a_failing_check_fails_once_reconnected() {
    let (db_dir, db) = sqlite_db();
    let mut setup = UrlOnlySetup::start_on(SIZE, "1000000", &db, Box::new(db_dir));
    let out = setup.fx.dir.path().join("agent1");
    let file = out.join("blob.bin");
    let _agent = spawn_agent(&setup.ctl, "agent-1", "dg", &out);
    let wrong = wrong_digest(&setup.fx.data);
    let dist = setup.create_when_registered_with(&["agent-1".to_string()], &["--sha256", &wrong]);
    let started = wait_for(Duration::from_secs(30), || {
        std::fs::metadata(&file).is_ok_and(|m| m.len() > 0).then_some(())
    });
    assert!(started.is_some(), "the agent must start its provisional job");
    let addr = setup.ctl.addr;
    setup.ctl.child.kill();

    // While ctl is down the relay's check fails (it keeps retrying its report).
    let http = setup.http;
    let rejected = wait_for(Duration::from_secs(30), || {
        json(&format!("http://{http}/tasks"))
            .and_then(|t| t.get(0).cloned())
            .filter(|t| t["state"] == "failed")
    });
    assert!(rejected.is_some(), "the relay must reject the task while ctl is down");
    assert!(file.exists(), "the agent cannot know yet: its data is still there");

    setup.ctl = Ctl::start_at(addr, &db, &[]);
    let d = wait_dist(&setup.ctl, &dist, "the distribution must fail after ctl's restart", |d| {
        d["state"] == "failed"
    });
    assert!(d["failure_reason"].as_str().is_some_and(|r| r.contains("SHA-256 mismatch")), "{d}");
    let d = wait_dist(&setup.ctl, &dist, "the reconnected agent must report failed", |d| {
        d["stats"]["failed"] == 1
    });
    assert_eq!(d["stats"]["done"], 0, "{d}");
    let gone = wait_for(Duration::from_secs(30), || (!file.exists()).then_some(()));
    assert!(gone.is_some(), "the reconnected agent must delete its provisional data");
}
