//! Announcing to an HTTP or HTTPS BitTorrent tracker: the engine's sans-IO tracker core builds
//! the URL ([`AnnounceRequest::url`]) and parses the answer ([`parse_announce_response`]); the
//! exchange is one [`get_response`] on this crate's connection, TLS included.

use std::sync::Arc;
use std::time::Duration;

use floodgate_engine::http::HttpUrl;
use floodgate_engine::tracker::{
    parse_announce_response, AnnounceRequest, AnnounceResponse, ResponseError, MAX_RESPONSE_BYTES,
};
use tokio_rustls::rustls::ClientConfig;

use crate::{get_response, FetchError};

/// Why an announce failed.
#[derive(Debug, thiserror::Error)]
pub enum AnnounceError {
    /// The URL is unusable, or connecting, TLS, sending or reading failed (timeouts included).
    #[error("tracker request: {0}")]
    Fetch(#[from] FetchError),
    /// The tracker answered with a status other than 200 and no bencoded failure.
    #[error("tracker answered HTTP {status}")]
    Status {
        /// The status code.
        status: u16,
    },
    /// The tracker's body was a failure or is malformed.
    #[error(transparent)]
    Response(#[from] ResponseError),
}

/// Announces `req` to the tracker at `announce_url` (`http://` or `https://`, with `tls` for
/// the latter). The whole exchange (resolve, connect, handshake, request, response) is bounded
/// by `timeout`, the body by [`MAX_RESPONSE_BYTES`]. A `failure reason` is an error whatever
/// the status.
pub async fn announce(
    announce_url: &str,
    req: &AnnounceRequest,
    timeout: Duration,
    tls: Option<&Arc<ClientConfig>>,
) -> Result<AnnounceResponse, AnnounceError> {
    let url = HttpUrl::parse(&req.url(announce_url)).map_err(FetchError::from)?;
    let mut conn = None;
    let exchange = get_response(&mut conn, &url, timeout, tls, MAX_RESPONSE_BYTES);
    let (status, body) =
        tokio::time::timeout(timeout, exchange).await.map_err(|_| FetchError::Timeout(timeout))??;
    match parse_announce_response(&body) {
        Ok(resp) if status == 200 => Ok(resp),
        Err(e @ ResponseError::Failure { .. }) => Err(e.into()),
        Err(e) if status == 200 => Err(e.into()),
        _ => Err(AnnounceError::Status { status }),
    }
}

#[cfg(test)]
#[path = "announce_tests.rs"]
mod tests;
