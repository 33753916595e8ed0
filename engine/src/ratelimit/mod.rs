//! Token buckets for upload and download rate limits, shared by many connections.
//!
//! [`TokenBucket`] is one limit (bytes/s with a burst), lock-free (one CAS per call) and sans-IO
//! (`now` is passed in). [`RateChain`] composes buckets that must all agree, e.g. a global
//! bucket and a per-torrent one.
//!
//! # Call sequence
//! ```
//! use std::{sync::Arc, time::Instant};
//! use floodgate_engine::ratelimit::{RateChain, TokenBucket};
//!
//! let now = Instant::now();
//! let global = Arc::new(TokenBucket::new(100 << 20, 1 << 20, now)); // 100 MiB/s, 1 MiB burst
//! let torrent = Arc::new(TokenBucket::unlimited(now));
//! let chain = RateChain::new(vec![global, torrent.clone()]); // one per connection
//! // Before sending a 16 KiB block:
//! if chain.try_take(16 * 1024, now) {
//!     // send it
//! } else if let Some(wait) = chain.time_until(16 * 1024, now) {
//!     // arm a timer for `wait`, try again then
//!     # let _ = wait;
//! }
//! torrent.set_rate(10 << 20, 256 << 10); // the admin changed the torrent's limit
//! ```

mod bucket;
mod chain;

pub use bucket::TokenBucket;
pub use chain::RateChain;
