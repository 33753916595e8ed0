//! Per-distribution statistics, including the Kumar–Ross lower bound on swarm time.

use crate::db::StatsRow;
use floodgate_proto::v1::DistStats;

/// Kumar–Ross minimum distribution time in seconds for `n` peers, file size `f` bytes,
/// server upload `us`, slowest download `dmin` and peer uploads summing to `sum_u`
/// (all bytes/s): T ≥ max(F/u_s, F/d_min, N·F/(u_s + Σu_i)). 0 if `f` or `us` is unknown;
/// the F/d_min term is skipped when `dmin` is unknown.
pub fn kumar_ross(f: f64, n: f64, us: f64, dmin: f64, sum_u: f64) -> f64 {
    if f <= 0.0 || us <= 0.0 {
        return 0.0;
    }
    let mut t = f / us;
    if dmin > 0.0 {
        t = t.max(f / dmin);
    }
    t.max(n * f / (us + sum_u.max(0.0)))
}

/// Builds the statistics message from database aggregates and the file size.
pub fn build(row: &StatsRow, size: i64) -> DistStats {
    let delivered = (row.bytes_bt + row.bytes_http_relay + row.bytes_http_origin).max(0);
    let origin_bytes = (row.relay_origin_bytes + row.bytes_http_origin).max(0);
    let progress = if row.targets == 0 {
        0.0
    } else if size > 0 {
        // Cancelled targets no longer count against the goal, unless every target was
        // cancelled: then progress is what was delivered of the whole.
        let open = (row.targets - row.cancelled).max(0);
        let want = size as f64 * if open > 0 { open } else { row.targets } as f64;
        (delivered as f64 / want).min(1.0)
    } else {
        row.done as f64 / row.targets as f64
    };
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
        min_time_secs: kumar_ross(
            size as f64,
            row.targets as f64,
            row.relay_capacity_bps as f64,
            row.download_min_bps as f64,
            row.upload_sum_bps as f64,
        ),
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
    fn a_fully_cancelled_distribution_keeps_its_real_progress() {
        let row = StatsRow { targets: 2, cancelled: 2, bytes_bt: 500, ..Default::default() };
        assert_eq!(build(&row, 1000).progress, 0.25);
        let row = StatsRow { targets: 2, cancelled: 1, done: 1, bytes_bt: 1000, ..Default::default() };
        assert_eq!(build(&row, 1000).progress, 1.0);
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
            ..Default::default()
        };
        let s = build(&row, 1000);
        assert_eq!(s.origin_bytes, 500);
        assert_eq!(s.offload_ratio, 4.0);
        assert_eq!(s.progress, 1.0);
    }
}
