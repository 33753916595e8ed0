//! Errors of tracker responses and query strings.

/// Why an announce response body was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    /// The tracker refused the announce (`failure reason`).
    #[error("tracker failure: {reason}")]
    Failure {
        /// The tracker's text, lossily decoded as UTF-8.
        reason: String,
    },
    /// The body is not bencode (or breaks the size limits).
    #[error("response is not bencode: {0}")]
    Bencode(#[from] crate::bencode::DecodeError),
    /// The body is bencode but not a dictionary.
    #[error("response is not a dictionary")]
    NotADict,
    /// A required key is missing.
    #[error("response lacks `{key}`")]
    Missing {
        /// The key.
        key: &'static str,
    },
    /// A key holds the wrong type or an out-of-range value.
    #[error("response has an invalid `{key}`")]
    Invalid {
        /// The key.
        key: &'static str,
    },
    /// A compact peer string whose length is not a multiple of the entry size.
    #[error("`{key}` is {len} bytes, not a multiple of {entry}")]
    CompactLength {
        /// `peers` or `peers6`.
        key: &'static str,
        /// Its length.
        len: usize,
        /// 6 or 18.
        entry: usize,
    },
}

/// Why an announce or scrape query string was rejected by the server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// A required parameter is missing.
    #[error("missing parameter `{0}`")]
    Missing(&'static str),
    /// A parameter is malformed (bad percent-encoding, wrong length, not a number, ...).
    #[error("invalid parameter `{0}`")]
    Invalid(&'static str),
    /// More parameters than the server reads.
    #[error("too many parameters")]
    TooMany,
}
