//! A transfer-rate estimate over a short sliding window, with time passed in.

use std::time::{Duration, Instant};

/// Bytes per second over roughly the last `window`, kept as an exponentially weighted average of
/// per-tick samples. Cheap enough to update per block.
///
/// For the first `window` after the first byte the rate is the plain average since that byte
/// (an average from zero would need several windows to reach the true rate, and request
/// pipelines sized from it would start far too short); the weighted average then starts from it.
#[derive(Clone, Debug)]
pub struct RateMeter {
    window: Duration,
    tick_start: Instant,
    tick_bytes: u64,
    rate: f64,
    total: u64,
    /// When the first byte was recorded.
    first: Option<Instant>,
}

impl RateMeter {
    /// Length of one sample.
    const TICK: Duration = Duration::from_millis(250);
    /// Shortest span a warm-up average divides by (a burst right after the first byte is not
    /// a rate yet).
    const MIN_SPAN: Duration = Duration::from_millis(50);

    /// A meter averaging over about `window`.
    pub fn new(window: Duration, now: Instant) -> Self {
        RateMeter { window, tick_start: now, tick_bytes: 0, rate: 0.0, total: 0, first: None }
    }

    /// Records `bytes` transferred at `now`.
    pub fn add(&mut self, bytes: u64, now: Instant) {
        self.roll(now);
        self.first.get_or_insert(now);
        self.tick_bytes += bytes;
        self.total += bytes;
    }

    /// The rate in bytes per second at `now`.
    pub fn rate(&mut self, now: Instant) -> f64 {
        self.roll(now);
        self.warmup_rate(now).unwrap_or(self.rate)
    }

    /// The average since the first byte, while that was less than `window` ago.
    fn warmup_rate(&self, now: Instant) -> Option<f64> {
        let since = now.saturating_duration_since(self.first?);
        (since < self.window).then(|| self.total as f64 / since.max(Self::MIN_SPAN).as_secs_f64())
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
        match self.warmup_rate(self.tick_start + Self::TICK) {
            // Still warming up at the end of this sample: the average is the better estimate.
            Some(avg) => self.rate = avg,
            None => self.rate += alpha * (sample - self.rate),
        }
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

    #[test]
    fn knows_the_rate_soon_after_the_first_byte() {
        let t0 = Instant::now();
        let mut m = RateMeter::new(Duration::from_secs(5), t0);
        assert_eq!(m.rate(t0 + Duration::from_secs(1)), 0.0);
        // A fast peer: 64 blocks of 16 KiB within 10 ms, starting 1 s after the meter.
        let start = t0 + Duration::from_secs(1);
        for i in 0..64u64 {
            m.add(16_384, start + Duration::from_micros(i * 150));
        }
        let early = m.rate(start + Duration::from_millis(10));
        assert!(early > 15_000_000.0, "fast start {early}");
        // A slow one: 16 KiB every 100 ms is ~164 KB/s from the first sample on.
        let mut slow = RateMeter::new(Duration::from_secs(5), t0);
        for i in 0..10u64 {
            slow.add(16_384, t0 + Duration::from_millis(i * 100));
        }
        let r = slow.rate(t0 + Duration::from_millis(1000));
        assert!((r - 163_840.0).abs() < 25_000.0, "slow start {r}");
        // After the warm-up the weighted average carries on from the warm-up figure.
        for i in 10..80u64 {
            slow.add(16_384, t0 + Duration::from_millis(i * 100));
        }
        let r = slow.rate(t0 + Duration::from_millis(8000));
        assert!((r - 163_840.0).abs() < 25_000.0, "steady {r}");
    }
}
