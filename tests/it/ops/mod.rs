//! The operators' side, end to end on 127.0.0.1: ctl's dashboard in headless Chromium
//! (`dashboard`, over the CDP client in `cdp`), the Prometheus metrics of ctl, relay and
//! agent and the Grafana and alerting files that query them (`metrics`), the systemd units
//! (`deploy`), `--config` files and `--log-format json` (`config`), and the README's
//! commands run as written (`readme`).

mod cdp;
mod config;
mod dashboard;
mod deploy;
mod metrics;
mod readme;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use floodgate_tests::{bin, free_addr, wait_for, wait_for_listen, ChildGuard};

use crate::ctl::{sqlite_db, Ctl};
use crate::e2e::{ctl_json, spawn_agent_with, spawn_relay};
use crate::relay::{path, Fixture, Origin};

/// The workspace root.
fn workspace() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// `target/test-artifacts/`.
fn artifact_dir() -> PathBuf {
    let exe = bin("floodgate-ctl");
    exe.parent().and_then(|p| p.parent()).expect("target dir").join("test-artifacts")
}

/// A throttled origin, ctl with `--http-listen`, one relay (`relay-1`, zone `z1`) and
/// `agents` agents (`agent-N`, label `web`, `/metrics` on `agent_metrics[N-1]`), all
/// registered. Dropping it stops them.
struct Fleet {
    ctl: Ctl,
    http: SocketAddr,
    /// The relay's HTTP address (Range, tracker, `/metrics`).
    relay_http: SocketAddr,
    /// Each agent's `--metrics-listen` address.
    agent_metrics: Vec<SocketAddr>,
    origin: Origin,
    fx: Fixture,
    _relay: ChildGuard,
    _agents: Vec<ChildGuard>,
    _db_dir: tempfile::TempDir,
}

impl Fleet {
    /// Starts everything for a `size`-byte file served at `origin_rate` bytes/s.
    fn start(size: usize, origin_rate: u64, agents: usize) -> Fleet {
        let fx = Fixture::new(size);
        let origin = Origin::start(&fx.file, &["--rate", &origin_rate.to_string()]);
        let (db_dir, db) = sqlite_db();
        let http = free_addr();
        let ctl = Ctl::start(&db, &["--http-listen", &http.to_string()]);
        assert!(wait_for_listen(http, Duration::from_secs(30)), "ctl's HTTP side did not listen on {http}");
        let (bt, relay_http) = (free_addr(), free_addr());
        let relay = spawn_relay(&ctl, "relay-1", &fx.dir.path().join("relay"), bt, relay_http);
        let (mut children, mut agent_metrics) = (Vec::new(), Vec::new());
        for i in 1..=agents {
            let out = fx.dir.path().join(format!("agent{i}"));
            let metrics = free_addr();
            let extra = ["--metrics-listen", &metrics.to_string()];
            children.push(spawn_agent_with(&ctl, &format!("agent-{i}"), "web", &out, &extra));
            agent_metrics.push(metrics);
        }
        let registered = wait_for(Duration::from_secs(30), || {
            let clients = ctl_json(&ctl, &["clients"])?.to_string();
            let relays = ctl_json(&ctl, &["relays"])?.to_string();
            ((1..=agents).all(|i| clients.contains(&format!("agent-{i}"))) && relays.contains("relay-1"))
                .then_some(())
        });
        assert!(registered.is_some(), "relay and agents did not register with ctl within 30 s");
        Fleet {
            ctl,
            http,
            relay_http,
            agent_metrics,
            origin,
            fx,
            _relay: relay,
            _agents: children,
            _db_dir: db_dir,
        }
    }

    /// Creates a distribution of the fixture (with its .torrent) to every client; its id.
    fn distribute(&self) -> String {
        let url = self.origin.url();
        let created = ctl_json(
            &self.ctl,
            &["dist", "create", &url, "--targets", "all", "--torrent", path(&self.fx.torrent)],
        )
        .expect("dist create");
        created["id"].as_str().expect("dist id").to_string()
    }
}
