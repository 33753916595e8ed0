//! A plain GET of a small document (a relay's hash list, a `.torrent`, a tracker's answer) over
//! the same keep-alive connection type the Range fetcher uses, with the body bounded.

use std::sync::Arc;
use std::time::Duration;

use floodgate_engine::http::HttpUrl;
use tokio_rustls::rustls::ClientConfig;

use crate::{check_status, Conn, FetchError};

/// GETs `url` on `conn` (connecting when it is empty or cannot be reused) and returns the body
/// of a 2xx answer. A body longer than `max` bytes is refused ([`FetchError::TooLarge`]); an
/// error status is an error ([`FetchError::Status`] or [`FetchError::Refused`]). A failed
/// request leaves `conn` empty.
pub async fn get_body(
    conn: &mut Option<Conn>,
    url: &HttpUrl,
    timeout: Duration,
    tls: Option<&Arc<ClientConfig>>,
    max: usize,
) -> Result<Vec<u8>, FetchError> {
    exchange(conn, url, timeout, tls, max, false).await.map(|(_, body)| body)
}

/// GETs `url` on `conn` like [`get_body`] but returns the status with the body, whatever the
/// status (a tracker explains a refusal in the body of an error answer). Bodies may have a
/// `Content-Length`, be chunked or end when the server closes; more than `max` bytes is
/// [`FetchError::TooLarge`]. Each read and write is bounded by `timeout`, not the whole exchange.
pub async fn get_response(
    conn: &mut Option<Conn>,
    url: &HttpUrl,
    timeout: Duration,
    tls: Option<&Arc<ClientConfig>>,
    max: usize,
) -> Result<(u16, Vec<u8>), FetchError> {
    exchange(conn, url, timeout, tls, max, true).await
}

/// One GET; with `error_bodies` false an error status is returned without reading its body
/// (the connection is dropped).
async fn exchange(
    conn: &mut Option<Conn>,
    url: &HttpUrl,
    timeout: Duration,
    tls: Option<&Arc<ClientConfig>>,
    max: usize,
    error_bodies: bool,
) -> Result<(u16, Vec<u8>), FetchError> {
    let mut c = match conn.take().filter(|c| c.reusable) {
        Some(c) => c,
        None => Conn::connect(url, timeout, tls).await?,
    };
    let head = c.get(url).await?;
    if !error_bodies {
        check_status(head.status)?;
    }
    let body = c.read_document(&head, max).await?;
    if c.reusable {
        *conn = Some(c);
    }
    Ok((head.status, body))
}
