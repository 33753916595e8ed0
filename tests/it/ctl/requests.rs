//! Authentication and malformed requests, over gRPC and through the CLI.

use super::*;
use floodgate_proto::v1 as pb;
use tonic::Code;

fn dist_req(url: &str) -> pb::CreateDistributionRequest {
    pb::CreateDistributionRequest {
        origin_url: url.into(),
        targets: Some(pb::TargetSelector { client_ids: vec!["c1".into()], ..Default::default() }),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_tokens_are_rejected_and_change_nothing() {
    let (_dir, db) = sqlite_db();
    let ctl = Ctl::start(&db, &[]);
    let ch = ctl.channel().await;
    for token in ["wrong-token", RELAY, CLIENT] {
        let mut a = AdminServiceClient::with_interceptor(ch.clone(), auth(token));
        let e = a.create_distribution(dist_req("http://o.test/f")).await.expect_err("must be rejected");
        assert_eq!(e.code(), Code::Unauthenticated, "token {token}");
        let e = a.set_origin_limits(pb::SetOriginLimitsRequest {
            limits: Some(pb::OriginLimits { max_conns: Some(1), ..Default::default() }),
        });
        assert_eq!(e.await.expect_err("limits rejected").code(), Code::Unauthenticated);
    }
    let mut none = AdminServiceClient::new(ch.clone());
    assert_eq!(
        none.list_distributions(pb::ListDistributionsRequest {}).await.expect_err("no token").code(),
        Code::Unauthenticated
    );
    let mut r = RelayServiceClient::with_interceptor(ch.clone(), auth(CLIENT));
    let e = r.register_relay(pb::RegisterRelayRequest { id: "evil".into(), ..Default::default() }).await;
    assert_eq!(e.expect_err("client token on relay API").code(), Code::Unauthenticated);
    let mut c = ClientServiceClient::with_interceptor(ch.clone(), auth(RELAY));
    let e = c.register_client(pb::RegisterClientRequest { id: "evil".into(), ..Default::default() }).await;
    assert_eq!(e.expect_err("relay token on client API").code(), Code::Unauthenticated);
    let mut l = LeaseServiceClient::with_interceptor(ch.clone(), auth(CLIENT));
    let e = l
        .acquire_origin_lease(pb::AcquireLeaseRequest {
            relay_id: "x".into(),
            origin: "o.test".into(),
            ..Default::default()
        })
        .await;
    assert_eq!(e.expect_err("client token on lease API").code(), Code::Unauthenticated);

    // Nothing changed.
    let mut admin = ctl.admin().await;
    assert!(admin
        .list_distributions(pb::ListDistributionsRequest {})
        .await
        .expect("list")
        .into_inner()
        .distributions
        .is_empty());
    assert!(admin
        .list_relays(pb::ListRelaysRequest {})
        .await
        .expect("relays")
        .into_inner()
        .relays
        .is_empty());
    assert!(admin
        .list_clients(pb::ListClientsRequest {})
        .await
        .expect("clients")
        .into_inner()
        .clients
        .is_empty());
    let limits =
        admin.get_origin_limits(pb::GetOriginLimitsRequest {}).await.expect("limits").into_inner().limits;
    assert_eq!(limits.len(), 1);
    assert_eq!(limits[0].max_conns, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_errors() {
    let (_dir, db) = sqlite_db();
    let ctl = Ctl::start(&db, &[]);
    let mut admin = ctl.admin().await;
    for url in ["ftp://o.test/f", "not a url", "http:///nohost", ""] {
        let e = admin.create_distribution(dist_req(url)).await.expect_err("bad url");
        assert_eq!(e.code(), Code::InvalidArgument, "{url}: {}", e.message());
    }
    let mut no_targets = dist_req("http://o.test/f");
    no_targets.targets = None;
    assert_eq!(
        admin.create_distribution(no_targets).await.expect_err("no targets").code(),
        Code::InvalidArgument
    );
    let mut bad_hashes = dist_req("http://o.test/f");
    bad_hashes.piece_hashes = vec![0u8; 21];
    assert_eq!(
        admin.create_distribution(bad_hashes).await.expect_err("bad hashes").code(),
        Code::InvalidArgument
    );
    let mut big = dist_req("http://o.test/f");
    big.torrent = vec![b'd'; 17 << 20];
    let e = admin.create_distribution(big).await.expect_err("oversized");
    assert!(matches!(e.code(), Code::OutOfRange | Code::ResourceExhausted | Code::InvalidArgument), "{e:?}");
    for id in ["d-unknown", ""] {
        let e =
            admin.get_distribution(pb::GetDistributionRequest { id: id.into() }).await.expect_err("unknown");
        assert_eq!(e.code(), Code::NotFound);
        let e = admin
            .cancel_distribution(pb::CancelDistributionRequest { id: id.into() })
            .await
            .expect_err("unknown");
        assert_eq!(e.code(), Code::NotFound);
    }
    let e = admin.set_origin_limits(pb::SetOriginLimitsRequest {
        limits: Some(pb::OriginLimits { max_rate_bps: Some(-1), ..Default::default() }),
    });
    assert_eq!(e.await.expect_err("negative").code(), Code::InvalidArgument);
    let mut client = ctl.client().await;
    let e = client.report_progress(pb::ProgressReport {
        client_id: "c1".into(),
        dist_id: "d-none".into(),
        state: pb::TaskState::Running as i32,
        ..Default::default()
    });
    assert_eq!(e.await.expect_err("unassigned").code(), Code::NotFound);
    let mut lease = ctl.lease().await;
    let e = lease.acquire_origin_lease(pb::AcquireLeaseRequest {
        relay_id: "ghost".into(),
        origin: "o.test".into(),
        ..Default::default()
    });
    assert_eq!(e.await.expect_err("unregistered relay").code(), Code::NotFound);
    assert!(admin
        .list_distributions(pb::ListDistributionsRequest {})
        .await
        .expect("list")
        .into_inner()
        .distributions
        .is_empty());
}

fn cli(ctl: &Ctl, args: &[&str], token: &str) -> std::process::Output {
    Command::new(bin("floodgate-ctl"))
        .args(args)
        .env("FLOODGATE_CTL", ctl.url())
        .env("FLOODGATE_TOKEN", token)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run floodgate-ctl")
}

fn json(out: &std::process::Output) -> serde_json::Value {
    assert!(out.status.success(), "cli failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_json_roundtrip() {
    let (_dir, db) = sqlite_db();
    let ctl = Ctl::start(&db, &[]);
    let created = json(&cli(
        &ctl,
        &["dist", "create", "http://o.test/f.iso", "--targets", "c1,label:gpu", "--json"],
        ADMIN,
    ));
    let id = created["id"].as_str().expect("id").to_string();
    assert_eq!(created["target_count"], 1);
    let list = json(&cli(&ctl, &["dist", "list", "--json"], ADMIN));
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["targets"]["labels"][0], "gpu");
    let got = json(&cli(&ctl, &["dist", "get", &id, "--json"], ADMIN));
    assert_eq!(got["state"], "active");
    let set = json(&cli(
        &ctl,
        &["limits", "set", "--conns", "20", "--rate", "1000000", "--origin", "o.test", "--json"],
        ADMIN,
    ));
    assert_eq!(set[0]["origin"], "o.test");
    assert_eq!(set[0]["max_conns"], 20);
    let all = json(&cli(&ctl, &["limits", "get", "--json"], ADMIN));
    assert_eq!(all.as_array().map(Vec::len), Some(2));
    assert!(json(&cli(&ctl, &["relays", "--json"], ADMIN)).as_array().is_some_and(Vec::is_empty));
    assert!(json(&cli(&ctl, &["clients", "--json"], ADMIN)).as_array().is_some_and(Vec::is_empty));
    let cancelled = json(&cli(&ctl, &["dist", "cancel", &id, "--json"], ADMIN));
    assert_eq!(cancelled["state"], "cancelled");
    let bad = cli(&ctl, &["limits", "set", "--conns", "-3"], ADMIN);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("InvalidArgument"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    let denied = cli(&ctl, &["dist", "list", "--json"], "nope-nope");
    assert!(!denied.status.success());
    assert!(String::from_utf8_lossy(&denied.stderr).contains("Unauthenticated"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_cli() {
    let (_dir, db) = sqlite_db();
    let pki = crate::ctl_tls::Pki::new();
    let (cert, key) = (pki.file("ctl.pem"), pki.file("ctl.key"));
    let ctl = Ctl::start(&db, &["--tls-cert", &cert, "--tls-key", &key]);
    let https = format!("https://127.0.0.1:{}", ctl.addr.port());
    let ca = pki.file("ca.pem");
    let run = |url: &str, extra: &[&str]| {
        Command::new(bin("floodgate-ctl"))
            .args(["dist", "list", "--json", "--ctl", url, "--token", ADMIN])
            .args(extra)
            .env("RUST_BACKTRACE", "0")
            .output()
            .expect("run cli")
    };
    let ok = run(&https, &["--ca", &ca]);
    assert!(ok.status.success(), "TLS call failed: {}", String::from_utf8_lossy(&ok.stderr));
    assert_eq!(String::from_utf8_lossy(&ok.stdout).trim(), "[]");
    assert!(!run(&https, &[]).status.success(), "an unknown CA must be refused");
    assert!(!run(&ctl.url(), &[]).status.success(), "plaintext must not work on a TLS port");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_file_and_cli_watch() {
    let (dir, db) = sqlite_db();
    let addr = free_addr();
    let cfg = dir.path().join("ctl.toml");
    std::fs::write(
        &cfg,
        format!("listen = \"{addr}\"\ndb = \"{db}\"\nadmin-token = \"{ADMIN}\"\nrelay-token = \"{RELAY}\"\nclient-token = \"{CLIENT}\"\n"),
    )
    .expect("write config");
    // Without tokens ctl refuses to start.
    let bare = Command::new(bin("floodgate-ctl"))
        .args(["serve", "--listen", &free_addr().to_string(), "--db", &db])
        .env_remove("FLOODGATE_ADMIN_TOKEN")
        .env_remove("FLOODGATE_RELAY_TOKEN")
        .env_remove("FLOODGATE_CLIENT_TOKEN")
        .output()
        .expect("run serve");
    assert!(!bare.status.success());
    assert!(
        String::from_utf8_lossy(&bare.stderr).contains("no admin token"),
        "{}",
        String::from_utf8_lossy(&bare.stderr)
    );
    let mut cmd = Command::new(bin("floodgate-ctl"));
    cmd.args(["serve", "--config", &cfg.display().to_string()]).env("RUST_LOG", "warn").stdout(Stdio::null());
    let _child = ChildGuard::spawn(&mut cmd).expect("spawn");
    assert!(wait_for_listen(addr, Duration::from_secs(30)), "ctl from config file did not listen");
    let ctl_url = format!("http://{addr}");

    // `dist create --watch --json` follows the distribution until it finishes.
    let watcher = Command::new(bin("floodgate-ctl"))
        .args([
            "dist",
            "create",
            "http://o.test/f",
            "--targets",
            "c1",
            "--watch",
            "--json",
            "--ctl",
            &ctl_url,
            "--token",
            ADMIN,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn watcher");
    let mut watcher = ChildGuard(watcher);
    let ch = tonic::transport::Channel::from_shared(ctl_url.clone())
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let mut admin = AdminServiceClient::with_interceptor(ch.clone(), auth(ADMIN));
    let mut id = None;
    for _ in 0..100 {
        let l = admin.list_distributions(pb::ListDistributionsRequest {}).await.expect("list").into_inner();
        if let Some(d) = l.distributions.first() {
            id = Some(d.id.clone());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let id = id.expect("the CLI created a distribution");
    let mut client = ClientServiceClient::with_interceptor(ch, auth(CLIENT));
    client
        .report_progress(pb::ProgressReport {
            client_id: "c1".into(),
            dist_id: id.clone(),
            bytes_bt: 5,
            state: pb::TaskState::Done as i32,
            ..Default::default()
        })
        .await
        .expect("report done");
    let status = floodgate_tests::wait_for(Duration::from_secs(10), || watcher.0.try_wait().ok().flatten())
        .expect("watch exits when done");
    assert!(status.success());
    let mut out = String::new();
    std::io::Read::read_to_string(watcher.0.stdout.as_mut().expect("stdout"), &mut out).expect("read stdout");
    let last: serde_json::Value =
        serde_json::from_str(out.lines().last().expect("output")).expect("json line");
    assert_eq!(last["id"], id.as_str());
    assert_eq!(last["state"], "done");
    assert_eq!(last["stats"]["done"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_reflection_lists_the_services() {
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    let (_dir, db) = sqlite_db();
    let ctl = Ctl::start(&db, &[]);
    let mut r = ServerReflectionClient::new(ctl.channel().await);
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut s =
        r.server_reflection_info(tokio_stream::iter(vec![req])).await.expect("reflection").into_inner();
    let resp = next(&mut s, 5, "reflection response").await;
    let Some(MessageResponse::ListServicesResponse(list)) = resp.message_response else {
        panic!("unexpected reflection answer {resp:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for want in [
        "floodgate.v1.AdminService",
        "floodgate.v1.RelayService",
        "floodgate.v1.ClientService",
        "floodgate.v1.LeaseService",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} missing from {names:?}");
    }
}

/// `PublishTorrent` (a relay's .torrent for a URL-only distribution) and `.torrent` checks in
/// `CreateDistribution`: invalid torrents and strangers are refused, the first valid torrent
/// is kept, the same one again is a no-op, a different one is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torrents_are_parsed_and_published_once() {
    let (_dir, db) = sqlite_db();
    let ctl = Ctl::start(&db, &[]);
    let mut relay = ctl.relay().await;
    for id in ["r1", "r2"] {
        let req = pb::RegisterRelayRequest { id: id.into(), ..Default::default() };
        relay.register_relay(req).await.expect("register");
    }
    let mut admin = ctl.admin().await;
    let bad = pb::CreateDistributionRequest {
        torrent: b"d4:infod4:name1:xee".to_vec(),
        ..dist_req("http://o.test/f")
    };
    let e = admin.create_distribution(bad).await.expect_err("a torrent without pieces");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("torrent"), "{}", e.message());

    let dist = admin.create_distribution(dist_req("http://o.test/f")).await.expect("create").into_inner();
    let assigned = dist.relay_ids.first().expect("one relay").clone();
    let stranger = if assigned == "r1" { "r2" } else { "r1" };
    let torrent = |byte: u8| {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("f");
        std::fs::write(&file, vec![byte; 100_000]).expect("write");
        let out = dir.path().join("f.torrent");
        let ok = std::process::Command::new(floodgate_tests::bin("floodgate"))
            .args(["make-torrent", file.to_str().expect("utf-8"), "-o", out.to_str().expect("utf-8")])
            .output()
            .expect("make-torrent")
            .status
            .success();
        assert!(ok, "make-torrent");
        std::fs::read(out).expect("read torrent")
    };
    let (good, other) = (torrent(7), torrent(8));
    let publish = |relay_id: &str, torrent: &[u8]| pb::PublishTorrentRequest {
        relay_id: relay_id.into(),
        dist_id: dist.id.clone(),
        torrent: torrent.to_vec(),
    };
    let e = relay.publish_torrent(publish(stranger, &good)).await.expect_err("not its distribution");
    assert_eq!(e.code(), Code::PermissionDenied);
    let e = relay.publish_torrent(publish(&assigned, b"not bencode")).await.expect_err("garbage");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(relay.publish_torrent(publish(&assigned, &good)).await.expect("publish").into_inner().stored);
    assert!(!relay.publish_torrent(publish(&assigned, &good)).await.expect("again").into_inner().stored);
    let e = relay.publish_torrent(publish(&assigned, &other)).await.expect_err("a different torrent");
    assert_eq!(e.code(), Code::FailedPrecondition);
    let d = admin.get_distribution(pb::GetDistributionRequest { id: dist.id.clone() }).await.expect("get");
    let d = d.into_inner();
    assert_eq!(d.size, 100_000, "{d:?}");
}
