//! Mirrors in ctl (migration 7), on SQLite and PostgreSQL: `mirror_urls` of a distribution are
//! checked, stored, returned and handed to its relays; an origin lease naming mirrors counts
//! against every mirror host's limits row.

use super::postgres::PgDb;
use super::*;
use floodgate_proto::v1 as pb;

/// The mirror host's connection limit.
const MIRROR_CONNS: i64 = 2;

async fn mirrors_are_stored_and_leases_count_them(ctl: &Ctl) {
    let (mut admin, mut relay, mut lease) = (ctl.admin().await, ctl.relay().await, ctl.lease().await);
    relay
        .register_relay(pb::RegisterRelayRequest { id: "r1".into(), zone: "z".into(), ..Default::default() })
        .await
        .expect("register relay");
    let mut rs = relay
        .watch_relay_tasks(pb::WatchRelayTasksRequest { relay_id: "r1".into() })
        .await
        .expect("watch")
        .into_inner();
    let origin = "https://origin.test/x.bin";
    let req = |mirrors: Vec<&str>| pb::CreateDistributionRequest {
        origin_url: origin.into(),
        mirror_urls: mirrors.into_iter().map(String::from).collect(),
        targets: Some(pb::TargetSelector { all: true, ..Default::default() }),
        ..Default::default()
    };
    // Not a URL, too many: refused.
    let bad = admin.create_distribution(req(vec!["ftp://m.test/x"])).await.expect_err("ftp mirror");
    assert_eq!(bad.code(), tonic::Code::InvalidArgument, "{bad:?}");
    let many: Vec<String> = (0..8).map(|i| format!("https://m{i}.test/x.bin")).collect();
    let bad = admin.create_distribution(req(many.iter().map(String::as_str).collect())).await.expect_err("8");
    assert_eq!(bad.code(), tonic::Code::InvalidArgument, "{bad:?}");
    // The origin again and a duplicate are dropped; the order stays.
    let m1 = "https://user:pw@mirror.test/x.bin?sig=1";
    let m2 = "http://mirror2.test:8080/x.bin";
    let created = admin
        .create_distribution(req(vec![m1, origin, m2, m1]))
        .await
        .expect("create with mirrors")
        .into_inner();
    let d = admin
        .get_distribution(pb::GetDistributionRequest { id: created.id.clone() })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(d.mirror_urls, vec![m1.to_string(), m2.to_string()]);
    let rt = next(&mut rs, 5, "relay task").await;
    match rt.event {
        Some(pb::relay_task_event::Event::Assign(t)) => {
            assert_eq!(t.dist_id, created.id);
            assert_eq!(t.mirror_urls, vec![m1.to_string(), m2.to_string()]);
        }
        other => panic!("expected an assignment, got {other:?}"),
    }

    relay
        .register_relay(pb::RegisterRelayRequest { id: "r2".into(), zone: "z".into(), ..Default::default() })
        .await
        .expect("register a second relay");

    // The mirror host's row limits a lease for the origin host that names the mirror.
    admin
        .set_origin_limits(pb::SetOriginLimitsRequest {
            limits: Some(pb::OriginLimits {
                origin: "mirror.test".into(),
                max_conns: Some(MIRROR_CONNS),
                window_secs: 3600,
                ..Default::default()
            }),
        })
        .await
        .expect("limits for the mirror host");
    let want = |relay: &str, origin: &str, mirrors: &[&str]| pb::AcquireLeaseRequest {
        relay_id: relay.into(),
        origin: origin.into(),
        want_conns: 4,
        want_rate_bps: 0,
        want_bytes: 1_000_000,
        ttl_ms: 60_000,
        mirrors: mirrors.iter().map(|m| m.to_string()).collect(),
    };
    let l = lease.acquire_origin_lease(want("r1", origin, &[m1, m2])).await.expect("lease").into_inner();
    assert_eq!(l.conns, MIRROR_CONNS, "capped by the mirror host's limit: {l:?}");
    let limits =
        admin.get_origin_limits(pb::GetOriginLimitsRequest {}).await.expect("limits").into_inner().limits;
    let row = limits.iter().find(|r| r.origin == "mirror.test").expect("mirror host row");
    assert_eq!((row.live_leases, row.used_conns), (1, MIRROR_CONNS), "{row:?}");
    // Another relay pulling from the mirror host directly finds its connections used up ...
    let none = lease.acquire_origin_lease(want("r2", "mirror.test", &[])).await.expect_err("exhausted");
    assert_eq!(none.code(), tonic::Code::ResourceExhausted, "{none:?}");
    // ... while the origin host itself has no limit.
    let other = lease.acquire_origin_lease(want("r2", origin, &[])).await.expect("origin lease").into_inner();
    assert_eq!(other.conns, 4);
    // Renewing keeps the lease on the mirror host; releasing gives its connections back.
    let renewed = lease
        .renew_origin_lease(pb::RenewLeaseRequest {
            lease_id: l.lease_id.clone(),
            relay_id: "r1".into(),
            want_conns: 4,
            ttl_ms: 60_000,
            ..Default::default()
        })
        .await
        .expect("renew")
        .into_inner();
    assert_eq!(renewed.conns, MIRROR_CONNS);
    lease
        .release_origin_lease(pb::ReleaseLeaseRequest {
            lease_id: l.lease_id,
            relay_id: "r1".into(),
            used_bytes: 0,
        })
        .await
        .expect("release");
    let back = lease.acquire_origin_lease(want("r2", "mirror.test", &[])).await.expect("freed").into_inner();
    assert_eq!(back.conns, MIRROR_CONNS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirrors_on_sqlite() {
    let (_dir, db) = sqlite_db();
    let ctl = Ctl::start(&db, &[]);
    mirrors_are_stored_and_leases_count_them(&ctl).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirrors_on_postgres() {
    let pg = PgDb::create();
    let ctl = Ctl::start(&pg.url, &[]);
    mirrors_are_stored_and_leases_count_them(&ctl).await;
}
