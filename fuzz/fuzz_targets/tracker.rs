#![no_main]
//! Tracker announce responses, HTTP URLs and server requests from arbitrary bytes:
//! never panic; what parses re-encodes and parses back the same; the server always answers
//! valid bencode.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use floodgate_engine::bencode::decode;
use floodgate_engine::http::HttpUrl;
use floodgate_engine::tracker::{
    parse_announce_response, percent_decode, AnnounceQuery, ScrapeQuery, TrackerConfig, TrackerServer,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(resp) = parse_announce_response(data) {
        for compact in [true, false] {
            let mut out = Vec::new();
            resp.encode(compact, &mut out);
            let back = parse_announce_response(&out).expect("own encoding parses");
            assert_eq!(back.interval, resp.interval);
            assert_eq!(back.peers.len(), resp.peers.len());
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = percent_decode(text);
        let _ = HttpUrl::parse(text);
        let query = text.split_once('?').map_or("", |(_, q)| q);
        let _ = AnnounceQuery::parse(query);
        let _ = ScrapeQuery::parse(query);
        let mut server =
            TrackerServer::new(TrackerConfig { max_peers_per_torrent: 4, ..TrackerConfig::default() });
        let now = Instant::now();
        // Each line is one request, so a single input can build and query a swarm.
        for (i, line) in text.lines().take(16).enumerate() {
            let ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, i as u8));
            let (status, body) = server.handle(line, ip, now);
            assert!(status == 200 || status == 404);
            assert!(decode(&body).is_ok(), "server body is canonical bencode");
        }
    }
});
