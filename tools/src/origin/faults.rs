//! Fault injection: which data requests fail, stall, truncate, or see a changed file.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::Args;

/// What to do to one response.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Plan {
    /// Answer 500 instead of data.
    pub fail: bool,
    /// Stop sending after this many body bytes and hold the connection.
    pub stall_after: Option<u64>,
    /// Close the connection after this many body bytes.
    pub truncate_after: Option<u64>,
    /// Serve the "changed" version of the file.
    pub changed: bool,
}

/// The configured faults and the request counter they key on.
pub(crate) struct Faults {
    requests: AtomicU64,
    fail_first: u64,
    fail_every: u64,
    stall_after: Option<u64>,
    stall_every: u64,
    truncate_after: Option<u64>,
    change_after: Option<u64>,
}

impl Faults {
    /// Faults from the command line.
    pub(crate) fn new(args: &Args) -> Self {
        Faults {
            requests: AtomicU64::new(0),
            fail_first: args.fail_first,
            fail_every: args.fail_every,
            stall_after: args.stall_after,
            stall_every: args.stall_every,
            truncate_after: args.truncate_after,
            change_after: args.change_after,
        }
    }

    /// Counts a data request and decides its fate.
    pub(crate) fn next(&self) -> Plan {
        let n = self.requests.fetch_add(1, Ordering::Relaxed) + 1;
        // With --stall-every only those requests stall (after --stall-after bytes, default 0:
        // right after the head); without it --stall-after applies to every response.
        let stall_after = match self.stall_every {
            0 => self.stall_after,
            every if n.is_multiple_of(every) => Some(self.stall_after.unwrap_or(0)),
            _ => None,
        };
        Plan {
            fail: n <= self.fail_first || (self.fail_every > 0 && n.is_multiple_of(self.fail_every)),
            stall_after,
            truncate_after: self.truncate_after,
            changed: self.change_after.is_some_and(|c| n > c),
        }
    }

    /// Whether the file has "changed" by now (for HEAD and validators).
    pub(crate) fn changed_now(&self) -> bool {
        self.change_after.is_some_and(|c| self.requests.load(Ordering::Relaxed) >= c)
    }
}
