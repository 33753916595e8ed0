#![no_main]
//! HTTP heads, range headers and URLs from arbitrary bytes: never panic; what parses is
//! consistent, and a redacted URL never shows its user info.

use floodgate_engine::http::{parse_request, parse_response, redact, ContentRange, HttpUrl, RangeSpec};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((_, used))) = parse_request(data) {
        assert!(used <= data.len());
    }
    if let Ok(Some((_, used))) = parse_response(data) {
        assert!(used <= data.len());
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(Some(spec)) = RangeSpec::parse(text) {
            let len = data.len() as u64 * 1000;
            if let Some(r) = spec.resolve(len) {
                assert!(r.start < r.end && r.end <= len);
            }
            assert_eq!(RangeSpec::parse(&spec.to_string()), Ok(Some(spec)));
        }
        if let Ok(url) = HttpUrl::parse(text) {
            assert!(url.target.starts_with('/') && url.port != 0);
            // The shown authority (between `://` and the path) never carries user info. (The
            // path may hold any text, the user info's included: that is not a leak.)
            let shown = url.to_string();
            let authority = shown.split_once("://").map_or("", |(_, r)| r.split('/').next().unwrap_or(""));
            assert!(!authority.contains('@'), "{shown}");
        }
        let shown = redact(text);
        assert!(shown.len() <= text.len() + "?…".len());
        if let Ok(cr) = ContentRange::parse(text) {
            assert_eq!(ContentRange::parse(&cr.to_string()), Ok(cr));
        }
    }
});
