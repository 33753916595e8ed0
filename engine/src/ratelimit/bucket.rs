//! One lock-free token bucket (GCRA form).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const NANOS: u128 = 1_000_000_000;

/// A token bucket of `rate` bytes/s holding at most `burst` bytes, shared by many connections.
///
/// It is the GCRA form of a token bucket: the whole state is one `AtomicU64`, the "theoretical
/// arrival time" (TAT, nanoseconds since the bucket's epoch) at which the bucket would be full
/// again. Taking `n` bytes moves the TAT forward by `n / rate` seconds if that keeps it within
/// `burst / rate` of `now`. So every operation is one load and one CAS, with no lock and no
/// separate refill step: that is why it is lock-free rather than a `parking_lot` mutex around
/// `(tokens, last_refill)`, which would serialize every connection of every thread on one
/// lock. Rate `0` means unlimited: one relaxed load, nothing written.
///
/// Time is passed in (`now`), never read: tests drive it by hand. A rate or burst change
/// applies to later calls; bytes already taken stay accounted at the rate they were taken at.
/// Costs round up to the nanosecond, so at rates above ~1 GB/s tiny takes are slightly
/// over-charged.
#[derive(Debug)]
pub struct TokenBucket {
    epoch: Instant,
    tat: AtomicU64,
    rate: AtomicU64,
    burst: AtomicU64,
}

impl TokenBucket {
    /// A full bucket of `rate` bytes/s and `burst` bytes (`rate` 0: unlimited); `now` is its epoch.
    pub fn new(rate: u64, burst: u64, now: Instant) -> Self {
        TokenBucket {
            epoch: now,
            tat: AtomicU64::new(0),
            rate: AtomicU64::new(rate),
            burst: AtomicU64::new(burst),
        }
    }

    /// A bucket that never limits.
    pub fn unlimited(now: Instant) -> Self {
        Self::new(0, 0, now)
    }

    /// Changes rate and burst at run time (`rate` 0: unlimited).
    pub fn set_rate(&self, rate: u64, burst: u64) {
        self.burst.store(burst, Ordering::Relaxed);
        self.rate.store(rate, Ordering::Release);
    }

    /// The rate in bytes/s (0: unlimited).
    pub fn rate(&self) -> u64 {
        self.rate.load(Ordering::Relaxed)
    }

    /// The burst in bytes.
    pub fn burst(&self) -> u64 {
        self.burst.load(Ordering::Relaxed)
    }

    fn nanos(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_nanos().min(u128::from(u64::MAX / 2)) as u64
    }

    /// Nanoseconds `n` bytes take at `rate`, rounded up.
    fn cost(n: u64, rate: u64) -> u64 {
        (u128::from(n) * NANOS).div_ceil(u128::from(rate)).min(u128::from(u64::MAX / 4)) as u64
    }

    /// Takes `n` bytes if the bucket holds them; all or nothing.
    pub fn try_take(&self, n: u64, now: Instant) -> bool {
        let rate = self.rate.load(Ordering::Acquire);
        if rate == 0 {
            return true;
        }
        let burst = self.burst.load(Ordering::Relaxed);
        if n > burst {
            return false;
        }
        let (now, cost, tau) = (self.nanos(now), Self::cost(n, rate), Self::cost(burst, rate));
        self.tat
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |tat| {
                let new = tat.max(now).saturating_add(cost);
                (new <= now.saturating_add(tau)).then_some(new)
            })
            .is_ok()
    }

    /// Takes as many of `n` bytes as the bucket holds; returns how many were granted.
    pub fn take_up_to(&self, n: u64, now: Instant) -> u64 {
        let rate = self.rate.load(Ordering::Acquire);
        if rate == 0 {
            return n;
        }
        let burst = self.burst.load(Ordering::Relaxed);
        let (now, tau) = (self.nanos(now), Self::cost(burst, rate));
        let mut granted = 0;
        let _ = self.tat.fetch_update(Ordering::AcqRel, Ordering::Acquire, |tat| {
            let base = tat.max(now);
            let room = now.saturating_add(tau).saturating_sub(base);
            let avail = (u128::from(room) * u128::from(rate) / NANOS).min(u128::from(u64::MAX)) as u64;
            granted = n.min(avail);
            (granted > 0).then(|| base + Self::cost(granted, rate))
        });
        granted
    }

    /// How long until `n` bytes can be taken: zero if now, `None` if never (`n > burst`).
    pub fn time_until(&self, n: u64, now: Instant) -> Option<Duration> {
        let rate = self.rate.load(Ordering::Acquire);
        if rate == 0 {
            return Some(Duration::ZERO);
        }
        let burst = self.burst.load(Ordering::Relaxed);
        if n > burst {
            return None;
        }
        let now = self.nanos(now);
        let base = self.tat.load(Ordering::Acquire).max(now);
        let ready = base.saturating_add(Self::cost(n, rate)).saturating_sub(Self::cost(burst, rate));
        Some(Duration::from_nanos(ready.saturating_sub(now)))
    }

    /// Gives back `n` bytes taken earlier and not used (e.g. a parent bucket refused them).
    pub fn refund(&self, n: u64) {
        let rate = self.rate.load(Ordering::Acquire);
        if rate == 0 || n == 0 {
            return;
        }
        let cost = Self::cost(n, rate);
        let _ =
            self.tat.fetch_update(Ordering::AcqRel, Ordering::Acquire, |tat| Some(tat.saturating_sub(cost)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn starts_full_then_refills_at_rate() {
        let t0 = Instant::now();
        let b = TokenBucket::new(1000, 500, t0);
        assert!(b.try_take(500, t0));
        assert!(!b.try_take(1, t0));
        assert_eq!(b.time_until(100, t0), Some(100 * MS));
        assert!(!b.try_take(100, t0 + 99 * MS));
        assert!(b.try_take(100, t0 + 100 * MS));
        assert_eq!(b.take_up_to(1000, t0 + 10_000 * MS), 500, "never more than burst");
        assert_eq!(b.time_until(501, t0), None);
        assert!(!b.try_take(501, t0 + 10_000_000 * MS));
    }

    #[test]
    fn accurate_over_simulated_time() {
        // 1 MB/s, 64 KiB burst, 16 KiB requests every 1 ms for 10 simulated seconds.
        let t0 = Instant::now();
        let b = TokenBucket::new(1_000_000, 65_536, t0);
        let mut total = 0u64;
        for ms in 0..10_000u64 {
            let now = t0 + Duration::from_millis(ms);
            while b.try_take(16_384, now) {
                total += 16_384;
            }
        }
        let expected = 1_000_000 * 10 + 65_536; // rate x time + initial burst
        assert!(total <= expected && total + 16_384 >= expected - 16_384, "total {total}");
    }

    #[test]
    fn take_up_to_grants_partial_and_unlimited_is_free() {
        let t0 = Instant::now();
        let b = TokenBucket::new(1000, 1000, t0);
        assert_eq!(b.take_up_to(600, t0), 600);
        assert_eq!(b.take_up_to(600, t0), 400);
        assert_eq!(b.take_up_to(600, t0), 0);
        assert_eq!(b.take_up_to(600, t0 + 250 * MS), 250);
        let u = TokenBucket::unlimited(t0);
        assert!(u.try_take(u64::MAX, t0));
        assert_eq!(u.take_up_to(u64::MAX, t0), u64::MAX);
        assert_eq!(u.time_until(u64::MAX, t0), Some(Duration::ZERO));
    }

    #[test]
    fn rate_change_and_refund() {
        let t0 = Instant::now();
        let b = TokenBucket::new(1000, 1000, t0);
        assert!(b.try_take(1000, t0));
        b.refund(400);
        assert_eq!(b.take_up_to(1000, t0), 400);
        b.set_rate(0, 0);
        assert!(b.try_take(1 << 40, t0));
        b.set_rate(10_000, 100);
        // Debt from the old rate: TAT is 1 s ahead; the new burst window is 10 ms.
        assert_eq!(b.time_until(1, t0), Some(Duration::from_nanos(1_000_000_000 - 10_000_000 + 100_000)));
        assert!(!b.try_take(1, t0 + 989 * MS));
        assert!(b.try_take(100, t0 + 2000 * MS));
    }

    #[test]
    fn shared_by_threads_never_over_grants() {
        let t0 = Instant::now();
        let b = TokenBucket::new(1_000_000, 100_000, t0);
        let granted = std::sync::atomic::AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for ms in 0..200u64 {
                        let g = b.take_up_to(1000, t0 + Duration::from_millis(ms));
                        granted.fetch_add(g, Ordering::Relaxed);
                    }
                });
            }
        });
        // Within 200 ms: the 100 kB burst plus at most 200 kB of refill.
        assert!(granted.load(Ordering::Relaxed) <= 300_000);
    }
}
