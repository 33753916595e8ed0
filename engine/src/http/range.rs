//! Byte ranges: the `Range` request header and the `Content-Range` response header (RFC 9110 §14).

use std::fmt;

use super::HttpError;

/// A resolved, non-empty, half-open byte range `[start, end)` inside a representation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

impl ByteRange {
    /// Number of bytes in the range.
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    /// Always false: a `ByteRange` holds at least one byte.
    pub fn is_empty(&self) -> bool {
        self.start >= self.end
    }
}

/// One range as written in a `Range: bytes=` header, before it is resolved against a length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeSpec {
    /// `first-last` (inclusive) or `first-` (to the end, `last == None`).
    FromTo {
        /// First byte.
        first: u64,
        /// Last byte, inclusive.
        last: Option<u64>,
    },
    /// `-n`: the final `n` bytes.
    Suffix(u64),
}

impl RangeSpec {
    /// Parses a `Range` header value. Only a single range of unit `bytes` is supported; a
    /// multi-range value returns `Ok(None)` so a server may answer with the whole representation,
    /// as RFC 9110 allows.
    pub fn parse(value: &str) -> Result<Option<RangeSpec>, HttpError> {
        let bad = HttpError::InvalidHeader { name: "range" };
        let spec = value.trim().strip_prefix("bytes=").ok_or(bad.clone())?;
        if spec.contains(',') {
            return Ok(None);
        }
        let (a, b) = spec.split_once('-').ok_or(bad.clone())?;
        let (a, b) = (a.trim(), b.trim());
        if a.is_empty() {
            let n = parse_u64(b).ok_or(bad)?;
            return Ok(Some(RangeSpec::Suffix(n)));
        }
        let first = parse_u64(a).ok_or(bad.clone())?;
        let last = if b.is_empty() { None } else { Some(parse_u64(b).ok_or(bad.clone())?) };
        if last.is_some_and(|l| l < first) {
            return Err(bad);
        }
        Ok(Some(RangeSpec::FromTo { first, last }))
    }

    /// Resolves the range against a representation of `len` bytes; `None` when unsatisfiable
    /// (the server answers 416).
    pub fn resolve(self, len: u64) -> Option<ByteRange> {
        match self {
            RangeSpec::Suffix(0) => None,
            RangeSpec::Suffix(n) => (len > 0).then(|| ByteRange { start: len.saturating_sub(n), end: len }),
            RangeSpec::FromTo { first, last } => {
                if first >= len {
                    return None;
                }
                let end = last.map_or(len, |l| l.saturating_add(1).min(len));
                Some(ByteRange { start: first, end })
            }
        }
    }
}

impl fmt::Display for RangeSpec {
    /// Formats as a `Range` header value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RangeSpec::FromTo { first, last: Some(l) } => write!(f, "bytes={first}-{l}"),
            RangeSpec::FromTo { first, last: None } => write!(f, "bytes={first}-"),
            RangeSpec::Suffix(n) => write!(f, "bytes=-{n}"),
        }
    }
}

/// A `Content-Range` header: `bytes first-last/complete` or `bytes */complete`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContentRange {
    /// The range sent, `None` for an unsatisfied-range answer (`*`).
    pub range: Option<ByteRange>,
    /// Length of the whole representation, `None` when the server wrote `*`.
    pub complete_length: Option<u64>,
}

impl ContentRange {
    /// Parses a `Content-Range` header value, checking that the range lies inside the complete
    /// length.
    pub fn parse(value: &str) -> Result<ContentRange, HttpError> {
        let bad = HttpError::InvalidHeader { name: "content-range" };
        let rest = value.trim().strip_prefix("bytes ").ok_or(bad.clone())?;
        let (range, complete) = rest.split_once('/').ok_or(bad.clone())?;
        let complete_length = match complete.trim() {
            "*" => None,
            c => Some(parse_u64(c).ok_or(bad.clone())?),
        };
        let range = match range.trim() {
            "*" => None,
            r => {
                let (a, b) = r.split_once('-').ok_or(bad.clone())?;
                let first = parse_u64(a.trim()).ok_or(bad.clone())?;
                let last = parse_u64(b.trim()).ok_or(bad.clone())?;
                if last < first || complete_length.is_some_and(|c| last >= c) {
                    return Err(bad);
                }
                Some(ByteRange { start: first, end: last + 1 })
            }
        };
        if range.is_none() && complete_length.is_none() {
            return Err(bad);
        }
        Ok(ContentRange { range, complete_length })
    }
}

impl fmt::Display for ContentRange {
    /// Formats as a `Content-Range` header value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("bytes ")?;
        match self.range {
            Some(r) => write!(f, "{}-{}", r.start, r.end - 1)?,
            None => f.write_str("*")?,
        }
        match self.complete_length {
            Some(c) => write!(f, "/{c}"),
            None => f.write_str("/*"),
        }
    }
}

/// Parses a decimal `u64` of ASCII digits only (no sign, no spaces), rejecting overflow.
pub(super) fn parse_u64(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parse_and_resolve() {
        let r = |s| RangeSpec::parse(s).unwrap().unwrap();
        assert_eq!(r("bytes=0-9").resolve(100), Some(ByteRange { start: 0, end: 10 }));
        assert_eq!(r("bytes=90-").resolve(100), Some(ByteRange { start: 90, end: 100 }));
        assert_eq!(r("bytes=-10").resolve(100), Some(ByteRange { start: 90, end: 100 }));
        assert_eq!(r("bytes=-1000").resolve(100), Some(ByteRange { start: 0, end: 100 }));
        assert_eq!(r("bytes=95-200").resolve(100), Some(ByteRange { start: 95, end: 100 }));
        assert_eq!(r("bytes=100-").resolve(100), None);
        assert_eq!(r("bytes=-0").resolve(100), None);
        assert_eq!(RangeSpec::parse("bytes=0-1,4-5"), Ok(None));
        for bad in ["bytes=5-1", "items=0-1", "bytes=a-b", "bytes=", "bytes=+1-2", "bytes=-", "0-1"] {
            assert!(RangeSpec::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn content_range() {
        let c = ContentRange::parse("bytes 0-9/100").unwrap();
        assert_eq!(c.range, Some(ByteRange { start: 0, end: 10 }));
        assert_eq!(c.complete_length, Some(100));
        assert_eq!(ContentRange::parse("bytes */100").unwrap().range, None);
        assert_eq!(ContentRange::parse("bytes 0-9/*").unwrap().complete_length, None);
        for bad in ["bytes 9-0/100", "bytes 0-100/100", "bytes */*", "0-9/100", "bytes 0-/10"] {
            assert!(ContentRange::parse(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn range_round_trip(first in 0u64..1 << 40, len in 1u64..1 << 20, suffix in proptest::bool::ANY) {
            let spec = if suffix { RangeSpec::Suffix(len) } else { RangeSpec::FromTo { first, last: Some(first + len - 1) } };
            prop_assert_eq!(RangeSpec::parse(&spec.to_string()).unwrap(), Some(spec));
        }

        #[test]
        fn resolved_ranges_are_inside(spec in "bytes=[0-9]{0,4}-[0-9]{0,4}", len in 0u64..20_000) {
            if let Ok(Some(s)) = RangeSpec::parse(&spec) {
                if let Some(r) = s.resolve(len) {
                    prop_assert!(r.start < r.end && r.end <= len);
                    let cr = ContentRange { range: Some(r), complete_length: Some(len) };
                    prop_assert_eq!(ContentRange::parse(&cr.to_string()).unwrap(), cr);
                }
            }
        }
    }
}
