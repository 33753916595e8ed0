//! Shared helpers for the criterion benches in `benches/`.

use std::path::PathBuf;

/// Deterministic, incompressible-looking test data.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Directory for on-disk benches: `$FLOODGATE_BENCH_DIR`, else the system temp dir.
///
/// Point it at a real disk (not tmpfs) when measuring the store: `df "$FLOODGATE_BENCH_DIR"`.
pub fn bench_dir() -> PathBuf {
    std::env::var_os("FLOODGATE_BENCH_DIR").map(PathBuf::from).unwrap_or_else(std::env::temp_dir)
}
