//! Fault injection: which data requests fail, stall, truncate, or see a changed file.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

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
    /// `--vary-range`, and whether a request has covered it yet.
    vary: Option<(u64, u64)>,
    vary_served: AtomicBool,
}

/// Parses `START-END` (end exclusive, START < END).
pub(crate) fn parse_span(s: &str) -> Result<(u64, u64), String> {
    let (a, b) = s.split_once('-').ok_or_else(|| format!("{s:?} is not START-END"))?;
    let a: u64 = a.trim().parse().map_err(|e| format!("start {a:?}: {e}"))?;
    let b: u64 = b.trim().parse().map_err(|e| format!("end {b:?}: {e}"))?;
    if a >= b {
        return Err(format!("{s:?}: the start must be below the end"));
    }
    Ok((a, b))
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
            vary: args.vary_range,
            vary_served: AtomicBool::new(false),
        }
    }

    /// The span of a data request for `start..end` to serve changed: `None` if it does not
    /// cover `--vary-range` or is the first request that does.
    pub(crate) fn vary_for(&self, start: u64, end: u64) -> Option<(u64, u64)> {
        let (a, b) = self.vary?;
        if start >= b || end <= a {
            return None;
        }
        self.vary_served.swap(true, Ordering::Relaxed).then_some((a, b))
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
    ///
    /// (`--vary-range` is not a change: the ETag stays.)
    pub(crate) fn changed_now(&self) -> bool {
        self.change_after.is_some_and(|c| self.requests.load(Ordering::Relaxed) >= c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_first_reader_of_the_varied_span_gets_it_as_is() {
        assert_eq!(parse_span("10-20"), Ok((10, 20)));
        assert!(parse_span("20-10").is_err() && parse_span("x").is_err());
        let f = Faults {
            requests: AtomicU64::new(0),
            fail_first: 0,
            fail_every: 0,
            stall_after: None,
            stall_every: 0,
            truncate_after: None,
            change_after: None,
            vary: Some((10, 20)),
            vary_served: AtomicBool::new(false),
        };
        assert_eq!(f.vary_for(0, 10), None, "does not cover the span");
        assert_eq!(f.vary_for(5, 15), None, "the first reader");
        assert_eq!(f.vary_for(19, 30), Some((10, 20)), "every later one");
        assert_eq!(f.vary_for(0, 100), Some((10, 20)));
        assert_eq!(f.vary_for(20, 30), None);
    }
}
