//! Composing buckets: global, per torrent, per peer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::TokenBucket;

/// An ordered chain of shared buckets that must all grant the bytes, e.g. `[global, torrent]`.
///
/// Each connection holds its own `RateChain` (cheap: a few `Arc`s); the buckets are shared.
/// Takes go through the buckets in order and hand back what a later bucket refused, so a
/// refused transfer costs no bucket anything.
#[derive(Clone, Debug, Default)]
pub struct RateChain {
    levels: Vec<Arc<TokenBucket>>,
}

impl RateChain {
    /// A chain over `levels`, outermost first.
    pub fn new(levels: Vec<Arc<TokenBucket>>) -> Self {
        RateChain { levels }
    }

    /// The buckets, outermost first.
    pub fn levels(&self) -> &[Arc<TokenBucket>] {
        &self.levels
    }

    /// Takes `n` bytes from every bucket, or from none.
    pub fn try_take(&self, n: u64, now: Instant) -> bool {
        for (i, b) in self.levels.iter().enumerate() {
            if !b.try_take(n, now) {
                for earlier in &self.levels[..i] {
                    earlier.refund(n);
                }
                return false;
            }
        }
        true
    }

    /// Takes as many of `n` bytes as every bucket grants; returns that amount.
    pub fn take_up_to(&self, n: u64, now: Instant) -> u64 {
        take_rec(&self.levels, n, now)
    }

    /// How long until every bucket can grant `n` bytes (`None`: some bucket never can).
    pub fn time_until(&self, n: u64, now: Instant) -> Option<Duration> {
        self.levels.iter().try_fold(Duration::ZERO, |acc, b| Some(acc.max(b.time_until(n, now)?)))
    }
}

/// Takes from the first bucket, then what it granted from the rest; each bucket gives back what
/// the rest of the chain did not grant. No allocation.
fn take_rec(levels: &[Arc<TokenBucket>], n: u64, now: Instant) -> u64 {
    let Some((first, rest)) = levels.split_first() else {
        return n;
    };
    let got = first.take_up_to(n, now);
    if got == 0 {
        return 0;
    }
    let granted = take_rec(rest, got, now);
    first.refund(got - granted);
    granted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tightest_bucket_wins_and_refusals_are_refunded() {
        let t0 = Instant::now();
        let global = Arc::new(TokenBucket::new(10_000, 10_000, t0));
        let torrent = Arc::new(TokenBucket::new(1000, 1000, t0));
        let chain = RateChain::new(vec![global.clone(), torrent.clone()]);
        assert!(!chain.try_take(2000, t0), "torrent burst is 1000");
        assert_eq!(global.take_up_to(u64::MAX, t0), 10_000, "global was refunded");
        global.refund(10_000);
        assert_eq!(chain.take_up_to(5000, t0), 1000);
        assert_eq!(global.take_up_to(u64::MAX, t0), 9000, "global keeps only the chain's grant");
        // The torrent bucket is 1 s ahead: 500 more bytes in 0.5 s; global would take 50 ms.
        assert_eq!(chain.time_until(500, t0), Some(Duration::from_millis(500)));
        let other = RateChain::new(vec![global.clone()]);
        assert!(other.try_take(0, t0));
        assert_eq!(RateChain::default().take_up_to(7, t0), 7);
    }
}
