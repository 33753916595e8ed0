//! Errors of HTTP head parsing.

/// Why an HTTP head or header value was rejected.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum HttpError {
    /// The head is not valid HTTP/1.x syntax.
    #[error("malformed HTTP head: {0}")]
    Malformed(&'static str),
    /// The head grew past [`super::MAX_HEAD_BYTES`] without ending.
    #[error("HTTP head longer than {limit} bytes")]
    HeadTooLarge {
        /// The limit that was hit.
        limit: usize,
    },
    /// More than [`super::MAX_HEADERS`] header fields.
    #[error("too many header fields")]
    TooManyHeaders,
    /// A method other than GET or HEAD.
    #[error("method not supported")]
    UnsupportedMethod,
    /// A header value that must be a number, a range or text is not.
    #[error("invalid {name} header")]
    InvalidHeader {
        /// Lower-case header name.
        name: &'static str,
    },
}
