//! Upload and download rate limits: token buckets (global and per torrent) that connections wait
//! on before writing and after reading.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::ratelimit::{RateChain, TokenBucket};

/// A bucket for `rate` bytes/s (0: unlimited) with a burst of a tenth of a second, at least
/// 64 KiB, so short bursts pass and the average holds.
pub(crate) fn bucket(rate: u64) -> Arc<TokenBucket> {
    let burst = (rate / 10).max(64 * 1024);
    Arc::new(TokenBucket::new(rate, burst, Instant::now()))
}

/// Waits until every bucket of `chain` has granted `bytes`. Unlimited buckets grant at once.
pub(crate) async fn acquire(chain: &RateChain, bytes: u64) {
    let mut left = bytes;
    loop {
        let now = Instant::now();
        left -= chain.take_up_to(left, now);
        if left == 0 {
            return;
        }
        // Wait for a small step, which every bucket's burst (≥ 64 KiB) can hold.
        let wait = chain.time_until(left.min(16 * 1024), now).unwrap_or(Duration::from_millis(10));
        tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
    }
}
