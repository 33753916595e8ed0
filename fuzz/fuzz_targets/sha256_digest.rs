#![no_main]
//! `floodgate_proto::Sha256Digest::parse` (the `--sha256` value of `dist create`, and the
//! digest field of the API), compiled in here from its source file (the proto crate builds its
//! gRPC code with protox, too heavy for the fuzz build). From arbitrary bytes taken as text:
//! - it parses exactly the 64-hex-digit strings, never panics;
//! - a parsed digest is shown as the same digits in lowercase and parses back to itself;
//! - a refusal names a real length or the first non-hex character at its position.
use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../ctl/proto/src/digest.rs"]
mod digest;

use digest::{DigestParseError, Sha256Digest};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let hex = s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
    match Sha256Digest::parse(s) {
        Ok(d) => {
            assert!(hex, "{s:?} parsed");
            let shown = d.to_string();
            assert_eq!(shown, s.to_ascii_lowercase());
            assert_eq!(Sha256Digest::parse(&shown), Ok(d));
        }
        Err(DigestParseError::Length(n)) => {
            assert!(!hex);
            assert_eq!(n, s.len());
            assert!(s.bytes().all(|b| b.is_ascii_hexdigit()));
        }
        Err(DigestParseError::NotHex { at, found }) => {
            assert!(!hex);
            let first = s.chars().enumerate().find(|(_, c)| !c.is_ascii_hexdigit());
            assert_eq!(first, Some((at, found)));
        }
    }
});
