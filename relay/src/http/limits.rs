//! Per-IP limits: connections held at once and requests per second.
//!
//! An address's request bucket outlives its connections by [`FORGET_AFTER`] (longer than a
//! bucket takes to refill), so a client that opens a new connection for every request is
//! limited like one that keeps a connection alive. Idle entries are pruned at most once a second
//! once there are more than [`PRUNE_ABOVE`] of them, which bounds the table by the addresses
//! seen in the last few seconds.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use floodgate_engine::ratelimit::TokenBucket;
use parking_lot::Mutex;

/// How long an address without connections keeps its request bucket.
const FORGET_AFTER: Duration = Duration::from_secs(2);
/// Entries kept before idle ones are pruned.
const PRUNE_ABOVE: usize = 256;

struct PerIp {
    conns: usize,
    requests: TokenBucket,
    /// When the last connection closed (meaningful while `conns == 0`).
    idle_since: Instant,
}

struct Table {
    ips: HashMap<IpAddr, PerIp>,
    next_prune: Instant,
}

/// Connection and request-rate limits per client address.
pub(super) struct PerIpLimits {
    conns: usize,
    rate: u64,
    table: Mutex<Table>,
}

impl PerIpLimits {
    /// At most `conns` connections and `rate` requests per second (burst the same; 0 = no
    /// request limit) per address.
    pub(super) fn new(conns: usize, rate: u64) -> Self {
        let table = Table { ips: HashMap::new(), next_prune: Instant::now() };
        PerIpLimits { conns, rate, table: Mutex::new(table) }
    }

    /// Counts a new connection from `ip`; false if `ip` holds its limit already.
    pub(super) fn admit(&self, ip: IpAddr) -> bool {
        let now = Instant::now();
        let mut t = self.table.lock();
        if t.ips.len() > PRUNE_ABOVE && now >= t.next_prune {
            t.ips.retain(|_, e| e.conns > 0 || now.duration_since(e.idle_since) < FORGET_AFTER);
            t.next_prune = now + Duration::from_secs(1);
        }
        let rate = self.rate;
        let e = t.ips.entry(ip).or_insert_with(|| PerIp {
            conns: 0,
            requests: TokenBucket::new(rate, rate, now),
            idle_since: now,
        });
        if e.conns >= self.conns {
            return false;
        }
        e.conns += 1;
        true
    }

    /// Counts a closed connection from `ip`.
    pub(super) fn leave(&self, ip: IpAddr) {
        if let Some(e) = self.table.lock().ips.get_mut(&ip) {
            e.conns = e.conns.saturating_sub(1);
            if e.conns == 0 {
                e.idle_since = Instant::now();
            }
        }
    }

    /// Whether `ip` may make one more request now (takes a token).
    pub(super) fn allow_request(&self, ip: IpAddr) -> bool {
        if self.rate == 0 {
            return true;
        }
        self.table.lock().ips.get(&ip).is_none_or(|e| e.requests.try_take(1, Instant::now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn connections_per_address() {
        let l = PerIpLimits::new(2, 0);
        assert!(l.admit(A) && l.admit(A));
        assert!(!l.admit(A), "a third connection from A");
        assert!(l.admit(B), "B has its own count");
        l.leave(A);
        assert!(l.admit(A), "a slot freed by a closed connection");
    }

    #[test]
    fn the_request_budget_survives_reconnecting() {
        let l = PerIpLimits::new(8, 3);
        let mut allowed = 0;
        for _ in 0..10 {
            assert!(l.admit(A));
            allowed += usize::from(l.allow_request(A));
            l.leave(A);
        }
        assert!((3..=4).contains(&allowed), "one request per connection still spends the budget: {allowed}");
    }
}
