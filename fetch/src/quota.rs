//! How much of a source one fetch may use right now: connections, bytes/s and a byte
//! allowance. Standalone relays fix it from flags; in ctl mode the relay's lease keeper sets it
//! from each granted lease and pauses it when a lease lapses; the client's gap-filler paces
//! HTTP with it.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use floodgate_engine::ratelimit::TokenBucket;
use tokio::sync::Notify;

/// Allowance meaning "no byte limit".
const UNLIMITED: u64 = u64::MAX;

/// The budget shared by one fetch's workers (one pull, or one client's gap-filling).
#[derive(Debug)]
pub struct Quota {
    bucket: TokenBucket,
    /// Workers `0..conns` may hold a connection; the others wait.
    conns: AtomicUsize,
    /// Bytes this pull may take in total (`UNLIMITED` for no limit).
    allowance: AtomicU64,
    /// Bytes taken so far.
    used: AtomicU64,
    /// Wakes waiting workers when the grant changes.
    changed: Notify,
    /// Wakes the lease keeper when the allowance ran out.
    starved: Notify,
    /// Moving average of the source's time to response head, microseconds (0 = none yet).
    latency_us: AtomicU64,
}

/// Burst of a bucket at `rate`: a quarter second, at least 64 KiB.
fn burst(rate: u64) -> u64 {
    (rate / 4).max(64 * 1024)
}

impl Quota {
    /// A fixed budget: `rate` bytes/s (0 = unlimited), `conns` connections, no byte limit.
    pub fn fixed(rate: u64, conns: usize) -> Self {
        Quota {
            bucket: TokenBucket::new(rate, burst(rate), Instant::now()),
            conns: AtomicUsize::new(conns),
            allowance: AtomicU64::new(UNLIMITED),
            used: AtomicU64::new(0),
            changed: Notify::new(),
            starved: Notify::new(),
            latency_us: AtomicU64::new(0),
        }
    }

    /// A budget of nothing until [`Quota::grant`] is called (a relay waiting for its lease).
    pub fn paused() -> Self {
        let q = Self::fixed(0, 0);
        q.allowance.store(0, Ordering::Relaxed);
        q
    }

    /// Applies a grant: `conns` connections, `rate` bytes/s (`None` = unlimited) and a total
    /// allowance of `bytes` (`None` = unlimited), counted from the start of this quota.
    pub fn grant(&self, conns: usize, rate: Option<u64>, bytes: Option<u64>) {
        let rate = rate.map_or(0, |r| r.max(1));
        self.bucket.set_rate(rate, burst(rate));
        self.allowance.store(bytes.unwrap_or(UNLIMITED), Ordering::Release);
        self.conns.store(conns, Ordering::Release);
        self.changed.notify_waiters();
    }

    /// Stops all use until the next grant (a lease lapsed or was refused).
    pub fn pause(&self) {
        self.conns.store(0, Ordering::Release);
        self.allowance.store(self.used(), Ordering::Release);
        self.changed.notify_waiters();
    }

    /// Connections currently allowed.
    pub fn conns(&self) -> usize {
        self.conns.load(Ordering::Acquire)
    }

    /// Bytes taken so far.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Acquire)
    }

    /// Bytes left in the allowance (`None` = unlimited).
    pub fn left(&self) -> Option<u64> {
        match self.allowance.load(Ordering::Acquire) {
            UNLIMITED => None,
            a => Some(a.saturating_sub(self.used())),
        }
    }

    /// Waits until worker `worker` may hold a connection.
    pub async fn wait_turn(&self, worker: usize) {
        loop {
            let changed = self.changed.notified();
            if worker < self.conns() {
                return;
            }
            // Re-check periodically as well: a grant between the check and the wait is seen.
            let _ = tokio::time::timeout(Duration::from_millis(500), changed).await;
        }
    }

    /// Whether worker `worker` is still within the allowed connections.
    pub fn may_run(&self, worker: usize) -> bool {
        worker < self.conns()
    }

    /// Waits for up to `want` bytes of budget (rate and allowance); returns how many (≥ 1).
    pub async fn take(&self, want: u64) -> u64 {
        loop {
            let changed = self.changed.notified();
            let got = self.take_allowance(want);
            if got == 0 {
                self.starved.notify_one();
                let _ = tokio::time::timeout(Duration::from_millis(500), changed).await;
                continue;
            }
            let tokens = self.bucket.take_up_to(got, Instant::now());
            if tokens < got {
                self.used.fetch_sub(got - tokens, Ordering::AcqRel);
            }
            if tokens > 0 {
                return tokens;
            }
            let wait = self.bucket.time_until(got.min(self.bucket.burst()), Instant::now());
            let wait = wait
                .unwrap_or(Duration::from_millis(10))
                .clamp(Duration::from_millis(1), Duration::from_millis(200));
            let _ = tokio::time::timeout(wait, changed).await;
        }
    }

    /// Takes up to `want` bytes of the allowance; returns how many.
    fn take_allowance(&self, want: u64) -> u64 {
        let mut got = 0;
        let _ = self.used.fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
            let allowance = self.allowance.load(Ordering::Acquire);
            got = want.min(allowance.saturating_sub(used));
            (got > 0).then_some(used + got)
        });
        got
    }

    /// Gives back bytes taken with [`Quota::take`] and not used.
    pub fn refund(&self, n: u64) {
        if n == 0 {
            return;
        }
        self.bucket.refund(n);
        self.used.fetch_sub(n.min(self.used()), Ordering::AcqRel);
    }

    /// Records one response time (time to the response head).
    pub fn record_latency(&self, took: Duration) {
        let sample = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
        let _ = self.latency_us.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |avg| {
            Some(if avg == 0 { sample } else { (avg * 7 + sample) / 8 })
        });
    }

    /// The moving average of origin response times (`None` before the first response).
    pub fn latency(&self) -> Option<Duration> {
        match self.latency_us.load(Ordering::Relaxed) {
            0 => None,
            us => Some(Duration::from_micros(us)),
        }
    }

    /// Waits until a worker found the allowance empty.
    pub async fn starved(&self) {
        self.starved.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn allowance_bounds_what_workers_take() {
        let q = Quota::fixed(0, 2);
        q.grant(2, None, Some(100_000));
        assert_eq!(q.take(64 * 1024).await, 64 * 1024);
        assert_eq!(q.take(64 * 1024).await, 100_000 - 64 * 1024);
        assert_eq!(q.left(), Some(0));
        // Empty: a taker waits until a renewal grows the allowance.
        let waiting = tokio::time::timeout(Duration::from_millis(100), q.take(10)).await;
        assert!(waiting.is_err());
        q.grant(2, None, Some(100_010));
        assert_eq!(q.take(64 * 1024).await, 10);
        q.refund(4);
        assert_eq!(q.used(), 100_006);
    }

    #[tokio::test]
    async fn paused_quota_holds_workers_until_granted() {
        let q = std::sync::Arc::new(Quota::paused());
        assert!(!q.may_run(0));
        let q2 = q.clone();
        let waiter = tokio::spawn(async move { q2.wait_turn(1).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished());
        q.grant(2, Some(1_000_000), None);
        tokio::time::timeout(Duration::from_secs(2), waiter).await.expect("woken").expect("joined");
        assert!(q.may_run(1) && !q.may_run(2));
        q.pause();
        assert_eq!(q.conns(), 0);
        assert_eq!(q.left(), Some(0));
    }

    #[tokio::test]
    async fn rate_limits_the_pace() {
        let q = Quota::fixed(0, 1);
        q.grant(1, Some(1_000_000), None);
        let start = Instant::now();
        let mut got = 0;
        while got < 750_000 {
            got += q.take(64 * 1024).await;
        }
        // Burst 250 kB, then 500 kB at 1 MB/s: about half a second.
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(400), "took {took:?}");
        assert!(took < Duration::from_secs(3), "took {took:?}");
    }
}
