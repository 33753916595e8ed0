//! Query strings (`a=1&b=%20x`) split into decoded pairs: the one reader of them, for the
//! tracker's announces and the relay's own endpoints.

use crate::percent::percent_decode;

/// Why a query string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryPairsError {
    /// More pairs than the reader takes.
    #[error("too many parameters")]
    TooMany,
    /// A value's percent-encoding is broken.
    #[error("invalid percent-encoding in parameter `{0}`")]
    BadEncoding(String),
}

/// Splits `query` (without the `?`) into `(name, decoded value)` pairs, at most `max` of them.
pub fn query_pairs(query: &str, max: usize) -> Result<Vec<(&str, Vec<u8>)>, QueryPairsError> {
    let mut out = Vec::new();
    for part in query.split('&').filter(|p| !p.is_empty()) {
        if out.len() >= max {
            return Err(QueryPairsError::TooMany);
        }
        let (name, value) = part.split_once('=').unwrap_or((part, ""));
        let value = percent_decode(value)
            .ok_or_else(|| QueryPairsError::BadEncoding(name.chars().take(32).collect()))?;
        out.push((name, value));
    }
    Ok(out)
}

/// The number given for `name` in `query`: `None` when absent, malformed or not a number.
pub fn query_number(query: &str, name: &str) -> Option<u64> {
    let pairs = query_pairs(query, 32).ok()?;
    let (_, v) = pairs.into_iter().find(|(n, _)| *n == name)?;
    std::str::from_utf8(&v).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_decoded_and_bounded() {
        let p = query_pairs("a=1&b=%20x&&c", 8).expect("valid");
        assert_eq!(p, vec![("a", b"1".to_vec()), ("b", b" x".to_vec()), ("c", Vec::new())]);
        assert_eq!(query_pairs("a&b&c", 2), Err(QueryPairsError::TooMany));
        assert!(matches!(query_pairs("a=%zz", 2), Err(QueryPairsError::BadEncoding(_))));
        assert_eq!(query_number("since=12&wait_ms=500", "wait_ms"), Some(500));
        assert_eq!(query_number("since=-1", "since"), None);
        assert_eq!(query_number("", "since"), None);
    }
}
