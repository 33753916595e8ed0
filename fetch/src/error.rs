//! Why a request to an HTTP source failed.

use floodgate_engine::http::{HttpError, UrlError};

/// An origin error; [`FetchError::is_fatal`] tells a task error from a retryable one.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The URL cannot be used.
    #[error("{0}")]
    BadUrl(#[from] UrlError),
    /// Connecting, reading or writing failed (reset, refused, EOF).
    #[error("source I/O: {0}")]
    Io(#[from] std::io::Error),
    /// Nothing arrived in time (a stalled origin).
    #[error("source timed out after {0:?}")]
    Timeout(std::time::Duration),
    /// The response head did not parse.
    #[error("source sent a bad response: {0}")]
    Http(#[from] HttpError),
    /// The origin answered with an error status that may pass (5xx, 429, 408).
    #[error("source answered {0}")]
    Status(u16),
    /// The origin answered with a status that will not change by retrying.
    #[error("source refused the request with status {0}")]
    Refused(u16),
    /// The body ended early.
    #[error("source body ended after {got} of {want} bytes")]
    Truncated {
        /// Bytes received.
        got: u64,
        /// Bytes expected.
        want: u64,
    },
    /// The file at the origin is not the file of this task (size or validator changed).
    #[error("source file changed during the pull: {0}")]
    Changed(String),
    /// The origin sent a response the relay cannot use (no Range support, chunked body).
    #[error("source response unusable: {0}")]
    Unusable(String),
    /// A document's body is larger than the caller takes.
    #[error("source body larger than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// The origin's bytes do not match the torrent's piece hash, repeatedly.
    #[error("source data does not match piece {0}'s hash")]
    HashMismatch(u32),
    /// The TLS handshake failed for a reason retrying cannot fix (an untrusted certificate).
    #[error("source TLS: {0}")]
    Tls(String),
    /// The piece could not be stored.
    #[error("store: {0}")]
    Store(#[from] floodgate_engine::swarm::ImportError),
}

impl FetchError {
    /// Whether retrying cannot help: the task must fail.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            FetchError::BadUrl(_)
                | FetchError::Refused(_)
                | FetchError::Changed(_)
                | FetchError::Unusable(_)
                | FetchError::TooLarge { .. }
                | FetchError::HashMismatch(_)
                | FetchError::Store(_)
                | FetchError::Tls(_)
        )
    }
}
