//! Request framing: whether a request head declares a body, so its bytes are never read as the
//! next request (request smuggling).
//!
//! The server answers GET and HEAD only, which carry no body in practice. A declared
//! `Content-Length` body up to [`MAX_REQUEST_BODY`] is read and dropped (and the connection
//! closed after the answer); a larger one is refused with 413. `Transfer-Encoding` on a request
//! is refused with 400, as are `Content-Length` and `Transfer-Encoding` together and a
//! malformed or conflicting `Content-Length`.

use floodgate_engine::http::MAX_HEADERS;

/// Largest request body read and dropped; a longer declared body is refused.
pub(super) const MAX_REQUEST_BODY: u64 = 64 * 1024;

/// What follows a request head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Framing {
    /// No body: the next bytes are the next request.
    NoBody,
    /// A body of this many bytes (at most [`MAX_REQUEST_BODY`]) to read and drop.
    Body(u64),
    /// A head the server refuses: its status and a short reason.
    Refuse(u16, &'static str),
}

/// The framing of the complete request head `head` (the bytes `parse_request` used).
pub(super) fn request_framing(head: &[u8]) -> Framing {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    if !matches!(req.parse(head), Ok(httparse::Status::Complete(_))) {
        return Framing::Refuse(400, "malformed request");
    }
    let mut length: Option<u64> = None;
    let mut chunked = false;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = true;
        } else if h.name.eq_ignore_ascii_case("content-length") {
            // RFC 9110 §8.6: 1*DIGIT; a list of identical values counts as one.
            let Ok(text) = std::str::from_utf8(h.value) else {
                return Framing::Refuse(400, "malformed content-length");
            };
            for item in text.split(',').map(str::trim) {
                let valid = !item.is_empty() && item.len() <= 19 && item.bytes().all(|b| b.is_ascii_digit());
                let Some(n) = valid.then(|| item.parse::<u64>().ok()).flatten() else {
                    return Framing::Refuse(400, "malformed content-length");
                };
                if length.is_some_and(|l| l != n) {
                    return Framing::Refuse(400, "conflicting content-length");
                }
                length = Some(n);
            }
        }
    }
    match (chunked, length) {
        (true, Some(_)) => Framing::Refuse(400, "content-length with transfer-encoding"),
        (true, None) => Framing::Refuse(400, "transfer-encoding not accepted on requests"),
        (false, None | Some(0)) => Framing::NoBody,
        (false, Some(n)) if n > MAX_REQUEST_BODY => Framing::Refuse(413, "request body too large"),
        (false, Some(n)) => Framing::Body(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framing(headers: &str) -> Framing {
        request_framing(format!("GET /tasks HTTP/1.1\r\nHost: relay\r\n{headers}\r\n").as_bytes())
    }

    #[test]
    fn heads_without_a_body_header_have_no_body() {
        assert_eq!(framing(""), Framing::NoBody);
        assert_eq!(framing("Content-Length: 0\r\n"), Framing::NoBody);
    }

    #[test]
    fn a_declared_length_is_a_body_to_drop_up_to_the_limit() {
        assert_eq!(framing("Content-Length: 53\r\n"), Framing::Body(53));
        assert_eq!(framing("content-length: 7, 7\r\n"), Framing::Body(7));
        let max = format!("Content-Length: {MAX_REQUEST_BODY}\r\n");
        assert_eq!(framing(&max), Framing::Body(MAX_REQUEST_BODY));
        let over = format!("Content-Length: {}\r\n", MAX_REQUEST_BODY + 1);
        assert!(matches!(framing(&over), Framing::Refuse(413, _)));
        assert!(matches!(framing("Content-Length: 99999999999999999999999\r\n"), Framing::Refuse(400, _)));
    }

    #[test]
    fn transfer_encoding_and_bad_lengths_are_refused() {
        for h in [
            "Transfer-Encoding: chunked\r\n",
            "transfer-encoding: identity\r\n",
            "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
            "Transfer-Encoding: chunked\r\nContent-Length: 0\r\n",
            "Content-Length: 5\r\nContent-Length: 6\r\n",
            "Content-Length: 5, 6\r\n",
            "Content-Length: -1\r\n",
            "Content-Length: +5\r\n",
            "Content-Length: 0x10\r\n",
            "Content-Length:\r\n",
        ] {
            assert!(matches!(framing(h), Framing::Refuse(400, _)), "{h:?} is refused with 400");
        }
    }
}
