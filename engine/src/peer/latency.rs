//! [`RequestLatency`]: how long a peer takes from our request to its block, and the request
//! timeout that follows from it.

use std::time::Duration;

/// A smoothed request-to-block latency and its mean deviation, as TCP estimates a round-trip
/// time (RFC 6298: gains 1/8 and 1/4). The request timeout is the mean plus four deviations, as
/// libtorrent sizes its per-peer request timeout: a peer that answers in 200 ms is given up on
/// after a second or two of silence, not after a fixed half minute while the last pieces wait.
#[derive(Clone, Debug, Default)]
pub struct RequestLatency {
    /// Smoothed latency, seconds.
    mean: f64,
    /// Smoothed mean deviation, seconds.
    deviation: f64,
    samples: u64,
}

impl RequestLatency {
    /// Records the time one request took to be answered.
    pub fn sample(&mut self, latency: Duration) {
        let r = latency.as_secs_f64();
        if self.samples == 0 {
            self.mean = r;
            self.deviation = r / 2.0;
        } else {
            self.deviation += ((self.mean - r).abs() - self.deviation) / 4.0;
            self.mean += (r - self.mean) / 8.0;
        }
        self.samples += 1;
    }

    /// How many requests were answered so far.
    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// The smoothed latency (zero before the first sample).
    pub fn mean(&self) -> Duration {
        Duration::try_from_secs_f64(self.mean).unwrap_or(Duration::MAX)
    }

    /// The request timeout: mean plus four deviations, within `[min, max]`; `max` before any
    /// request was answered (nothing is known about the peer yet).
    pub fn timeout(&self, min: Duration, max: Duration) -> Duration {
        if self.samples == 0 {
            return max.max(min);
        }
        // Samples are durations, so this is finite and non-negative; a huge one saturates.
        Duration::try_from_secs_f64(self.mean + 4.0 * self.deviation).unwrap_or(max).clamp(min, max.max(min))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(2);
    const MAX: Duration = Duration::from_secs(30);

    #[test]
    fn unknown_peer_gets_the_longest_timeout() {
        assert_eq!(RequestLatency::default().timeout(MIN, MAX), MAX);
    }

    #[test]
    fn steady_peer_converges_to_its_latency_with_room() {
        let mut l = RequestLatency::default();
        for _ in 0..100 {
            l.sample(Duration::from_millis(3500));
        }
        assert!((l.mean().as_secs_f64() - 3.5).abs() < 0.01, "{:?}", l.mean());
        let t = l.timeout(MIN, MAX);
        assert!(t >= Duration::from_millis(3500) && t < Duration::from_millis(3700), "{t:?}");
    }

    #[test]
    fn fast_peer_is_held_to_the_minimum_and_jitter_widens_the_timeout() {
        let mut fast = RequestLatency::default();
        for _ in 0..50 {
            fast.sample(Duration::from_millis(20));
        }
        assert_eq!(fast.timeout(MIN, MAX), MIN);
        let mut jittery = RequestLatency::default();
        for i in 0..200 {
            jittery.sample(Duration::from_millis(if i % 2 == 0 { 500 } else { 4500 }));
        }
        let t = jittery.timeout(MIN, MAX);
        assert!(t > Duration::from_secs(8) && t < MAX, "{t:?}");
    }

    #[test]
    fn a_huge_latency_is_capped() {
        let mut l = RequestLatency::default();
        l.sample(Duration::from_secs(600));
        assert_eq!(l.timeout(MIN, MAX), MAX);
        l.sample(Duration::MAX);
        assert_eq!(l.timeout(MIN, MAX), MAX);
        assert!(l.mean() > Duration::from_secs(1 << 40), "no panic, no wrap: {:?}", l.mean());
    }
}
