#![no_main]
//! Query strings (`engine::http::query_pairs`, `query_number`) and the tracker's announce and
//! scrape queries built on them, from arbitrary text:
//! - the pair reader is bounded, and agrees with itself whatever the bound;
//! - pairs written back (names as they were, values percent-encoded) read back the same;
//! - `query_number` is the first pair of that name read as a `u64`;
//! - an announce that parses is written back by the client's `AnnounceRequest::url` and parses
//!   to the same announce; a scrape written back parses to the same info-hashes.
use floodgate_engine::http::{query_number, query_pairs, QueryPairsError};
use floodgate_engine::percent::percent_encode;
use floodgate_engine::tracker::{AnnounceQuery, AnnounceRequest, ScrapeQuery, MAX_SCRAPE_HASHES};
use libfuzzer_sys::fuzz_target;

/// Writes pairs back as a query string.
fn encode(pairs: &[(&str, Vec<u8>)]) -> String {
    let mut out = String::new();
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        percent_encode(value, &mut out);
    }
    out
}

fn check_pairs(query: &str, max: usize) {
    let all = query_pairs(query, usize::MAX);
    match (query_pairs(query, max), &all) {
        (Ok(bounded), Ok(all)) => assert_eq!(&bounded, all),
        (Err(QueryPairsError::TooMany), Ok(all)) => assert!(all.len() > max),
        (Err(QueryPairsError::TooMany), Err(_)) => {}
        (Err(e @ QueryPairsError::BadEncoding(_)), Err(f)) => assert_eq!(&e, f),
        (bounded, all) => panic!("bound {max} changed the outcome: {bounded:?} vs {all:?}"),
    }
    let Ok(all) = all else { return };
    for (name, _) in &all {
        assert!(!name.contains('&') && !name.contains('='), "{name:?}");
    }
    let again = encode(&all);
    assert_eq!(query_pairs(&again, usize::MAX).as_ref(), Ok(&all), "written back as {again:?}");
    for (name, _) in all.iter().take(4) {
        let first = all.iter().find(|(n, _)| n == name).map(|(_, v)| v);
        let expected = first.and_then(|v| std::str::from_utf8(v).ok()?.parse::<u64>().ok());
        // `query_number` reads at most 32 pairs.
        let expected = if all.len() > 32 { None } else { expected };
        assert_eq!(query_number(query, name), expected, "{name:?}");
    }
}

fn check_announce(query: &str) {
    let Ok(a) = AnnounceQuery::parse(query) else { return };
    assert_ne!(a.port, 0);
    let request = AnnounceRequest {
        info_hash: a.info_hash,
        peer_id: a.peer_id,
        port: a.port,
        uploaded: a.uploaded,
        downloaded: a.downloaded,
        left: a.left.unwrap_or(0),
        event: a.event,
        numwant: a.numwant,
        key: a.key,
    };
    let url = request.url("http://t.example/announce");
    let (_, q) = url.split_once('?').expect("the announce URL has a query");
    let back = AnnounceQuery::parse(q).expect("the client's announce parses on the server");
    // The client always sends `left` and asks for the compact form.
    let expected = AnnounceQuery { left: Some(a.left.unwrap_or(0)), compact: true, ..a.clone() };
    assert_eq!(back, expected, "written back as {url}");
    // The last `info_hash` given is the one taken.
    let pairs = query_pairs(query, usize::MAX).expect("parsed above");
    let last = pairs.iter().rev().find(|(n, _)| *n == "info_hash").expect("required");
    assert_eq!(last.1.as_slice(), a.info_hash.as_bytes());
}

fn check_scrape(query: &str) {
    let Ok(s) = ScrapeQuery::parse(query) else { return };
    assert!(s.info_hashes.len() <= MAX_SCRAPE_HASHES);
    let pairs = query_pairs(query, usize::MAX).expect("parsed above");
    assert_eq!(s.info_hashes.len(), pairs.iter().filter(|(n, _)| *n == "info_hash").count());
    let written: Vec<(&str, Vec<u8>)> = s.info_hashes.iter().map(|h| ("info_hash", h.0.to_vec())).collect();
    assert_eq!(ScrapeQuery::parse(&encode(&written)), Ok(s));
}

fuzz_target!(|data: &[u8]| {
    let [max, rest @ ..] = data else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    check_pairs(text, usize::from(*max % 40));
    check_announce(text);
    check_scrape(text);
});
