//! The main flow on SQLite: relay and client streams, progress, statistics, cancellation,
//! restart recovery, relay loss.

use super::*;
use floodgate_proto::v1 as pb;
use pb::{relay_task_event, task_event};

async fn register_relay(r: &mut Relay, id: &str, zone: &str) {
    r.register_relay(pb::RegisterRelayRequest {
        id: id.into(),
        addresses: vec![format!("http://{id}.test:8080")],
        zone: zone.into(),
        capacity_bps: 125_000_000,
    })
    .await
    .expect("register relay");
}

async fn register_client(c: &mut Client, id: &str, labels: &[&str]) {
    c.register_client(pb::RegisterClientRequest {
        id: id.into(),
        labels: labels.iter().map(|s| s.to_string()).collect(),
        zone: "z1".into(),
    })
    .await
    .expect("register client");
}

fn create_req(targets: pb::TargetSelector) -> pb::CreateDistributionRequest {
    pb::CreateDistributionRequest {
        origin_url: "http://origin.test/big.iso".into(),
        size: 1000,
        targets: Some(targets),
        ..Default::default()
    }
}

fn assigned(ev: pb::TaskEvent) -> pb::Task {
    match ev.event {
        Some(task_event::Event::Assign(t)) => t,
        other => panic!("expected a task, got {other:?}"),
    }
}

fn relay_assigned(ev: pb::RelayTaskEvent) -> pb::RelayTask {
    match ev.event {
        Some(relay_task_event::Event::Assign(t)) => t,
        other => panic!("expected a relay task, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_to_end_push_progress_stats_cancel() {
    let (_dir, db) = sqlite_db();
    let ctl = Ctl::start(&db, &[]);
    let (mut admin, mut relay, mut client) = (ctl.admin().await, ctl.relay().await, ctl.client().await);

    register_relay(&mut relay, "r1", "z1").await;
    let mut rstream = relay
        .watch_relay_tasks(pb::WatchRelayTasksRequest { relay_id: "r1".into() })
        .await
        .expect("watch relay tasks")
        .into_inner();
    register_client(&mut client, "c1", &["gpu"]).await;
    let mut c1 = client
        .watch_tasks(pb::WatchTasksRequest { client_id: "c1".into() })
        .await
        .expect("watch")
        .into_inner();

    let created = admin
        .create_distribution(create_req(pb::TargetSelector {
            client_ids: vec!["c2".into()],
            labels: vec!["gpu".into()],
            all: false,
        }))
        .await
        .expect("create")
        .into_inner();
    assert_eq!(created.target_count, 2, "c1 by label, c2 by id (offline)");
    assert_eq!(created.relay_ids, vec!["r1".to_string()]);

    let rt = relay_assigned(next(&mut rstream, 5, "relay task").await);
    assert_eq!(rt.dist_id, created.id);
    assert_eq!(rt.origin_url, "http://origin.test/big.iso");
    let t = assigned(next(&mut c1, 5, "c1 task").await);
    assert_eq!(t.dist_id, created.id);
    assert_eq!(t.relays.iter().map(|r| r.relay_id.as_str()).collect::<Vec<_>>(), vec!["r1"]);
    assert_eq!(t.config.expect("config").bt_slow_threshold_bps, 500_000, "defaults filled");

    // c2 was offline: it gets the task when it connects.
    register_client(&mut client, "c2", &[]).await;
    let mut c2 = client
        .watch_tasks(pb::WatchTasksRequest { client_id: "c2".into() })
        .await
        .expect("watch")
        .into_inner();
    assert_eq!(assigned(next(&mut c2, 5, "c2 backlog").await).dist_id, created.id);

    // Progress and relay counters feed the statistics.
    let report = |client_id: &str, state: pb::TaskState, bt: u64| pb::ProgressReport {
        client_id: client_id.into(),
        dist_id: created.id.clone(),
        bytes_bt: bt,
        bytes_http_relay: 1000 - bt,
        speed_bps: 500,
        upload_capacity_bps: 100,
        download_capacity_bps: 50,
        state: state as i32,
        ..Default::default()
    };
    client.report_progress(report("c1", pb::TaskState::Done, 800)).await.expect("report c1");
    client.report_progress(report("c2", pb::TaskState::Running, 0)).await.expect("report c2");
    relay
        .relay_heartbeat(pb::RelayHeartbeatRequest {
            id: "r1".into(),
            load: 0.5,
            origin_latency_ms: 20.0,
            tasks: vec![pb::RelayTaskStatus {
                dist_id: created.id.clone(),
                origin_bytes: 1000,
                bytes_served: 1200,
                size: 1000,
                complete: true,
                origin_rate_bps: None,
            }],
            ..Default::default()
        })
        .await
        .expect("heartbeat");
    let d = admin
        .get_distribution(pb::GetDistributionRequest { id: created.id.clone() })
        .await
        .expect("get")
        .into_inner();
    let s = d.stats.expect("stats");
    assert_eq!((s.targets, s.done, s.running), (2, 1, 1));
    assert_eq!(s.bytes_bt, 800);
    assert_eq!(s.bytes_http_relay, 1200);
    assert_eq!(s.origin_bytes, 1000);
    assert!((s.offload_ratio - 2.0).abs() < 1e-9, "delivered 2000 / origin 1000, got {}", s.offload_ratio);
    // F=1000, u_s=125e6, d_min=50 -> F/d_min = 20 s dominates.
    assert!((s.min_time_secs - 20.0).abs() < 1e-6, "Kumar–Ross {}", s.min_time_secs);
    assert_eq!(s.min_time_basis, "configured");
    assert_eq!(d.state, pb::DistState::Active as i32);
    client.report_progress(report("c2", pb::TaskState::Done, 1000)).await.expect("report c2 done");
    let d = admin
        .get_distribution(pb::GetDistributionRequest { id: created.id.clone() })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(d.state, pb::DistState::Done as i32, "all targets done");

    // Cancellation is pushed to clients and relays.
    let second = admin
        .create_distribution(create_req(pb::TargetSelector {
            client_ids: vec!["c1".into()],
            ..Default::default()
        }))
        .await
        .expect("create second")
        .into_inner();
    assert_eq!(assigned(next(&mut c1, 5, "second task").await).dist_id, second.id);
    assert_eq!(relay_assigned(next(&mut rstream, 5, "second relay task").await).dist_id, second.id);
    let cancelled = admin
        .cancel_distribution(pb::CancelDistributionRequest { id: second.id.clone() })
        .await
        .expect("cancel")
        .into_inner();
    assert_eq!(cancelled.state, pb::DistState::Cancelled as i32);
    match next(&mut c1, 5, "cancel to client").await.event {
        Some(task_event::Event::CancelDistId(id)) => assert_eq!(id, second.id),
        other => panic!("expected cancel, got {other:?}"),
    }
    match next(&mut rstream, 5, "cancel to relay").await.event {
        Some(relay_task_event::Event::CancelDistId(id)) => assert_eq!(id, second.id),
        other => panic!("expected relay cancel, got {other:?}"),
    }
    let resp = client.report_progress(pb::ProgressReport {
        client_id: "c1".into(),
        dist_id: second.id.clone(),
        state: pb::TaskState::Running as i32,
        ..Default::default()
    });
    assert!(resp.await.expect("report after cancel").into_inner().cancelled);
    let again = admin.cancel_distribution(pb::CancelDistributionRequest { id: second.id.clone() }).await;
    assert_eq!(again.expect_err("second cancel").code(), tonic::Code::FailedPrecondition);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_resumes_tasks() {
    let (_dir, db) = sqlite_db();
    let mut ctl = Ctl::start(&db, &[]);
    let addr = ctl.addr;
    let id = {
        let (mut admin, mut relay, mut client) = (ctl.admin().await, ctl.relay().await, ctl.client().await);
        register_relay(&mut relay, "r1", "z1").await;
        register_client(&mut client, "c1", &[]).await;
        let created = admin
            .create_distribution(create_req(pb::TargetSelector {
                client_ids: vec!["c1".into(), "c9".into()],
                ..Default::default()
            }))
            .await
            .expect("create")
            .into_inner();
        client
            .report_progress(pb::ProgressReport {
                client_id: "c1".into(),
                dist_id: created.id.clone(),
                bytes_bt: 400,
                state: pb::TaskState::Running as i32,
                ..Default::default()
            })
            .await
            .expect("report");
        created.id
    };
    ctl.child.kill();
    let ctl = Ctl::start_at(addr, &db, &[]);
    let (mut admin, mut relay, mut client) = (ctl.admin().await, ctl.relay().await, ctl.client().await);
    let d = admin
        .get_distribution(pb::GetDistributionRequest { id: id.clone() })
        .await
        .expect("get after restart")
        .into_inner();
    assert_eq!(d.state, pb::DistState::Active as i32);
    assert_eq!(d.stats.expect("stats").bytes_bt, 400, "progress survived the restart");
    let mut c1 = client
        .watch_tasks(pb::WatchTasksRequest { client_id: "c1".into() })
        .await
        .expect("watch")
        .into_inner();
    assert_eq!(assigned(next(&mut c1, 5, "task after restart").await).dist_id, id);
    relay
        .relay_heartbeat(pb::RelayHeartbeatRequest { id: "r1".into(), ..Default::default() })
        .await
        .expect("heartbeat");
    let mut rs = relay
        .watch_relay_tasks(pb::WatchRelayTasksRequest { relay_id: "r1".into() })
        .await
        .expect("watch relay")
        .into_inner();
    assert_eq!(relay_assigned(next(&mut rs, 5, "relay task after restart").await).dist_id, id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_relay_is_replaced() {
    let (_dir, db) = sqlite_db();
    let ctl = Ctl::start(&db, &["--relay-timeout-secs", "1"]);
    let (mut admin, mut relay, mut client) = (ctl.admin().await, ctl.relay().await, ctl.client().await);
    register_relay(&mut relay, "ra", "z1").await;
    register_relay(&mut relay, "rb", "z2").await;
    // Only rb keeps sending heartbeats.
    let hb = {
        let mut relay = relay.clone();
        tokio::spawn(async move {
            for _ in 0..50 {
                let _ = relay
                    .relay_heartbeat(pb::RelayHeartbeatRequest { id: "rb".into(), ..Default::default() })
                    .await;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    register_client(&mut client, "c1", &[]).await;
    let mut c1 = client
        .watch_tasks(pb::WatchTasksRequest { client_id: "c1".into() })
        .await
        .expect("watch")
        .into_inner();
    let created = admin
        .create_distribution(create_req(pb::TargetSelector {
            client_ids: vec!["c1".into()],
            ..Default::default()
        }))
        .await
        .expect("create")
        .into_inner();
    assert_eq!(created.relay_ids, vec!["ra".to_string()], "zone z1 matches the client");
    let first = assigned(next(&mut c1, 5, "task").await);
    assert_eq!(first.relays[0].relay_id, "ra");
    let mut rb = relay
        .watch_relay_tasks(pb::WatchRelayTasksRequest { relay_id: "rb".into() })
        .await
        .expect("watch rb")
        .into_inner();
    let t = assigned(next(&mut c1, 8, "updated task").await);
    assert!(t.revision > first.revision);
    assert_eq!(t.relays.iter().map(|r| r.relay_id.as_str()).collect::<Vec<_>>(), vec!["rb"]);
    assert_eq!(relay_assigned(next(&mut rb, 5, "reassigned relay task").await).dist_id, created.id);
    let d = admin
        .get_distribution(pb::GetDistributionRequest { id: created.id })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(d.relay_ids, vec!["rb".to_string()]);
    hb.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn label_targets_join_later_and_watch_streams_progress() {
    let (_dir, db) = sqlite_db();
    let ctl = Ctl::start(&db, &[]);
    let (mut admin, mut client) = (ctl.admin().await, ctl.client().await);
    let created = admin
        .create_distribution(create_req(pb::TargetSelector {
            labels: vec!["edge".into()],
            ..Default::default()
        }))
        .await
        .expect("create")
        .into_inner();
    assert_eq!(created.target_count, 0, "nobody carries the label yet");
    let mut watch = admin
        .watch_distribution(pb::GetDistributionRequest { id: created.id.clone() })
        .await
        .expect("watch")
        .into_inner();
    assert_eq!(next(&mut watch, 5, "first snapshot").await.stats.expect("stats").targets, 0);
    // A client registering later with the label joins; one without does not.
    register_client(&mut client, "late", &["edge"]).await;
    register_client(&mut client, "other", &["core"]).await;
    let mut late = client
        .watch_tasks(pb::WatchTasksRequest { client_id: "late".into() })
        .await
        .expect("watch")
        .into_inner();
    assert_eq!(assigned(next(&mut late, 5, "late label task").await).dist_id, created.id);
    let d = next(&mut watch, 5, "snapshot with the new target").await;
    assert_eq!(d.stats.expect("stats").targets, 1);
    client
        .report_progress(pb::ProgressReport {
            client_id: "late".into(),
            dist_id: created.id.clone(),
            bytes_bt: 1000,
            state: pb::TaskState::Done as i32,
            ..Default::default()
        })
        .await
        .expect("done");
    let mut last = None;
    while let Ok(Ok(Some(d))) = tokio::time::timeout(Duration::from_secs(5), watch.message()).await {
        last = Some(d);
    }
    let last = last.expect("updates after progress");
    assert_eq!(last.state, pb::DistState::Done as i32, "watch ends with the final state");
    assert_eq!(last.stats.expect("stats").done, 1);
}

/// An agent or relay killed mid-download starts its counters from zero again; ctl tells the
/// new process by its instance id and keeps what the earlier one reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_of_a_restarted_agent_or_relay_add_up_across_its_lives() {
    let (_dir, db) = sqlite_db();
    let ctl = Ctl::start(&db, &[]);
    let (mut admin, mut relay, mut client) = (ctl.admin().await, ctl.relay().await, ctl.client().await);
    register_relay(&mut relay, "r1", "z1").await;
    register_client(&mut client, "c1", &[]).await;
    let created = admin
        .create_distribution(create_req(pb::TargetSelector {
            client_ids: vec!["c1".into()],
            ..Default::default()
        }))
        .await
        .expect("create")
        .into_inner();
    let report = |instance: u64, bt: u64, http: u64| pb::ProgressReport {
        client_id: "c1".into(),
        dist_id: created.id.clone(),
        bytes_bt: bt,
        bytes_http_relay: http,
        state: pb::TaskState::Running as i32,
        instance,
        ..Default::default()
    };
    let beat = |instance: u64, origin: u64| pb::RelayHeartbeatRequest {
        id: "r1".into(),
        instance,
        tasks: vec![pb::RelayTaskStatus {
            dist_id: created.id.clone(),
            origin_bytes: origin,
            ..Default::default()
        }],
        ..Default::default()
    };
    let stats = |admin: &mut Admin| {
        let mut admin = admin.clone();
        let id = created.id.clone();
        async move {
            let d =
                admin.get_distribution(pb::GetDistributionRequest { id }).await.expect("get").into_inner();
            let s = d.stats.expect("stats");
            (s.bytes_bt, s.bytes_http_relay, s.origin_bytes)
        }
    };
    // First lives: reports grow, each replacing the last.
    client.report_progress(report(11, 100, 10)).await.expect("report");
    client.report_progress(report(11, 300, 20)).await.expect("report");
    relay.relay_heartbeat(beat(21, 400)).await.expect("heartbeat");
    relay.relay_heartbeat(beat(21, 600)).await.expect("heartbeat");
    assert_eq!(stats(&mut admin).await, (300, 20, 600));
    // Both restarted (new instances, counters from zero): the earlier totals stay.
    client.report_progress(report(12, 50, 0)).await.expect("report");
    relay.relay_heartbeat(beat(22, 100)).await.expect("heartbeat");
    assert_eq!(stats(&mut admin).await, (350, 20, 700));
    client.report_progress(report(12, 80, 5)).await.expect("report");
    relay.relay_heartbeat(beat(22, 150)).await.expect("heartbeat");
    assert_eq!(stats(&mut admin).await, (380, 25, 750));
}

/// A relay and clients that report no capacities (as the real ones do): the bound comes from
/// the rates ctl measured, says so in gRPC, `dist get --json` and the text output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_reported_capacities_the_bound_uses_measured_rates() {
    let (_dir, db) = sqlite_db();
    let ctl = Ctl::start(&db, &[]);
    let (mut admin, mut relay, mut client) = (ctl.admin().await, ctl.relay().await, ctl.client().await);
    relay
        .register_relay(pb::RegisterRelayRequest {
            id: "r1".into(),
            addresses: vec!["http://r1.test:8080".into()],
            zone: "z1".into(),
            capacity_bps: 0,
        })
        .await
        .expect("register relay");
    register_client(&mut client, "c1", &[]).await;
    register_client(&mut client, "c2", &[]).await;
    let created = admin
        .create_distribution(create_req(pb::TargetSelector {
            client_ids: vec!["c1".into(), "c2".into()],
            ..Default::default()
        }))
        .await
        .expect("create")
        .into_inner();
    let stats = |d: pb::Distribution| d.stats.expect("stats");
    let get = || pb::GetDistributionRequest { id: created.id.clone() };
    let s = stats(admin.get_distribution(get()).await.expect("get").into_inner());
    assert_eq!((s.min_time_secs, s.min_time_basis.as_str()), (0.0, "none"), "nothing measured yet");

    // The relay pulls at 100 B/s; c1 gets 40 B/s, c2 10 B/s (no capacities reported).
    relay
        .relay_heartbeat(pb::RelayHeartbeatRequest {
            id: "r1".into(),
            origin_rate_bps: 100,
            tasks: vec![pb::RelayTaskStatus {
                dist_id: created.id.clone(),
                size: 1000,
                ..Default::default()
            }],
            ..Default::default()
        })
        .await
        .expect("heartbeat");
    for (id, speed) in [("c1", 40), ("c2", 10)] {
        let report = pb::ProgressReport {
            client_id: id.into(),
            dist_id: created.id.clone(),
            bytes_bt: 100,
            speed_bps: speed,
            state: pb::TaskState::Running as i32,
            ..Default::default()
        };
        client.report_progress(report).await.expect("report");
    }
    // F = 1000: F/u_s = 10 s, F/d_min = 1000/10 = 100 s, N·F/Σspeed = 2000/max(50, 100) = 20 s.
    let s = stats(admin.get_distribution(get()).await.expect("get").into_inner());
    assert_eq!(s.min_time_basis, "measured");
    assert!((s.min_time_secs - 100.0).abs() < 1e-9, "Kumar–Ross {}", s.min_time_secs);

    let json = crate::e2e::ctl_json(&ctl, &["dist", "get", &created.id]).expect("dist get --json");
    assert_eq!(json["stats"]["min_time_basis"], "measured", "{json}");
    assert_eq!(json["stats"]["min_time_secs"], 100.0, "{json}");
    let out = Command::new(bin("floodgate-ctl"))
        .args(["dist", "get", &created.id, "--ctl", &ctl.url(), "--token", ADMIN])
        .output()
        .expect("dist get");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("min time:  100.0 s (Kumar–Ross, measured rates)"), "{text}");
}
