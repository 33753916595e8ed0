//! Origin quota policy: how much of the global limits one lease gets.
//!
//! Pure functions; the transaction that applies them is `db::leases`. Invariant (held by the
//! caller running this under a lock on the limits rows, with `used` summed over the *other*
//! live leases): for every limited dimension, `used + grant <= limit`.

// `super`, not `crate::db`: the simulator compiles this file inside its own `ctl` module.
use super::relay_row::RelayRow;

/// Share of each limit kept back from relays that already hold another live lease, so a
/// new relay always finds some quota.
pub const RESERVE_FRACTION: f64 = 0.10;

/// Default connections when nothing limits them and the relay asked for "fair" (0).
pub const DEFAULT_CONNS: i64 = 4;

/// One dimension of one limits row: its limit (-1 = unlimited) and what other live leases use.
#[derive(Debug, Clone, Copy)]
pub struct Dim {
    /// The limit, or -1 for none.
    pub limit: i64,
    /// Sum over other live leases (or bytes already granted in the window).
    pub used: i64,
    /// Sum of the other live leases' weights on this row.
    pub others_weight: f64,
}

/// Everything the grant depends on.
#[derive(Debug, Clone)]
pub struct GrantInput {
    /// Wanted (conns, rate, bytes); 0 = as much as fair.
    pub want: [i64; 3],
    /// One `[conns, rate, bytes]` triple per applicable limits row (global, per origin).
    pub rows: Vec<[Dim; 3]>,
    /// This lease's weight.
    pub weight: f64,
    /// The relay already holds another live lease (then the reserve is off limits).
    pub holds_other: bool,
}

/// Computes `[conns, rate_bps, bytes]`; -1 means unlimited (no limit applies and the relay
/// asked for "fair"). Never exceeds `limit - used` of any limited dimension.
pub fn compute_grant(input: &GrantInput) -> [i64; 3] {
    let mut out = [0i64; 3];
    for (d, slot) in out.iter_mut().enumerate() {
        let want = input.want[d].max(0);
        let mut cap: Option<i64> = None;
        for row in &input.rows {
            let dim = row[d];
            if dim.limit < 0 {
                continue;
            }
            let reserve = if input.holds_other { (dim.limit as f64 * RESERVE_FRACTION) as i64 } else { 0 };
            let available = (dim.limit - dim.used - reserve).max(0);
            let w = input.weight.max(1e-6);
            let share = (dim.limit as f64 * w / (dim.others_weight.max(0.0) + w)).ceil() as i64;
            let c = available.min(share.max(1));
            cap = Some(cap.map_or(c, |x: i64| x.min(c)));
        }
        *slot = match cap {
            Some(c) if want > 0 => want.min(c),
            Some(c) => c,
            None if want > 0 => want,
            None if d == 0 => DEFAULT_CONNS,
            None => -1,
        };
    }
    out
}

/// Shrinks live grants of one dimension so their sum fits a (lowered) `limit`.
///
/// `current` holds each live lease's grant (-1 = unlimited) and weight. If the grants already
/// fit, nothing changes. Otherwise every lease is cut to at most its weighted share
/// `floor(limit × w / Σw)`, never raised, so the new sum is at most `limit`. Returns the new
/// grants in the same order.
pub fn shrink(limit: i64, current: &[(i64, f64)]) -> Vec<i64> {
    let grants = || current.iter().map(|&(g, _)| g);
    let fits = grants().all(|g| g >= 0) && grants().sum::<i64>() <= limit;
    if limit < 0 || fits {
        return grants().collect();
    }
    let total_weight: f64 = current.iter().map(|&(_, w)| w.max(1e-6)).sum();
    current
        .iter()
        .map(|&(g, w)| {
            let share = (limit as f64 * w.max(1e-6) / total_weight).floor() as i64;
            if g < 0 {
                share
            } else {
                g.min(share)
            }
        })
        .collect()
}

/// Lease weight = base × bandwidth factor × priority factor × history factor.
///
/// - bandwidth: relay capacity relative to 1 Gbit/s, clamped to 0.25..4 (1 if unknown);
/// - priority: 1 + p/9 for the highest priority p (0..=9) among the relay's active tasks;
/// - history: origin quality from heartbeats: 1 at ≤ 100 ms latency, falling as latency rises
///   (100/latency, at least 0.2), divided by (1 + errors) of the last heartbeat. So rising
///   origin latency or errors lower the relay's grants.
pub fn weight(relay: Option<&RelayRow>, max_priority: i64) -> f64 {
    let base = 1.0;
    let (bw, hist) = match relay {
        Some(r) => {
            let bw = if r.capacity_bps > 0 {
                (r.capacity_bps as f64 / 125_000_000.0).clamp(0.25, 4.0)
            } else {
                1.0
            };
            let lat = if r.origin_latency_ms > 100.0 { (100.0 / r.origin_latency_ms).max(0.2) } else { 1.0 };
            (bw, lat / (1.0 + r.origin_errors.max(0) as f64))
        }
        None => (1.0, 1.0),
    };
    let prio = 1.0 + max_priority.clamp(0, 9) as f64 / 9.0;
    base * bw * prio * hist
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dim(limit: i64, used: i64, w: f64) -> Dim {
        Dim { limit, used, others_weight: w }
    }

    #[test]
    fn grant_never_exceeds_available() {
        let input = GrantInput {
            want: [100, 1_000_000, 0],
            rows: vec![[dim(10, 7, 1.0), dim(500, 100, 1.0), dim(-1, 0, 0.0)]],
            weight: 1.0,
            holds_other: false,
        };
        assert_eq!(compute_grant(&input), [3, 250, -1]);
    }

    #[test]
    fn reserve_applies_to_relays_holding_a_lease() {
        let input = GrantInput {
            want: [0, 0, 0],
            rows: vec![[dim(100, 85, 0.0), dim(-1, 0, 0.0), dim(-1, 0, 0.0)]],
            weight: 1.0,
            holds_other: true,
        };
        assert_eq!(compute_grant(&input)[0], 5);
    }

    #[test]
    fn fair_share_and_per_origin_row() {
        let input = GrantInput {
            want: [0, 0, 0],
            rows: vec![
                [dim(100, 0, 3.0), dim(-1, 0, 0.0), dim(-1, 0, 0.0)],
                [dim(10, 0, 0.0), dim(-1, 0, 0.0), dim(-1, 0, 0.0)],
            ],
            weight: 1.0,
            holds_other: false,
        };
        assert_eq!(compute_grant(&input)[0], 10);
    }

    #[test]
    fn shrink_keeps_fitting_grants_and_cuts_to_weighted_shares() {
        assert_eq!(shrink(10, &[(3, 1.0), (4, 1.0)]), vec![3, 4]);
        assert_eq!(shrink(-1, &[(30, 1.0), (-1, 1.0)]), vec![30, -1]);
        // 12 > 6: each gets at most floor(6 × w / 4).
        assert_eq!(shrink(6, &[(8, 1.0), (2, 1.0), (2, 2.0)]), vec![1, 1, 2]);
        // An unlimited grant becomes a share once a limit exists.
        assert_eq!(shrink(100, &[(-1, 1.0), (10, 1.0)]), vec![50, 10]);
    }

    proptest::proptest! {
        #[test]
        fn shrink_never_exceeds_the_limit_nor_raises(
            limit in 0i64..1_000_000,
            current in proptest::collection::vec((-1i64..1_000_000, 0.0f64..10.0), 0..50),
        ) {
            let out = shrink(limit, &current);
            proptest::prop_assert_eq!(out.len(), current.len());
            proptest::prop_assert!(out.iter().all(|&g| g >= 0));
            proptest::prop_assert!(out.iter().sum::<i64>() <= limit);
            for (new, (old, _)) in out.iter().zip(&current) {
                proptest::prop_assert!(*old < 0 || new <= old);
            }
        }
    }

    #[test]
    fn bad_origin_quality_lowers_weight() {
        let mk = |lat: f64, err: i64| RelayRow {
            id: "r".into(),
            addresses: vec![],
            zone: String::new(),
            capacity_bps: 125_000_000,
            load: 0.0,
            origin_rate_bps: 0,
            origin_latency_ms: lat,
            origin_errors: err,
            bytes_served: 0,
            last_seen_ms: 0,
            alive: true,
        };
        let good = weight(Some(&mk(50.0, 0)), 5);
        assert!(weight(Some(&mk(400.0, 0)), 5) < good);
        assert!(weight(Some(&mk(50.0, 3)), 5) < good);
    }
}
