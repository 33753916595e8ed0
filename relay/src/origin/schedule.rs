//! Which pieces a pull worker fetches next: pieces readers wait for first (the task's demand
//! queue), then the rest in order. A worker claims a run of consecutive pieces so one Range
//! request carries several small pieces; claims are released when the run ends, good or bad.

use parking_lot::Mutex;

use crate::task::Task;

/// Consecutive pieces fetched with one Range request: `first..first + count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
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
pub struct Schedule {
    state: Mutex<State>,
    max_run_bytes: u64,
}

impl Schedule {
    /// A schedule for `pieces` pieces; runs carry at most `max_run_bytes` (at least one piece).
    pub fn new(pieces: u32, max_run_bytes: u64) -> Self {
        Schedule {
            state: Mutex::new(State { claimed: vec![false; pieces as usize], cursor: 0 }),
            max_run_bytes,
        }
    }

    /// Claims the next run for a worker, or `None` if no piece is left unclaimed.
    pub fn next(&self, task: &Task) -> Option<Run> {
        let mut s = self.state.lock();
        let free = |s: &State, p: u32| !s.claimed[p as usize] && !task.has(p);
        let mut start = None;
        while let Some(p) = task.demand.pop() {
            if (p as usize) < s.claimed.len() && free(&s, p) {
                start = Some(p);
                break;
            }
        }
        let first = match start {
            Some(p) => p,
            None => {
                let n = s.claimed.len() as u32;
                while s.cursor < n && !free(&s, s.cursor) {
                    s.cursor += 1;
                }
                if s.cursor >= n {
                    return None;
                }
                s.cursor
            }
        };
        let piece_len = u64::from(task.layout.piece_length());
        let max = (self.max_run_bytes / piece_len).max(1) as u32;
        let mut count = 0;
        while count < max && ((first + count) as usize) < s.claimed.len() && free(&s, first + count) {
            s.claimed[(first + count) as usize] = true;
            count += 1;
        }
        Some(Run { first, count })
    }

    /// Releases a run's claims; pieces still unverified become pullable again.
    pub fn release(&self, run: Run, task: &Task) {
        let mut s = self.state.lock();
        for p in run.first..run.first + run.count {
            s.claimed[p as usize] = false;
            if !task.has(p) {
                s.cursor = s.cursor.min(p);
            }
        }
    }

    /// Whether any worker still holds a claim.
    pub fn any_claimed(&self) -> bool {
        self.state.lock().claimed.iter().any(|&c| c)
    }
}
