//! Prometheus metrics of ctl, produced by `prometheus-client` (OpenMetrics text, HELP and
//! TYPE on every family). Lease request counters live in this process; everything else is
//! read from the database at scrape time, so every replica reports the same fleet state.
//!
//! Names carry base units (`_bytes`, `_seconds`, `_bytes_per_second`); counters end in
//! `_total`. Global origin limits are `floodgate_global_*` without an `origin` label;
//! per-origin limits are `floodgate_origin_*{origin="host"}`. A limit that is unlimited is
//! not exported (its gauge is absent).

use crate::error::{now_ms, CtlResult};
use crate::service::admin::{get_limits, list_distributions};
use crate::state::State;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

/// Label set: `(name, value)` pairs.
type Labels = Vec<(&'static str, String)>;
/// A float gauge.
type GaugeF = Gauge<f64, AtomicU64>;

/// How long a finished distribution stays in the per-distribution metrics.
const FINISHED_KEEP_MS: i64 = 3_600_000;

/// Counters kept by this process.
#[derive(Debug)]
pub(crate) struct Metrics {
    /// Lease requests by `op` (acquire, renew) and `result` (granted, refused, error).
    lease_requests: Family<Labels, Counter>,
    /// New hash-conflict reports recorded (`ReportHashConflict`).
    hash_conflicts: Counter,
}

impl Default for Metrics {
    /// Every label combination starts at 0, so the series exist before the first request.
    fn default() -> Self {
        let m = Metrics { lease_requests: Family::default(), hash_conflicts: Counter::default() };
        for op in ["acquire", "renew"] {
            for result in ["granted", "refused", "error"] {
                m.lease_requests
                    .get_or_create(&vec![("op", op.to_string()), ("result", result.to_string())])
                    .inc_by(0);
            }
        }
        m
    }
}

impl Metrics {
    /// Counts one lease request.
    pub(crate) fn lease_request(&self, op: &'static str, result: &'static str) {
        self.lease_requests
            .get_or_create(&vec![("op", op.to_string()), ("result", result.to_string())])
            .inc();
    }

    /// Counts one new hash-conflict report.
    pub(crate) fn hash_conflict(&self) {
        self.hash_conflicts.inc();
    }
}

fn fam<
    M: prometheus_client::metrics::TypedMetric
        + prometheus_client::encoding::EncodeMetric
        + Default
        + Clone
        + Send
        + Sync
        + std::fmt::Debug
        + 'static,
>(
    reg: &mut Registry,
    name: &str,
    help: &str,
) -> Family<Labels, M> {
    let f = Family::<Labels, M>::default();
    reg.register(name, help, f.clone());
    f
}

fn one<
    M: prometheus_client::metrics::TypedMetric
        + prometheus_client::encoding::EncodeMetric
        + Default
        + Clone
        + Send
        + Sync
        + std::fmt::Debug
        + 'static,
>(
    reg: &mut Registry,
    name: &str,
    help: &str,
) -> M {
    let m = M::default();
    reg.register(name, help, m.clone());
    m
}

fn l1(k: &'static str, v: &str) -> Labels {
    vec![(k, v.to_string())]
}

fn nn(v: u64) -> i64 {
    v.min(i64::MAX as u64) as i64
}

/// Renders the current metrics as OpenMetrics text.
pub(crate) async fn render(st: &State) -> CtlResult<String> {
    let mut reg = Registry::default();
    reg.register(
        "floodgate_ctl_lease_requests",
        "Origin lease requests answered by this ctl, by op (acquire, renew) and result (granted, refused, error)",
        st.metrics.lease_requests.clone(),
    );
    reg.register(
        "floodgate_ctl_hash_conflicts",
        "Agents' reports recorded by this ctl of a relay whose piece hash disagreed with another relay's (one per distribution, client and relay)",
        st.metrics.hash_conflicts.clone(),
    );

    let streams = fam::<Gauge>(
        &mut reg,
        "floodgate_ctl_connected_streams",
        "Task streams connected to this ctl, by kind (client, relay)",
    );
    streams.get_or_create(&l1("kind", "client")).set(st.hub.client_streams() as i64);
    streams.get_or_create(&l1("kind", "relay")).set(st.hub.relay_streams() as i64);
    let online = one::<Gauge>(
        &mut reg,
        "floodgate_ctl_clients_online",
        "Distinct clients with a task stream on this ctl",
    );
    online.set(st.hub.online_clients().len() as i64);
    let registered =
        one::<Gauge>(&mut reg, "floodgate_ctl_clients_registered", "Clients registered with ctl");
    registered.set(st.db.all_client_ids().await?.len() as i64);

    let by_state = fam::<Gauge>(
        &mut reg,
        "floodgate_distributions",
        "Distributions by state (active, done, cancelled, failed)",
    );
    let targets = fam::<Gauge>(
        &mut reg,
        "floodgate_dist_targets",
        "Target clients of a distribution by state (pending, running, done, failed, cancelled)",
    );
    let received = fam::<Counter>(
        &mut reg,
        "floodgate_dist_received_bytes",
        "Bytes clients of a distribution received, by source (bt, http_relay, origin)",
    );
    let origin_bytes = fam::<Counter>(
        &mut reg,
        "floodgate_dist_origin_bytes",
        "Bytes a distribution took from the origin (relay pulls plus clients' direct fetches)",
    );
    let offload = fam::<GaugeF>(
        &mut reg,
        "floodgate_dist_offload_ratio",
        "Bytes delivered to clients per byte taken from the origin (0 before any origin byte)",
    );
    let progress = fam::<GaugeF>(
        &mut reg,
        "floodgate_dist_progress_ratio",
        "Fraction of the distribution's bytes delivered (0..1)",
    );
    let rate = fam::<Gauge>(
        &mut reg,
        "floodgate_dist_download_rate_bytes_per_second",
        "Sum of the running clients' reported download rates",
    );
    let min_time = fam::<GaugeF>(
        &mut reg,
        "floodgate_dist_min_time_seconds",
        "Kumar-Ross lower bound on the distribution's completion time (0 if unknown)",
    );
    let elapsed = fam::<GaugeF>(
        &mut reg,
        "floodgate_dist_elapsed_seconds",
        "Time since the distribution was created (to its finish once finished)",
    );
    let size = fam::<Gauge>(
        &mut reg,
        "floodgate_dist_size_bytes",
        "File size of the distribution (0 while unknown)",
    );
    let now = now_ms();
    let mut counts =
        std::collections::BTreeMap::from([("active", 0), ("done", 0), ("cancelled", 0), ("failed", 0)]);
    for d in list_distributions(st).await? {
        let state = crate::json::state_name(d.state);
        *counts.entry(state).or_default() += 1;
        if state != "active" && now - d.finished_unix_ms > FINISHED_KEEP_MS {
            continue;
        }
        let s = d.stats.unwrap_or_default();
        let id = d.id.as_str();
        for (st_name, v) in [
            ("pending", s.pending),
            ("running", s.running),
            ("done", s.done),
            ("failed", s.failed),
            ("cancelled", s.cancelled),
        ] {
            targets.get_or_create(&vec![("dist", id.to_string()), ("state", st_name.to_string())]).set(nn(v));
        }
        for (src, v) in
            [("bt", s.bytes_bt), ("http_relay", s.bytes_http_relay), ("origin", s.bytes_http_origin)]
        {
            received.get_or_create(&vec![("dist", id.to_string()), ("source", src.to_string())]).inc_by(v);
        }
        origin_bytes.get_or_create(&l1("dist", id)).inc_by(s.origin_bytes);
        offload.get_or_create(&l1("dist", id)).set(s.offload_ratio);
        progress.get_or_create(&l1("dist", id)).set(s.progress);
        rate.get_or_create(&l1("dist", id)).set(nn(s.speed_bps));
        min_time.get_or_create(&l1("dist", id)).set(s.min_time_secs);
        let end = if d.finished_unix_ms > 0 { d.finished_unix_ms } else { now };
        elapsed.get_or_create(&l1("dist", id)).set((end - d.created_unix_ms).max(0) as f64 / 1000.0);
        size.get_or_create(&l1("dist", id)).set(nn(d.size));
    }
    for (state, n) in counts {
        by_state.get_or_create(&l1("state", state)).set(n);
    }

    let per_origin = fam::<Counter>(
        &mut reg,
        "floodgate_origin_bytes",
        "Bytes taken from an origin host over all distributions",
    );
    for (host, b) in st.db.origin_bytes_by_host().await? {
        per_origin.get_or_create(&l1("origin", &host)).inc_by(b.max(0) as u64);
    }

    limits(&mut reg, st).await?;
    relays(&mut reg, st).await?;

    let mut out = String::new();
    encode(&mut out, &reg).map_err(|e| crate::error::CtlError::Corrupt(format!("encoding metrics: {e}")))?;
    Ok(out)
}

/// Limits against live lease grants: `floodgate_global_*` and `floodgate_origin_*{origin}`.
async fn limits(reg: &mut Registry, st: &State) -> CtlResult<()> {
    let mut fams = Vec::new();
    for (scope, what) in [("global", "the global origin limits"), ("origin", "an origin host's limits")] {
        let g = |reg: &mut Registry, n: &str, h: &str| {
            fam::<Gauge>(reg, &format!("floodgate_{scope}_{n}"), &format!("{h} ({what})"))
        };
        fams.push([
            g(reg, "limit_connections", "Most concurrent origin connections allowed; absent if unlimited"),
            g(reg, "leased_connections", "Origin connections granted to live leases"),
            g(reg, "limit_rate_bytes_per_second", "Most origin bytes/s allowed; absent if unlimited"),
            g(reg, "leased_rate_bytes_per_second", "Origin bytes/s granted to live leases"),
            g(reg, "limit_window_bytes", "Most origin bytes allowed per window; absent if unlimited"),
            g(reg, "granted_window_bytes", "Origin bytes granted in the current window"),
            g(reg, "window_seconds", "Length of the byte window"),
            g(reg, "live_leases", "Live origin leases"),
        ]);
    }
    for l in get_limits(st).await? {
        let (f, labels) =
            if l.origin.is_empty() { (&fams[0], vec![]) } else { (&fams[1], l1("origin", &l.origin)) };
        let vals = [
            l.max_conns,
            Some(l.used_conns),
            l.max_rate_bps,
            Some(l.used_rate_bps),
            l.max_bytes,
            Some(l.used_bytes_in_window),
            Some(l.window_secs),
            Some(l.live_leases),
        ];
        for (g, v) in f.iter().zip(vals) {
            if let Some(v) = v {
                g.get_or_create(&labels).set(v);
            }
        }
    }
    Ok(())
}

/// Relays: liveness, load, served bytes and live leases.
async fn relays(reg: &mut Registry, st: &State) -> CtlResult<()> {
    let count = fam::<Gauge>(reg, "floodgate_ctl_relays", "Registered relays by state (alive, dead)");
    let load = fam::<GaugeF>(reg, "floodgate_ctl_relay_load_ratio", "A relay's reported load (0..1)");
    let served =
        fam::<Counter>(reg, "floodgate_ctl_relay_served_bytes", "Bytes a relay reports it has served");
    let leases = fam::<Gauge>(reg, "floodgate_ctl_relay_live_leases", "Live origin leases a relay holds");
    let up =
        fam::<Gauge>(reg, "floodgate_ctl_relay_up", "1 if the relay heartbeats within the timeout, else 0");
    let (mut alive, mut dead) = (0, 0);
    let mut zones = std::collections::HashMap::new();
    for r in st.db.list_relays().await? {
        zones.insert(r.id.clone(), r.zone.clone());
        if r.alive {
            alive += 1;
        } else {
            dead += 1;
        }
        let lab = vec![("relay", r.id.clone()), ("zone", r.zone.clone())];
        load.get_or_create(&lab).set(r.load);
        served.get_or_create(&lab).inc_by(r.bytes_served.max(0) as u64);
        up.get_or_create(&lab).set(i64::from(r.alive));
        leases.get_or_create(&lab).set(0);
    }
    for l in st.db.live_leases_by_relay().await? {
        let zone = zones.get(&l.relay_id).cloned().unwrap_or_default();
        leases.get_or_create(&vec![("relay", l.relay_id), ("zone", zone)]).set(l.count);
    }
    count.get_or_create(&l1("state", "alive")).set(alive);
    count.get_or_create(&l1("state", "dead")).set(dead);
    Ok(())
}
