//! `floodgate agent --metrics-listen ADDR`: the agent's Prometheus `/metrics`, produced by
//! `prometheus-client` (OpenMetrics text, HELP and TYPE on every family) over a small axum
//! server, read from the running jobs at scrape time.
//!
//! Per distribution (`dist` label): bytes received by source (`bt`, `http_relay`, `origin`,
//! the same split the agent reports to ctl), gap-fill level changes by the level switched to
//! and the level now, the download rate (verified bytes over the last sampling period),
//! verified and total bytes, peers, uploads and hash failures.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use floodgate_engine::gapfill::Level;
use parking_lot::Mutex;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::TypedMetric;
use prometheus_client::registry::{Metric, Registry};

use super::Agent;

/// How often the download rate is sampled.
const RATE_EVERY: Duration = Duration::from_secs(2);
/// The content type of the metrics text.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The metrics flag of `agent`.
#[derive(clap::Args, Debug, Clone, Default)]
pub(crate) struct MetricsArgs {
    /// Address to serve Prometheus `/metrics` on, e.g. 127.0.0.1:9402 (off by default).
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
}

/// Label set: `(name, value)` pairs.
type Labels = Vec<(&'static str, String)>;

/// What the metrics server shares.
struct Exporter {
    agent: Arc<Agent>,
    /// Download rate per distribution, bytes/s, and the sample it was measured from.
    rates: Mutex<HashMap<String, (Instant, u64, f64)>>,
}

/// Starts `/metrics` on `--metrics-listen`, if given; fails if the address cannot be bound.
pub(super) async fn start(agent: &Arc<Agent>) -> anyhow::Result<()> {
    let Some(addr) = agent.args.metrics.metrics_listen else { return Ok(()) };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen for metrics on {addr}"))?;
    let exporter = Arc::new(Exporter { agent: agent.clone(), rates: Mutex::new(HashMap::new()) });
    tokio::spawn(sample_rates(exporter.clone()));
    let app = axum::Router::new().route("/metrics", get(metrics)).with_state(exporter);
    tracing::info!(%addr, "serving /metrics");
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the metrics server stopped");
        }
    });
    Ok(())
}

/// Measures each job's download rate every [`RATE_EVERY`].
async fn sample_rates(ex: Arc<Exporter>) {
    loop {
        tokio::time::sleep(RATE_EVERY).await;
        let now = Instant::now();
        let verified: Vec<(String, u64)> = ex
            .agent
            .jobs
            .lock()
            .iter()
            .map(|(dist, job)| (dist.clone(), job.torrent.stats().bytes_verified))
            .collect();
        let mut rates = ex.rates.lock();
        rates.retain(|dist, _| verified.iter().any(|(d, _)| d == dist));
        for (dist, bytes) in verified {
            let entry = rates.entry(dist).or_insert((now, bytes, 0.0));
            let secs = now.duration_since(entry.0).as_secs_f64();
            if secs > 0.0 {
                *entry = (now, bytes, bytes.saturating_sub(entry.1) as f64 / secs);
            }
        }
    }
}

/// A labelled family registered under `name`.
fn family<M>(reg: &mut Registry, name: &str, help: &str) -> Family<Labels, M>
where
    M: Metric + TypedMetric + Default + Clone,
{
    let f = Family::<Labels, M>::default();
    reg.register(name, help, f.clone());
    f
}

/// `GET /metrics`.
async fn metrics(State(ex): State<Arc<Exporter>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], render(&ex))
}

/// The metrics text.
fn render(ex: &Exporter) -> String {
    let mut reg = Registry::default();
    let tasks = Gauge::<i64>::default();
    reg.register("floodgate_agent_tasks", "Distributions this agent downloads or seeds", tasks.clone());
    let received = family::<Counter>(
        &mut reg,
        "floodgate_agent_received_bytes",
        "Bytes received for a distribution, by source (bt, http_relay, origin)",
    );
    let switches = family::<Counter>(
        &mut reg,
        "floodgate_agent_gapfill_switches",
        "HTTP gap-filling level changes, by the level switched to (off, partial, full)",
    );
    let level = family::<Gauge>(
        &mut reg,
        "floodgate_agent_gapfill_level",
        "1 for the HTTP gap-filling level now (off, partial, full), else 0",
    );
    let rate = family::<Gauge<f64, AtomicU64>>(
        &mut reg,
        "floodgate_agent_download_rate_bytes_per_second",
        "Verified bytes per second over the last sampling period",
    );
    let verified = family::<Gauge>(&mut reg, "floodgate_agent_verified_bytes", "Bytes in verified pieces");
    let size = family::<Gauge>(&mut reg, "floodgate_agent_size_bytes", "Bytes in the distribution's torrent");
    let peers = family::<Gauge>(&mut reg, "floodgate_agent_peers", "Connected BitTorrent peers");
    let uploaded =
        family::<Counter>(&mut reg, "floodgate_agent_uploaded_bytes", "Payload bytes uploaded to peers");
    let hash_failures = family::<Counter>(
        &mut reg,
        "floodgate_agent_hash_failures",
        "Pieces that failed their SHA-1 check, by source (bt, http)",
    );
    let nn = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let rates = ex.rates.lock().clone();
    let jobs = ex.agent.jobs.lock();
    tasks.set(jobs.len() as i64);
    for (dist, job) in jobs.iter() {
        let s = job.torrent.stats();
        let report = job.filler.as_ref().map(|f| f.report()).unwrap_or_default();
        let by = |k: &'static str, v: &str| vec![("dist", dist.clone()), (k, v.to_string())];
        // A promoted job's provisional phase counts too: a counter never goes back.
        let all = job.earlier.plus(&s, &report);
        let b = all.received;
        for (source, v) in [("bt", b.bt), ("http_relay", b.http_relay), ("origin", b.http_origin)] {
            received.get_or_create(&by("source", source)).inc_by(v);
        }
        for l in [Level::Off, Level::Partial, Level::Full] {
            let n = report.switches.iter().filter(|c| c.to == l).count() as u64;
            switches.get_or_create(&by("level", l.as_str())).inc_by(n);
            level.get_or_create(&by("level", l.as_str())).set(i64::from(report.level == Some(l)));
        }
        let d = vec![("dist", dist.clone())];
        rate.get_or_create(&d).set(rates.get(dist).map_or(0.0, |r| r.2));
        verified.get_or_create(&d).set(nn(s.bytes_verified));
        size.get_or_create(&d).set(nn(s.total_length));
        peers.get_or_create(&d).set(nn(s.peers as u64));
        uploaded.get_or_create(&d).inc_by(all.uploaded);
        hash_failures.get_or_create(&by("source", "bt")).inc_by(all.bt_hash_failures);
        hash_failures.get_or_create(&by("source", "http")).inc_by(all.http_hash_failures);
    }
    drop(jobs);
    let mut out = String::new();
    if let Err(e) = encode(&mut out, &reg) {
        tracing::warn!(error = %e, "cannot encode the metrics");
    }
    out
}
