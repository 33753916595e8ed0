//! A transfer-rate estimate over a short sliding window, with time passed in.

use std::time::{Duration, Instant};

/// Bytes per second over roughly the last `window`, kept as an exponentially weighted average of
/// per-tick samples. Cheap enough to update per block.
#[derive(Clone, Debug)]
pub struct RateMeter {
    window: Duration,
    tick_start: Instant,
    tick_bytes: u64,
    rate: f64,
    total: u64,
}

impl RateMeter {
    /// Length of one sample.
    const TICK: Duration = Duration::from_millis(250);

    /// A meter averaging over about `window`.
    pub fn new(window: Duration, now: Instant) -> Self {
        RateMeter { window, tick_start: now, tick_bytes: 0, rate: 0.0, total: 0 }
    }

    /// Records `bytes` transferred at `now`.
    pub fn add(&mut self, bytes: u64, now: Instant) {
        self.roll(now);
        self.tick_bytes += bytes;
        self.total += bytes;
    }

    /// The rate in bytes per second at `now`.
    pub fn rate(&mut self, now: Instant) -> f64 {
        self.roll(now);
        self.rate
    }

    /// All bytes ever recorded.
    pub fn total(&self) -> u64 {
        self.total
    }

    fn roll(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.tick_start);
        if elapsed < Self::TICK {
            return;
        }
        let ticks = (elapsed.as_secs_f64() / Self::TICK.as_secs_f64()).floor();
        let alpha = (Self::TICK.as_secs_f64() / self.window.as_secs_f64()).min(1.0);
        let sample = self.tick_bytes as f64 / Self::TICK.as_secs_f64();
        self.rate += alpha * (sample - self.rate);
        // Idle ticks after the first decay the estimate towards zero.
        self.rate *= (1.0 - alpha).powf(ticks - 1.0);
        self.tick_bytes = 0;
        self.tick_start += Self::TICK.mul_f64(ticks);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converges_to_a_steady_rate_and_decays() {
        let t0 = Instant::now();
        let mut m = RateMeter::new(Duration::from_secs(2), t0);
        for i in 0..200u64 {
            m.add(25_000, t0 + Duration::from_millis(i * 25)); // 1 MB/s for 5 s
        }
        let r = m.rate(t0 + Duration::from_millis(5000));
        assert!((r - 1_000_000.0).abs() < 100_000.0, "rate {r}");
        let later = m.rate(t0 + Duration::from_secs(15));
        assert!(later < 10_000.0, "decayed rate {later}");
        assert_eq!(m.total(), 5_000_000);
    }
}
