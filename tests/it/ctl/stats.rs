//! Distribution statistics over gRPC, on SQLite and on PostgreSQL: progress with failed
//! targets, and the measured Kumar–Ross bound of two distributions pulled by one relay.

use floodgate_proto::v1 as pb;

use super::postgres::PgDb;
use super::{sqlite_db, Admin, Client, Ctl, Relay};

async fn register_relay(r: &mut Relay, id: &str) {
    r.register_relay(pb::RegisterRelayRequest {
        id: id.into(),
        addresses: vec![format!("http://{id}.test:8080")],
        zone: "z1".into(),
        capacity_bps: 0,
    })
    .await
    .expect("register relay");
}

async fn register_client(c: &mut Client, id: &str) {
    c.register_client(pb::RegisterClientRequest { id: id.into(), zone: "z1".into(), ..Default::default() })
        .await
        .expect("register client");
}

async fn create(admin: &mut Admin, name: &str, clients: &[&str]) -> pb::CreateDistributionResponse {
    admin
        .create_distribution(pb::CreateDistributionRequest {
            origin_url: format!("http://origin.test/{name}"),
            targets: Some(pb::TargetSelector {
                client_ids: clients.iter().map(|c| c.to_string()).collect(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("create")
        .into_inner()
}

async fn stats(admin: &mut Admin, id: &str) -> pb::DistStats {
    admin
        .get_distribution(pb::GetDistributionRequest { id: id.into() })
        .await
        .expect("get")
        .into_inner()
        .stats
        .expect("stats")
}

fn report(dist: &str, client: &str, bytes: u64, state: pb::TaskState, speed: u64) -> pb::ProgressReport {
    pb::ProgressReport {
        client_id: client.into(),
        dist_id: dist.into(),
        bytes_bt: bytes,
        speed_bps: speed,
        state: state as i32,
        instance: 1,
        ..Default::default()
    }
}

fn task(dist: &str, rate: Option<u64>) -> pb::RelayTaskStatus {
    pb::RelayTaskStatus { dist_id: dist.into(), size: 1000, origin_rate_bps: rate, ..Default::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_target_leaves_the_goal_so_the_others_reach_full_progress() {
    let (_dir, db) = sqlite_db();
    failed_target_leaves_the_goal(&db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_target_leaves_the_goal_so_the_others_reach_full_progress_postgres() {
    let pg = PgDb::create();
    failed_target_leaves_the_goal(&pg.url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_pulling_two_distributions_counts_only_each_ones_rate_in_its_bound() {
    let (_dir, db) = sqlite_db();
    shared_relay_rates(&db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_pulling_two_distributions_counts_only_each_ones_rate_in_its_bound_postgres() {
    let pg = PgDb::create();
    shared_relay_rates(&pg.url).await;
}

async fn failed_target_leaves_the_goal(db: &str) {
    let ctl = Ctl::start(db, &[]);
    let (mut admin, mut relay, mut client) = (ctl.admin().await, ctl.relay().await, ctl.client().await);
    register_relay(&mut relay, "r1").await;
    for c in ["c1", "c2", "c3"] {
        register_client(&mut client, c).await;
    }
    let d = create(&mut admin, "p.iso", &["c1", "c2", "c3"]).await.id;
    relay
        .relay_heartbeat(pb::RelayHeartbeatRequest {
            id: "r1".into(),
            tasks: vec![task(&d, Some(0))],
            ..Default::default()
        })
        .await
        .expect("heartbeat");
    // c1 done (it reports more than the file: a piece fetched twice), c2 failed after 400
    // bytes, c3 half way: (1000 + 500) / (2 × 1000).
    use pb::TaskState::{Done, Failed, Running};
    for r in
        [report(&d, "c1", 1200, Done, 0), report(&d, "c2", 400, Failed, 0), report(&d, "c3", 500, Running, 0)]
    {
        client.report_progress(r).await.expect("report");
    }
    let s = stats(&mut admin, &d).await;
    assert_eq!((s.done, s.failed, s.running), (1, 1, 1));
    assert!((s.progress - 0.75).abs() < 1e-9, "progress {}", s.progress);
    assert_eq!(s.bytes_bt, 2100, "the byte counts by source still hold every target's bytes");
    client.report_progress(report(&d, "c3", 1000, Done, 0)).await.expect("report");
    let s = stats(&mut admin, &d).await;
    assert_eq!(s.progress, 1.0, "every target that can still finish finished");
    let json = crate::e2e::ctl_json(&ctl, &["dist", "get", &d]).expect("dist get --json");
    assert_eq!(json["state"], "done", "{json}");
    assert_eq!(json["stats"]["progress"], 1.0, "{json}");
}

async fn shared_relay_rates(db: &str) {
    let ctl = Ctl::start(db, &[]);
    let (mut admin, mut relay, mut client) = (ctl.admin().await, ctl.relay().await, ctl.client().await);
    register_relay(&mut relay, "r1").await;
    register_client(&mut client, "c1").await;
    register_client(&mut client, "c2").await;
    let a = create(&mut admin, "a.iso", &["c1"]).await;
    let b = create(&mut admin, "b.iso", &["c2"]).await;
    assert_eq!(
        (a.relay_ids.as_slice(), b.relay_ids.as_slice()),
        (["r1".to_string()].as_slice(), ["r1".to_string()].as_slice())
    );
    // r1 pulls 300 B/s in all: 100 for a, 200 for b. The clients are fast (10 kB/s), so
    // F/u_s is the bound: 1000/100 = 10 s for a, 1000/200 = 5 s for b (not 1000/300 for both).
    let beat = |rates: [Option<u64>; 2]| pb::RelayHeartbeatRequest {
        id: "r1".into(),
        origin_rate_bps: 300,
        tasks: vec![task(&a.id, rates[0]), task(&b.id, rates[1])],
        ..Default::default()
    };
    relay.relay_heartbeat(beat([Some(100), Some(200)])).await.expect("heartbeat");
    for (d, c) in [(&a.id, "c1"), (&b.id, "c2")] {
        client.report_progress(report(d, c, 100, pb::TaskState::Running, 10_000)).await.expect("report");
    }
    let (sa, sb) = (stats(&mut admin, &a.id).await, stats(&mut admin, &b.id).await);
    assert_eq!(sa.min_time_basis, "measured");
    assert!((sa.min_time_secs - 10.0).abs() < 1e-9, "a's bound {}", sa.min_time_secs);
    assert!((sb.min_time_secs - 5.0).abs() < 1e-9, "b's bound {}", sb.min_time_secs);
    // A relay too old to report per-distribution rates: its whole rate stands in for each.
    relay.relay_heartbeat(beat([None, None])).await.expect("heartbeat");
    let sa = stats(&mut admin, &a.id).await;
    assert!((sa.min_time_secs - 1000.0 / 300.0).abs() < 1e-9, "a's bound {}", sa.min_time_secs);
}
