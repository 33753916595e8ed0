//! Super-seeding (BEP 16): which piece a seed reveals to one peer next, as pure policy on
//! passed-in time. The driver shows it the torrent and the peer through [`RevealView`], applies
//! each piece it returns (a HAVE to the peer, the torrent's reveal count) and arms a timer for
//! [`SuperSeed::deadline`]. [`SuperSeeding::Auto`] reveals one by one only until
//! [`first_not_out`] reaches the end, then announces everything.

use std::time::{Duration, Instant};

use crate::types::PieceIndex;

/// Pieces revealed to one peer and not yet announced back by it. Two keep the peer busy while
/// it reports the first; one at a time (BEP 16's letter) idles it per piece.
pub const REVEAL_AHEAD: usize = 2;

/// How long a peer with nothing revealed waits before it is shown a piece that other peers
/// already have (it could fetch that from them).
pub const REVEAL_IDLE: Duration = Duration::from_secs(1);

/// How long a peer may sit on revealed pieces without announcing any before they are revealed
/// to it again: a peer that lost track of a HAVE never fetches that piece, and a repeat costs
/// 9 bytes. (Added while chasing libtorrent's one-piece-short magnet fetches, which turned out
/// to have another cause — see [`SuperSeed`]; kept as a cheap guard, never seen needed since.)
pub const REVEAL_REPEAT: Duration = Duration::from_secs(2);

/// Whether a seed reveals its pieces one by one or announces them all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SuperSeeding {
    /// Announce every piece we hold (a plain seed; what a downloader does).
    #[default]
    Off,
    /// Reveal pieces one by one for as long as the torrent is seeded (an operator's override).
    On,
    /// Reveal one by one while the swarm lacks a copy of something we hold, then announce
    /// everything: while only we have some piece, our upload is the swarm's limit for it and
    /// each piece should leave us once; once one copy is out, the swarm trades it and our
    /// upload is best spent as a plain seed's. No flag to guess for a slow or a fast seed,
    /// and a relay that is still pulling stays revealing (new pieces exist only with it).
    Auto,
}

impl SuperSeeding {
    /// The mode a relay's command line asks for: `--super-seed` (`on`), `--no-super-seed`
    /// (`off`), else automatic.
    pub fn from_flags(on: bool, off: bool) -> SuperSeeding {
        match (on, off) {
            (true, _) => SuperSeeding::On,
            (false, true) => SuperSeeding::Off,
            (false, false) => SuperSeeding::Auto,
        }
    }
}

/// How far [`SuperSeeding::Auto`] has got towards stopping: the first piece from `from` on
/// for which `out(p)` (a connected peer has piece `p`, or it was revealed to one) does not hold,
/// or `piece_count` when it holds for all. Auto may stop once that is `piece_count` and we hold
/// every piece. A piece once out stays counted (a reveal is never taken back), so a caller
/// keeps the answer as the next `from` and every piece is looked at about once, not at every
/// read of every peer.
pub fn first_not_out(from: u32, piece_count: u32, mut out: impl FnMut(PieceIndex) -> bool) -> u32 {
    (from..piece_count).find(|&p| !out(PieceIndex(p))).unwrap_or(piece_count)
}

/// What the reveal policy reads of the torrent and of one peer.
pub trait RevealView {
    /// Pieces in the torrent.
    fn piece_count(&self) -> u32;
    /// We hold `piece` verified, have not announced it to this peer, and the peer lacks it.
    fn may_reveal(&self, piece: PieceIndex) -> bool;
    /// The peer announced `piece` (HAVE or bitfield).
    fn peer_has(&self, piece: PieceIndex) -> bool;
    /// How many connected peers hold `piece`.
    fn availability(&self, piece: PieceIndex) -> u32;
    /// How many peers `piece` was revealed to so far.
    fn reveals(&self, piece: PieceIndex) -> u32;
    /// How many pieces of the torrent we have not announced to this peer yet.
    fn unannounced(&self) -> u32;
    /// We announced `piece` to this peer (revealed it, or announced it with the rest).
    fn announced(&self, piece: PieceIndex) -> bool;
}

/// One peer's super-seeding state: what it was shown and has not passed on yet.
///
/// Each new reveal is the piece we have and the peer lacks that the fewest peers have, then
/// that was revealed to the fewest peers: every peer gets different pieces, which it can only
/// pass on to the others, so the seed's upload goes to pieces the swarm lacks rather than to
/// copies of what it already trades. A piece some peer already has (or was shown) is revealed
/// only to a peer left with nothing to fetch from us for [`REVEAL_IDLE`]: until then it can get
/// that piece from the peer that has it. (This matters for a relay whose pull, not its upload,
/// is the limit: clients then keep up with the pull and need every new piece at once.)
///
/// The last two pieces a peer has not been told of go out together, the one it lacks first
/// (see [`next_reveal`](Self::next_reveal)): the HAVE that completes our announced set makes
/// us a seed in the peer's eyes, and libtorrent, handling that HAVE, drops a seed it is not
/// interested in *before* it notes that the piece is new to it. A peer that had fetched every
/// other revealed piece would close the connection one piece short. While we are still
/// incomplete (a relay pulling), the second-to-last piece is held back until the last one is
/// verified, so the two can go out together (a hold of about one piece's pull time).
#[derive(Debug, Clone)]
pub struct SuperSeed {
    /// Revealed pieces the peer has not announced yet.
    revealed: Vec<PieceIndex>,
    /// When the last piece was revealed to this peer.
    last_reveal: Instant,
    /// When the peer last took a revealed piece, or was last shown one (new or again).
    last_progress: Instant,
    /// The piece just revealed left one unannounced: reveal that one right behind it.
    partner_due: bool,
}

impl SuperSeed {
    /// A peer connected at `now`, shown nothing yet.
    pub fn new(now: Instant) -> Self {
        SuperSeed { revealed: Vec::new(), last_reveal: now, last_progress: now, partner_due: false }
    }

    /// The next piece to reveal to this peer now, if any. Call until `None` after every read
    /// from the peer, every newly verified piece and at [`deadline`](Self::deadline); the
    /// driver must apply each piece returned (announce it, count the reveal) before the next
    /// call, so the view reflects it.
    pub fn next_reveal(&mut self, now: Instant, view: &impl RevealView) -> Option<PieceIndex> {
        self.forget_taken(now, view);
        if std::mem::take(&mut self.partner_due) && view.unannounced() == 1 {
            // The last piece we have not told this peer of goes out behind the one just
            // revealed, past every limit: the HAVE that makes us look complete then reaches a
            // peer that the one before made interested (see the type's note).
            if let Some(last) = (0..view.piece_count()).map(PieceIndex).find(|&p| view.may_reveal(p)) {
                self.revealed.push(last);
                return Some(last);
            }
        }
        if self.revealed.len() >= REVEAL_AHEAD {
            return None;
        }
        // (availability, times revealed) of each piece we may reveal; no copy of a bitfield,
        // as this runs after every read from a super-seeded peer.
        let best = (0..view.piece_count())
            .map(PieceIndex)
            .filter(|&p| view.may_reveal(p))
            .map(|p| (view.availability(p), view.reveals(p), p))
            .min();
        let idle = self.revealed.is_empty() && now.saturating_duration_since(self.last_reveal) >= REVEAL_IDLE;
        let Some((availability, reveals, piece)) = best else {
            if idle {
                // Nothing to show an idle peer: look again in `REVEAL_IDLE`, so the deadline
                // moves on instead of staying in the past.
                self.last_reveal = now;
            }
            return None;
        };
        // Already with a peer, or on its way to one: the others get it from there.
        if (availability > 0 || reveals > 0) && !idle {
            return None;
        }
        if view.unannounced() == 2 && Self::partner_not_ready(piece, view) {
            // Revealing `piece` now would leave the peer one piece short of our whole set, a
            // piece it lacks and we do not hold yet (a relay still pulling): its HAVE would
            // later go out alone and could reach a peer with nothing else to fetch from us.
            // Hold `piece` until its partner lands; then both go out together.
            if idle {
                self.last_reveal = now;
            }
            return None;
        }
        self.last_reveal = now;
        self.last_progress = now;
        self.revealed.push(piece);
        self.partner_due = view.unannounced() == 2;
        Some(piece)
    }

    /// With two pieces left unannounced, `piece` and one other: whether the other is one the
    /// peer lacks and we cannot reveal yet (not verified here).
    fn partner_not_ready(piece: PieceIndex, view: &impl RevealView) -> bool {
        (0..view.piece_count())
            .map(PieceIndex)
            .find(|&p| p != piece && !view.announced(p))
            .is_some_and(|other| !view.peer_has(other) && !view.may_reveal(other))
    }

    /// Drops the revealed pieces the peer announced since; any counts as progress.
    fn forget_taken(&mut self, now: Instant, view: &impl RevealView) {
        let before = self.revealed.len();
        self.revealed.retain(|&p| !view.peer_has(p));
        if self.revealed.len() < before {
            self.last_progress = now;
        }
    }

    /// The revealed pieces to announce to the peer again, when it has taken none of them for
    /// [`REVEAL_REPEAT`] (then again every `REVEAL_REPEAT`); empty otherwise. The driver
    /// sends each as a HAVE; it is not a new reveal.
    pub fn repeat_due(&mut self, now: Instant, view: &impl RevealView) -> Vec<PieceIndex> {
        self.forget_taken(now, view);
        if self.revealed.is_empty() || now.saturating_duration_since(self.last_progress) < REVEAL_REPEAT {
            return Vec::new();
        }
        self.last_progress = now;
        self.revealed.clone()
    }

    /// When a piece held elsewhere may next be revealed to this idle peer (`None` while it
    /// still has revealed pieces to fetch): the driver's timer for [`next_reveal`](Self::next_reveal).
    pub fn deadline(&self) -> Option<Instant> {
        self.revealed.is_empty().then(|| self.last_reveal + REVEAL_IDLE)
    }

    /// Revealed pieces the peer has not announced yet.
    pub fn outstanding(&self) -> &[PieceIndex] {
        &self.revealed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reveal_the_peer_sits_on_is_repeated_every_repeat_interval_and_not_once_taken() {
        let t0 = Instant::now();
        let mut view = View::new(4);
        let mut s = SuperSeed::new(t0);
        let first = s.next_reveal(t0, &view).expect("a piece to reveal");
        view.announced[first.get()] = true;
        view.reveals[first.get()] += 1;
        let second = s.next_reveal(t0, &view).expect("a second piece to reveal");
        view.announced[second.get()] = true;
        view.reveals[second.get()] += 1;
        assert!(s.repeat_due(t0 + REVEAL_REPEAT / 2, &view).is_empty(), "too early to repeat");
        // The peer took the second piece: progress, so the clock starts again.
        view.peer_has[second.get()] = true;
        assert!(s.repeat_due(t0 + REVEAL_REPEAT, &view).is_empty(), "it just took a piece");
        let at = t0 + REVEAL_REPEAT * 2;
        assert_eq!(s.repeat_due(at, &view), vec![first], "the first HAVE was lost: repeat it");
        assert!(s.repeat_due(at + REVEAL_REPEAT / 2, &view).is_empty(), "not again at once");
        assert_eq!(s.repeat_due(at + REVEAL_REPEAT, &view), vec![first], "again after the interval");
        view.peer_has[first.get()] = true;
        assert!(s.repeat_due(at + REVEAL_REPEAT * 3, &view).is_empty(), "taken: nothing to repeat");
    }

    /// A torrent we fully hold, and one peer.
    struct View {
        availability: Vec<u32>,
        reveals: Vec<u32>,
        peer_has: Vec<bool>,
        announced: Vec<bool>,
        /// Pieces we hold verified (all, unless a test says otherwise: a pulling relay).
        held: Vec<bool>,
    }

    impl View {
        fn new(pieces: usize) -> View {
            View {
                availability: vec![0; pieces],
                reveals: vec![0; pieces],
                peer_has: vec![false; pieces],
                announced: vec![false; pieces],
                held: vec![true; pieces],
            }
        }

        /// What the driver does with a revealed piece.
        fn apply(&mut self, p: PieceIndex) {
            self.announced[p.0 as usize] = true;
            self.reveals[p.0 as usize] += 1;
        }

        fn reveal_all(&mut self, s: &mut SuperSeed, now: Instant) -> Vec<u32> {
            let mut out = Vec::new();
            while let Some(p) = s.next_reveal(now, self) {
                self.apply(p);
                out.push(p.0);
            }
            out
        }
    }

    impl RevealView for View {
        fn piece_count(&self) -> u32 {
            self.availability.len() as u32
        }
        fn may_reveal(&self, p: PieceIndex) -> bool {
            self.held[p.0 as usize] && !self.announced[p.0 as usize] && !self.peer_has[p.0 as usize]
        }
        fn peer_has(&self, p: PieceIndex) -> bool {
            self.peer_has[p.0 as usize]
        }
        fn availability(&self, p: PieceIndex) -> u32 {
            self.availability[p.0 as usize]
        }
        fn reveals(&self, p: PieceIndex) -> u32 {
            self.reveals[p.0 as usize]
        }
        fn unannounced(&self) -> u32 {
            self.announced.iter().filter(|a| !**a).count() as u32
        }
        fn announced(&self, p: PieceIndex) -> bool {
            self.announced[p.0 as usize]
        }
    }

    /// A relay still pulling: pieces land one at a time in the order given, and one peer
    /// (our only peer, as libtorrent was in the relay interop test) takes every revealed piece
    /// at once. Returns the piece-count of our announced set at which each HAVE went out,
    /// with whether the peer then lacked another announced piece (so it was interested).
    fn pull_with_one_fast_peer(order: &[u32]) -> Vec<(u32, bool)> {
        let n = order.len();
        let now = Instant::now();
        let mut view = View::new(n);
        view.held = vec![false; n];
        let mut s = SuperSeed::new(now);
        let mut haves = Vec::new();
        for &landed in order {
            view.held[landed as usize] = true;
            while let Some(p) = s.next_reveal(now, &view) {
                view.apply(p);
                let lacks_another = (0..n).any(|q| q != p.get() && view.announced[q] && !view.peer_has[q]);
                haves.push((view.unannounced(), lacks_another));
            }
            // The peer fetches every revealed piece before the next one lands.
            for q in 0..n {
                view.peer_has[q] |= view.announced[q];
            }
        }
        haves
    }

    #[test]
    fn while_pulling_the_have_that_completes_our_set_never_reaches_an_uninterested_peer() {
        for order in [vec![0, 1, 2, 3, 4, 5], vec![5, 3, 1, 0, 2, 4], vec![2, 0, 1]] {
            let haves = pull_with_one_fast_peer(&order);
            assert_eq!(haves.len(), order.len(), "every piece is revealed once: {order:?} -> {haves:?}");
            let last = haves.last().copied().expect("some HAVE");
            assert_eq!(
                last,
                (0, true),
                "the completing HAVE follows another the peer still lacks: {order:?} -> {haves:?}"
            );
        }
    }

    #[test]
    fn while_pulling_the_second_to_last_piece_waits_for_the_last() {
        let now = Instant::now();
        let mut view = View::new(3);
        view.held = vec![true, true, false];
        let mut s = SuperSeed::new(now);
        assert_eq!(view.reveal_all(&mut s, now), vec![0], "1 waits: only 2 would be left, not here yet");
        view.peer_has[0] = true;
        assert_eq!(view.reveal_all(&mut s, now), Vec::<u32>::new());
        // An idle peer's timer does not spin on the held piece.
        let later = now + REVEAL_IDLE;
        assert_eq!(view.reveal_all(&mut s, later), Vec::<u32>::new());
        assert_eq!(s.deadline(), Some(later + REVEAL_IDLE));
        view.held[2] = true;
        assert_eq!(view.reveal_all(&mut s, later), vec![1, 2]);
    }

    #[test]
    fn the_last_two_pieces_a_peer_lacks_are_revealed_together() {
        let now = Instant::now();
        let mut view = View::new(5);
        let mut s = SuperSeed::new(now);
        assert_eq!(view.reveal_all(&mut s, now), vec![0, 1]);
        view.peer_has[0] = true;
        view.peer_has[1] = true;
        // Revealing 3 leaves only 4 unannounced: 4 goes out with it, not later on its own, or
        // its HAVE could reach a peer with nothing else to fetch from us, and libtorrent drops
        // a seed it is not interested in before it sees that 4 is new.
        assert_eq!(view.reveal_all(&mut s, now), vec![2, 3, 4]);
        assert_eq!(view.unannounced(), 0);
    }

    #[test]
    fn a_last_piece_the_peer_already_has_is_not_revealed() {
        let now = Instant::now();
        let mut view = View::new(3);
        view.peer_has[2] = true;
        let mut s = SuperSeed::new(now);
        // 1 leaves only piece 2 unannounced, which the peer has: no HAVE needed for it.
        assert_eq!(view.reveal_all(&mut s, now), vec![0, 1]);
        assert_eq!(view.unannounced(), 1);
    }

    #[test]
    fn auto_counts_pieces_out_from_where_it_stopped() {
        let mut out = [true, true, false];
        let mut looked = 0;
        let at = first_not_out(0, 3, |p| {
            looked += 1;
            out[p.0 as usize]
        });
        assert_eq!(at, 2, "piece 2 is only with us");
        out[2] = true;
        // Picks up where it stopped: pieces 0 and 1 are not looked at again.
        let mut again = 0;
        assert_eq!(
            first_not_out(at, 3, |p| {
                again += 1;
                out[p.0 as usize]
            }),
            3
        );
        assert_eq!((looked, again), (3, 1));
    }

    #[test]
    fn a_new_peer_is_shown_two_pieces_nobody_has() {
        let now = Instant::now();
        let mut view = View::new(8);
        view.availability[0] = 1; // with another peer already
        view.reveals[1] = 1; // shown to another peer
        let mut s = SuperSeed::new(now);
        assert_eq!(view.reveal_all(&mut s, now), vec![2, 3]);
        assert_eq!(s.deadline(), None, "busy with two revealed pieces");
    }

    #[test]
    fn the_next_piece_comes_when_the_peer_announces_one() {
        let now = Instant::now();
        let mut view = View::new(8);
        let mut s = SuperSeed::new(now);
        assert_eq!(view.reveal_all(&mut s, now), vec![0, 1]);
        assert_eq!(view.reveal_all(&mut s, now), Vec::<u32>::new());
        view.peer_has[0] = true;
        assert_eq!(view.reveal_all(&mut s, now), vec![2]);
        assert_eq!(s.outstanding(), &[PieceIndex(1), PieceIndex(2)]);
    }

    #[test]
    fn an_idle_peer_is_shown_a_piece_others_have_after_a_second() {
        let t0 = Instant::now();
        let mut view = View::new(3);
        view.availability = vec![2, 1, 2];
        let mut s = SuperSeed::new(t0);
        // Everything we have is already out there: the peer should trade for it first.
        assert_eq!(view.reveal_all(&mut s, t0), Vec::<u32>::new());
        let due = s.deadline().expect("idle peer has a deadline");
        assert_eq!(due, t0 + REVEAL_IDLE);
        assert_eq!(view.reveal_all(&mut s, due - Duration::from_millis(1)), Vec::<u32>::new());
        // Idle for a second: shown the rarest piece, and only one while it fetches it.
        assert_eq!(view.reveal_all(&mut s, due), vec![1]);
        assert_eq!(s.deadline(), None);
        view.peer_has[1] = true;
        let later = due + Duration::from_millis(10);
        assert_eq!(view.reveal_all(&mut s, later), Vec::<u32>::new());
        assert_eq!(s.deadline(), Some(later + REVEAL_IDLE - Duration::from_millis(10)));
    }

    #[test]
    fn nothing_is_revealed_once_the_peer_has_everything() {
        let now = Instant::now();
        let mut view = View::new(3);
        view.peer_has = vec![true; 3];
        let mut s = SuperSeed::new(now);
        let later = now + Duration::from_secs(5);
        assert_eq!(view.reveal_all(&mut s, later), Vec::<u32>::new());
        // The idle deadline moved past `later`: a driver's timer does not fire again at once.
        assert_eq!(s.deadline(), Some(later + REVEAL_IDLE));
    }
}
