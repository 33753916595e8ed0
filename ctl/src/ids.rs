//! Random identifiers for distributions and leases.

/// 16 lowercase hex digits (64 random bits).
pub(crate) fn random_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}
