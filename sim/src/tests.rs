//! Small cases with known answers. No timing asserts: virtual time only.

use crate::bound::kumar_ross;
use crate::leasebook::{make_room, LeaseBook, LeasePolicy};
use crate::mix::Mix;
use crate::run;
use crate::scenario::Scenario;
use crate::topology::Topology;
use crate::units::{parse_rate, parse_size};

const MBIT: f64 = 1e6 / 8.0;

/// `clients` alike (up/down Mbit/s) fed by `seeds` BitTorrent seeds, no relay, no HTTP.
fn swarm(clients: usize, seed_up: f64, up: f64, down: f64) -> Scenario {
    Scenario {
        clients,
        mix: Mix::uniform(up * MBIT, down * MBIT, 0.0),
        relays: Some(0),
        seeds: 1,
        seed_up: seed_up * MBIT,
        file_size: 64 << 20,
        pieces: 64,
        http: false,
        dt: Some(0.01),
        horizon: 3600.0,
        ..Scenario::default()
    }
}

#[test]
fn one_seed_one_client_takes_file_over_the_narrower_link() {
    // Seed up 80 Mbit/s, client down 40: F / min(u, d) = 64 MiB / 5 MB/s = 13.42 s (with every
    // byte of the links payload; the default keeps back TCP/IP headers).
    let one = |seed_up, down| Scenario { link_efficiency: 1.0, ..swarm(1, seed_up, 10.0, down) };
    let out = run(&one(80.0, 40.0)).expect("runs");
    let expect = (64u64 << 20) as f64 / (40.0 * MBIT);
    let last = out.last().expect("done");
    assert!((last - expect).abs() / expect < 0.01, "last {last} vs {expect}");
    assert!((out.bound - expect).abs() < 1e-9);
    // And the other way round: the seed's upload is the narrower one.
    let out = run(&one(20.0, 400.0)).expect("runs");
    let expect = (64u64 << 20) as f64 / (20.0 * MBIT);
    let last = out.last().expect("done");
    assert!((last - expect).abs() / expect < 0.01, "last {last} vs {expect}");
}

#[test]
fn a_swarm_limited_by_client_uploads_gets_close_to_the_bound() {
    // The netns harness' first setting at 1/4 the size: seed 200, clients 80 / 400, 8 clients.
    let out = run(&swarm(8, 200.0, 80.0, 400.0)).expect("runs");
    let last = out.last().expect("done");
    assert!(last >= out.bound * 0.999, "faster than the bound: {last} < {}", out.bound);
    assert!(last <= out.bound * 1.2, "last {last}, bound {}", out.bound);
    let bt: f64 = out.bt_bytes.iter().sum();
    // Every byte came over BitTorrent; endgame duplicates (the picker's tie-breaks use its own
    // thread RNG, so their amount varies run to run) add a little.
    assert!(bt >= 8.0 * out.file * 0.999 && bt <= 8.0 * out.file * 1.15, "bt bytes {bt}");
}

#[test]
fn p2p_blocked_clients_get_the_file_over_http_from_relays_within_the_quota() {
    let quota = 3u64 << 26; // 3 × 64 MiB, for 2 relays pulling one file each
    let s = Scenario {
        clients: 40,
        mix: Mix::parse("office:90,blocked:10").expect("mix"),
        relays: Some(2),
        file_size: 64 << 20,
        pieces: 64,
        origin_cap: 200.0 * MBIT,
        origin_quota: Some(quota),
        horizon: 3600.0,
        ..Scenario::default()
    };
    let out = run(&s).expect("runs");
    assert!(out.last().is_some(), "every client done");
    assert!(out.origin_total() <= quota as f64 + 1.0, "origin {} > quota {quota}", out.origin_total());
    for c in 0..out.clients {
        if out.class[c] == "blocked" {
            assert_eq!(out.bt_bytes[c], 0.0, "blocked client {c} used BitTorrent");
            assert!(out.http_bytes[c] >= out.file * 0.99, "client {c} http {}", out.http_bytes[c]);
        }
    }
    // Relays pulled about one copy each at most; most client bytes came over BitTorrent.
    assert!(out.relay_origin_bytes <= 2.0 * out.file * 1.05);
    let bt: f64 = out.bt_bytes.iter().sum();
    assert!(bt > 0.5 * 40.0 * out.file, "bt {bt}");
}

#[test]
fn kumar_ross_takes_the_largest_term() {
    let f = 1e9;
    assert_eq!(kumar_ross(f, 1e8, 0.0, 1e9, 1), 10.0); // F / u_s
    assert_eq!(kumar_ross(f, 1e10, 0.0, 1e8, 1), 10.0); // F / d_min
    assert_eq!(kumar_ross(f, 1e8, 9e8, 1e10, 100), 100.0); // N F / (u_s + Σ u)
}

#[test]
fn units_and_mixes_parse() {
    assert_eq!(parse_size("256MiB"), Ok(256 << 20));
    assert_eq!(parse_size("1GB"), Ok(1_000_000_000));
    assert!(parse_size("lots").is_err());
    assert_eq!(parse_rate("80mbit"), Ok(10e6));
    assert_eq!(parse_rate("500KB/s"), Ok(500e3));
    assert_eq!(parse_rate("1gbit"), Ok(125e6));
    let m = Mix::parse("dc:1,home:3").expect("mix");
    assert_eq!(m.class_of(0, 4).name, "dc");
    assert_eq!(m.class_of(3, 4).name, "home");
    assert!(Mix::parse("moon:1").is_err());
}

#[test]
fn topology_is_deterministic_two_way_and_keeps_nat_pairs_apart() {
    let s =
        Scenario { clients: 500, mix: Mix::parse("office:50,home:50").expect("mix"), ..Scenario::default() };
    let a = Topology::build(&s);
    let b = Topology::build(&s);
    assert_eq!(a.adj, b.adj);
    for i in 0..a.len() {
        for &j in a.neighbours(i) {
            assert!(a.neighbours(j as usize).contains(&(i as u32)), "{i}-{j} one-way");
            assert!(!(a.nat[i] && a.nat[j as usize]), "NAT pair {i}-{j}");
        }
    }
    // ctl's relay_count: 2 % of 500.
    assert_eq!(a.relays, 10);
}

#[test]
fn make_room_gives_a_newcomer_its_share_from_the_holders() {
    // A lone holder with the whole limit: the second relay of equal weight gets half.
    assert_eq!(make_room(100, 0, 1.0, &[(100, 1.0)]), (50, vec![50]));
    // Three holders of 33, a fourth arrives: holders cut to floor(75 / 3), it gets the 24 left.
    assert_eq!(make_room(99, 0, 1.0, &[(33, 1.0), (33, 1.0), (33, 1.0)]), (24, vec![25, 25, 25]));
    // Room already free: holders keep their grants. Weights: a weight-3 newcomer takes 3/4.
    assert_eq!(make_room(100, 0, 1.0, &[(10, 1.0)]), (50, vec![10]));
    assert_eq!(make_room(100, 0, 3.0, &[(100, 1.0)]), (75, vec![25]));
    // A newcomer wanting less than its share takes only that. Unlimited and zero limits.
    assert_eq!(make_room(100, 20, 1.0, &[(100, 1.0)]), (20, vec![80]));
    assert_eq!(make_room(-1, 0, 1.0, &[(5, 1.0)]), (-1, vec![5]));
    assert_eq!(make_room(0, 0, 1.0, &[(0, 1.0)]), (0, vec![0]));
}

proptest::proptest! {
    #[test]
    fn make_room_never_exceeds_the_limit_nor_raises_holders(
        limit in 0i64..1_000_000,
        want in -1i64..1_000_000,
        weight in 0.0f64..10.0,
        current in proptest::collection::vec((-1i64..1_000_000, 0.0f64..10.0), 0..50),
    ) {
        let (grant, cut) = make_room(limit, want, weight, &current);
        proptest::prop_assert_eq!(cut.len(), current.len());
        proptest::prop_assert!(grant >= 0 && cut.iter().all(|&g| g >= 0));
        proptest::prop_assert!(grant + cut.iter().sum::<i64>() <= limit);
        for (new, (old, _)) in cut.iter().zip(&current) {
            proptest::prop_assert!(*old < 0 || new <= old);
        }
        proptest::prop_assert!(limit == 0 || want == 0 || grant >= 1);
        proptest::prop_assert!(want <= 0 || grant <= want);
    }
}

#[test]
fn ctl_gives_the_first_relay_the_whole_rate_and_refused_relays_retry_with_backoff() {
    let rows = Topology::build(&Scenario { clients: 200, ..Scenario::default() }).relay_rows;
    assert!(rows.len() >= 2);
    let mut book = LeaseBook::new([-1, 1000, -1], &rows, 30.0, [3, 0], LeasePolicy::Holders);
    assert!(book.tick(0, 0.0, 1 << 30));
    assert_eq!(book.lease(0).map(|l| l.rate), Some(1000));
    // The second is refused (ctl's Exhausted) and asks again after 0.1 s, then 0.2 s.
    assert!(!book.tick(1, 0.0, 1 << 30));
    assert!((book.next[1] - 0.1).abs() < 1e-9);
    assert!(!book.tick(1, 0.1, 1 << 30));
    assert!((book.next[1] - 0.3).abs() < 1e-9);
    assert_eq!(book.refusals, 2);
    // Once the first lets go, the next attempt gets the rate.
    book.release(0);
    assert!(book.tick(1, 0.31, 1 << 30));
    assert_eq!(book.lease(1).map(|l| l.rate), Some(1000));
    // The what-if policy splits the rate instead: the second relay takes its weighted share.
    let mut book = LeaseBook::new([-1, 1000, -1], &rows, 30.0, [3, 0], LeasePolicy::MakeRoom);
    assert!(book.tick(0, 0.0, 1 << 30) && book.tick(1, 0.0, 1 << 30));
    let (a, b) = (book.lease(0).map_or(0, |l| l.rate), book.lease(1).map_or(0, |l| l.rate));
    assert!(a > 0 && b > 0 && a + b <= 1000, "{a} + {b}");
}
