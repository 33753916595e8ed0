//! The switch on virtual time, and the run planner on a piece map.

use std::time::{Duration, Instant};

use super::*;
use crate::layout::Layout;
use crate::piece_map::{Bitfield, PeerSlot, PieceMap};
use crate::types::PieceIndex;

const MB: u64 = 1_000_000;

/// Drives a switch with a BT rate per sample (bytes/s) on virtual time.
struct Drive {
    switch: Switch,
    now: Instant,
    bt: u64,
    http: u64,
    remaining: u64,
    peers: usize,
    useful: bool,
}

impl Drive {
    fn new(config: SwitchConfig) -> Self {
        let now = Instant::now();
        Drive {
            switch: Switch::new(config, now),
            now,
            bt: 0,
            http: 0,
            remaining: 1000 * MB,
            peers: 4,
            useful: true,
        }
    }

    /// One sample after BT delivered at `rate` for one interval.
    fn step(&mut self, rate: u64) -> Option<Change> {
        let interval = self.switch.config().interval;
        assert_eq!(self.switch.poll_timeout(), self.now + interval);
        self.now += interval;
        self.bt += rate * interval.as_secs();
        let sample = Sample {
            bt_bytes: self.bt,
            http_bytes: self.http,
            remaining: self.remaining,
            peers: self.peers,
            useful_peers: self.useful,
        };
        self.switch.handle_sample(self.now, sample)
    }

    fn steps(&mut self, rate: u64, n: usize) -> Vec<Change> {
        (0..n).filter_map(|_| self.step(rate)).collect()
    }
}

fn short() -> SwitchConfig {
    SwitchConfig {
        interval: Duration::from_secs(1),
        window: Duration::from_secs(5),
        threshold: MB / 2,
        cooldown: Duration::from_secs(20),
        share_percent: 30,
        slow_samples: 3,
    }
}

#[test]
fn triggers_only_after_consecutive_slow_samples() {
    let mut d = Drive::new(SwitchConfig::default());
    assert_eq!(d.step(100_000), None);
    assert_eq!(d.step(100_000), None);
    let c = d.step(100_000).expect("third slow sample switches");
    assert_eq!((c.from, c.to), (Level::Off, Level::Partial));
    assert!(matches!(c.reason, Reason::BtSlow(r) if r < 500_000), "{c:?}");
    assert_eq!(c.at, Duration::from_secs(6));
    // A fast swarm never switches.
    let mut d = Drive::new(SwitchConfig::default());
    assert!(d.steps(2 * MB, 100).is_empty());
    assert_eq!(d.switch.allowance(), Allowance::None);
}

#[test]
fn a_slump_after_a_fast_start_triggers_before_the_window_forgets_it() {
    let mut d = Drive::new(SwitchConfig::default());
    assert!(d.steps(3 * MB, 20).is_empty(), "40 s at 3 MB/s");
    // The last pieces trickle from a slow peer: the 45 s window still says ~2.4 MB/s. The
    // recent rate spans two samples, so the first slow sample is not slow yet; three are.
    assert!(d.steps(100_000, 3).is_empty());
    let c = d.step(100_000).expect("three samples of a slow recent rate switch");
    assert!(d.switch.bt_rate() > 500_000, "the windowed rate alone would not have: {}", d.switch.bt_rate());
    assert_eq!((c.from, c.to, c.reason), (Level::Off, Level::Partial, Reason::BtSlow(100_000)));
    // A short lull is no slump.
    let mut d = Drive::new(SwitchConfig::default());
    d.steps(3 * MB, 20);
    assert!(d.steps(100_000, 3).is_empty());
    assert!(d.steps(3 * MB, 30).is_empty());
}

#[test]
fn a_stall_with_useful_peers_goes_full_but_a_slow_start_only_partial() {
    // Peers hold what we lack and BitTorrent delivered, then nothing arrives: full, so HTTP
    // may also take the pieces those peers hold half-sent.
    let mut d = Drive::new(SwitchConfig::default());
    d.steps(3 * MB, 20);
    assert!(d.steps(0, 3).is_empty());
    let c = d.step(0).expect("a stall switches");
    assert_eq!((c.from, c.to, c.reason), (Level::Off, Level::Full, Reason::BtStalled));
    // Nothing delivered yet (peers connected, not unchoked): slow, not stalled.
    let mut d = Drive::new(SwitchConfig::default());
    let c = d.steps(0, 3);
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!((c[0].to, c[0].reason), (Level::Partial, Reason::BtSlow(0)));
}

#[test]
fn one_fast_sample_resets_the_streak() {
    let mut d = Drive::new(short());
    // Window 5 s: two slow seconds, then a burst that lifts the windowed rate over the threshold.
    d.steps(0, 2);
    assert_eq!(d.step(10 * MB), None);
    assert_eq!(d.switch.level(), Level::Off);
    assert!(d.steps(MB, 10).is_empty());
}

#[test]
fn partial_paces_the_deficit_within_the_share() {
    let mut d = Drive::new(short());
    d.steps(100_000, 3);
    assert_eq!(d.switch.level(), Level::Partial);
    // threshold 500 kB/s + 20 % margin − 100 kB/s recent BT = 500 kB/s; 30 % of 1000 MB.
    assert_eq!(d.switch.allowance(), Allowance::Paced { rate: 500_000, bytes: 300 * MB });
    d.http += 100 * MB;
    d.step(100_000);
    assert_eq!(d.switch.allowance(), Allowance::Paced { rate: 500_000, bytes: 200 * MB });
}

#[test]
fn a_used_up_share_raises_to_full_while_bt_stays_slow() {
    let mut d = Drive::new(short());
    d.steps(100_000, 3);
    d.http += 300 * MB;
    d.remaining -= 300 * MB;
    let changes = d.steps(100_000, 3);
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(
        (changes[0].from, changes[0].to, changes[0].reason),
        (Level::Partial, Level::Full, Reason::ShareUsedUp)
    );
    assert_eq!(d.switch.allowance(), Allowance::Unlimited);
}

#[test]
fn lowering_waits_for_the_cooldown_and_backs_off_when_bt_recovers() {
    let mut d = Drive::new(short());
    d.steps(100_000, 3);
    assert_eq!(d.switch.level(), Level::Partial);
    let switched = d.now;
    // BT recovers at once; the level stays until 20 s after the change.
    let mut lowered = None;
    for _ in 0..40 {
        if let Some(c) = d.step(2 * MB) {
            lowered = Some((c, d.now));
            break;
        }
    }
    let (c, at) = lowered.expect("backs off");
    assert_eq!((c.from, c.to), (Level::Partial, Level::Off));
    assert!(matches!(c.reason, Reason::BtRecovered(r) if r >= MB / 2));
    assert_eq!(at.duration_since(switched), Duration::from_secs(20), "exactly at the end of the cooldown");
    assert_eq!(d.switch.allowance(), Allowance::None);
}

#[test]
fn no_peer_goes_full_at_once_and_useful_peers_bring_it_down() {
    let mut d = Drive::new(short());
    d.peers = 0;
    d.useful = false;
    let c = d.steps(0, 3);
    assert_eq!(c.len(), 1);
    assert_eq!((c[0].from, c[0].to, c[0].reason), (Level::Off, Level::Full, Reason::NoPeers));
    // Peers with nothing we lack are no better.
    d.peers = 3;
    assert!(d.steps(0, 30).is_empty());
    // Useful but slow peers: down to partial once cooled; fast ones: off.
    d.useful = true;
    let c = d.steps(200_000, 5);
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!((c[0].from, c[0].to), (Level::Full, Level::Partial));
    assert!(matches!(c[0].reason, Reason::PeersBack(_)));
    let c = d.steps(3 * MB, 40);
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!((c[0].from, c[0].to), (Level::Partial, Level::Off));
    assert_eq!(d.switch.changes().len(), 3);
}

#[test]
fn peers_lost_while_partial_raise_to_full_without_waiting() {
    let mut d = Drive::new(short());
    d.steps(100_000, 3);
    d.useful = false;
    let c = d.steps(0, 3);
    assert_eq!(c.len(), 1);
    assert_eq!((c[0].to, c[0].reason), (Level::Full, Reason::NoUsefulPeers));
}

fn map(pieces: u32) -> PieceMap {
    let layout = Layout::single("f", u64::from(pieces) * 32 * 1024, 32 * 1024).unwrap();
    PieceMap::new(&layout)
}

#[test]
fn plans_pieces_no_peer_has_first_and_merges_neighbours() {
    let m = map(10);
    // Every piece but 6..9 is held by a peer.
    let mut peer = Bitfield::new(10);
    for p in 0..6 {
        peer.set(PieceIndex(p));
    }
    m.add_peer(peer.view()).unwrap();
    let run = plan_run(&m, 1 << 20, false, |_| false).unwrap();
    assert_eq!(run, PlannedRun { first: PieceIndex(6), count: 4 });
    // The byte limit cuts the run.
    assert_eq!(plan_run(&m, 64 * 1024, false, |_| false).unwrap().count, 2);
    // Pieces HTTP has in flight are never planned again.
    assert_eq!(
        plan_run(&m, 1 << 20, false, |p| p.0 < 8).unwrap(),
        PlannedRun { first: PieceIndex(8), count: 2 }
    );
    // A piece a peer was asked for but sent nothing of may join the run...
    let b = m.claim_block(PieceIndex(8), PeerSlot(0)).unwrap();
    assert_eq!(
        plan_run(&m, 1 << 20, false, |_| false).unwrap(),
        PlannedRun { first: PieceIndex(6), count: 4 }
    );
    // ...one it delivered part of ends it.
    m.receive_block(b, PeerSlot(0), &mut Vec::new()).unwrap();
    assert_eq!(
        plan_run(&m, 1 << 20, false, |_| false).unwrap(),
        PlannedRun { first: PieceIndex(6), count: 2 }
    );
}

#[test]
fn overlap_only_when_nothing_is_missing() {
    let m = map(2);
    for p in 0..2 {
        let b = m.claim_block(PieceIndex(p), PeerSlot(1)).unwrap();
        m.receive_block(b, PeerSlot(1), &mut Vec::new()).unwrap();
    }
    assert_eq!(plan_run(&m, 1 << 20, false, |_| false), None);
    assert_eq!(plan_run(&m, 1 << 20, true, |_| false), Some(PlannedRun { first: PieceIndex(0), count: 2 }));
}
