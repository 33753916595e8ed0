//! The origin's leases as ctl grants them, with ctl's own `compute_grant` and `weight`.
//!
//! One limits row (global): connections, rate (the origin cap) and bytes (the quota, a window
//! as long as the run). A relay acquires a lease wanting its pull connections, a fair rate
//! (0) and the bytes it still needs; a refusal (any dimension 0, ctl's `Exhausted`) is retried
//! after one TTL. Holders renew at TTL/3 asking only for bytes beyond their allowance; a relay
//! that finishes releases its lease. What other leases use is kept as running sums, so a grant
//! costs O(1) however many relays there are.

use crate::ctl::leases::{compute_grant, weight, Dim, GrantInput};
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
    /// Refused acquisitions (ctl's `Exhausted`).
    pub refusals: u64,
}

impl LeaseBook {
    /// Limits `[conns, rate, bytes]` (-1: none) for `relays` (ctl's rows, in rank order).
    pub fn new(limits: [i64; 3], relays: &[RelayRow], ttl: f64, want_conns: i64) -> Self {
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
            want: [self.want_conns, 0, want_bytes],
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
                let [conns, rate, bytes] = compute_grant(&self.input(i, needed.max(1)));
                if conns == 0 || rate == 0 || bytes == 0 {
                    self.refusals += 1;
                    self.next[i] = now + self.ttl;
                    return false;
                }
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

    /// Relay `i` is done with the origin: its lease ends.
    pub fn release(&mut self, i: usize) {
        self.set(i, None);
        self.next[i] = f64::INFINITY;
    }
}
