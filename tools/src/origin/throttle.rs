//! A global token bucket so the origin's total rate stays under `--rate`.

use std::time::{Duration, Instant};

use tokio::sync::Mutex;

/// Bytes-per-second limit shared by every connection; `rate == 0` means unlimited.
pub(crate) struct Throttle {
    rate: u64,
    state: Mutex<(f64, Instant)>,
}

impl Throttle {
    /// A bucket refilled at `rate` bytes/s holding at most 50 ms worth of tokens.
    pub(crate) fn new(rate: u64) -> Self {
        Throttle { rate, state: Mutex::new((0.0, Instant::now())) }
    }

    /// Waits until `n` bytes may be sent.
    pub(crate) async fn take(&self, n: usize) {
        if self.rate == 0 {
            return;
        }
        let burst = (self.rate as f64 * 0.05).max(n as f64);
        loop {
            let wait = {
                let mut s = self.state.lock().await;
                let now = Instant::now();
                s.0 = (s.0 + now.duration_since(s.1).as_secs_f64() * self.rate as f64).min(burst);
                s.1 = now;
                if s.0 >= n as f64 {
                    s.0 -= n as f64;
                    return;
                }
                Duration::from_secs_f64((n as f64 - s.0) / self.rate as f64)
            };
            tokio::time::sleep(wait).await;
        }
    }
}
