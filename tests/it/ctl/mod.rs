//! floodgate-ctl over gRPC: real `floodgate-ctl serve` processes on 127.0.0.1, on SQLite and
//! on PostgreSQL (a fresh database per test).

mod accounting;
mod flow;
mod leases;
mod mirrors;
pub(crate) mod postgres;
mod replicas;
mod requests;
mod stats;

use floodgate_proto::v1::admin_service_client::AdminServiceClient;
use floodgate_proto::v1::client_service_client::ClientServiceClient;
use floodgate_proto::v1::lease_service_client::LeaseServiceClient;
use floodgate_proto::v1::relay_service_client::RelayServiceClient;
use floodgate_proto::Bearer;
use floodgate_tests::{bin, free_addr, wait_for_listen, ChildGuard};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// Admin token the test ctl runs with.
pub(crate) const ADMIN: &str = "admin-token-1";
/// Relay token.
pub(crate) const RELAY: &str = "relay-token-1";
/// Client token.
pub(crate) const CLIENT: &str = "client-token-1";

/// The interceptor sending `token`.
pub(crate) fn auth(token: &str) -> Bearer {
    Bearer::new(token).expect("ascii token")
}

/// Admin client with a token.
pub(crate) type Admin = AdminServiceClient<InterceptedService<Channel, Bearer>>;
/// Relay client with a token.
pub(crate) type Relay = RelayServiceClient<InterceptedService<Channel, Bearer>>;
/// Lease client with a token.
pub(crate) type Lease = LeaseServiceClient<InterceptedService<Channel, Bearer>>;
/// Client-API client with a token.
pub(crate) type Client = ClientServiceClient<InterceptedService<Channel, Bearer>>;

/// A running ctl.
pub(crate) struct Ctl {
    /// The process (killed on drop).
    pub child: ChildGuard,
    /// Its gRPC address.
    pub addr: SocketAddr,
}

impl Ctl {
    /// Starts `floodgate-ctl serve` on a free port with `db` and waits until it listens.
    pub(crate) fn start(db: &str, extra: &[&str]) -> Ctl {
        Self::start_at(free_addr(), db, extra)
    }

    /// Like `start` on a given address (for restarts).
    pub(crate) fn start_at(addr: SocketAddr, db: &str, extra: &[&str]) -> Ctl {
        let mut cmd = Command::new(bin("floodgate-ctl"));
        cmd.args(["serve", "--listen", &addr.to_string(), "--db", db])
            .args(extra)
            .env("FLOODGATE_ADMIN_TOKEN", ADMIN)
            .env("FLOODGATE_RELAY_TOKEN", RELAY)
            .env("FLOODGATE_CLIENT_TOKEN", CLIENT)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null());
        let child = ChildGuard::spawn(&mut cmd).expect("spawn floodgate-ctl");
        assert!(wait_for_listen(addr, Duration::from_secs(30)), "floodgate-ctl did not listen on {addr}");
        Ctl { child, addr }
    }

    /// `http://ADDR`.
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A new connection.
    pub(crate) async fn channel(&self) -> Channel {
        Channel::from_shared(self.url()).expect("url").connect().await.expect("connect to ctl")
    }

    /// Admin client (admin token).
    pub(crate) async fn admin(&self) -> Admin {
        AdminServiceClient::with_interceptor(self.channel().await, auth(ADMIN))
            .max_decoding_message_size(64 << 20)
    }

    /// Relay client (relay token).
    pub(crate) async fn relay(&self) -> Relay {
        RelayServiceClient::with_interceptor(self.channel().await, auth(RELAY))
    }

    /// Lease client (relay token).
    pub(crate) async fn lease(&self) -> Lease {
        LeaseServiceClient::with_interceptor(self.channel().await, auth(RELAY))
    }

    /// Client-API client (client token).
    pub(crate) async fn client(&self) -> Client {
        ClientServiceClient::with_interceptor(self.channel().await, auth(CLIENT))
    }
}

/// Next message of a stream within `secs`, panicking with `what` otherwise.
pub(crate) async fn next<T>(s: &mut tonic::Streaming<T>, secs: u64, what: &str) -> T {
    match tokio::time::timeout(Duration::from_secs(secs), s.message()).await {
        Ok(Ok(Some(m))) => m,
        Ok(Ok(None)) => panic!("{what}: stream ended"),
        Ok(Err(e)) => panic!("{what}: stream error {e}"),
        Err(_) => panic!("{what}: nothing within {secs} s"),
    }
}

/// A SQLite URL in a fresh temp dir (kept alive by the returned guard).
pub(crate) fn sqlite_db() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("ctl.db").display());
    (dir, url)
}
