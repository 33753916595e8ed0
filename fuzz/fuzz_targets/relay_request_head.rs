#![no_main]
//! The relay's request-head handling, from arbitrary bytes read off one connection, in the
//! order `relay/src/http/conn.rs` runs it: `engine::http::parse_request`, then the relay's
//! body framing (`relay/src/http/framing.rs`: Content-Length / Transfer-Encoding refusals),
//! pipelined requests while kept alive, and the conditional-request validators
//! (`relay/src/http/validators.rs`).
//!
//! The relay is a binary crate, so its two modules are compiled in here from their source files
//! (`#[path]`), unchanged; they use only the engine and `httparse` / `httpdate`.
//!
//! Checked: a head parses the same whatever follows it, and is incomplete one byte short (no
//! request smuggling through the head's end); the framing code accepts every head the parser
//! accepted and refuses every Transfer-Encoding; a body is within its bound; validators match
//! their own ETag and date.
use std::time::{Duration, UNIX_EPOCH};

use floodgate_engine::http::{parse_request, RangeSpec, RequestHead, MAX_HEADERS, MAX_HEAD_BYTES};
use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../relay/src/http/framing.rs"]
mod framing;
#[allow(dead_code)]
#[path = "../../relay/src/http/validators.rs"]
mod validators;

use framing::{request_framing, Framing, MAX_REQUEST_BODY};
use validators::Validators;

/// The header fields of a complete head, as `httparse` reads them: (name lower-cased, value).
fn fields(head: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    assert!(matches!(req.parse(head), Ok(httparse::Status::Complete(_))));
    req.headers.iter().map(|h| (h.name.to_ascii_lowercase(), h.value.to_vec())).collect()
}

fn check_head(head: &RequestHead, bytes: &[u8]) {
    let used = bytes.len();
    assert!(used <= MAX_HEAD_BYTES);
    // The head does not depend on what follows it, and is not complete before its end.
    assert_eq!(parse_request(bytes), Ok(Some((head.clone(), used))));
    assert_eq!(parse_request(&bytes[..used - 1]), Ok(None), "complete one byte early");

    assert!(!head.target.is_empty() && !head.target.bytes().any(|b| b.is_ascii_whitespace()));
    let fields = fields(bytes);
    let has = |name: &str| fields.iter().any(|(n, _)| n == name);
    if let Some(spec) = &head.range {
        assert!(has("range"));
        assert_eq!(RangeSpec::parse(&spec.to_string()), Ok(Some(*spec)));
    }
    for (name, value) in [
        ("if-range", &head.if_range),
        ("if-none-match", &head.if_none_match),
        ("if-modified-since", &head.if_modified_since),
        ("authorization", &head.authorization),
    ] {
        if let Some(v) = value {
            assert!(has(name) && v.trim() == v, "{name}: {v:?}");
        }
    }
    let closes = fields.iter().any(|(n, v)| {
        n == "connection"
            && std::str::from_utf8(v)
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")))
    });
    if closes {
        assert!(!head.keep_alive, "Connection: close is kept alive");
    }

    let chunked = has("transfer-encoding");
    match request_framing(bytes) {
        Framing::Refuse(400, "malformed request") => panic!("framing refuses a head the parser took"),
        Framing::Refuse(413, _) => assert!(has("content-length") && !chunked),
        Framing::Refuse(status, _) => assert_eq!(status, 400),
        Framing::NoBody => assert!(!chunked, "Transfer-Encoding taken as no body"),
        Framing::Body(n) => {
            assert!(!chunked && has("content-length"));
            assert!(n > 0 && n <= MAX_REQUEST_BODY);
        }
    }

    let v = Validators::new("\"fz-1\"".into(), UNIX_EPOCH + Duration::from_millis(1_700_000_000_250));
    let _ = v.not_modified(head);
    let _ = v.range_allowed(head.if_range.as_deref());
    assert!(v.range_allowed(None) && v.range_allowed(Some("\"fz-1\"")));
    assert!(v.range_allowed(Some(&v.last_modified_text)));
    let mut tagged = head.clone();
    tagged.if_none_match = Some("W/\"fz-1\"".into());
    assert!(v.not_modified(&tagged));
    tagged.if_none_match = None;
    tagged.if_modified_since = Some(v.last_modified_text.clone());
    assert!(v.not_modified(&tagged));
}

fuzz_target!(|data: &[u8]| {
    let mut buf = data;
    // Pipelined requests on one connection, as the relay reads them; bounded like any loop.
    for _ in 0..8 {
        match parse_request(buf) {
            Ok(Some((head, used))) => {
                assert!(used > 0 && used <= buf.len());
                check_head(&head, &buf[..used]);
                let framing = request_framing(&buf[..used]);
                buf = &buf[used..];
                match framing {
                    // The body is read and dropped, then the connection closes.
                    Framing::Body(_) | Framing::Refuse(..) => return,
                    Framing::NoBody if !head.keep_alive => return,
                    Framing::NoBody => {}
                }
            }
            Ok(None) => {
                assert!(buf.len() <= MAX_HEAD_BYTES, "an incomplete head beyond the limit is waited for");
                return;
            }
            Err(_) => return,
        }
    }
});
