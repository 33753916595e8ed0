//! `/metrics`: the relay's Prometheus metrics, produced by `prometheus-client` (OpenMetrics
//! text, HELP and TYPE on every family), read from the tasks' counters at scrape time.
//!
//! Names carry base units (`_bytes`, `_bytes_per_second`); counters end in `_total`. Every
//! per-task series has a `task` label (the task id); served bytes add `protocol` (`http`, `bt`).

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::TypedMetric;
use prometheus_client::registry::{Metric, Registry};

use super::pages::pull_rate;
use super::Server;
use crate::task::Task;

/// The content type of [`render`]'s text.
pub(super) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Label set: `(name, value)` pairs.
type Labels = Vec<(&'static str, String)>;
/// A float gauge.
type GaugeF = Gauge<f64, AtomicU64>;

/// A labelled family registered under `name`.
fn family<M>(reg: &mut Registry, name: &str, help: &str) -> Family<Labels, M>
where
    M: Metric + TypedMetric + Default + Clone,
{
    let f = Family::<Labels, M>::default();
    reg.register(name, help, f.clone());
    f
}

/// `task="<id>"`.
fn task_label(t: &Task) -> Labels {
    vec![("task", t.id.clone())]
}

/// Renders every task's metrics as OpenMetrics text.
pub(super) fn render(server: &Server) -> String {
    let mut reg = Registry::default();
    let tasks_gauge = Gauge::<i64>::default();
    reg.register("floodgate_relay_tasks", "Tasks this relay runs", tasks_gauge.clone());
    let origin_bytes =
        family::<Counter>(&mut reg, "floodgate_relay_origin_bytes", "Body bytes pulled from the origin");
    let origin_requests =
        family::<Counter>(&mut reg, "floodgate_relay_origin_requests", "Range requests sent to the origin");
    let origin_retries = family::<Counter>(
        &mut reg,
        "floodgate_relay_origin_retries",
        "Origin requests that failed and were retried",
    );
    let mirror_bytes = family::<Counter>(
        &mut reg,
        "floodgate_relay_origin_mirror_bytes",
        "Bytes of whole pieces pulled from each origin URL (the origin and its mirrors; redacted)",
    );
    let mirror_refused = family::<Gauge>(
        &mut reg,
        "floodgate_relay_origin_mirror_refused",
        "1 if the pull refused this origin URL (length or bytes disagree), else 0",
    );
    let pull_rate_g = family::<GaugeF>(
        &mut reg,
        "floodgate_relay_origin_pull_rate_bytes_per_second",
        "Average origin pull rate since the task started",
    );
    let served = family::<Counter>(
        &mut reg,
        "floodgate_relay_served_bytes",
        "Payload bytes uploaded to clients, by protocol (http, bt)",
    );
    let cold_runs = family::<Counter>(
        &mut reg,
        "floodgate_relay_http_cold_runs",
        "HTTP sendfile runs not all in the page cache, read in off the runtime first",
    );
    let cold_bytes =
        family::<Counter>(&mut reg, "floodgate_relay_http_cold_bytes", "Bytes in those cold runs");
    let bt_cold_reads = family::<Counter>(
        &mut reg,
        "floodgate_relay_bt_cold_reads",
        "Pieces uploaded over BitTorrent that were not in the page cache, read off the runtime",
    );
    let bt_cold_bytes =
        family::<Counter>(&mut reg, "floodgate_relay_bt_cold_bytes", "Bytes in those cold pieces");
    let peers = family::<Gauge>(&mut reg, "floodgate_relay_peers", "Connected BitTorrent peers");
    let hash_failures = family::<Counter>(
        &mut reg,
        "floodgate_relay_hash_failures",
        "Pieces that failed their SHA-1 check (from peers or the origin)",
    );
    let pieces = family::<Gauge>(&mut reg, "floodgate_relay_pieces", "Pieces in the task");
    let verified = family::<Gauge>(&mut reg, "floodgate_relay_pieces_verified", "Pieces verified so far");
    let size = family::<Gauge>(&mut reg, "floodgate_relay_size_bytes", "Bytes in the task's file");
    let verified_bytes =
        family::<Gauge>(&mut reg, "floodgate_relay_verified_bytes", "Bytes in verified pieces");
    let failed = family::<Gauge>(&mut reg, "floodgate_relay_task_failed", "1 if the task failed, else 0");
    let nn = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let tasks = server.tasks();
    tasks_gauge.set(tasks.len() as i64);
    for t in &tasks {
        let l = task_label(t);
        let c = &t.counters;
        origin_bytes.get_or_create(&l).inc_by(c.origin_bytes.load(Ordering::Relaxed));
        origin_requests.get_or_create(&l).inc_by(c.origin_requests.load(Ordering::Relaxed));
        origin_retries.get_or_create(&l).inc_by(c.origin_retries.load(Ordering::Relaxed));
        pull_rate_g.get_or_create(&l).set(pull_rate(t));
        for src in &t.sources {
            let ml = vec![("task", t.id.clone()), ("mirror", src.label.clone())];
            mirror_bytes.get_or_create(&ml).inc_by(src.bytes.load(Ordering::Relaxed));
            mirror_refused.get_or_create(&ml).set(i64::from(src.refused().is_some()));
        }
        cold_runs.get_or_create(&l).inc_by(c.http_cold_runs.load(Ordering::Relaxed));
        cold_bytes.get_or_create(&l).inc_by(c.http_cold_bytes.load(Ordering::Relaxed));
        let (bt_bytes, bt_peers, bt_hash_failures, bt_cold) = t.torrent().map_or((0, 0, 0, (0, 0)), |h| {
            let s = h.stats();
            (s.uploaded, s.peers, s.hash_failures, (s.cold_reads, s.cold_read_bytes))
        });
        bt_cold_reads.get_or_create(&l).inc_by(bt_cold.0);
        bt_cold_bytes.get_or_create(&l).inc_by(bt_cold.1);
        for (protocol, v) in [("http", c.http_bytes.load(Ordering::Relaxed)), ("bt", bt_bytes)] {
            served.get_or_create(&vec![("task", t.id.clone()), ("protocol", protocol.to_string())]).inc_by(v);
        }
        peers.get_or_create(&l).set(nn(bt_peers as u64));
        hash_failures.get_or_create(&l).inc_by(bt_hash_failures);
        pieces.get_or_create(&l).set(i64::from(t.layout.piece_count()));
        verified.get_or_create(&l).set(i64::from(t.verified_count()));
        size.get_or_create(&l).set(nn(t.layout.total_length()));
        verified_bytes.get_or_create(&l).set(nn(t.verified_bytes()));
        failed.get_or_create(&l).set(i64::from(t.state().error().is_some()));
    }
    let mut out = String::new();
    if let Err(e) = encode(&mut out, &reg) {
        // Writing into a String cannot fail; keep what was written.
        tracing::warn!(error = %e, "cannot encode the metrics");
    }
    out
}
