//! HTTP/1.1 request heads, as the relay's Range server reads them.

use super::{HttpError, RangeSpec, MAX_HEADERS, MAX_HEAD_BYTES};

/// The request methods the Range server answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// `GET`.
    Get,
    /// `HEAD`.
    Head,
}

/// The parts of a request head the Range server acts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHead {
    /// GET or HEAD.
    pub method: Method,
    /// The request target as sent (path and query).
    pub target: String,
    /// Whether the client keeps the connection open after this request (HTTP/1.1 default, unless
    /// `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`).
    pub keep_alive: bool,
    /// The single range asked for; `None` for no `Range` header or a multi-range one.
    pub range: Option<RangeSpec>,
    /// `If-Range` validator (an entity tag or a date), verbatim.
    pub if_range: Option<String>,
    /// `If-None-Match`, verbatim.
    pub if_none_match: Option<String>,
    /// `If-Modified-Since`, verbatim.
    pub if_modified_since: Option<String>,
    /// `Authorization`, verbatim.
    pub authorization: Option<String>,
}

/// Parses a request head from the start of `buf`.
///
/// Returns `Ok(Some((head, used)))` when the head is complete (`used` bytes, body not included),
/// `Ok(None)` when more bytes are needed, or an error (including a head longer than
/// [`MAX_HEAD_BYTES`]).
pub fn parse_request(buf: &[u8]) -> Result<Option<(RequestHead, usize)>, HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let used = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD_BYTES => {
            return Err(HttpError::HeadTooLarge { limit: MAX_HEAD_BYTES })
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HttpError::TooManyHeaders),
        Err(_) => return Err(HttpError::Malformed("request head")),
    };
    if used > MAX_HEAD_BYTES {
        return Err(HttpError::HeadTooLarge { limit: MAX_HEAD_BYTES });
    }
    let method = match req.method {
        Some("GET") => Method::Get,
        Some("HEAD") => Method::Head,
        _ => return Err(HttpError::UnsupportedMethod),
    };
    let target = req.path.ok_or(HttpError::Malformed("request target"))?.to_string();
    let http10 = req.version == Some(0);
    let mut head = RequestHead {
        method,
        target,
        keep_alive: !http10,
        range: None,
        if_range: None,
        if_none_match: None,
        if_modified_since: None,
        authorization: None,
    };
    // A `close` in any Connection field wins over a `keep-alive` in another (RFC 9112 §9.6):
    // the fields' order must not decide whether the connection is reused.
    let mut closes = false;
    for h in req.headers.iter() {
        let text = || std::str::from_utf8(h.value).map(|s| s.trim().to_string());
        let name = h.name;
        if name.eq_ignore_ascii_case("range") {
            // RFC 9110 §14.2: a Range the server cannot use (another unit, bad syntax, not
            // UTF-8) is ignored, and the whole representation is sent, as nginx does.
            head.range = text().ok().and_then(|v| RangeSpec::parse(&v).ok().flatten());
        } else if name.eq_ignore_ascii_case("connection") {
            let v = text().map_err(|_| HttpError::InvalidHeader { name: "connection" })?;
            for token in v.split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    closes = true;
                } else if token.eq_ignore_ascii_case("keep-alive") && http10 {
                    head.keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case("if-range") {
            head.if_range = text().ok();
        } else if name.eq_ignore_ascii_case("if-none-match") {
            head.if_none_match = text().ok();
        } else if name.eq_ignore_ascii_case("if-modified-since") {
            head.if_modified_since = text().ok();
        } else if name.eq_ignore_ascii_case("authorization") {
            head.authorization = text().ok();
        }
    }
    head.keep_alive &= !closes;
    Ok(Some((head, used)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_range_request() {
        let raw =
            b"GET /tasks/abc/data HTTP/1.1\r\nHost: x\r\nRange: bytes=10-19\r\nIf-Range: \"e1\"\r\n\r\nrest";
        let (head, used) = parse_request(raw).unwrap().unwrap();
        assert_eq!(used, raw.len() - 4);
        assert_eq!(head.method, Method::Get);
        assert_eq!(head.target, "/tasks/abc/data");
        assert!(head.keep_alive);
        assert_eq!(head.range, Some(RangeSpec::FromTo { first: 10, last: Some(19) }));
        assert_eq!(head.if_range.as_deref(), Some("\"e1\""));
    }

    #[test]
    fn partial_then_complete() {
        let raw = b"HEAD / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
        for cut in 0..raw.len() {
            assert_eq!(parse_request(&raw[..cut]), Ok(None), "cut at {cut}");
        }
        let (head, _) = parse_request(raw).unwrap().unwrap();
        assert_eq!(head.method, Method::Head);
        assert!(head.keep_alive);
    }

    #[test]
    fn rejects_bad_heads() {
        assert_eq!(parse_request(b"POST / HTTP/1.1\r\n\r\n"), Err(HttpError::UnsupportedMethod));
        for range in ["lines=1-2", "bytes=x-y", "bytes=5-1"] {
            let raw = format!("GET / HTTP/1.1\r\nRange: {range}\r\n\r\n");
            let parsed = parse_request(raw.as_bytes()).expect("a head with an unusable Range");
            assert_eq!(parsed.map(|(head, _)| head.range), Some(None), "Range: {range} is ignored");
        }
        assert_eq!(parse_request(b"\x00\x01 / HTTP/1.1\r\n\r\n"), Err(HttpError::Malformed("request head")));
        let long = format!("GET / HTTP/1.1\r\nX: {}", "a".repeat(MAX_HEAD_BYTES + 1));
        assert_eq!(parse_request(long.as_bytes()), Err(HttpError::HeadTooLarge { limit: MAX_HEAD_BYTES }));
        let many: String = (0..MAX_HEADERS + 1).map(|i| format!("X{i}: y\r\n")).collect();
        assert_eq!(
            parse_request(format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes()),
            Err(HttpError::TooManyHeaders)
        );
        let closed = parse_request(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n").unwrap().unwrap().0;
        assert!(!closed.keep_alive);
    }

    /// Found by the `relay_request_head` fuzz target: on HTTP/1.0 a `keep-alive` field after a
    /// `close` field kept the connection open.
    #[test]
    fn close_in_any_connection_field_wins_whatever_the_order() {
        let keep = |head: &[u8]| parse_request(head).unwrap().unwrap().0.keep_alive;
        assert!(!keep(b"GET / HTTP/1.0\r\nConnection: close\r\nConnection: keep-alive\r\n\r\n"));
        assert!(!keep(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n"));
        assert!(!keep(b"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"));
        assert!(!keep(b"GET / HTTP/1.1\r\nConnection: close\t\t, x\r\nConnection: keep-alive\r\n\r\n"));
        assert!(keep(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
        assert!(keep(b"GET / HTTP/1.1\r\n\r\n"));
    }
}
