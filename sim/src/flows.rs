//! The live transfers: a slab of flows with stable ids, each node's incoming and outgoing
//! flows, and a calendar of the step in which each flow's current piece lands.
//!
//! A flow's bytes are settled lazily: `left` is exact at `since`, and the flow moves `rate`
//! bytes per second from then on, so a flow is touched only when its rate changes, its piece
//! lands, or everything is settled for a sample. The calendar holds `(id, generation)` pairs;
//! an entry whose generation is stale (the flow was rescheduled earlier, or ended) is skipped.
//! A flow whose landing moves later keeps its entry, which moves on when its step comes, so a
//! flow has one or two entries however often its rate changes.

/// The origin's node slot in the per-node tables (after every real node).
pub type Slot = usize;

/// What a flow carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowKind {
    /// One BitTorrent piece.
    Bt,
    /// A run of pieces over HTTP Range from a relay.
    Http,
    /// A run of pieces from the origin (relay pulls, or clients without relays).
    Origin,
}

/// One transfer: a piece over BitTorrent, or a run of pieces over HTTP.
#[derive(Clone, Copy, Debug)]
pub struct Flow {
    /// Sender node id (`u32::MAX`: the origin).
    pub src: u32,
    /// Receiver node id.
    pub dst: u32,
    /// Piece in transfer; the run is `piece..end`.
    pub piece: u32,
    /// End of the run (exclusive).
    pub end: u32,
    /// The receiver's slot for the sender (BitTorrent) or the import slot.
    pub slot: floodgate_engine::piece_map::PeerSlot,
    /// What it carries.
    pub kind: FlowKind,
    /// Bytes left of the current piece at `since`.
    pub left: f64,
    /// Bytes per second from `since` on.
    pub rate: f64,
    /// Virtual time `left` is exact at (in the future while the request's round trip runs).
    pub since: f64,
    /// Calendar generation; bumped when the flow is put in the calendar earlier than its entry
    /// and when the flow ends (entries with another generation are stale).
    pub generation: u32,
    /// Step of its calendar entry (`u64::MAX`: none).
    pub sched: u64,
    /// Whether the slot holds a live flow.
    pub live: bool,
}

impl Flow {
    /// Time the current piece lands at the current rate.
    pub fn finish(&self) -> f64 {
        if self.rate > 0.0 {
            self.since + self.left / self.rate
        } else {
            f64::INFINITY
        }
    }
}

/// Flows, per-node lists and the landing calendar.
#[derive(Debug)]
pub struct FlowTable {
    /// The slab (dead slots have `live == false`).
    pub flows: Vec<Flow>,
    free: Vec<u32>,
    /// Outgoing flow ids per node slot (the origin last).
    pub out: Vec<Vec<u32>>,
    /// Incoming flow ids per node slot.
    pub inc: Vec<Vec<u32>>,
    /// Live flows.
    pub live: usize,
    dt: f64,
    ring: Vec<Vec<(u32, u32)>>,
}

const RING: usize = 1 << 12;

impl FlowTable {
    /// A table for `slots` node slots (nodes plus the origin) and steps of `dt` seconds.
    pub fn new(slots: usize, dt: f64) -> Self {
        FlowTable {
            flows: Vec::new(),
            free: Vec::new(),
            out: vec![Vec::new(); slots],
            inc: vec![Vec::new(); slots],
            live: 0,
            dt,
            ring: vec![Vec::new(); RING],
        }
    }

    /// Adds a flow between slots `src` and `dst`; returns its id.
    pub fn insert(&mut self, f: Flow, src: Slot, dst: Slot) -> u32 {
        let id = match self.free.pop() {
            Some(id) => {
                let generation = self.flows[id as usize].generation.wrapping_add(1);
                self.flows[id as usize] = Flow { generation, live: true, sched: u64::MAX, ..f };
                id
            }
            None => {
                self.flows.push(Flow { generation: 0, live: true, sched: u64::MAX, ..f });
                (self.flows.len() - 1) as u32
            }
        };
        self.out[src].push(id);
        self.inc[dst].push(id);
        self.live += 1;
        id
    }

    /// Removes flow `id` (between slots `src` and `dst`); returns it.
    pub fn remove(&mut self, id: u32, src: Slot, dst: Slot) -> Flow {
        let f = &mut self.flows[id as usize];
        f.live = false;
        f.generation = f.generation.wrapping_add(1);
        let f = *f;
        for list in [&mut self.out[src], &mut self.inc[dst]] {
            if let Some(k) = list.iter().position(|&x| x == id) {
                list.swap_remove(k);
            }
        }
        self.free.push(id);
        self.live -= 1;
        f
    }

    /// Step index whose interval `[k dt, (k + 1) dt)` holds time `t`.
    pub fn step_of(&self, t: f64) -> u64 {
        if t.is_finite() {
            (t / self.dt).max(0.0) as u64
        } else {
            u64::MAX
        }
    }

    /// Puts flow `id` in the calendar at the step its piece lands (no earlier than `now_step`),
    /// unless its entry is at that step or earlier already.
    pub fn schedule(&mut self, id: u32, now_step: u64) {
        let step = self.step_of(self.flows[id as usize].finish()).max(now_step);
        let f = &mut self.flows[id as usize];
        if step == u64::MAX || (f.sched != u64::MAX && f.sched >= now_step && f.sched <= step) {
            return; // no rate yet, or the entry comes first and will move on
        }
        f.generation = f.generation.wrapping_add(1);
        f.sched = step;
        let gen = f.generation;
        self.ring[(step % RING as u64) as usize].push((id, gen));
    }

    /// Takes the calendar entries of step `step` whose flows land in it; entries of flows that
    /// land later move to their step's bucket.
    pub fn due(&mut self, step: u64, out: &mut Vec<u32>) {
        out.clear();
        let b = (step % RING as u64) as usize;
        let mut bucket = std::mem::take(&mut self.ring[b]);
        let mut keep = 0;
        for k in 0..bucket.len() {
            let (id, gen) = bucket[k];
            let f = &self.flows[id as usize];
            if !f.live || f.generation != gen {
                continue;
            }
            if f.sched > step {
                bucket[keep] = (id, gen); // a later lap of the ring
                keep += 1;
                continue;
            }
            let fin = self.step_of(f.finish());
            if fin <= step {
                out.push(id);
                self.flows[id as usize].sched = u64::MAX;
            } else if fin == u64::MAX {
                self.flows[id as usize].sched = u64::MAX;
            } else if fin - step < RING as u64 {
                self.flows[id as usize].sched = fin;
                self.ring[(fin % RING as u64) as usize].push((id, gen));
            } else {
                // Beyond one lap: look again when this bucket comes round.
                self.flows[id as usize].sched = step + RING as u64;
                bucket[keep] = (id, gen);
                keep += 1;
            }
        }
        bucket.truncate(keep);
        let spare = std::mem::replace(&mut self.ring[b], bucket);
        self.ring[b].extend(spare);
    }
}
