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

/// A criterion measurement of the benchmark thread's CPU time (from
/// `/proc/thread-self/schedstat`, nanoseconds), the way `openssl speed` measures by default.
///
/// On a shared machine this stays comparable with `openssl speed` run alongside, where wall
/// time would count the time other processes held the core.
pub struct CpuTime;

/// The calling thread's CPU time in nanoseconds (0 if `/proc` is unavailable).
pub fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

impl criterion::measurement::Measurement for CpuTime {
    type Intermediate = u64;
    type Value = u64;

    fn start(&self) -> u64 {
        thread_cpu_ns()
    }

    fn end(&self, start: u64) -> u64 {
        thread_cpu_ns().saturating_sub(start)
    }

    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }

    fn zero(&self) -> u64 {
        0
    }

    fn to_f64(&self, v: &u64) -> f64 {
        *v as f64
    }

    fn formatter(&self) -> &dyn criterion::measurement::ValueFormatter {
        // Values are nanoseconds, like wall time's, so its formatter applies.
        static WALL: criterion::measurement::WallTime = criterion::measurement::WallTime;
        criterion::measurement::Measurement::formatter(&WALL)
    }
}
