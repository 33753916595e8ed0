//! PostgreSQL: the flow on PG, events reaching clients on another replica, and the lease
//! invariant across two replicas. Each test uses a fresh database, dropped afterwards.
//! PostgreSQL must be reachable on 127.0.0.1:5432 (`tools/setup-postgres.sh`); otherwise
//! these tests fail.

use super::*;
use floodgate_proto::v1 as pb;
use pb::task_event;

/// A fresh database `floodgate_test_<random>`, dropped on drop.
pub(crate) struct PgDb {
    /// The database's name.
    pub name: String,
    /// Its connection URL.
    pub url: String,
}

fn psql(sql: &str) -> std::process::Output {
    Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .expect("psql is not installed: run tools/setup-postgres.sh")
}

impl PgDb {
    /// Creates the database; fails the test if PostgreSQL is unreachable.
    pub(crate) fn create() -> PgDb {
        let ready =
            Command::new("pg_isready").args(["-h", "127.0.0.1", "-p", "5432"]).output().map(|o| o.status);
        assert!(
            matches!(ready, Ok(s) if s.success()),
            "PostgreSQL is not reachable on 127.0.0.1:5432: run tools/setup-postgres.sh (PG tests never pass silently)"
        );
        let name = format!("floodgate_test_{:016x}", rand::random::<u64>());
        let out = psql(&format!("CREATE DATABASE {name}"));
        assert!(out.status.success(), "CREATE DATABASE failed: {}", String::from_utf8_lossy(&out.stderr));
        let url = format!("postgres://postgres@127.0.0.1:5432/{name}");
        PgDb { name, url }
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let _ = psql(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_events_on_postgres() {
    let pg = PgDb::create();
    let a = Ctl::start(&pg.url, &[]);
    let b = Ctl::start(&pg.url, &[]);
    let (mut admin_a, mut relay_b, mut client_b) = (a.admin().await, b.relay().await, b.client().await);
    relay_b
        .register_relay(pb::RegisterRelayRequest { id: "r1".into(), zone: "z".into(), ..Default::default() })
        .await
        .expect("register relay on b");
    let mut rs = relay_b
        .watch_relay_tasks(pb::WatchRelayTasksRequest { relay_id: "r1".into() })
        .await
        .expect("watch")
        .into_inner();
    client_b
        .register_client(pb::RegisterClientRequest { id: "c1".into(), ..Default::default() })
        .await
        .expect("register");
    let mut c1 = client_b
        .watch_tasks(pb::WatchTasksRequest { client_id: "c1".into() })
        .await
        .expect("watch")
        .into_inner();
    // Created on replica a, pushed by replica b.
    let created = admin_a
        .create_distribution(pb::CreateDistributionRequest {
            origin_url: "https://origin.test/x.bin".into(),
            targets: Some(pb::TargetSelector { client_ids: vec!["c1".into()], ..Default::default() }),
            ..Default::default()
        })
        .await
        .expect("create on a")
        .into_inner();
    assert_eq!(created.relay_ids, vec!["r1".to_string()]);
    match next(&mut c1, 5, "task via NOTIFY").await.event {
        Some(task_event::Event::Assign(t)) => assert_eq!(t.dist_id, created.id),
        other => panic!("expected task, got {other:?}"),
    }
    let rt = next(&mut rs, 5, "relay task via NOTIFY").await;
    assert!(matches!(rt.event, Some(pb::relay_task_event::Event::Assign(ref t)) if t.dist_id == created.id));
    client_b
        .report_progress(pb::ProgressReport {
            client_id: "c1".into(),
            dist_id: created.id.clone(),
            bytes_bt: 10,
            state: pb::TaskState::Running as i32,
            ..Default::default()
        })
        .await
        .expect("report on b");
    let d = admin_a
        .get_distribution(pb::GetDistributionRequest { id: created.id.clone() })
        .await
        .expect("get on a")
        .into_inner();
    assert_eq!(d.stats.expect("stats").bytes_bt, 10);
    admin_a
        .cancel_distribution(pb::CancelDistributionRequest { id: created.id.clone() })
        .await
        .expect("cancel on a");
    match next(&mut c1, 5, "cancel via NOTIFY").await.event {
        Some(task_event::Event::CancelDistId(id)) => assert_eq!(id, created.id),
        other => panic!("expected cancel, got {other:?}"),
    }
    // Restart of a replica: state is in PostgreSQL.
    drop(b);
    let b2 = Ctl::start(&pg.url, &[]);
    let mut admin_b2 = b2.admin().await;
    let list = admin_b2.list_distributions(pb::ListDistributionsRequest {}).await.expect("list").into_inner();
    assert_eq!(list.distributions.len(), 1);
    assert_eq!(list.distributions[0].state, pb::DistState::Cancelled as i32);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_invariant_two_replicas_postgres() {
    let pg = PgDb::create();
    let a = Ctl::start(&pg.url, &[]);
    let b = Ctl::start(&pg.url, &[]);
    super::leases::check_invariant(&[&a, &b], 3).await;
}
