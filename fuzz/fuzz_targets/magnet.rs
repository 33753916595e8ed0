#![no_main]
//! Magnet parser: never panics; a parsed link written back parses to the same magnet.
use floodgate_engine::magnet::Magnet;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    // Give the fuzzer the prefix for free half the time so it explores parameters.
    let owned;
    let uri = if s.starts_with('!') {
        owned = format!("magnet:?{}", &s[1..]);
        owned.as_str()
    } else {
        s
    };
    if let Ok(m) = Magnet::parse(uri) {
        let again = Magnet::parse(&m.to_uri()).expect("to_uri output must parse");
        assert_eq!(again, m);
    }
});
