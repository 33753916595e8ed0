//! HTTP/1.1 response heads, as the Range client (origin pulls, gap-filling) reads them.

use super::range::parse_u64;
use super::{ContentRange, HttpError, MAX_HEADERS, MAX_HEAD_BYTES};

/// The parts of a response head the Range client acts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    /// Status code.
    pub status: u16,
    /// `Content-Length`, when present.
    pub content_length: Option<u64>,
    /// `Content-Range`, when present.
    pub content_range: Option<ContentRange>,
    /// `ETag`, verbatim.
    pub etag: Option<String>,
    /// `Last-Modified`, verbatim.
    pub last_modified: Option<String>,
    /// `Location` (redirects), verbatim.
    pub location: Option<String>,
    /// Whether the body is sent with chunked transfer coding.
    pub chunked: bool,
    /// Whether the server keeps the connection open after this response.
    pub keep_alive: bool,
}

/// Parses a response head from the start of `buf`: `Ok(Some((head, used)))`, `Ok(None)` when
/// more bytes are needed, or an error. Conflicting `Content-Length` values are an error (a
/// response-splitting defence, RFC 9112 §6.3).
pub fn parse_response(buf: &[u8]) -> Result<Option<(ResponseHead, usize)>, HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let used = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD_BYTES => {
            return Err(HttpError::HeadTooLarge { limit: MAX_HEAD_BYTES })
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HttpError::TooManyHeaders),
        Err(_) => return Err(HttpError::Malformed("response head")),
    };
    if used > MAX_HEAD_BYTES {
        return Err(HttpError::HeadTooLarge { limit: MAX_HEAD_BYTES });
    }
    let status = resp.code.ok_or(HttpError::Malformed("status code"))?;
    let http10 = resp.version == Some(0);
    let mut head = ResponseHead {
        status,
        content_length: None,
        content_range: None,
        etag: None,
        last_modified: None,
        location: None,
        chunked: false,
        keep_alive: !http10,
    };
    // A `close` in any Connection field wins over a `keep-alive` in another (RFC 9112 §9.6):
    // the fields' order must not decide whether the connection is reused.
    let mut closes = false;
    for h in resp.headers.iter() {
        let name = h.name;
        let text = |field: &'static str| {
            std::str::from_utf8(h.value).map(str::trim).map_err(|_| HttpError::InvalidHeader { name: field })
        };
        if name.eq_ignore_ascii_case("content-length") {
            let n = parse_u64(text("content-length")?)
                .ok_or(HttpError::InvalidHeader { name: "content-length" })?;
            if head.content_length.is_some_and(|old| old != n) {
                return Err(HttpError::InvalidHeader { name: "content-length" });
            }
            head.content_length = Some(n);
        } else if name.eq_ignore_ascii_case("content-range") {
            head.content_range = Some(ContentRange::parse(text("content-range")?)?);
        } else if name.eq_ignore_ascii_case("etag") {
            head.etag = Some(text("etag")?.to_string());
        } else if name.eq_ignore_ascii_case("last-modified") {
            head.last_modified = Some(text("last-modified")?.to_string());
        } else if name.eq_ignore_ascii_case("location") {
            head.location = Some(text("location")?.to_string());
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            head.chunked = text("transfer-encoding")?.to_ascii_lowercase().contains("chunked");
        } else if name.eq_ignore_ascii_case("connection") {
            for token in text("connection")?.split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    closes = true;
                } else if token.eq_ignore_ascii_case("keep-alive") && http10 {
                    head.keep_alive = true;
                }
            }
        }
    }
    head.keep_alive &= !closes;
    Ok(Some((head, used)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::ByteRange;

    #[test]
    fn parses_a_partial_content_head() {
        let raw = b"HTTP/1.1 206 Partial Content\r\nContent-Length: 10\r\nContent-Range: bytes 10-19/100\r\nETag: \"x\"\r\n\r\n0123456789";
        let (head, used) = parse_response(raw).unwrap().unwrap();
        assert_eq!(used, raw.len() - 10);
        assert_eq!(head.status, 206);
        assert_eq!(head.content_length, Some(10));
        assert_eq!(head.content_range.unwrap().range, Some(ByteRange { start: 10, end: 20 }));
        assert_eq!(head.etag.as_deref(), Some("\"x\""));
        assert!(head.keep_alive && !head.chunked);
    }

    #[test]
    fn rejects_conflicting_lengths_and_garbage() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nContent-Length: 11\r\n\r\n";
        assert_eq!(parse_response(raw), Err(HttpError::InvalidHeader { name: "content-length" }));
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n";
        assert_eq!(parse_response(raw), Err(HttpError::InvalidHeader { name: "content-length" }));
        assert_eq!(parse_response(b"HTTP/1.1 2x0 OK\r\n\r\n"), Err(HttpError::Malformed("response head")));
        assert_eq!(parse_response(b"HTTP/1.1 200 OK\r\nContent-"), Ok(None));
        let raw = b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        let head = parse_response(raw).unwrap().unwrap().0;
        assert!(head.chunked && !head.keep_alive);
    }

    #[test]
    fn close_in_any_connection_field_wins_whatever_the_order() {
        let keep = |head: &[u8]| parse_response(head).unwrap().unwrap().0.keep_alive;
        assert!(!keep(b"HTTP/1.0 200 OK\r\nConnection: close\r\nConnection: keep-alive\r\n\r\n"));
        assert!(!keep(b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n"));
        assert!(keep(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n"));
        assert!(keep(b"HTTP/1.1 200 OK\r\n\r\n"));
    }
}
