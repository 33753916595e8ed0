//! A random id for this process, sent with counters that restart at zero when the process
//! does (progress reports, relay heartbeats), so that ctl can tell a restart from a report
//! and add the lives up instead of losing what the earlier one counted.

use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;

/// This process's instance id: random, nonzero, the same for the process's whole life.
pub fn process_instance() -> u64 {
    static ID: OnceLock<u64> = OnceLock::new();
    *ID.get_or_init(|| {
        // RandomState's keys come from the OS's randomness once per process.
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            h.write_u128(t.as_nanos());
        }
        h.finish() | 1
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_instance_is_nonzero_and_stable() {
        let a = super::process_instance();
        assert_ne!(a, 0);
        assert_eq!(a, super::process_instance());
    }
}
