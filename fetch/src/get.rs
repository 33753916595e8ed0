//! A plain GET of a small document (a relay's hash list, a `.torrent`) over the same
//! keep-alive connection type the Range fetcher uses, with the body bounded.

use std::sync::Arc;
use std::time::Duration;

use floodgate_engine::http::HttpUrl;
use tokio_rustls::rustls::ClientConfig;

use crate::{check_status, Conn, FetchError};

/// GETs `url` on `conn` (connecting when it is empty or cannot be reused) and returns the body
/// of a 2xx answer. A body longer than `max` bytes is refused; an error status is an error
/// ([`FetchError::Status`] or [`FetchError::Refused`]). A failed request leaves `conn` empty.
pub async fn get_body(
    conn: &mut Option<Conn>,
    url: &HttpUrl,
    timeout: Duration,
    tls: Option<&Arc<ClientConfig>>,
    max: usize,
) -> Result<Vec<u8>, FetchError> {
    let result = async {
        let mut c = match conn.take().filter(|c| c.reusable) {
            Some(c) => c,
            None => Conn::connect(url, timeout, tls).await?,
        };
        let head = c.request(url, false, None).await?;
        if let Err(e) = check_status(head.status) {
            c.discard_body().await?;
            return Err(e);
        }
        let len = head.content_length.unwrap_or(0);
        if len > max as u64 {
            return Err(FetchError::Unusable(format!("body of {len} bytes, at most {max} taken")));
        }
        let mut body = Vec::with_capacity(len as usize);
        while (body.len() as u64) < len {
            if c.read_body(&mut body, 64 * 1024).await? == 0 {
                return Err(FetchError::Truncated { got: body.len() as u64, want: len });
            }
        }
        Ok((c, body))
    }
    .await;
    match result {
        Ok((c, body)) => {
            *conn = Some(c);
            Ok(body)
        }
        Err(e) => Err(e),
    }
}
