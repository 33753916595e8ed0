//! Which mirror of a file gets a pull worker's next run, sans-IO (time passed in).
//!
//! A task has one or more mirrors (mirror 0 is the primary, the URL ctl or `--origin` named
//! first). Rules:
//!
//! - **Ready first.** A mirror takes runs only once it is ready: probed with the length the
//!   task describes and, for a URL-only task, vetted (it served a verified piece byte for byte).
//!   The primary is ready from the start (the pull probed it). A mirror that is not ready yet is
//!   handed out once, as [`Choice::Prepare`], to the first worker that asks; URL-only mirrors
//!   only once some piece has landed (there is nothing to vet them against before).
//! - **By measured speed.** Each run's throughput times the runs the mirror had in flight when
//!   it started estimates the mirror's capacity (a moving average, so a server-wide cap and a
//!   per-connection cap both come out right). The next run goes where it would get the most:
//!   capacity ÷ (runs in flight + 1). A mirror not measured yet counts as the fastest, so it is
//!   measured at once. Ties go to the lower index (the primary).
//! - **Failures rest a mirror.** A failed run (error, stall, truncation, failed probe) rests
//!   the mirror for 1 s, doubling with every failure in a row up to 30 s; a success ends the
//!   streak. While any other mirror is usable a resting one gets nothing; when every ready
//!   mirror rests, the one whose rest ends first is used anyway (the worker's own backoff paces
//!   it), so a single origin behaves as it did before mirrors.
//! - **Refused is for good.** A mirror whose length disagrees, whose piece failed its hash, or
//!   whose bytes differ from a verified piece is refused for the rest of the pull.
//! - **Spot checks.** In a URL-only task every [`SPOT_CHECK_EVERY`]th run of a mirror other
//!   than the primary first re-fetches one landed piece from it and compares the bytes.

use std::time::{Duration, Instant};

/// A URL-only task's non-primary mirror re-serves a landed piece before every this many runs.
pub(crate) const SPOT_CHECK_EVERY: u32 = 8;
/// First rest after a failure; doubles with each failure in a row.
const FIRST_REST: Duration = Duration::from_secs(1);
/// Longest rest.
const MAX_REST: Duration = Duration::from_secs(30);
/// Weight of a new sample in the capacity average.
const ALPHA: f64 = 0.3;

/// Where a mirror stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Not probed (or vetted) yet.
    Unready,
    /// A worker is probing or vetting it.
    Preparing,
    /// Takes runs.
    Ready,
    /// Never used again.
    Refused,
}

#[derive(Clone, Debug)]
struct Mirror {
    stage: Stage,
    /// Estimated bytes/s the mirror gives over all its runs (None until measured).
    capacity: Option<f64>,
    inflight: u32,
    /// Failures in a row.
    streak: u32,
    resting_until: Option<Instant>,
    /// Runs since the last spot check.
    since_check: u32,
}

/// What a worker does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Choice {
    /// Fetch the next run from this mirror (after a spot check of it, if `spot_check`).
    Run(Ticket),
    /// Probe (and vet) this mirror, then report [`Policy::ready`] or a failure.
    Prepare(usize),
    /// No mirror can take a run now (others are being prepared); ask again shortly.
    Wait,
    /// Every mirror is refused: the pull cannot go on.
    NoneLeft,
}

/// One run handed to a mirror; give it back with [`Policy::done`] or [`Policy::failed`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ticket {
    /// The mirror.
    pub mirror: usize,
    /// Runs the mirror had in flight with this one.
    concurrency: u32,
    /// Re-fetch a landed piece from the mirror first and compare.
    pub spot_check: bool,
}

/// The mirrors of one pull and what is known of them.
#[derive(Clone, Debug)]
pub(crate) struct Policy {
    mirrors: Vec<Mirror>,
    /// Whether mirrors are vetted against landed pieces (URL-only tasks).
    vet: bool,
}

impl Policy {
    /// `count` mirrors (at least one), mirror 0 ready; `vet` for a URL-only task.
    pub(crate) fn new(count: usize, vet: bool) -> Self {
        let mirror = Mirror {
            stage: Stage::Unready,
            capacity: None,
            inflight: 0,
            streak: 0,
            resting_until: None,
            since_check: 0,
        };
        let mut mirrors = vec![mirror; count.max(1)];
        mirrors[0].stage = Stage::Ready;
        Policy { mirrors, vet }
    }

    /// The stage of mirror `m`.
    #[cfg(test)]
    pub(crate) fn stage(&self, m: usize) -> Stage {
        self.mirrors[m].stage
    }

    /// Whether mirror `m` rests at `now`.
    #[cfg(test)]
    pub(crate) fn resting(&self, m: usize, now: Instant) -> bool {
        self.mirrors[m].resting_until.is_some_and(|t| t > now)
    }

    /// The next step of a worker at `now`; `landed` says whether any piece is verified yet
    /// (URL-only mirrors are vetted against one).
    pub(crate) fn choose(&mut self, now: Instant, landed: bool) -> Choice {
        let rests = |m: &Mirror| m.resting_until.is_some_and(|t| t > now);
        // Bring new mirrors in first: they cannot be measured before they are ready.
        let preparable =
            self.mirrors.iter().position(|m| m.stage == Stage::Unready && !rests(m) && (landed || !self.vet));
        if let Some(m) = preparable {
            self.mirrors[m].stage = Stage::Preparing;
            return Choice::Prepare(m);
        }
        // Not measured: faster than any measured mirror, and the idler of two such first.
        let score = |m: &Mirror| m.capacity.unwrap_or(f64::MAX) / f64::from(m.inflight + 1);
        let mut best: Option<(usize, f64)> = None;
        for (i, m) in self.mirrors.iter().enumerate() {
            if m.stage == Stage::Ready && !rests(m) && best.is_none_or(|(_, s)| score(m) > s) {
                best = Some((i, score(m)));
            }
        }
        // Every ready mirror rests: the one back first.
        let pick = best.map(|(i, _)| i).or_else(|| {
            (0..self.mirrors.len())
                .filter(|&i| self.mirrors[i].stage == Stage::Ready)
                .min_by_key(|&i| self.mirrors[i].resting_until)
        });
        match pick {
            Some(i) => {
                let vet = self.vet && i != 0;
                let m = &mut self.mirrors[i];
                m.inflight += 1;
                m.since_check += 1;
                let spot_check = vet && m.since_check >= SPOT_CHECK_EVERY;
                if spot_check {
                    m.since_check = 0;
                }
                Choice::Run(Ticket { mirror: i, concurrency: m.inflight, spot_check })
            }
            None if self.mirrors.iter().all(|m| m.stage == Stage::Refused) => Choice::NoneLeft,
            None => Choice::Wait,
        }
    }

    /// Mirror `m` passed its probe (and vetting): it takes runs from now on.
    pub(crate) fn ready(&mut self, m: usize) {
        let mirror = &mut self.mirrors[m];
        if mirror.stage != Stage::Refused {
            mirror.stage = Stage::Ready;
            mirror.streak = 0;
            mirror.resting_until = None;
        }
    }

    /// A run of `bytes` bytes that took `took` ended well.
    pub(crate) fn done(&mut self, t: Ticket, bytes: u64, took: Duration) {
        let m = &mut self.mirrors[t.mirror];
        m.inflight = m.inflight.saturating_sub(1);
        m.streak = 0;
        m.resting_until = None;
        if bytes > 0 {
            let sample = bytes as f64 / took.as_secs_f64().max(1e-3) * f64::from(t.concurrency.max(1));
            m.capacity = Some(m.capacity.map_or(sample, |c| c * (1.0 - ALPHA) + sample * ALPHA));
        }
    }

    /// A run failed at `now` (error, stall); the mirror rests.
    pub(crate) fn failed(&mut self, t: Ticket, now: Instant) {
        let m = &mut self.mirrors[t.mirror];
        m.inflight = m.inflight.saturating_sub(1);
        self.rest(t.mirror, now);
    }

    /// Preparing mirror `m` failed at `now` for a reason that may pass (it could not be
    /// reached): it rests and is prepared again later.
    pub(crate) fn prepare_failed(&mut self, m: usize, now: Instant) {
        if self.mirrors[m].stage == Stage::Preparing {
            self.mirrors[m].stage = Stage::Unready;
        }
        self.rest(m, now);
    }

    /// Mirror `m` is not used again. A run it holds still ends with [`Policy::failed`].
    pub(crate) fn refuse(&mut self, m: usize) {
        self.mirrors[m].stage = Stage::Refused;
    }

    /// A run handed back without a verdict on the mirror (the task ended, the quota shrank).
    pub(crate) fn returned(&mut self, t: Ticket) {
        let m = &mut self.mirrors[t.mirror];
        m.inflight = m.inflight.saturating_sub(1);
    }

    fn rest(&mut self, i: usize, now: Instant) {
        let m = &mut self.mirrors[i];
        let rest = FIRST_REST.saturating_mul(1 << m.streak.min(5)).min(MAX_REST);
        m.streak += 1;
        m.resting_until = Some(now + rest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(p: &mut Policy, now: Instant) -> Ticket {
        match p.choose(now, true) {
            Choice::Run(t) => t,
            c => panic!("expected a run, got {c:?}"),
        }
    }

    /// Simulates `workers` workers pulling `runs` runs of 1 MB from mirrors whose servers give
    /// `caps` bytes/s shared by their runs; returns the runs each mirror served.
    fn simulate(caps: &[f64], workers: usize, runs: usize) -> Vec<usize> {
        let t0 = Instant::now();
        let mut p = Policy::new(caps.len(), false);
        for m in 1..caps.len() {
            assert_eq!(p.choose(t0, true), Choice::Prepare(m));
            p.ready(m);
        }
        let mut served = vec![0; caps.len()];
        // Each worker: (ticket, bytes left, start time) of its current run.
        let mut active: Vec<(Ticket, f64, f64)> = Vec::new();
        let mut now = 0.0f64;
        let mut started = 0;
        while started < runs || !active.is_empty() {
            while active.len() < workers && started < runs {
                let t = run(&mut p, t0 + Duration::from_secs_f64(now));
                active.push((t, 1e6, now));
                started += 1;
            }
            // Advance to the first run to finish; each mirror's cap is shared by its runs.
            let share = |a: &[(Ticket, f64, f64)], m: usize| {
                caps[m] / a.iter().filter(|(t, ..)| t.mirror == m).count().max(1) as f64
            };
            let (i, dt) = active
                .iter()
                .enumerate()
                .map(|(i, (t, left, _))| (i, left / share(&active, t.mirror)))
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .expect("a run in flight");
            let rates: Vec<f64> = active.iter().map(|(t, ..)| share(&active, t.mirror)).collect();
            for (a, r) in active.iter_mut().zip(rates) {
                a.1 -= r * dt;
            }
            now += dt;
            let (t, _, start) = active.swap_remove(i);
            p.done(t, 1_000_000, Duration::from_secs_f64(now - start));
            served[t.mirror] += 1;
        }
        served
    }

    #[test]
    fn a_faster_mirror_gets_more_runs() {
        let served = simulate(&[10e6, 5e6], 3, 300);
        assert!(served[0] > served[1] && served[1] > 0, "{served:?}");
        // Capacity 2:1 -> roughly 2:1 of the runs.
        let ratio = served[0] as f64 / served[1] as f64;
        assert!((1.4..3.0).contains(&ratio), "{served:?}");
    }

    #[test]
    fn equal_mirrors_share_evenly() {
        let served = simulate(&[10e6, 10e6, 10e6], 3, 300);
        for s in &served {
            assert!((70..=130).contains(s), "{served:?}");
        }
    }

    #[test]
    fn an_unmeasured_mirror_is_tried_at_once() {
        let t0 = Instant::now();
        let mut p = Policy::new(2, false);
        assert_eq!(p.choose(t0, true), Choice::Prepare(1));
        let a = run(&mut p, t0);
        assert_eq!(a.mirror, 0);
        p.done(a, 1_000_000, Duration::from_millis(100));
        p.ready(1);
        assert_eq!(run(&mut p, t0).mirror, 1, "not measured yet: counts as fastest");
    }

    #[test]
    fn a_failing_mirror_rests_and_comes_back() {
        let t0 = Instant::now();
        let mut p = Policy::new(2, false);
        assert_eq!(p.choose(t0, true), Choice::Prepare(1));
        p.ready(1);
        let a = run(&mut p, t0);
        let b = run(&mut p, t0);
        assert_eq!((a.mirror, b.mirror), (0, 1));
        p.done(a, 1_000_000, Duration::from_millis(100));
        p.failed(b, t0);
        // Mirror 1 rests 1 s: every run goes to 0, even with several in flight.
        for _ in 0..3 {
            assert_eq!(run(&mut p, t0 + Duration::from_millis(500)).mirror, 0);
        }
        assert!(p.resting(1, t0 + Duration::from_millis(999)));
        assert!(!p.resting(1, t0 + Duration::from_millis(1000)));
        let back = run(&mut p, t0 + Duration::from_millis(1000));
        assert_eq!(back.mirror, 1, "rest over, and mirror 0 has runs in flight");
        // Failing again doubles the rest; a success ends the streak.
        p.failed(back, t0 + Duration::from_secs(1));
        assert!(p.resting(1, t0 + Duration::from_millis(2999)));
        assert!(!p.resting(1, t0 + Duration::from_secs(3)));
        let again = run(&mut p, t0 + Duration::from_secs(3));
        assert_eq!(again.mirror, 1);
        p.done(again, 1_000_000, Duration::from_millis(100));
        let t = run(&mut p, t0 + Duration::from_secs(4));
        p.failed(t, t0 + Duration::from_secs(4));
        assert!(!p.resting(t.mirror, t0 + Duration::from_secs(5)), "streak restarted at 1 s");
    }

    #[test]
    fn rests_double_up_to_a_cap() {
        let t0 = Instant::now();
        let mut p = Policy::new(1, false);
        let mut now = t0;
        for want in [1, 2, 4, 8, 16, 30, 30] {
            let t = run(&mut p, now);
            p.failed(t, now);
            assert!(p.resting(0, now + Duration::from_millis(want * 1000 - 1)), "rest {want} s");
            now += Duration::from_secs(want);
            assert!(!p.resting(0, now));
        }
    }

    #[test]
    fn a_lone_origin_is_used_even_while_it_rests() {
        let t0 = Instant::now();
        let mut p = Policy::new(1, false);
        let t = run(&mut p, t0);
        p.failed(t, t0);
        assert_eq!(run(&mut p, t0).mirror, 0);
    }

    #[test]
    fn refused_mirrors_get_nothing_and_none_left_ends_the_pull() {
        let t0 = Instant::now();
        let mut p = Policy::new(2, false);
        assert_eq!(p.choose(t0, true), Choice::Prepare(1));
        p.refuse(1);
        p.ready(1);
        assert_eq!(p.stage(1), Stage::Refused, "ready after refused stays refused");
        for _ in 0..4 {
            assert_eq!(run(&mut p, t0).mirror, 0);
        }
        p.refuse(0);
        assert_eq!(p.choose(t0, true), Choice::NoneLeft);
    }

    #[test]
    fn a_mirror_being_prepared_is_handed_out_once() {
        let t0 = Instant::now();
        let mut p = Policy::new(3, false);
        assert_eq!(p.choose(t0, true), Choice::Prepare(1));
        assert_eq!(p.choose(t0, true), Choice::Prepare(2));
        assert_eq!(run(&mut p, t0).mirror, 0);
        // A probe that cannot reach the mirror: it rests, then is prepared again.
        p.prepare_failed(2, t0);
        assert_eq!(p.stage(2), Stage::Unready);
        assert_eq!(run(&mut p, t0 + Duration::from_millis(10)).mirror, 0);
        assert_eq!(p.choose(t0 + Duration::from_secs(1), true), Choice::Prepare(2));
    }

    #[test]
    fn nothing_ready_but_mirrors_preparing_means_wait() {
        let t0 = Instant::now();
        let mut p = Policy::new(2, false);
        p.refuse(0);
        assert_eq!(p.choose(t0, true), Choice::Prepare(1));
        assert_eq!(p.choose(t0, true), Choice::Wait);
        p.ready(1);
        assert_eq!(run(&mut p, t0).mirror, 1);
    }

    #[test]
    fn url_only_mirrors_wait_for_a_landed_piece_and_are_spot_checked() {
        let t0 = Instant::now();
        let mut p = Policy::new(2, true);
        match p.choose(t0, false) {
            Choice::Run(t) => assert_eq!(t.mirror, 0, "nothing landed: no vetting yet"),
            c => panic!("{c:?}"),
        }
        assert_eq!(p.choose(t0, true), Choice::Prepare(1));
        p.ready(1);
        let mut checks = 0;
        let mut on_1 = 0;
        for _ in 0..32 {
            // Two runs in flight at a time: one on each mirror.
            let pair = [run(&mut p, t0), run(&mut p, t0)];
            for t in pair {
                if t.mirror == 1 {
                    on_1 += 1;
                    checks += u32::from(t.spot_check);
                } else {
                    assert!(!t.spot_check, "the primary is not spot-checked");
                }
                p.done(t, 1_000_000, Duration::from_millis(100));
            }
        }
        assert!(on_1 >= SPOT_CHECK_EVERY, "{on_1}");
        assert_eq!(checks, on_1 / SPOT_CHECK_EVERY);
    }

    #[test]
    fn hash_known_mirrors_are_never_spot_checked() {
        let t0 = Instant::now();
        let mut p = Policy::new(2, false);
        assert_eq!(p.choose(t0, false), Choice::Prepare(1), "no vetting: no need for a landed piece");
        p.ready(1);
        for _ in 0..40 {
            let t = run(&mut p, t0);
            assert!(!t.spot_check);
            p.done(t, 1_000, Duration::from_millis(1));
        }
    }
}
