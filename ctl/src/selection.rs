//! Relay selection: about 2% of the targets (at least 1), preferring relays in the zones
//! where the targets are, with low load and good origin quality.

// `super`, not `crate::db`: the simulator compiles this file inside its own `ctl` module.
use super::relay_row::RelayRow;
use std::collections::HashMap;

/// Share of the target count that becomes relays (within the 1–5% of the design).
pub const RELAY_SHARE: f64 = 0.02;

/// How many relays a distribution with `targets` clients wants.
pub fn relay_count(targets: usize) -> i64 {
    ((targets as f64 * RELAY_SHARE).ceil() as i64).max(1)
}

/// Score of one relay: zone match (share of targets in its zone, ×2) + spare capacity
/// (1 − load) + origin quality (1 at ≤ 100 ms and no errors) − 0.1 per active task.
pub fn score(r: &RelayRow, zone_share: f64, active_tasks: i64) -> f64 {
    let quality = if r.origin_latency_ms > 100.0 { 100.0 / r.origin_latency_ms } else { 1.0 }
        / (1.0 + r.origin_errors.max(0) as f64);
    2.0 * zone_share + (1.0 - r.load.clamp(0.0, 1.0)) + quality - 0.1 * active_tasks as f64
}

/// Alive relays not in `exclude`, best first.
pub fn rank(
    relays: &[RelayRow],
    target_zones: &[String],
    task_counts: &HashMap<String, i64>,
    exclude: &[String],
) -> Vec<String> {
    let mut zones: HashMap<&str, usize> = HashMap::new();
    for z in target_zones {
        *zones.entry(z.as_str()).or_default() += 1;
    }
    let total = target_zones.len().max(1) as f64;
    let mut scored: Vec<(f64, &RelayRow)> = relays
        .iter()
        .filter(|r| r.alive && !exclude.contains(&r.id))
        .map(|r| {
            let share = if r.zone.is_empty() {
                0.0
            } else {
                *zones.get(r.zone.as_str()).unwrap_or(&0) as f64 / total
            };
            (score(r, share, *task_counts.get(&r.id).unwrap_or(&0)), r)
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.id.cmp(&b.1.id)));
    scored.into_iter().map(|(_, r)| r.id.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relay(id: &str, zone: &str, load: f64) -> RelayRow {
        RelayRow {
            id: id.into(),
            addresses: vec![],
            zone: zone.into(),
            capacity_bps: 0,
            load,
            origin_rate_bps: 0,
            origin_latency_ms: 20.0,
            origin_errors: 0,
            bytes_served: 0,
            last_seen_ms: 0,
            alive: true,
        }
    }

    #[test]
    fn counts_are_two_percent_at_least_one() {
        assert_eq!(relay_count(0), 1);
        assert_eq!(relay_count(10), 1);
        assert_eq!(relay_count(10_000), 200);
    }

    #[test]
    fn prefers_zone_then_low_load() {
        let relays = vec![relay("a", "eu", 0.0), relay("b", "us", 0.0), relay("c", "us", 0.9)];
        let zones = vec!["us".to_string(); 3];
        let ranked = rank(&relays, &zones, &HashMap::new(), &[]);
        assert_eq!(ranked, vec!["b", "c", "a"]);
        let ranked = rank(&relays, &zones, &HashMap::new(), &["b".to_string()]);
        assert_eq!(ranked[0], "c");
    }
}
