//! Unit tests and property tests of the tracker core (announcing over loopback is tested in
//! `floodgate-fetch`, where the I/O is).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;
use crate::bencode::decode;
use crate::types::{InfoHash, PeerId};

fn request(event: Option<Event>) -> AnnounceRequest {
    AnnounceRequest {
        info_hash: InfoHash([0xab; 20]),
        peer_id: PeerId(*b"-FG0100-abcdefghijkl"),
        port: 6881,
        uploaded: 1,
        downloaded: 2,
        left: 3,
        event,
        numwant: Some(50),
        key: Some(0xdead_beef),
    }
}

#[test]
fn url_appends_to_an_existing_query() {
    let r = request(Some(Event::Started));
    let url = r.url("http://t.example/announce?passkey=x");
    assert!(url.starts_with("http://t.example/announce?passkey=x&info_hash=%AB%AB"), "{url}");
    assert!(url.contains("&peer_id=-FG0100-abcdefghijkl&port=6881&uploaded=1&downloaded=2&left=3&compact=1"));
    assert!(url.ends_with("&event=started&numwant=50&key=deadbeef"), "{url}");
    assert!(r.url("http://t/a").starts_with("http://t/a?info_hash="));
    assert!(r.url("http://t/a?").starts_with("http://t/a?info_hash="));
    assert!(r.url("http://t/a?x=1&").starts_with("http://t/a?x=1&info_hash="));
}

#[test]
fn parses_compact_peers_in_any_key_order() {
    // Keys deliberately unsorted, as many trackers send them.
    let mut body = b"d8:intervali1800e5:peers12:".to_vec();
    body.extend_from_slice(&[127, 0, 0, 1, 0x1a, 0xe1, 10, 0, 0, 2, 0, 80]);
    body.extend_from_slice(b"6:peers618:");
    body.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
    body.extend_from_slice(&[0, 81]);
    body.extend_from_slice(b"8:completei5e10:incompletei7e12:min intervali60e15:warning message2:hie");
    let r = parse_announce_response(&body).unwrap();
    assert_eq!(r.interval, 1800);
    assert_eq!(r.min_interval, Some(60));
    assert_eq!((r.complete, r.incomplete), (Some(5), Some(7)));
    assert_eq!(r.warning.as_deref(), Some("hi"));
    assert_eq!(
        r.peers,
        vec!["127.0.0.1:6881".parse().unwrap(), "10.0.0.2:80".parse().unwrap(), "[::1]:81".parse().unwrap()]
    );
}

#[test]
fn parses_the_dict_peer_list() {
    let body = b"d8:intervali60e5:peersld2:ip9:127.0.0.17:peer id20:aaaaaaaaaaaaaaaaaaaa4:porti7eed2:ip11:example.com4:porti8eed2:ip3:::14:porti9eed2:ip3:::14:porti0eeee";
    let r = parse_announce_response(body).unwrap();
    assert_eq!(r.peers, vec!["127.0.0.1:7".parse().unwrap(), "[::1]:9".parse().unwrap()]);
}

#[test]
fn failure_and_malformed_responses_are_typed_errors() {
    assert_eq!(
        parse_announce_response(b"d14:failure reason4:nopee"),
        Err(ResponseError::Failure { reason: "nope".into() })
    );
    assert_eq!(parse_announce_response(b"li1ee"), Err(ResponseError::NotADict));
    assert_eq!(parse_announce_response(b"de"), Err(ResponseError::Missing { key: "interval" }));
    assert_eq!(parse_announce_response(b"d8:intervali-1ee"), Err(ResponseError::Invalid { key: "interval" }));
    assert_eq!(
        parse_announce_response(b"d8:intervali1e5:peers5:abcdee"),
        Err(ResponseError::CompactLength { key: "peers", len: 5, entry: 6 })
    );
    assert_eq!(
        parse_announce_response(b"d8:intervali1e5:peersi3ee"),
        Err(ResponseError::Invalid { key: "peers" })
    );
    assert!(matches!(parse_announce_response(b"d8:intervali1e"), Err(ResponseError::Bencode(_))));
    assert!(matches!(parse_announce_response(b""), Err(ResponseError::Bencode(_))));
    let huge = vec![b'l'; MAX_RESPONSE_BYTES + 1];
    assert!(matches!(parse_announce_response(&huge), Err(ResponseError::Bencode(_))));
    let deep = format!("d8:intervali1e1:x{}{}e", "l".repeat(50), "e".repeat(50));
    assert!(matches!(parse_announce_response(deep.as_bytes()), Err(ResponseError::Bencode(_))));
}

#[test]
fn percent_coding_edge_cases() {
    assert_eq!(percent_decode("a%2Bb+c%ff"), Some(b"a+b c\xff".to_vec()));
    assert_eq!(percent_decode("%"), None);
    assert_eq!(percent_decode("%4"), None);
    assert_eq!(percent_decode("%zz"), None);
    let mut s = String::new();
    percent_encode(b"a-._~ /%", &mut s);
    assert_eq!(s, "a-._~%20%2F%25");
}

fn server() -> TrackerServer {
    TrackerServer::new(TrackerConfig { max_peers_per_torrent: 3, ..TrackerConfig::default() })
}

fn announce_target(id: u8, port: u16, left: u64, event: Option<Event>) -> String {
    let r = AnnounceRequest { peer_id: PeerId([id; 20]), port, left, event, ..request(None) };
    r.url("/announce")
}

fn peers_of(body: &[u8]) -> Vec<SocketAddr> {
    parse_announce_response(body).unwrap().peers
}

#[test]
fn server_tracks_peers_counts_and_stops() {
    let mut t = server();
    let now = Instant::now();
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let (status, body) = t.handle(&announce_target(1, 1001, 0, Some(Event::Started)), ip, now);
    assert_eq!(status, 200);
    assert!(peers_of(&body).is_empty());
    let (_, body) = t.handle(&announce_target(2, 1002, 10, Some(Event::Started)), ip, now);
    assert_eq!(peers_of(&body), vec!["127.0.0.1:1001".parse().unwrap()]);
    let r = parse_announce_response(&body).unwrap();
    assert_eq!((r.complete, r.incomplete), (Some(1), Some(1)));
    // An IPv6 peer goes into peers6; a leecher sees both others.
    let v6: IpAddr = "::2".parse().unwrap();
    t.handle(&announce_target(3, 1003, 10, None), v6, now);
    let (_, body) = t.handle(&announce_target(2, 1002, 10, None), ip, now);
    let mut got = peers_of(&body);
    got.sort();
    assert_eq!(got, vec!["127.0.0.1:1001".parse().unwrap(), "[::2]:1003".parse().unwrap()]);
    // The torrent is full for a fourth peer.
    let (_, body) = t.handle(&announce_target(4, 1004, 10, None), ip, now);
    assert!(matches!(parse_announce_response(&body), Err(ResponseError::Failure { .. })));
    // Completed counts in scrape; stopped removes.
    t.handle(&announce_target(2, 1002, 0, Some(Event::Completed)), ip, now);
    t.handle(&announce_target(3, 1003, 10, Some(Event::Stopped)), v6, now);
    assert_eq!(t.peer_count(&InfoHash([0xab; 20])), 2);
    let (status, body) =
        t.handle("/scrape?info_hash=%AB%AB%AB%AB%AB%AB%AB%AB%AB%AB%AB%AB%AB%AB%AB%AB%AB%AB%AB%AB", ip, now);
    assert_eq!(status, 200);
    let v = decode(&body).unwrap();
    let files = v.as_dict().unwrap().get(b"files").unwrap().as_dict().unwrap();
    let f = files.get(&[0xab; 20]).unwrap().as_dict().unwrap();
    assert_eq!(f.get(b"complete").unwrap().as_int(), Some(2));
    assert_eq!(f.get(b"incomplete").unwrap().as_int(), Some(0));
    assert_eq!(f.get(b"downloaded").unwrap().as_int(), Some(1));
    // Seeders are not sent to seeders.
    let (_, body) = t.handle(&announce_target(1, 1001, 0, None), ip, now);
    assert!(peers_of(&body).is_empty());
}

#[test]
fn server_expires_peers_and_honours_allow_list_and_numwant() {
    let mut t = TrackerServer::new(TrackerConfig { max_numwant: 2, ..TrackerConfig::default() });
    let now = Instant::now();
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    for id in 1..=5 {
        t.handle(&announce_target(id, 1000 + u16::from(id), 10, None), ip, now);
    }
    let (_, body) = t.handle(&announce_target(9, 1009, 10, None), ip, now);
    assert_eq!(peers_of(&body).len(), 2);
    let later = now + TrackerConfig::default().interval * 2 + Duration::from_secs(1);
    let (_, body) = t.handle(&announce_target(9, 1009, 10, None), ip, later);
    assert!(peers_of(&body).is_empty());
    assert_eq!(t.peer_count(&InfoHash([0xab; 20])), 1);
    t.purge_expired(later + TrackerConfig::default().interval * 3);
    assert_eq!(t.torrent_count(), 0);

    let allowed = [InfoHash([1; 20])].into_iter().collect();
    let mut t = TrackerServer::new(TrackerConfig { allowed: Some(allowed), ..TrackerConfig::default() });
    let (_, body) = t.handle(&announce_target(1, 1001, 0, None), ip, now);
    assert!(matches!(parse_announce_response(&body), Err(ResponseError::Failure { .. })));
    assert_eq!(t.torrent_count(), 0);
}

/// An announce of peer `id` for `info_hash`.
fn announce_for(info_hash: InfoHash, id: u8) -> String {
    let r = AnnounceRequest { info_hash, peer_id: PeerId([id; 20]), port: 7000, ..request(None) };
    r.url("/announce")
}

#[test]
fn an_allow_list_filled_at_run_time_keeps_foreign_hashes_out() {
    let config =
        TrackerConfig { max_torrents: 64, allowed: Some(Default::default()), ..TrackerConfig::default() };
    let mut t = TrackerServer::new(config);
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let now = Instant::now();
    let own = InfoHash([0x42; 20]);
    assert!(!t.is_allowed(&own), "an empty allow-list tracks nothing");
    let refused = |body: &[u8]| matches!(parse_announce_response(body), Err(ResponseError::Failure { .. }));
    assert!(refused(&t.handle(&announce_for(own, 1), ip, now).1));

    t.allow(own);
    assert!(t.is_allowed(&own));
    // 250 fake info-hashes (more than the 64-swarm table) take no room.
    for i in 0..250u32 {
        let mut fake = [0u8; 20];
        fake[..4].copy_from_slice(&i.to_be_bytes());
        let (status, body) = t.handle(&announce_for(InfoHash(fake), 1), ip, now);
        assert_eq!(status, 200);
        assert!(refused(&body), "fake hash {i} is refused");
    }
    assert_eq!(t.torrent_count(), 0);
    // The owner's hashes are tracked, and each one allowed later too.
    t.handle(&announce_for(own, 1), ip, now);
    let (_, body) = t.handle(&announce_for(own, 2), ip, now);
    assert_eq!(peers_of(&body), [SocketAddr::new(ip, 7000)]);
    let later = InfoHash([0x43; 20]);
    t.allow(later);
    assert!(!refused(&t.handle(&announce_for(later, 1), ip, now).1));
    assert_eq!(t.torrent_count(), 2);

    t.disallow(&own);
    assert_eq!(t.peer_count(&own), 0, "a disallowed torrent's swarm is forgotten");
    assert_eq!(t.torrent_count(), 1);
    assert!(refused(&t.handle(&announce_for(own, 1), ip, now).1));
}

#[test]
fn allowing_on_an_open_tracker_starts_an_allow_list() {
    let mut t = TrackerServer::new(TrackerConfig::default());
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let (any, own) = (InfoHash([7; 20]), InfoHash([8; 20]));
    assert!(t.is_allowed(&any), "no allow-list: every hash is tracked");
    t.allow(own);
    assert!(!t.is_allowed(&any));
    assert!(matches!(
        parse_announce_response(&t.handle(&announce_for(any, 1), ip, Instant::now()).1),
        Err(ResponseError::Failure { .. })
    ));
}

#[test]
fn server_rejects_bad_requests() {
    let mut t = server();
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let now = Instant::now();
    assert_eq!(t.handle("/other", ip, now).0, 404);
    for target in
        ["/announce", "/announce?info_hash=abc", "/announce?info_hash=%zz", &announce_target(1, 0, 0, None)]
    {
        let (status, body) = t.handle(target, ip, now);
        assert_eq!(status, 200);
        assert!(matches!(parse_announce_response(&body), Err(ResponseError::Failure { .. })), "{target}");
    }
    let many = format!("/scrape?{}", "x=1&".repeat(200));
    assert!(matches!(
        parse_announce_response(&t.handle(&many, ip, now).1),
        Err(ResponseError::Failure { .. })
    ));
    assert_eq!(t.torrent_count(), 0);
}

fn arb_peer() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), 1u16..).prop_map(|(ip, port)| SocketAddr::new(IpAddr::V4(ip.into()), port)),
        (any::<[u8; 16]>(), 1u16..).prop_map(|(ip, port)| SocketAddr::new(IpAddr::V6(ip.into()), port)),
    ]
}

fn arb_response() -> impl Strategy<Value = AnnounceResponse> {
    (
        any::<u32>().prop_map(|v| v >> 1),
        proptest::option::of(any::<u32>().prop_map(|v| v >> 1)),
        proptest::option::of(any::<u32>().prop_map(|v| v >> 1)),
        proptest::option::of(any::<u32>().prop_map(|v| v >> 1)),
        proptest::option::of("[ -~]{0,20}"),
        proptest::collection::vec(arb_peer(), 0..40),
    )
        .prop_map(|(interval, min_interval, complete, incomplete, warning, peers)| AnnounceResponse {
            interval,
            min_interval,
            complete,
            incomplete,
            warning,
            peers,
        })
}

proptest! {
    #[test]
    fn response_round_trips(resp in arb_response(), compact in any::<bool>()) {
        let mut body = Vec::new();
        resp.encode(compact, &mut body);
        // The encoder writes canonical (sorted) bencode.
        prop_assert!(decode(&body).is_ok());
        let back = parse_announce_response(&body).unwrap();
        let mut expected = resp.clone();
        if compact {
            expected.peers.sort_by_key(|p| p.is_ipv6());
        }
        // The dict form renders IPv6 addresses as text; IPv4-mapped ones parse back the same.
        prop_assert_eq!(back, expected);
    }

    #[test]
    fn request_url_round_trips_through_the_server_parser(
        hash in any::<[u8; 20]>(), id in any::<[u8; 20]>(), port in 1u16.., up in any::<u64>(),
        down in any::<u64>(), left in any::<u64>(), event in 0u8..4, numwant in proptest::option::of(any::<u32>()),
        key in proptest::option::of(any::<u32>()),
    ) {
        let event = [None, Some(Event::Started), Some(Event::Completed), Some(Event::Stopped)][usize::from(event)];
        let r = AnnounceRequest { info_hash: InfoHash(hash), peer_id: PeerId(id), port, uploaded: up,
            downloaded: down, left, event, numwant, key };
        let url = r.url("http://h/announce?x=%20");
        prop_assert!(url.is_ascii() && !url.contains(' '));
        let query = url.split_once('?').unwrap().1;
        let q = AnnounceQuery::parse(query).unwrap();
        prop_assert_eq!(q, AnnounceQuery { info_hash: r.info_hash, peer_id: r.peer_id, port, uploaded: up,
            downloaded: down, left: Some(left), event, numwant, compact: true, key });
    }

    #[test]
    fn percent_round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let mut s = String::new();
        percent_encode(&bytes, &mut s);
        prop_assert_eq!(percent_decode(&s), Some(bytes));
    }

    #[test]
    fn hostile_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse_announce_response(&body);
        let mut prefixed = b"d8:intervali5e5:peers".to_vec();
        prefixed.extend_from_slice(&body);
        let _ = parse_announce_response(&prefixed);
    }

    #[test]
    fn hostile_targets_never_panic(target in "[/a-z_=&%?0-9A-F+]{0,120}") {
        let mut t = server();
        let (status, body) = t.handle(&target, IpAddr::V4(Ipv4Addr::LOCALHOST), Instant::now());
        prop_assert!(status == 200 || status == 404);
        prop_assert!(decode(&body).is_ok());
        let _ = crate::http::HttpUrl::parse(&format!("http://{target}"));
    }
}
