//! Which pieces a pull worker fetches next. The order:
//!
//! 1. pieces HTTP readers wait for (the task's demand queue), oldest first;
//! 2. pieces no connected BitTorrent peer has (swarm availability 0): the peers want them and
//!    cannot trade them among themselves, so only the relay can bring them in;
//! 3. the rest, which some peer already has and can hand on.
//!
//! Within 2 and 3 the file order is kept, so a pull still streams mostly sequentially. A worker
//! claims a run of consecutive pieces of one class so one Range request carries several small
//! pieces; claims are released when the run ends, good or bad.
//!
//! Peers never request a piece the relay has not announced, so "pieces the swarm lacks" is the
//! BitTorrent demand signal the relay can see (the engine does not record refused requests).

use parking_lot::Mutex;

use crate::task::Task;

/// What the schedule reads about a task's pieces. A trait so the ordering rules are tested
/// without a store, a swarm or sockets.
pub(super) trait PieceView {
    /// Bytes in a (full) piece.
    fn piece_length(&self) -> u64;
    /// Whether `piece` is verified already.
    fn has(&self, piece: u32) -> bool;
    /// How many connected BitTorrent peers have `piece`.
    fn availability(&self, piece: u32) -> u32;
    /// The oldest piece an HTTP reader waits for, removed from the queue.
    fn next_demand(&self) -> Option<u32>;
}

/// Consecutive pieces fetched with one Range request: `first..first + count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Run {
    /// The first piece.
    pub first: u32,
    /// How many pieces.
    pub count: u32,
}

struct State {
    claimed: Vec<bool>,
    /// No piece below this needs work (every one is verified or claimed).
    cursor: u32,
}

/// The shared claim table of one task's pull.
pub(super) struct Schedule {
    state: Mutex<State>,
    max_run_bytes: u64,
}

impl Schedule {
    /// A schedule for `pieces` pieces; runs carry at most `max_run_bytes` (at least one piece).
    pub(super) fn new(pieces: u32, max_run_bytes: u64) -> Self {
        Schedule {
            state: Mutex::new(State { claimed: vec![false; pieces as usize], cursor: 0 }),
            max_run_bytes,
        }
    }

    /// Claims the next run of `task` for a worker, or `None` if no piece is left unclaimed.
    pub(super) fn next(&self, task: &Task) -> Option<Run> {
        self.next_in(task)
    }

    /// [`Schedule::next`] over any view of the pieces.
    fn next_in(&self, view: &impl PieceView) -> Option<Run> {
        let mut s = self.state.lock();
        let n = s.claimed.len() as u32;
        let free = |s: &State, p: u32| p < n && !s.claimed[p as usize] && !view.has(p);
        let max = (self.max_run_bytes / view.piece_length().max(1)).max(1) as u32;

        // 1. HTTP demand: the run goes on over any free pieces after the demanded one.
        while let Some(p) = view.next_demand() {
            if free(&s, p) {
                return Some(claim(&mut s, p, max, |s, q| free(s, q)));
            }
        }
        while s.cursor < n && !free(&s, s.cursor) {
            s.cursor += 1;
        }
        if s.cursor >= n {
            return None;
        }
        // 2. Pieces the swarm lacks, in file order.
        let lacking = |s: &State, p: u32| free(s, p) && view.availability(p) == 0;
        if let Some(p) = (s.cursor..n).find(|&p| lacking(&s, p)) {
            return Some(claim(&mut s, p, max, lacking));
        }
        // 3. The rest, in file order.
        let first = s.cursor;
        Some(claim(&mut s, first, max, |s, q| free(s, q)))
    }

    /// Releases a run's claims; pieces still unverified become pullable again.
    pub(super) fn release(&self, run: Run, task: &Task) {
        self.release_in(run, task)
    }

    fn release_in(&self, run: Run, view: &impl PieceView) {
        let mut s = self.state.lock();
        for p in run.first..run.first + run.count {
            s.claimed[p as usize] = false;
            if !view.has(p) {
                s.cursor = s.cursor.min(p);
            }
        }
    }

    /// Whether any worker still holds a claim.
    pub(super) fn any_claimed(&self) -> bool {
        self.state.lock().claimed.iter().any(|&c| c)
    }
}

impl PieceView for Task {
    fn piece_length(&self) -> u64 {
        u64::from(self.layout.piece_length())
    }
    fn has(&self, piece: u32) -> bool {
        Task::has(self, piece)
    }
    fn availability(&self, piece: u32) -> u32 {
        self.peers_with(piece)
    }
    fn next_demand(&self) -> Option<u32> {
        self.demand.pop()
    }
}

/// Claims `first` and the consecutive pieces after it that pass `ok`, up to `max` in all.
fn claim(s: &mut State, first: u32, max: u32, ok: impl Fn(&State, u32) -> bool) -> Run {
    s.claimed[first as usize] = true;
    let mut count = 1;
    while count < max && ok(s, first + count) {
        s.claimed[(first + count) as usize] = true;
        count += 1;
    }
    Run { first, count }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::VecDeque;

    use super::*;

    /// A task of `n` pieces of 1 byte with availability and demand set by the test.
    struct Fake {
        have: RefCell<Vec<bool>>,
        avail: Vec<u32>,
        demand: RefCell<VecDeque<u32>>,
    }

    impl Fake {
        fn new(n: u32) -> Self {
            Fake {
                have: RefCell::new(vec![false; n as usize]),
                avail: vec![0; n as usize],
                demand: RefCell::new(VecDeque::new()),
            }
        }
    }

    impl PieceView for Fake {
        fn piece_length(&self) -> u64 {
            1
        }
        fn has(&self, piece: u32) -> bool {
            self.have.borrow()[piece as usize]
        }
        fn availability(&self, piece: u32) -> u32 {
            self.avail[piece as usize]
        }
        fn next_demand(&self) -> Option<u32> {
            self.demand.borrow_mut().pop_front()
        }
    }

    /// Pulls everything (each run completes at once) and returns the runs in order.
    fn drain(s: &Schedule, f: &Fake) -> Vec<Run> {
        let mut runs = Vec::new();
        while let Some(r) = s.next_in(f) {
            for p in r.first..r.first + r.count {
                f.have.borrow_mut()[p as usize] = true;
            }
            s.release_in(r, f);
            runs.push(r);
        }
        runs
    }

    fn run(first: u32, count: u32) -> Run {
        Run { first, count }
    }

    #[test]
    fn no_peers_means_file_order_in_full_runs() {
        let f = Fake::new(10);
        let s = Schedule::new(10, 4);
        assert_eq!(drain(&s, &f), vec![run(0, 4), run(4, 4), run(8, 2)]);
    }

    #[test]
    fn pieces_no_peer_has_come_first_in_file_order() {
        // A peer has the first half: the second half is pulled first, then the first half.
        let mut f = Fake::new(8);
        f.avail[..4].fill(1);
        let s = Schedule::new(8, 3);
        assert_eq!(drain(&s, &f), vec![run(4, 3), run(7, 1), run(0, 3), run(3, 1)]);
    }

    #[test]
    fn runs_stop_where_the_class_changes() {
        // Availability 0 at 1, 2 and 5: those runs do not swallow pieces peers have.
        let mut f = Fake::new(7);
        f.avail = vec![2, 0, 0, 1, 1, 0, 1];
        let s = Schedule::new(7, 8);
        assert_eq!(drain(&s, &f), vec![run(1, 2), run(5, 1), run(0, 1), run(3, 2), run(6, 1)]);
    }

    #[test]
    fn http_demand_beats_swarm_demand() {
        let mut f = Fake::new(8);
        f.avail[..4].fill(1);
        f.demand.borrow_mut().extend([2, 99, 2]);
        let s = Schedule::new(8, 2);
        // Demanded piece 2 (its run continues over free pieces), the bogus and repeated demands
        // are skipped, then what the swarm lacks, then the rest.
        assert_eq!(drain(&s, &f), vec![run(2, 2), run(4, 2), run(6, 2), run(0, 2)]);
    }

    #[test]
    fn verified_and_claimed_pieces_are_skipped_and_failed_runs_return() {
        let f = Fake::new(6);
        f.have.borrow_mut()[1] = true;
        let s = Schedule::new(6, 3);
        let a = s.next_in(&f).expect("a run");
        assert_eq!(a, run(0, 1), "stops before the verified piece");
        let b = s.next_in(&f).expect("a run");
        assert_eq!(b, run(2, 3));
        // The first run fails: its piece is pulled again, before later ones.
        s.release_in(a, &f);
        assert_eq!(s.next_in(&f), Some(run(0, 1)));
        assert_eq!(s.next_in(&f), Some(run(5, 1)));
        assert_eq!(s.next_in(&f), None);
        assert!(s.any_claimed());
    }

    #[test]
    fn availability_changing_mid_pull_is_followed() {
        let mut f = Fake::new(6);
        let s = Schedule::new(6, 2);
        assert_eq!(s.next_in(&f), Some(run(0, 2)));
        // A peer with pieces 2 and 3 connects: 4 and 5 come next.
        f.avail[2..4].fill(1);
        assert_eq!(s.next_in(&f), Some(run(4, 2)));
        assert_eq!(s.next_in(&f), Some(run(2, 2)));
        assert_eq!(s.next_in(&f), None);
    }
}
