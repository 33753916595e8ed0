//! Capacity planning: how many relays a rollout should use.
//!
//! For each candidate relay share (1 %, 2 % — ctl's default —, 3 %, 5 % of the fleet, and
//! ctl's `relay_count`), the fleet is simulated at a sample size (the fleet itself when small
//! enough), relays scaled in proportion; the plan is the fewest relays whose last completion is
//! within `target` × the Kumar–Ross bound, every client at or above the switch threshold, and
//! origin bytes within the quota. A sample finishes a little sooner than the full fleet would
//! (swarm time grows with log N), so the figures are a lower estimate at large N.

use crate::report::Outcome;
use crate::scenario::Scenario;
use crate::sim::{run, SimError};

/// One candidate's result.
#[derive(Clone, Debug)]
pub struct Candidate {
    /// Relays for the whole fleet.
    pub relays: usize,
    /// Relays in the sample.
    pub sample_relays: usize,
    /// The sample's outcome.
    pub outcome: Outcome,
    /// Whether it meets every goal.
    pub ok: bool,
}

/// The planner's answer.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Fleet size.
    pub fleet: usize,
    /// Clients simulated per candidate.
    pub sample: usize,
    /// Every candidate, fewest relays first.
    pub candidates: Vec<Candidate>,
    /// Index of the chosen one (`None`: none met the goals).
    pub chosen: Option<usize>,
}

/// Plans for `base` (its `clients` is the fleet size; `relays` is ignored), simulating at most
/// `sample` clients per candidate.
pub fn plan(base: &Scenario, sample: usize, target: f64) -> Result<Plan, SimError> {
    let fleet = base.clients;
    let sample = sample.clamp(1, fleet.max(1));
    let mut shares: Vec<usize> =
        [0.01, 0.02, 0.03, 0.05].iter().map(|f| ((fleet as f64 * f).ceil() as usize).max(1)).collect();
    shares.push(crate::ctl::selection::relay_count(fleet) as usize);
    shares.sort_unstable();
    shares.dedup();
    let mut candidates = Vec::new();
    for relays in shares {
        let sample_relays = ((relays as f64 * sample as f64 / fleet as f64).round() as usize).max(1);
        let mut s = base.clone();
        s.clients = sample;
        s.relays = Some(sample_relays);
        // The quota is for the whole fleet's relays; the sample gets its share of it.
        s.origin_quota = base.origin_quota.map(|q| (q as f64 * sample_relays as f64 / relays as f64) as u64);
        let outcome = run(&s)?;
        let quota_ok = s.origin_quota.is_none_or(|q| outcome.origin_total() <= q as f64 * 1.0001);
        let ok = outcome.last().is_some_and(|l| l <= target * outcome.bound)
            && outcome.below(s.switch.threshold as f64) == 0
            && quota_ok;
        candidates.push(Candidate { relays, sample_relays, outcome, ok });
    }
    let chosen = candidates.iter().position(|c| c.ok);
    Ok(Plan { fleet, sample, candidates, chosen })
}
