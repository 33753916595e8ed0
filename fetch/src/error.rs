//! Why an origin request or the whole pull failed.

use floodgate_engine::http::HttpError;

/// An origin error; [`OriginError::is_fatal`] tells a task error from a retryable one.
#[derive(Debug, thiserror::Error)]
pub enum OriginError {
    /// The origin URL cannot be used.
    #[error("bad origin URL {url}: {why}")]
    BadUrl {
        /// The URL given.
        url: String,
        /// What is wrong.
        why: &'static str,
    },
    /// Connecting, reading or writing failed (reset, refused, EOF).
    #[error("origin I/O: {0}")]
    Io(#[from] std::io::Error),
    /// Nothing arrived in time (a stalled origin).
    #[error("origin timed out after {0:?}")]
    Timeout(std::time::Duration),
    /// The response head did not parse.
    #[error("origin sent a bad response: {0}")]
    Http(#[from] HttpError),
    /// The origin answered with an error status that may pass (5xx, 429, 408).
    #[error("origin answered {0}")]
    Status(u16),
    /// The origin answered with a status that will not change by retrying.
    #[error("origin refused the request with status {0}")]
    Refused(u16),
    /// The body ended early.
    #[error("origin body ended after {got} of {want} bytes")]
    Truncated {
        /// Bytes received.
        got: u64,
        /// Bytes expected.
        want: u64,
    },
    /// The file at the origin is not the file of this task (size or validator changed).
    #[error("origin file changed during the pull: {0}")]
    Changed(String),
    /// The origin sent a response the relay cannot use (no Range support, chunked body).
    #[error("origin response unusable: {0}")]
    Unusable(String),
    /// The origin's bytes do not match the torrent's piece hash, repeatedly.
    #[error("origin data does not match piece {0}'s hash")]
    HashMismatch(u32),
    /// The TLS handshake failed for a reason retrying cannot fix (an untrusted certificate).
    #[error("origin TLS: {0}")]
    Tls(String),
    /// The piece could not be stored.
    #[error("store: {0}")]
    Store(String),
}

impl OriginError {
    /// Whether retrying cannot help: the task must fail.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            OriginError::BadUrl { .. }
                | OriginError::Refused(_)
                | OriginError::Changed(_)
                | OriginError::Unusable(_)
                | OriginError::HashMismatch(_)
                | OriginError::Store(_)
                | OriginError::Tls(_)
        )
    }
}
