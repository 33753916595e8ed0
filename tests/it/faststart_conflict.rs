//! Two relays of one URL-only distribution that disagree: the origin (`fg-origin
//! --vary-range`) serves one piece as it is to the first relay that pulls it and changed to
//! the second, so their hash lists differ there. The agent keeps the hash it took first (the
//! first relay's), stops using the second relay for the distribution (no more hashes, no HTTP
//! Range, banned in the provisional swarm), reports the conflict to ctl, and ends with the
//! first relay's file; ctl shows the conflict with the distribution and counts it.

use std::net::{SocketAddr, TcpListener};
use std::process::Command;
use std::time::Duration;

use floodgate_engine::metainfo::{piece_length_for, url_task_id};
use floodgate_proto::v1 as pb;
use floodgate_tests::{free_addr, wait_for, wait_for_listen, ChildGuard};

use crate::ctl::postgres::PgDb;
use crate::ctl::{sqlite_db, Ctl, ADMIN};
use crate::e2e::{ctl_json, spawn_agent, spawn_relay};
use crate::relay::{curl, json, Fixture, Origin};

/// File size: 8 MiB, pulled by both relays through one origin at 2 MB/s (relay-a, alone at
/// first, must still be pulling when relay-b lands the piece they disagree on).
const SIZE: usize = 8 * 1024 * 1024;
/// The piece the relays disagree on.
const PIECE: u64 = 1;
/// Ghost targets besides the agent, so that ctl picks two relays (2% of 51 targets, rounded up).
const GHOSTS: usize = 50;

/// A free port on the loopback address `ip` (bound and released).
fn free_on(ip: [u8; 4]) -> SocketAddr {
    let l = TcpListener::bind(SocketAddr::from((ip, 0)))
        .expect("bind a loopback alias (Linux routes 127/8 to lo)");
    l.local_addr().expect("local addr")
}

/// Sends `signal` (`-STOP`, `-CONT`) to process `pid`.
fn signal(pid: u32, signal: &str) {
    let ok = Command::new("kill").args([signal, &pid.to_string()]).status().is_ok_and(|s| s.success());
    assert!(ok, "kill {signal} {pid}");
}

/// `floodgate_relay_served_bytes_total{protocol=PROTOCOL}` summed over the relay's tasks.
fn served(relay_http: SocketAddr, protocol: &str) -> Option<u64> {
    let (code, body) = curl(&format!("http://{relay_http}/metrics"), &[]);
    (code == 200).then(|| {
        String::from_utf8_lossy(&body)
            .lines()
            .filter(|l| {
                l.starts_with("floodgate_relay_served_bytes_total{")
                    && l.contains(&format!("protocol=\"{protocol}\""))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    })
}

#[test]
fn a_relay_whose_hashes_disagree_is_reported_and_not_used() {
    let (_db_dir, db) = sqlite_db();
    disagreeing_relay(&db);
}

#[test]
fn a_relay_whose_hashes_disagree_is_reported_on_postgres() {
    let pg = PgDb::create();
    disagreeing_relay(&pg.url);
}

/// The whole story with ctl on the database `db`.
fn disagreeing_relay(db: &str) {
    let fx = Fixture::new(SIZE);
    let pl = u64::from(piece_length_for(SIZE as u64));
    let span = format!("{}-{}", PIECE * pl + 1000, PIECE * pl + 1100);
    let origin = Origin::start(&fx.file, &["--rate", "2000000", "--vary-range", &span]);
    let web = free_addr();
    let ctl = Ctl::start(db, &["--http-listen", &web.to_string()]);
    // Distinct loopback addresses, so that banning one relay's address bans only that relay.
    let (a_bt, a_http) = (free_on([127, 0, 0, 2]), free_on([127, 0, 0, 2]));
    let (b_bt, b_http) = (free_on([127, 0, 0, 3]), free_on([127, 0, 0, 3]));
    let _relay_a = spawn_relay(&ctl, "relay-a", &fx.dir.path().join("relay-a"), a_bt, a_http);
    let relay_b = spawn_relay(&ctl, "relay-b", &fx.dir.path().join("relay-b"), b_bt, b_http);
    assert!(
        wait_for_listen(a_http, Duration::from_secs(30)) && wait_for_listen(b_http, Duration::from_secs(30))
    );
    let out = fx.dir.path().join("agent");
    let _agent: ChildGuard = spawn_agent(&ctl, "agent-1", "conflict", &out);
    let registered = wait_for(Duration::from_secs(30), || {
        let clients = ctl_json(&ctl, &["clients"])?.to_string();
        let relays = ctl_json(&ctl, &["relays"])?.to_string();
        (clients.contains("agent-1") && relays.contains("relay-a") && relays.contains("relay-b"))
            .then_some(())
    });
    assert!(registered.is_some(), "relays and agent did not register within 30 s");

    // relay-b is held (SIGSTOP) until relay-a has pulled and published the piece, so relay-a
    // reads it first (as it is) and the agent takes relay-a's hash first.
    signal(relay_b.id(), "-STOP");
    let mut targets = vec!["agent-1".to_string()];
    targets.extend((1..=GHOSTS).map(|i| format!("ghost-{i}")));
    let targets = targets.join(",");
    let create = ["dist", "create", &origin.url(), "--targets", &targets];
    let created = ctl_json(&ctl, &create);
    let dist = created.as_ref().and_then(|c| c["id"].as_str()).map(str::to_string);
    let Some(dist) = dist else {
        signal(relay_b.id(), "-CONT");
        panic!("dist create: {created:?}");
    };
    let task = url_task_id(&origin.url());
    let a_has_piece = wait_for(Duration::from_secs(30), || {
        let list = json(&format!("http://{a_http}/tasks/{task}/hashes"))?;
        list["hashes"].get(PIECE as usize)?.as_str().map(str::to_string)
    });
    // The agent joins from relay-a's list and follows it; give it a moment before relay-b goes on.
    std::thread::sleep(Duration::from_millis(1000));
    signal(relay_b.id(), "-CONT");
    let a_hash = a_has_piece.expect("relay-a published the piece's hash within 30 s");

    // ctl lists the conflict: relay-b, from that piece, one client.
    let conflict = wait_for(Duration::from_secs(60), || {
        let d = ctl_json(&ctl, &["dist", "get", &dist])?;
        d["hash_conflicts"].get(0).cloned()
    })
    .unwrap_or_else(|| {
        panic!("no conflict listed within 60 s: {:?}", ctl_json(&ctl, &["dist", "get", &dist]))
    });
    assert_eq!(conflict["relay"], "relay-b", "{conflict}");
    assert_eq!(conflict["first_piece"], PIECE, "{conflict}");
    assert_eq!(conflict["clients"], 1, "{conflict}");
    assert_eq!(conflict["hash_seen_first"], a_hash.as_str(), "the hash taken first is relay-a's: {conflict}");
    assert_ne!(conflict["hash_from_relay"], a_hash.as_str(), "{conflict}");
    // An in-flight HTTP request ends after its current piece; what relay-b sent the agent
    // from then on must stay as it is.
    std::thread::sleep(Duration::from_secs(1));
    let b_served_at_conflict =
        (served(b_http, "http").expect("relay-b metrics"), served(b_http, "bt").expect("relay-b metrics"));

    // The agent ends with relay-a's file (the origin's bytes as they are): every piece
    // verified against the hashes taken first.
    let file = out.join("blob.bin");
    let done = wait_for(Duration::from_secs(90), || {
        let d = ctl_json(&ctl, &["dist", "get", &dist])?;
        (d["stats"]["done"] == 1).then_some(d)
    });
    assert!(done.is_some(), "agent not done within 90 s: {:?}", ctl_json(&ctl, &["dist", "get", &dist]));
    assert!(
        std::fs::read(&file).is_ok_and(|got| got == fx.data),
        "{} must be relay-a's file",
        file.display()
    );
    std::thread::sleep(Duration::from_secs(2));
    let b_served_at_end =
        (served(b_http, "http").expect("relay-b metrics"), served(b_http, "bt").expect("relay-b metrics"));
    eprintln!("relay-b bytes served (http, bt): {b_served_at_conflict:?} when the conflict was listed, {b_served_at_end:?} at the end");
    // The agent is relay-b's only reader (relay-a takes nothing from peers).
    assert_eq!(b_served_at_end, b_served_at_conflict, "relay-b served the agent after the conflict");

    // The human `dist get` names it; ctl's metrics count it.
    let human = Command::new(floodgate_tests::bin("floodgate-ctl"))
        .args(["dist", "get", &dist, "--ctl", &ctl.url(), "--token", ADMIN])
        .output()
        .expect("floodgate-ctl dist get");
    let human = String::from_utf8_lossy(&human.stdout);
    assert!(
        human.contains(&format!(
            "conflict:  relay relay-b disagrees from piece {PIECE} (reported by 1 client;"
        )),
        "{human}"
    );
    let auth = format!("authorization: Bearer {ADMIN}");
    let (code, metrics) = curl(&format!("http://{web}/metrics"), &["-H", &auth]);
    let metrics = String::from_utf8_lossy(&metrics);
    assert_eq!(code, 200, "{metrics}");
    assert!(metrics.lines().any(|l| l == "floodgate_ctl_hash_conflicts_total 1"), "{metrics}");
    let (code, api) = curl(&format!("http://{web}/api/v1/distributions/{dist}"), &["-H", &auth]);
    assert_eq!(code, 200);
    let api: serde_json::Value = serde_json::from_slice(&api).expect("dashboard JSON");
    assert_eq!(api["hash_conflicts"][0]["relay"], "relay-b", "{api}");

    // Over gRPC: another target reporting relay-b by its address counts as a second client;
    // reports that cannot be right are refused.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let mut c = ctl.client().await;
        let report = |client: &str, relay: &str, first: &str, theirs: &str| pb::ReportHashConflictRequest {
            client_id: client.into(),
            dist_id: dist.clone(),
            relay: relay.into(),
            piece: 5,
            hash_seen_first: first.into(),
            hash_from_relay: theirs.into(),
        };
        let (h1, h2) = ("1".repeat(40), "2".repeat(40));
        let r =
            c.report_hash_conflict(report("ghost-1", &b_http.to_string(), &h1, &h2)).await.expect("report");
        assert!(r.into_inner().recorded);
        let r = c.report_hash_conflict(report("ghost-1", "relay-b", &h1, &h2)).await.expect("again");
        assert!(!r.into_inner().recorded, "one report per client and relay");
        let refused = |r: Result<tonic::Response<pb::ReportHashConflictResponse>, tonic::Status>| {
            r.expect_err("refused").code()
        };
        assert_eq!(
            refused(c.report_hash_conflict(report("ghost-2", "relay-b", &h1, &h1)).await),
            tonic::Code::InvalidArgument
        );
        assert_eq!(
            refused(c.report_hash_conflict(report("ghost-2", "relay-b", "xyz", &h2)).await),
            tonic::Code::InvalidArgument
        );
        assert_eq!(
            refused(c.report_hash_conflict(report("ghost-2", "relay-z", &h1, &h2)).await),
            tonic::Code::InvalidArgument
        );
        assert_eq!(
            refused(c.report_hash_conflict(report("stranger", "relay-b", &h1, &h2)).await),
            tonic::Code::PermissionDenied
        );
    });
    let d = ctl_json(&ctl, &["dist", "get", &dist]).expect("dist get");
    assert_eq!(d["hash_conflicts"][0]["clients"], 2, "{d}");
    assert_eq!(d["hash_conflicts"][0]["first_piece"], PIECE, "the lowest piece reported: {d}");
}
