//! The gap-fill switch: a state machine fed one [`Sample`] per interval that says how much HTTP
//! the client may use ([`Allowance`]).
//!
//! # Decision function
//! Every sample adds the cumulative BitTorrent payload count to a sliding window; the **BT
//! rate** is the window's bytes over its span (the span grows to `window` after start), the
//! **recent rate** the same over the last two samples.
//! A sample is **slow** when either rate is below `threshold` (the recent one catches a stall
//! the window would hide for most of its span: the last pieces queued at a slow peer while
//! the download's first minute was fast), and **starved** when no connected
//! peer has a piece we lack (no peer at all counts: every dial failed, nobody connects in, or
//! P2P is blocked), or when BitTorrent, after delivering, has stalled: nothing arrived over the
//! last two samples (peers that hold the pieces we lack but send nothing are no better than no
//! peers, and only the full level may overlap the pieces they hold half-delivered). Streaks of `slow_samples` consecutive samples decide:
//!
//! | from | to | when |
//! |---|---|---|
//! | off, partial | full | starved streak (no useful peer, or BitTorrent stalled) |
//! | off | partial | slow streak with useful peers |
//! | partial | full | slow streak and the partial share of this period is used up |
//! | full | partial | useful peers again for a streak, cooldown over, still slow |
//! | partial, full | off | BT rate ≥ threshold for a streak, useful peers, cooldown over |
//!
//! Raising is never delayed by the cooldown (the minimum speed comes first); lowering waits
//! `cooldown` after the last change, so a flapping swarm does not flap the switch.
//!
//! At **partial**, HTTP is paced to the deficit: `threshold × (1 + margin) − recent BT rate`
//! (recent: the last two samples, so pacing follows BT within seconds while the trigger looks
//! at the whole window), and within each decision period (one cooldown) HTTP takes at most
//! `share_percent` of the bytes remaining when the period began. At **full**, HTTP takes
//! whatever it can.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Extra rate aimed for above the threshold at partial level, in percent.
const PACE_MARGIN_PERCENT: u64 = 20;
/// Slowest pace given at partial level, bytes/s (a request must make progress).
const MIN_PACE: u64 = 64 * 1024;

/// The switch's settings (the design's defaults; all configurable).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SwitchConfig {
    /// Time between samples.
    pub interval: Duration,
    /// Span of the sliding window the BT rate is measured over.
    pub window: Duration,
    /// BitTorrent rate below which HTTP helps, bytes/s.
    pub threshold: u64,
    /// Least time after a level change before the level may be lowered; also the decision
    /// period of the partial share.
    pub cooldown: Duration,
    /// At partial level, the most HTTP may take per decision period, in percent of the bytes
    /// remaining when the period began (1–100).
    pub share_percent: u8,
    /// Consecutive samples a condition must hold before the level changes.
    pub slow_samples: u32,
}

impl Default for SwitchConfig {
    fn default() -> Self {
        SwitchConfig {
            interval: Duration::from_secs(2),
            window: Duration::from_secs(45),
            threshold: 500_000,
            cooldown: Duration::from_secs(120),
            share_percent: 30,
            slow_samples: 3,
        }
    }
}

/// How much HTTP the client uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// BitTorrent only.
    Off,
    /// HTTP fills the deficit below the threshold, within the share.
    Partial,
    /// HTTP takes everything left.
    Full,
}

impl Level {
    /// A short lowercase name (`off`, `partial`, `full`).
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Off => "off",
            Level::Partial => "partial",
            Level::Full => "full",
        }
    }
}

/// Why the level changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The windowed BT rate stayed below the threshold (bytes/s).
    BtSlow(u64),
    /// No connected peer (dials fail, nothing comes in, or P2P is blocked).
    NoPeers,
    /// Peers are connected but none has a piece we lack.
    NoUsefulPeers,
    /// BitTorrent had delivered, then nothing arrived over the last two samples.
    BtStalled,
    /// At partial level the period's share ran out while BT was still slow.
    ShareUsedUp,
    /// Useful peers came back (the BT rate, bytes/s, is still below the threshold).
    PeersBack(u64),
    /// The windowed BT rate is back at or above the threshold (bytes/s).
    BtRecovered(u64),
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::BtSlow(r) => write!(f, "BitTorrent slow ({r} B/s)"),
            Reason::NoPeers => f.write_str("no peer connected"),
            Reason::NoUsefulPeers => f.write_str("no peer has a piece we lack"),
            Reason::BtStalled => f.write_str("BitTorrent stalled (nothing arrived)"),
            Reason::ShareUsedUp => f.write_str("partial share used up while BitTorrent is slow"),
            Reason::PeersBack(r) => write!(f, "useful peers back ({r} B/s)"),
            Reason::BtRecovered(r) => write!(f, "BitTorrent recovered ({r} B/s)"),
        }
    }
}

/// One level change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Change {
    /// When, since the switch started.
    pub at: Duration,
    /// The level before.
    pub from: Level,
    /// The level after.
    pub to: Level,
    /// Why.
    pub reason: Reason,
}

/// What the client measured at one sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    /// Payload bytes received from peers so far (cumulative).
    pub bt_bytes: u64,
    /// Bytes fetched over HTTP so far (cumulative).
    pub http_bytes: u64,
    /// Bytes not verified yet.
    pub remaining: u64,
    /// Connected peers.
    pub peers: usize,
    /// Whether some connected peer has a piece we lack.
    pub useful_peers: bool,
}

/// How much HTTP may be used now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Allowance {
    /// No new HTTP request.
    None,
    /// New requests within `rate` bytes/s and `bytes` more bytes.
    Paced {
        /// Pace, bytes/s.
        rate: u64,
        /// Bytes left in this decision period.
        bytes: u64,
    },
    /// As much as the sources give.
    Unlimited,
}

/// The gap-fill switch (see the module doc for the decision function).
#[derive(Debug)]
pub struct Switch {
    config: SwitchConfig,
    started: Instant,
    next_sample: Instant,
    /// (time, cumulative BT bytes) within the window.
    window: VecDeque<(Instant, u64)>,
    level: Level,
    changed_at: Option<Instant>,
    slow: u32,
    fast: u32,
    starved: u32,
    /// Partial share: period start, and the HTTP byte count allowed by its end.
    period: Option<(Instant, u64)>,
    http_bytes: u64,
    bt_rate: u64,
    recent_rate: u64,
    changes: Vec<Change>,
}

impl Switch {
    /// A switch at level off, first sample due one interval after `now`.
    pub fn new(config: SwitchConfig, now: Instant) -> Self {
        Switch {
            config,
            started: now,
            next_sample: now + config.interval,
            window: VecDeque::from([(now, 0)]),
            level: Level::Off,
            changed_at: None,
            slow: 0,
            fast: 0,
            starved: 0,
            period: None,
            http_bytes: 0,
            bt_rate: 0,
            recent_rate: 0,
            changes: Vec::new(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &SwitchConfig {
        &self.config
    }

    /// When the next sample is due.
    pub fn poll_timeout(&self) -> Instant {
        self.next_sample
    }

    /// The current level.
    pub fn level(&self) -> Level {
        self.level
    }

    /// The windowed BitTorrent rate at the last sample, bytes/s.
    pub fn bt_rate(&self) -> u64 {
        self.bt_rate
    }

    /// Every level change so far, oldest first.
    pub fn changes(&self) -> &[Change] {
        &self.changes
    }

    /// How much HTTP may be used now.
    pub fn allowance(&self) -> Allowance {
        match self.level {
            Level::Off => Allowance::None,
            Level::Full => Allowance::Unlimited,
            Level::Partial => {
                let target = self.config.threshold.saturating_mul(100 + PACE_MARGIN_PERCENT) / 100;
                let rate = target.saturating_sub(self.recent_rate).max(MIN_PACE);
                let bytes = self.period.map_or(0, |(_, limit)| limit.saturating_sub(self.http_bytes));
                if bytes == 0 {
                    Allowance::None
                } else {
                    Allowance::Paced { rate, bytes }
                }
            }
        }
    }

    /// Takes one sample at `now`; returns the level change it caused, if any.
    pub fn handle_sample(&mut self, now: Instant, s: Sample) -> Option<Change> {
        self.next_sample = now + self.config.interval;
        self.http_bytes = s.http_bytes;
        self.window.push_back((now, s.bt_bytes));
        while self.window.len() > 2
            && self.window.get(1).is_some_and(|(t, _)| now.duration_since(*t) >= self.config.window)
        {
            self.window.pop_front();
        }
        self.bt_rate = rate_between(self.window.front(), self.window.back());
        let recent = self.window.len().saturating_sub(3);
        self.recent_rate = rate_between(self.window.get(recent), self.window.back());
        let stalled = s.bt_bytes > 0 && self.recent_rate == 0;
        let starved = s.peers == 0 || !s.useful_peers || stalled;
        let slow = self.bt_rate.min(self.recent_rate) < self.config.threshold;
        self.starved = if starved { self.starved + 1 } else { 0 };
        self.slow = if slow && !starved { self.slow + 1 } else { 0 };
        self.fast = if !slow && !starved { self.fast + 1 } else { 0 };
        let n = self.config.slow_samples.max(1);
        let cooled = self.changed_at.is_none_or(|t| now.duration_since(t) >= self.config.cooldown);
        let share_left = matches!(self.allowance(), Allowance::Paced { .. });
        let period_over =
            self.period.is_some_and(|(start, _)| now.duration_since(start) >= self.config.cooldown);
        let level = self.level;
        let decision = if self.starved >= n && level != Level::Full {
            let reason = if s.peers == 0 {
                Reason::NoPeers
            } else if !s.useful_peers {
                Reason::NoUsefulPeers
            } else {
                Reason::BtStalled
            };
            Some((Level::Full, reason))
        } else {
            match level {
                Level::Off if self.slow >= n => {
                    Some((Level::Partial, Reason::BtSlow(self.bt_rate.min(self.recent_rate))))
                }
                Level::Partial if self.slow >= n && !share_left && !period_over => {
                    Some((Level::Full, Reason::ShareUsedUp))
                }
                Level::Partial | Level::Full if self.fast >= n && cooled => {
                    Some((Level::Off, Reason::BtRecovered(self.bt_rate)))
                }
                Level::Full if self.slow >= n && cooled => {
                    Some((Level::Partial, Reason::PeersBack(self.bt_rate)))
                }
                _ => None,
            }
        };
        let Some((to, reason)) = decision else {
            if level == Level::Partial && period_over {
                // A new decision period at the same level: a fresh share.
                self.start_period(now, s.remaining);
            }
            return None;
        };
        let change = Change { at: now.duration_since(self.started), from: self.level, to, reason };
        self.level = to;
        self.changed_at = Some(now);
        self.slow = 0;
        self.fast = 0;
        self.starved = 0;
        if to == Level::Partial {
            self.start_period(now, s.remaining);
        } else {
            self.period = None;
        }
        self.changes.push(change);
        Some(change)
    }

    fn start_period(&mut self, now: Instant, remaining: u64) {
        let share = remaining.saturating_mul(u64::from(self.config.share_percent.clamp(1, 100))) / 100;
        self.period = Some((now, self.http_bytes.saturating_add(share.max(1))));
    }
}

/// Bytes/s between two (time, cumulative bytes) points.
fn rate_between(a: Option<&(Instant, u64)>, b: Option<&(Instant, u64)>) -> u64 {
    match (a, b) {
        (Some(&(ta, ba)), Some(&(tb, bb))) if tb > ta => {
            (bb.saturating_sub(ba) as f64 / tb.duration_since(ta).as_secs_f64()) as u64
        }
        _ => 0,
    }
}
