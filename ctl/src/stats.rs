//! Per-distribution statistics, including the Kumar–Ross lower bound on swarm time.

use crate::db::StatsRow;
use floodgate_proto::v1::DistStats;

/// Kumar–Ross minimum distribution time in seconds for `n` peers, file size `f` bytes,
/// server upload `us`, slowest download `dmin` and peer uploads summing to `sum_u`
/// (all bytes/s): T ≥ max(F/u_s, F/d_min, N·F/(u_s + Σu_i)). 0 if `f` or `us` is unknown;
/// the F/d_min term is skipped when `dmin` is unknown.
pub(crate) fn kumar_ross(f: f64, n: f64, us: f64, dmin: f64, sum_u: f64) -> f64 {
    if f <= 0.0 || us <= 0.0 {
        return 0.0;
    }
    let mut t = f / us;
    if dmin > 0.0 {
        t = t.max(f / dmin);
    }
    t.max(n * f / (us + sum_u.max(0.0)))
}

/// What a Kumar–Ross bound's rates came from (`DistStats.min_time_basis`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Basis {
    /// Capacities relays and clients report (`relay_capacity_bps`, `download_bps`, `upload_bps`).
    Configured,
    /// Rates ctl measured from the reports: the relays' current origin pull rates for the
    /// distribution and the running clients' current download speeds.
    Measured,
    /// No rate known: the bound is 0.
    None,
}

impl Basis {
    /// The name shown in the API, the CLI and the dashboard.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Basis::Configured => "configured",
            Basis::Measured => "measured",
            Basis::None => "none",
        }
    }
}

/// The Kumar–Ross bound for a distribution of `size` bytes and what it is based on. Configured
/// capacities win while the relays report one; else the bound is taken over the rates ctl
/// measured: u_s = the active relays' current origin pull rates for this distribution (a relay
/// pulling two distributions counts in each bound with that distribution's rate only), d_min = the slowest running
/// client's current download speed, and u_s + Σu_i = the running clients' summed download
/// speed (every byte a client receives was uploaded by a relay or a peer), at least u_s. A term
/// whose rate is unknown (0) is left out; with none left, or no target running, the bound is
/// 0, basis `None`. A measured bound follows the current rates: it is what the rates now
/// allow, not a capacity.
pub(crate) fn min_time(row: &StatsRow, size: i64) -> (f64, Basis) {
    let (f, n) = (size as f64, row.targets as f64);
    let configured = kumar_ross(
        f,
        n,
        row.relay_capacity_bps as f64,
        row.download_min_bps as f64,
        row.upload_sum_bps as f64,
    );
    if configured > 0.0 {
        return (configured, Basis::Configured);
    }
    if f <= 0.0 || row.running <= 0 {
        // With no target running the current rates are leftovers (a relay's pull rate decays
        // for a while after it finished), not what the distribution ran at.
        return (0.0, Basis::None);
    }
    let us = row.relay_origin_rate_bps.max(0) as f64;
    let dmin = row.speed_min_bps.max(0) as f64;
    let total = (row.speed_bps.max(0) as f64).max(us);
    let terms = [(us, f), (dmin, f), (total, n * f)];
    let t =
        terms.iter().filter(|(rate, _)| *rate > 0.0).map(|(rate, bytes)| bytes / rate).fold(0.0, f64::max);
    if t > 0.0 {
        (t, Basis::Measured)
    } else {
        (0.0, Basis::None)
    }
}

/// The fraction of what can still be delivered that was delivered. Failed and cancelled
/// targets leave the goal, and what they received leaves the delivered bytes: the goal is
/// `size` × the targets neither failed nor cancelled, the delivered bytes are those targets'
/// bytes, each capped at `size` (a done target counts as `size`: an agent killed -9 may not
/// have reported its last bytes, which it resumed from disk). So a distribution with one
/// failed target reaches 1.0 when every other target is done. When no target is left (every one failed or was cancelled),
/// progress is what was delivered of the whole: every target's bytes, each capped at `size`,
/// over `size` × all targets. With the size unknown it is the share of the targets left that
/// are done (0 when none is left); with no target at all, 0.
pub(crate) fn progress(row: &StatsRow, size: i64) -> f64 {
    let open = (row.targets - row.cancelled - row.failed).max(0);
    if row.targets <= 0 {
        0.0
    } else if size <= 0 {
        if open > 0 {
            (row.done as f64 / open as f64).min(1.0)
        } else {
            0.0
        }
    } else if open > 0 {
        (row.delivered_open.max(0) as f64 / (size as f64 * open as f64)).min(1.0)
    } else {
        (row.delivered_capped.max(0) as f64 / (size as f64 * row.targets as f64)).min(1.0)
    }
}

/// Builds the statistics message from database aggregates and the file size.
pub(crate) fn build(row: &StatsRow, size: i64) -> DistStats {
    let delivered = (row.bytes_bt + row.bytes_http_relay + row.bytes_http_origin).max(0);
    let origin_bytes = (row.relay_origin_bytes + row.bytes_http_origin).max(0);
    let progress = progress(row, size);
    let (min_time_secs, basis) = min_time(row, size);
    DistStats {
        targets: row.targets as u64,
        pending: row.pending as u64,
        running: row.running as u64,
        done: row.done as u64,
        failed: row.failed as u64,
        cancelled: row.cancelled as u64,
        progress,
        speed_bps: row.speed_bps.max(0) as u64,
        bytes_bt: row.bytes_bt.max(0) as u64,
        bytes_http_relay: row.bytes_http_relay.max(0) as u64,
        bytes_http_origin: row.bytes_http_origin.max(0) as u64,
        origin_bytes: origin_bytes as u64,
        offload_ratio: if origin_bytes > 0 { delivered as f64 / origin_bytes as f64 } else { 0.0 },
        min_time_secs,
        min_time_basis: basis.as_str().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kumar_ross_takes_the_largest_term() {
        // F = 1000, u_s = 100 -> 10 s; d_min = 50 -> 20 s; N·F/(u_s+Σu) = 10·1000/(100+900) = 10 s.
        assert_eq!(kumar_ross(1000.0, 10.0, 100.0, 50.0, 900.0), 20.0);
        // Upload-bound swarm: 100·1000/(100+0) = 1000 s.
        assert_eq!(kumar_ross(1000.0, 100.0, 100.0, 0.0, 0.0), 1000.0);
        assert_eq!(kumar_ross(0.0, 100.0, 100.0, 1.0, 1.0), 0.0);
    }

    #[test]
    fn configured_capacities_win_over_measured_rates() {
        let row = StatsRow {
            targets: 10,
            relay_capacity_bps: 100,
            download_min_bps: 50,
            upload_sum_bps: 900,
            relay_origin_rate_bps: 1,
            speed_min_bps: 1,
            speed_bps: 1,
            ..Default::default()
        };
        assert_eq!(min_time(&row, 1000), (20.0, Basis::Configured));
        let s = build(&row, 1000);
        assert_eq!((s.min_time_secs, s.min_time_basis.as_str()), (20.0, "configured"));
    }

    #[test]
    fn without_configured_rates_the_bound_uses_measured_ones() {
        // No capacities reported. Relays pull at 100 B/s in all; the slowest running client
        // gets 25 B/s, all of them 400 B/s together. F = 1000, N = 10:
        // F/u_s = 10 s, F/d_min = 40 s, N·F/400 = 25 s -> 40 s.
        let row = StatsRow {
            targets: 10,
            running: 10,
            relay_origin_rate_bps: 100,
            speed_min_bps: 25,
            speed_bps: 400,
            ..Default::default()
        };
        assert_eq!(min_time(&row, 1000), (40.0, Basis::Measured));
        let s = build(&row, 1000);
        assert_eq!((s.min_time_secs, s.min_time_basis.as_str()), (40.0, "measured"));
        // Aggregate-bound: the clients' summed speed is below the relays' pull rate, so
        // u_s + Σu_i is taken as u_s: N·F/100 = 100 s.
        let row =
            StatsRow { targets: 10, relay_origin_rate_bps: 100, speed_min_bps: 50, speed_bps: 60, ..row };
        assert_eq!(min_time(&row, 1000), (100.0, Basis::Measured));
        // Relays done pulling (origin rate 0): the client terms alone, 1000/25 = 40 s and
        // 10·1000/400 = 25 s.
        let row = StatsRow { relay_origin_rate_bps: 0, speed_min_bps: 25, speed_bps: 400, ..row };
        assert_eq!(min_time(&row, 1000), (40.0, Basis::Measured));
    }

    #[test]
    fn with_no_rate_at_all_the_bound_is_none() {
        let row = StatsRow { targets: 3, ..Default::default() };
        assert_eq!(min_time(&row, 1000), (0.0, Basis::None));
        assert_eq!(build(&row, 1000).min_time_basis, "none");
        // Rates but no known size: nothing to bound.
        let row = StatsRow { targets: 3, relay_origin_rate_bps: 10, speed_bps: 10, ..Default::default() };
        assert_eq!(min_time(&row, 0), (0.0, Basis::None));
        // Every target done: a relay's decaying pull rate is a leftover, not a bound (the chaos
        // soak showed 4607 s for a distribution done in 340 s).
        let row = StatsRow { targets: 3, done: 3, relay_origin_rate_bps: 58_000, ..Default::default() };
        assert_eq!(min_time(&row, 256 << 20), (0.0, Basis::None));
    }

    #[test]
    fn a_fully_cancelled_distribution_keeps_its_real_progress() {
        let row =
            StatsRow { targets: 2, cancelled: 2, bytes_bt: 500, delivered_capped: 500, ..Default::default() };
        assert_eq!(build(&row, 1000).progress, 0.25);
        let row = StatsRow {
            targets: 2,
            cancelled: 1,
            done: 1,
            bytes_bt: 1000,
            delivered_open: 1000,
            delivered_capped: 1000,
            ..Default::default()
        };
        assert_eq!(build(&row, 1000).progress, 1.0);
    }

    #[test]
    fn a_failed_target_leaves_the_goal_and_its_bytes_leave_the_delivered() {
        // Three targets of a 1000-byte file: two done, one failed after 400 bytes. The
        // database sums the open targets' bytes (2000) apart from everyone's (2400).
        let row = StatsRow {
            targets: 3,
            done: 2,
            failed: 1,
            bytes_bt: 2400,
            delivered_open: 2000,
            delivered_capped: 2400,
            ..Default::default()
        };
        assert_eq!(build(&row, 1000).progress, 1.0);
        // One of the two others half done: 1500 / 2000.
        let row = StatsRow { done: 1, running: 1, delivered_open: 1500, delivered_capped: 1900, ..row };
        assert_eq!(progress(&row, 1000), 0.75);
        // Failed and cancelled together leave one target: its 250 bytes of 1000.
        let row = StatsRow {
            targets: 3,
            failed: 1,
            cancelled: 1,
            running: 1,
            delivered_open: 250,
            delivered_capped: 1250,
            ..Default::default()
        };
        assert_eq!(progress(&row, 1000), 0.25);
    }

    #[test]
    fn with_no_target_left_progress_is_what_was_delivered_of_the_whole() {
        // Both targets failed, after 1000 (capped from more) and 500 bytes: 1500 / 2000.
        let row = StatsRow {
            targets: 2,
            failed: 2,
            delivered_open: 0,
            delivered_capped: 1500,
            ..Default::default()
        };
        assert_eq!(progress(&row, 1000), 0.75);
        // One failed, one cancelled, nothing received.
        let row = StatsRow { targets: 2, failed: 1, cancelled: 1, ..Default::default() };
        assert_eq!(progress(&row, 1000), 0.0);
        // Size unknown: the share of the open targets that are done; none open: 0.
        let row = StatsRow { targets: 3, failed: 1, done: 1, running: 1, ..Default::default() };
        assert_eq!(progress(&row, 0), 0.5);
        let row = StatsRow { targets: 1, failed: 1, ..Default::default() };
        assert_eq!(progress(&row, 0), 0.0);
        assert_eq!(progress(&StatsRow::default(), 1000), 0.0);
    }

    #[test]
    fn offload_ratio_is_delivered_over_origin() {
        let row = StatsRow {
            targets: 2,
            done: 2,
            bytes_bt: 1500,
            bytes_http_relay: 400,
            bytes_http_origin: 100,
            relay_origin_bytes: 400,
            delivered_open: 2000,
            delivered_capped: 2000,
            ..Default::default()
        };
        let s = build(&row, 1000);
        assert_eq!(s.origin_bytes, 500);
        assert_eq!(s.offload_ratio, 4.0);
        assert_eq!(s.progress, 1.0);
    }
}
