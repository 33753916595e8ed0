//! The announce policy on virtual time: no thread, no socket, no sleep.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use floodgate_engine::tracker::{AnnounceResponse, Event};

use super::{is_self, Due, Policy, Schedule, SwarmState};

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

const LISTEN: &str = "0.0.0.0:7000";

fn leeching(peers: usize, verified: u64) -> SwarmState {
    SwarmState { complete: false, peers, verified }
}

const DONE: SwarmState = SwarmState { complete: true, peers: 1, verified: 100 };

fn answer(interval: u32, min_interval: Option<u32>, peers: &[&str]) -> AnnounceResponse {
    AnnounceResponse {
        interval,
        min_interval,
        peers: peers.iter().map(|p| addr(p)).collect(),
        ..AnnounceResponse::default()
    }
}

fn tiers(t: &[&[&str]]) -> Vec<Vec<String>> {
    t.iter().map(|tier| tier.iter().map(|u| u.to_string()).collect()).collect()
}

/// Steps a policy through virtual time, answering every announce with `respond`.
struct Clock {
    p: Policy,
    now: Instant,
    /// `(seconds since start, event, first URL)` of each announce made.
    log: Vec<(u64, Option<Event>, String)>,
    start: Instant,
}

impl Clock {
    fn new(schedule: Schedule, t: &[&[&str]], swarm: SwarmState) -> Clock {
        let now = Instant::now();
        Clock {
            p: Policy::new(schedule, addr(LISTEN), tiers(t), swarm, now),
            now,
            log: Vec::new(),
            start: now,
        }
    }

    /// Advances to `secs` after the start one second at a time, observing `swarm` and
    /// answering each announce with `respond(due)` (`None`: every tracker of the tier failed).
    fn run_to(
        &mut self,
        secs: u64,
        swarm: SwarmState,
        mut respond: impl FnMut(&Due) -> Option<(usize, AnnounceResponse)>,
    ) -> Vec<SocketAddr> {
        let mut dial = Vec::new();
        while self.now < self.start + Duration::from_secs(secs) {
            self.now += Duration::from_secs(1);
            self.p.observe(swarm, self.now);
            while let Some(due) = self.p.poll_announce(self.now) {
                let at = (self.now - self.start).as_secs();
                self.log.push((at, due.event, due.urls[0].clone()));
                match respond(&due) {
                    Some((i, resp)) => dial.extend(self.p.handle_answer(due.tier, i, &resp, self.now)),
                    None => {
                        self.p.handle_failure(due.tier, self.now);
                    }
                }
            }
        }
        dial
    }

    fn times(&self) -> Vec<u64> {
        self.log.iter().map(|l| l.0).collect()
    }
}

#[test]
fn started_first_then_the_trackers_interval_within_bounds() {
    let mut c = Clock::new(Schedule::TORRENT, &[&["http://a/announce"]], leeching(3, 0));
    c.run_to(200, leeching(3, 0), |_| Some((0, answer(60, None, &[]))));
    assert_eq!(c.times(), vec![1, 61, 121, 181]);
    assert_eq!(c.log[0].1, Some(Event::Started));
    assert!(c.log[1..].iter().all(|l| l.1.is_none()), "{:?}", c.log);

    // An interval below 5 s is raised to 5 s; a min interval above it wins.
    let mut c = Clock::new(Schedule::TORRENT, &[&["http://a/announce"]], leeching(3, 0));
    c.run_to(20, leeching(3, 0), |_| Some((0, answer(1, None, &[]))));
    assert_eq!(c.times(), vec![1, 6, 11, 16]);
    let mut c = Clock::new(Schedule::TORRENT, &[&["http://a/announce"]], leeching(3, 0));
    c.run_to(40, leeching(3, 0), |_| Some((0, answer(10, Some(30), &[]))));
    assert_eq!(c.times(), vec![1, 31]);

    // The relays' schedule ignores the tracker's interval: every 15 s (when not starving).
    let mut c = Clock::new(Schedule::RELAYS, &[&["http://r/announce"]], DONE);
    c.run_to(50, DONE, |_| Some((0, answer(120, Some(5), &[]))));
    assert_eq!(c.times(), vec![1, 16, 31, 46]);
}

#[test]
fn starving_asks_sooner_but_not_more_often_than_allowed() {
    // No peer: every 10 s for a torrent's trackers (not every second), at least min interval.
    let mut c = Clock::new(Schedule::TORRENT, &[&["http://a/announce"]], leeching(0, 0));
    c.run_to(35, leeching(0, 0), |_| Some((0, answer(1800, None, &[]))));
    assert_eq!(c.times(), vec![1, 11, 21, 31]);
    let mut c = Clock::new(Schedule::TORRENT, &[&["http://a/announce"]], leeching(0, 0));
    c.run_to(70, leeching(0, 0), |_| Some((0, answer(1800, Some(30), &[]))));
    assert_eq!(c.times(), vec![1, 31, 61]);
    // The relays are asked every 3 s, their min interval notwithstanding.
    let mut c = Clock::new(Schedule::RELAYS, &[&["http://r/announce"]], leeching(0, 0));
    c.run_to(10, leeching(0, 0), |_| Some((0, answer(120, Some(5), &[]))));
    assert_eq!(c.times(), vec![1, 4, 7, 10]);
    // A complete torrent never starves.
    let mut c = Clock::new(Schedule::RELAYS, &[&["http://r/announce"]], DONE);
    c.run_to(20, SwarmState { peers: 0, ..DONE }, |_| Some((0, answer(120, None, &[]))));
    assert_eq!(c.times(), vec![1, 16]);
}

#[test]
fn peers_that_verify_nothing_count_as_starving_for_the_relays_schedule() {
    let mut c = Clock::new(Schedule::RELAYS, &[&["http://r/announce"]], leeching(2, 0));
    // Peers connected but the verified count stands still: starving after 3 s.
    c.run_to(10, leeching(2, 0), |_| Some((0, answer(120, None, &[]))));
    assert_eq!(c.times(), vec![1, 4, 7, 10]);
    assert!(c.p.is_starving());
    // Progress: back to every 15 s.
    let mut verified = 0;
    let mut c2 = Clock::new(Schedule::RELAYS, &[&["http://r/announce"]], leeching(2, 0));
    while c2.now < c2.start + Duration::from_secs(40) {
        verified += 1;
        c2.run_to((c2.now - c2.start).as_secs() + 1, leeching(2, verified), |_| {
            Some((0, answer(120, None, &[])))
        });
    }
    assert_eq!(c2.times(), vec![1, 16, 31]);
    assert!(!c2.p.is_starving());
    // The torrent schedule does not look at stalls.
    let mut c3 = Clock::new(Schedule::TORRENT, &[&["http://a/announce"]], leeching(2, 0));
    c3.run_to(30, leeching(2, 0), |_| Some((0, answer(100, None, &[]))));
    assert_eq!(c3.times(), vec![1]);
}

#[test]
fn failures_back_off_and_bep12_moves_the_answering_tracker_first() {
    let mut c = Clock::new(Schedule::TORRENT, &[&["http://a/x", "http://b/x"]], leeching(0, 0));
    // Both fail: retried after 10, 20, 40 ... s, not at the starving pace.
    c.run_to(200, leeching(0, 0), |_| None);
    assert_eq!(c.times(), vec![1, 11, 31, 71, 151]);
    // Then b answers: it is tried first from now on, and the starving pace resumes.
    let mut order = Vec::new();
    c.run_to(400, leeching(0, 0), |due| {
        order.push(due.urls.clone());
        Some((due.urls.iter().position(|u| u == "http://b/x").unwrap(), answer(1800, None, &[])))
    });
    assert_eq!(order[0], vec!["http://a/x", "http://b/x"]);
    assert!(order[1..].iter().all(|o| o[0] == "http://b/x"), "{order:?}");
    assert_eq!(&c.times()[5..8], &[311, 321, 331]);

    // The cap: 5 min for a torrent's trackers, 15 s for the relays'.
    assert_eq!(Schedule::TORRENT.retry_after(1), Duration::from_secs(10));
    assert_eq!(Schedule::TORRENT.retry_after(30), Duration::from_secs(300));
    assert_eq!(Schedule::RELAYS.retry_after(1), Duration::from_secs(3));
    assert_eq!(Schedule::RELAYS.retry_after(3), Duration::from_secs(12));
    assert_eq!(Schedule::RELAYS.retry_after(4), Duration::from_secs(15));
}

#[test]
fn each_tier_is_announced_to_on_its_own() {
    let mut c = Clock::new(Schedule::TORRENT, &[&["http://a/x"], &["http://b/x"]], leeching(1, 0));
    c.run_to(70, leeching(1, 0), |due| match due.urls[0].as_str() {
        "http://a/x" => Some((0, answer(30, None, &[]))),
        _ => None,
    });
    let a: Vec<u64> = c.log.iter().filter(|l| l.2 == "http://a/x").map(|l| l.0).collect();
    let b: Vec<u64> = c.log.iter().filter(|l| l.2 == "http://b/x").map(|l| l.0).collect();
    assert_eq!(a, vec![1, 31, 61]);
    assert_eq!(b, vec![1, 11, 31]);
    // b never answered: every announce to it is still `started`.
    assert!(c.log.iter().filter(|l| l.2 == "http://b/x").all(|l| l.1 == Some(Event::Started)));
}

#[test]
fn completion_says_completed_at_once_and_stopping_says_stopped() {
    let mut c = Clock::new(Schedule::TORRENT, &[&["http://a/x"]], leeching(1, 0));
    c.run_to(10, leeching(1, 0), |_| Some((0, answer(1800, None, &[]))));
    c.run_to(12, DONE, |_| Some((0, answer(1800, None, &[]))));
    assert_eq!(
        c.log.iter().map(|l| (l.0, l.1)).collect::<Vec<_>>(),
        vec![(1, Some(Event::Started)), (11, Some(Event::Completed))]
    );
    assert_eq!(c.p.stopping(), vec![("http://a/x".to_string(), vec![Event::Stopped])]);

    // A failed `completed` is owed until answered, and said before `stopped` at the end.
    let mut c = Clock::new(Schedule::TORRENT, &[&["http://a/x"]], leeching(1, 0));
    c.run_to(5, leeching(1, 0), |_| Some((0, answer(1800, None, &[]))));
    c.run_to(8, DONE, |_| None);
    assert_eq!(c.log.last().map(|l| l.1), Some(Some(Event::Completed)));
    assert_eq!(c.p.stopping(), vec![("http://a/x".to_string(), vec![Event::Completed, Event::Stopped])]);

    // Completed just before stopping (`get --no-seed`): the last observe makes it owed.
    let mut c = Clock::new(Schedule::TORRENT, &[&["http://a/x"]], leeching(1, 0));
    c.run_to(5, leeching(1, 0), |_| Some((0, answer(1800, None, &[]))));
    c.p.observe(DONE, c.now);
    assert_eq!(c.p.stopping(), vec![("http://a/x".to_string(), vec![Event::Completed, Event::Stopped])]);

    // Completed before any tracker answered: at once (not after the retry wait) `started`,
    // then `completed` right after.
    let mut c = Clock::new(Schedule::TORRENT, &[&["http://a/x"]], leeching(1, 0));
    c.run_to(3, leeching(1, 0), |_| None);
    c.run_to(20, DONE, |_| Some((0, answer(1800, None, &[]))));
    let events: Vec<_> = c.log.iter().map(|l| (l.0, l.1)).collect();
    assert_eq!(
        events,
        vec![(1, Some(Event::Started)), (4, Some(Event::Started)), (4, Some(Event::Completed))]
    );

    // A torrent complete from the start (a seed) never says `completed`; a tier never answered
    // is not told `stopped`.
    let mut c = Clock::new(Schedule::TORRENT, &[&["http://a/x"], &["http://b/x"]], DONE);
    c.run_to(5, DONE, |due| (due.urls[0] == "http://a/x").then(|| (0, answer(1800, None, &[]))));
    assert!(c.log.iter().all(|l| l.1 == Some(Event::Started)));
    assert_eq!(c.p.stopping(), vec![("http://a/x".to_string(), vec![Event::Stopped])]);
}

#[test]
fn peers_are_dialed_once_until_every_peer_is_lost() {
    let peers = ["10.0.0.1:1", "10.0.0.2:2", "127.0.0.1:7000", "0.0.0.0:5"];
    let mut c = Clock::new(Schedule::TORRENT, &[&["http://a/x"]], leeching(0, 0));
    let dial = c.run_to(1, leeching(0, 0), |_| Some((0, answer(30, None, &peers))));
    assert_eq!(dial, vec![addr("10.0.0.1:1"), addr("10.0.0.2:2")], "ourselves and 0.0.0.0 are not dialed");
    // Connected: the same peers again are not dialed again.
    let dial = c.run_to(40, leeching(2, 0), |_| Some((0, answer(30, None, &peers))));
    assert!(dial.is_empty(), "{dial:?}");
    // Every peer lost: the announce at 41 s (10 s after the regular one) dials all again.
    let dial = c.run_to(45, leeching(0, 0), |_| Some((0, answer(30, None, &peers))));
    assert_eq!(dial, vec![addr("10.0.0.1:1"), addr("10.0.0.2:2")]);
    assert_eq!(c.times(), vec![1, 31, 41]);
}

#[test]
fn changing_tiers_keeps_known_ones_and_starts_new_ones() {
    let mut c = Clock::new(Schedule::RELAYS, &[&["http://r1/announce"]], DONE);
    c.run_to(2, DONE, |_| Some((0, answer(120, None, &[]))));
    assert_eq!(c.times(), vec![1]);
    // A second relay appears: it gets `started` at once; the first keeps its schedule.
    c.p.set_tiers(tiers(&[&["http://r1/announce"], &["http://r2/announce"]]), c.now);
    c.run_to(17, DONE, |_| Some((0, answer(120, None, &[]))));
    let got: Vec<_> = c.log.iter().map(|l| (l.0, l.1, l.2.as_str())).collect();
    assert_eq!(
        got,
        vec![
            (1, Some(Event::Started), "http://r1/announce"),
            (3, Some(Event::Started), "http://r2/announce"),
            (16, None, "http://r1/announce"),
        ]
    );
    // The first relay goes away: it is neither announced to nor told `stopped`.
    c.p.set_tiers(tiers(&[&["http://r2/announce"]]), c.now);
    assert_eq!(c.p.stopping(), vec![("http://r2/announce".to_string(), vec![Event::Stopped])]);
    // An empty list is no tier at all.
    c.p.set_tiers(tiers(&[&[]]), c.now);
    assert!(c.p.poll_announce(c.now + Duration::from_secs(100)).is_none());
}

#[test]
fn an_announce_in_flight_is_not_handed_out_twice() {
    let now = Instant::now();
    let mut p = Policy::new(Schedule::TORRENT, addr(LISTEN), tiers(&[&["http://a/x"]]), leeching(0, 0), now);
    p.observe(leeching(0, 0), now);
    let due = p.poll_announce(now).unwrap();
    assert_eq!(due, Due { tier: 0, event: Some(Event::Started), urls: vec!["http://a/x".to_string()] });
    assert!(p.poll_announce(now + Duration::from_secs(60)).is_none());
    p.handle_failure(0, now);
    assert!(p.poll_announce(now + Duration::from_secs(60)).is_some());
}

#[test]
fn own_address_is_not_dialled() {
    assert!(is_self(addr("127.0.0.1:7000"), addr("127.0.0.1:7000")));
    assert!(is_self(addr("127.0.0.1:7000"), addr("0.0.0.0:7000")));
    assert!(is_self(addr("0.0.0.0:9"), addr("127.0.0.1:7000")));
    assert!(!is_self(addr("127.0.0.1:7001"), addr("127.0.0.1:7000")));
    assert!(!is_self(addr("10.0.0.1:7000"), addr("127.0.0.1:7000")));
}
