//! The origin's leases as ctl grants them, with ctl's own `compute_grant` and `weight`; and a
//! what-if policy that ctl does not have ([`LeasePolicy::MakeRoom`], built on ctl's `shrink`).
//!
//! One limits row (global): connections, rate (the origin cap) and bytes (the quota, a window
//! as long as the run). A relay acquires a lease wanting its pull connections, a fair rate
//! (0) and the bytes it still needs; a refusal (any dimension 0, ctl's `Exhausted`) is retried
//! as the relay's lease keeper does (`relay/src/lease.rs`): after 0.1 s, doubling up to 5 s.
//! Holders renew at TTL/3 asking only for bytes beyond their allowance; a relay that finishes
//! releases its lease. What other leases use is kept as running sums, so a grant costs O(1)
//! however many relays there are ([`LeasePolicy::Holders`]); making room costs O(relays).

use crate::ctl::leases::{compute_grant, shrink, weight, Dim, GrantInput};

/// How a new lease's rate is found when the live leases already hold the origin's rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeasePolicy {
    /// `compute_grant` alone: the share counts only relays already holding leases, so the
    /// first relay gets the whole rate and later ones are refused until it lets go.
    Holders,
    /// What-if, not ctl's: `compute_grant`, then [`make_room`] on the rate: each new relay takes
    /// its weighted share and the holders are cut to fit with ctl's `shrink` (they learn it at
    /// once, as after `set_limits`). Measured worse at 10^4 clients (BENCHMARKS.md).
    MakeRoom,
}

/// First wait after a refusal, seconds (the relay's keeper; it doubles up to `MAX_BACKOFF`).
const MIN_BACKOFF: f64 = 0.1;
/// Longest wait after a refusal, seconds.
const MAX_BACKOFF: f64 = 5.0;
use crate::ctl::relay_row::RelayRow;

/// One relay's live lease.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Lease {
    /// Connections granted (-1: unlimited).
    pub conns: i64,
    /// Rate granted, bytes/s (-1: unlimited).
    pub rate: i64,
    /// Bytes the relay may pull in all (the sum of its grants).
    pub allowance: i64,
    /// ctl's weight for it.
    pub weight: f64,
}

/// The leases of every relay and the global limits.
#[derive(Debug)]
pub struct LeaseBook {
    limits: [i64; 3],
    window_granted: i64,
    leases: Vec<Option<Lease>>,
    weights: Vec<f64>,
    /// Next acquire attempt or renewal, virtual seconds.
    pub next: Vec<f64>,
    sum_conns: i64,
    sum_rate: i64,
    sum_weight: f64,
    ttl: f64,
    want_conns: i64,
    want_rate: i64,
    backoff: Vec<f64>,
    policy: LeasePolicy,
    /// Refused acquisitions (ctl's `Exhausted`).
    pub refusals: u64,
}

impl LeaseBook {
    /// Limits `[conns, rate, bytes]` (-1: none) for `relays` (ctl's rows, in rank order); each
    /// relay asks for `want_conns` connections and `want_rate` bytes/s (0: as much as fair).
    pub fn new(
        limits: [i64; 3],
        relays: &[RelayRow],
        ttl: f64,
        [want_conns, want_rate]: [i64; 2],
        policy: LeasePolicy,
    ) -> Self {
        LeaseBook {
            limits,
            window_granted: 0,
            leases: vec![None; relays.len()],
            weights: relays.iter().map(|r| weight(Some(r), 0)).collect(),
            next: vec![0.0; relays.len()],
            sum_conns: 0,
            sum_rate: 0,
            sum_weight: 0.0,
            ttl,
            want_conns,
            want_rate,
            backoff: vec![MIN_BACKOFF; relays.len()],
            policy,
            refusals: 0,
        }
    }

    /// Relay `i`'s lease.
    pub fn lease(&self, i: usize) -> Option<Lease> {
        self.leases[i]
    }

    /// Bytes granted so far in the window (all relays).
    pub fn granted(&self) -> i64 {
        self.window_granted
    }

    fn input(&self, i: usize, want_bytes: i64) -> GrantInput {
        let own = self.leases[i];
        let (oc, or, ow) = own.map_or((0, 0, 0.0), |l| (l.conns.max(0), l.rate.max(0), l.weight));
        let others_w = (self.sum_weight - ow).max(0.0);
        let dim = |limit: i64, used: i64| Dim { limit, used, others_weight: others_w };
        GrantInput {
            want: [self.want_conns, self.want_rate, want_bytes],
            rows: vec![[
                dim(self.limits[0], self.sum_conns - oc),
                dim(self.limits[1], self.sum_rate - or),
                dim(self.limits[2], self.window_granted),
            ]],
            weight: self.weights[i],
            holds_other: false,
        }
    }

    fn set(&mut self, i: usize, lease: Option<Lease>) {
        if let Some(old) = self.leases[i] {
            self.sum_conns -= old.conns.max(0);
            self.sum_rate -= old.rate.max(0);
            self.sum_weight -= old.weight;
        }
        if let Some(new) = lease {
            self.sum_conns += new.conns.max(0);
            self.sum_rate += new.rate.max(0);
            self.sum_weight += new.weight;
        }
        self.leases[i] = lease;
    }

    /// At `now`: relay `i`, which still needs `needed` bytes from the origin, acquires or
    /// renews if due. Returns true when its lease changed.
    pub fn tick(&mut self, i: usize, now: f64, needed: i64) -> bool {
        if now < self.next[i] {
            return false;
        }
        match self.leases[i] {
            None => {
                let [conns, mut rate, bytes] = compute_grant(&self.input(i, needed.max(1)));
                if self.policy == LeasePolicy::MakeRoom && conns != 0 && bytes != 0 && self.limits[1] >= 0 {
                    rate = self.make_room(i);
                }
                if conns == 0 || rate == 0 || bytes == 0 {
                    self.refusals += 1;
                    self.next[i] = now + self.backoff[i];
                    self.backoff[i] = (self.backoff[i] * 2.0).min(MAX_BACKOFF);
                    return false;
                }
                self.backoff[i] = MIN_BACKOFF;
                self.window_granted += bytes.max(0);
                let lease = Lease { conns, rate, allowance: bytes, weight: self.weights[i] };
                self.set(i, Some(lease));
                self.next[i] = now + self.ttl / 3.0;
                true
            }
            Some(old) => {
                let more = (needed - old.allowance).max(0);
                let [conns, rate, bytes] = compute_grant(&self.input(i, more));
                // A renewal asking for no more bytes gets none (compute_grant reads 0 as "fair").
                let bytes = if more == 0 { 0 } else { bytes.max(0) };
                self.window_granted += bytes;
                let lease = Lease { conns, rate, allowance: old.allowance + bytes, weight: old.weight };
                self.set(i, Some(lease));
                self.next[i] = now + self.ttl / 3.0;
                lease != old
            }
        }
    }

    /// [`make_room`] on the rate for relay `i` (holding no lease): cuts the holders' rates
    /// and returns the newcomer's.
    fn make_room(&mut self, i: usize) -> i64 {
        let holders: Vec<usize> = (0..self.leases.len()).filter(|&k| self.leases[k].is_some()).collect();
        let live: Vec<(i64, f64)> =
            holders.iter().filter_map(|&k| self.leases[k].map(|l| (l.rate, l.weight))).collect();
        let (rate, cut) = make_room(self.limits[1], self.want_rate, self.weights[i], &live);
        for (&k, new) in holders.iter().zip(cut) {
            if let Some(l) = self.leases[k] {
                if l.rate != new {
                    self.set(k, Some(Lease { rate: new, ..l }));
                }
            }
        }
        rate
    }

    /// Relay `i` is done with the origin: its lease ends.
    pub fn release(&mut self, i: usize) {
        self.set(i, None);
        self.next[i] = f64::INFINITY;
    }
}

/// Makes room under one limited dimension for a new lease: the newcomer's share is its weighted
/// part of the limit, `floor(limit × w / (Σw + w))` (at least 1 when the limit is positive), or
/// `want` if less (`want <= 0`: as much as fair); the live grants (`live`: grant, weight; -1 =
/// unlimited) are cut with ctl's [`shrink`] to fit `limit - share`, and the newcomer gets what is
/// left, at most its share. Returns the newcomer's grant and the live grants' new values. Live
/// grants are never raised and the new sum never exceeds `limit`; `limit < 0` changes nothing.
pub fn make_room(limit: i64, want: i64, weight: f64, live: &[(i64, f64)]) -> (i64, Vec<i64>) {
    if limit < 0 {
        return (-1, live.iter().map(|&(g, _)| g).collect());
    }
    let w = weight.max(1e-6);
    let total: f64 = live.iter().map(|&(_, x)| x.max(1e-6)).sum::<f64>() + w;
    let mut share = ((limit as f64 * w / total).floor() as i64).clamp(limit.min(1), limit);
    if want > 0 {
        share = share.min(want);
    }
    let cut = shrink(limit - share, live);
    let used: i64 = cut.iter().map(|&g| g.max(0)).sum();
    ((limit - used).clamp(0, share), cut)
}
