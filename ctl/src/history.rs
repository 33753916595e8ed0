//! Recent byte counters of each distribution, sampled once a second, so the dashboard can
//! chart rate over time by source without keeping a history in the database. Each replica
//! samples on its own (the counters come from the shared database); history starts when the
//! replica does and keeps the last [`MAX_SAMPLES`] samples per distribution.

use crate::error::now_ms;
use crate::state::State;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Samples kept per distribution (15 minutes at one a second).
pub(crate) const MAX_SAMPLES: usize = 900;
/// Samples each rate is averaged over.
pub(crate) const RATE_WINDOW: usize = 4;
/// A finished distribution's history is dropped this long after it finished.
const KEEP_FINISHED_MS: i64 = 30 * 60_000;

/// Cumulative counters at one instant.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Sample {
    t_ms: i64,
    bt: u64,
    http_relay: u64,
    origin: u64,
}

/// Rates between two samples, bytes/s.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct Rate {
    /// End of the interval, unix ms.
    pub t_ms: i64,
    /// BitTorrent bytes/s received by clients.
    pub bt_bps: f64,
    /// HTTP-from-relay bytes/s received by clients.
    pub http_relay_bps: f64,
    /// Bytes/s taken from the origin (relay pulls plus clients' direct fetches).
    pub origin_bps: f64,
}

/// Per-distribution samples.
#[derive(Debug, Default)]
pub(crate) struct History {
    inner: Mutex<HashMap<String, VecDeque<Sample>>>,
}

impl History {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, VecDeque<Sample>>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push(&self, id: &str, s: Sample) {
        let mut m = self.lock();
        let q = m.entry(id.to_string()).or_default();
        if q.back().is_some_and(|b| b.t_ms >= s.t_ms) {
            return;
        }
        q.push_back(s);
        while q.len() > MAX_SAMPLES {
            q.pop_front();
        }
    }

    fn forget(&self, id: &str) {
        self.lock().remove(id);
    }

    /// Rates over the kept samples, oldest first, each over a trailing window of up to
    /// [`RATE_WINDOW`] samples (clients report every few seconds, so one-second deltas would
    /// alternate between bursts and zero). Empty with fewer than two samples. A counter that
    /// went down (a client restarted its report) counts as 0, not negative.
    pub(crate) fn rates(&self, id: &str) -> Vec<Rate> {
        let m = self.lock();
        let Some(q) = m.get(id) else { return Vec::new() };
        (1..q.len())
            .map(|i| {
                let (a, b) = (q[i.saturating_sub(RATE_WINDOW)], q[i]);
                let dt = (b.t_ms - a.t_ms).max(1) as f64 / 1000.0;
                let r = |x: u64, y: u64| y.saturating_sub(x) as f64 / dt;
                Rate {
                    t_ms: b.t_ms,
                    bt_bps: r(a.bt, b.bt),
                    http_relay_bps: r(a.http_relay, b.http_relay),
                    origin_bps: r(a.origin, b.origin),
                }
            })
            .collect()
    }
}

/// Samples active (and recently finished) distributions once a second, forever.
pub(crate) async fn run(st: Arc<State>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let dists = match crate::service::admin::list_distributions(&st).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "history: listing distributions failed");
                continue;
            }
        };
        let now = now_ms();
        for d in dists {
            if d.finished_unix_ms > 0 && now - d.finished_unix_ms > KEEP_FINISHED_MS {
                st.history.forget(&d.id);
                continue;
            }
            let s = d.stats.unwrap_or_default();
            st.history.push(
                &d.id,
                Sample { t_ms: now, bt: s.bytes_bt, http_relay: s.bytes_http_relay, origin: s.origin_bytes },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(t_ms: i64, bt: u64, http_relay: u64, origin: u64) -> Sample {
        Sample { t_ms, bt, http_relay, origin }
    }

    #[test]
    fn rates_are_deltas_over_a_trailing_window() {
        let h = History::default();
        h.push("d", s(1000, 0, 0, 0));
        h.push("d", s(2000, 1000, 500, 100));
        h.push("d", s(2500, 2000, 500, 50));
        let r = h.rates("d");
        assert_eq!(r.len(), 2);
        assert_eq!(r[0], Rate { t_ms: 2000, bt_bps: 1000.0, http_relay_bps: 500.0, origin_bps: 100.0 });
        // From the first sample: 2000 bytes in 1.5 s; origin went 0 -> 50.
        assert_eq!(r[1].bt_bps, 2000.0 / 1.5);
        assert_eq!(r[1].http_relay_bps, 500.0 / 1.5);
        assert_eq!(r[1].origin_bps, 50.0 / 1.5);
        assert!(h.rates("other").is_empty());
    }

    #[test]
    fn bursty_reports_give_a_steady_rate() {
        // A client reporting 2000 bytes every other second: one-second deltas would be
        // 2000, 0, 2000, ...; the window gives 1000 B/s once it spans a whole period.
        let h = History::default();
        for i in 0..10u64 {
            h.push("d", s(i as i64 * 1000, (i / 2) * 2000, 0, 0));
        }
        let r = h.rates("d");
        assert!(r[RATE_WINDOW..].iter().all(|x| x.bt_bps == 1000.0), "{r:?}");
    }

    #[test]
    fn a_counter_going_down_counts_as_zero() {
        let h = History::default();
        h.push("d", s(0, 5000, 0, 0));
        h.push("d", s(1000, 1000, 0, 0));
        assert_eq!(h.rates("d")[0].bt_bps, 0.0);
    }

    #[test]
    fn keeps_a_bounded_window_and_ignores_stale_samples() {
        let h = History::default();
        for i in 0..(MAX_SAMPLES as i64 + 10) {
            h.push("d", s(i * 1000, i as u64, 0, 0));
        }
        h.push("d", s(5, 0, 0, 0));
        let r = h.rates("d");
        assert_eq!(r.len(), MAX_SAMPLES - 1);
        assert_eq!(r.last().map(|x| x.t_ms), Some((MAX_SAMPLES as i64 + 9) * 1000));
    }
}
