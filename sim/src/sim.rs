//! The simulation loop: fair-share rates, flows advanced one step at a time, pieces landing in
//! the engine's piece maps, and the real policies deciding what starts next.
//!
//! One step `[t, t + dt)`: (1) leases due are acquired or renewed, (2) woken nodes start flows:
//! BitTorrent pieces from the `Picker`, HTTP runs from `plan_run` within the gap-fill `Switch`'s
//! allowance, relay origin runs within the lease, (3) every flow gets its fair-share rate (a flow
//! whose rate changes is settled and rescheduled), (4) the pieces the calendar holds for this
//! step land, each at its own time: recorded in the receiver's `PieceMap` (`receive_block`,
//! then verify), endgame duplicates of it cancelled, announced to the neighbours that lack it
//! (`peer_has`), waking them; (5) at each second and each switch `interval` every flow is
//! settled, and at each interval every client's switch takes a `Sample`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use floodgate_engine::gapfill::{plan_run, Allowance, Level, Sample, Switch};
use floodgate_engine::layout::Layout;
use floodgate_engine::picker::Picker;
use floodgate_engine::piece_map::{Bitfield, PeerSlot, PieceMap, PieceMapError, Receipt, IMPORT_SLOT};
use floodgate_engine::{PieceIndex, BLOCK_SIZE};

use crate::bound::kumar_ross;
use crate::flows::{Flow, FlowKind, FlowTable};
use crate::leasebook::LeaseBook;
use crate::report::{Outcome, Second};
use crate::scenario::Scenario;
use crate::topology::{Kind, Topology};

/// Why a run could not be done.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The scenario is not one the simulator can run.
    #[error("bad scenario: {0}")]
    Scenario(String),
    /// The engine refused a piece map operation (a simulator bug).
    #[error("piece map: {0}")]
    PieceMap(#[from] PieceMapError),
}

const ORIGIN: u32 = u32::MAX;

/// What a downloading node (client or relay) holds while it downloads.
struct Peer {
    map: Arc<PieceMap>,
    picker: Picker,
    switch: Option<Switch>,
    bt_sources: Vec<u32>,
    http_flows: u32,
    origin_flows: u32,
    bt_bytes: f64,
    http_bytes: f64,
    origin_bytes: f64,
    /// Origin bytes claimed for runs so far (relays: never above the lease allowance).
    origin_committed: f64,
    allowance: Allowance,
    http_at_sample: f64,
    /// Time left over from a flow that ended inside the step, for the next one.
    bonus: f64,
}

struct State<'a> {
    s: &'a Scenario,
    topo: Topology,
    pb: f64,
    pieces: u32,
    have: Vec<Bitfield>,
    peers: Vec<Option<Box<Peer>>>,
    up_flows: Vec<u32>,
    down_flows: Vec<u32>,
    origin_flows: u32,
    ft: FlowTable,
    due: Vec<u32>,
    scratch2: Vec<u32>,
    caps: Vec<f64>,
    step: u64,
    now: f64,
    queued: Vec<bool>,
    wake: Vec<u32>,
    book: LeaseBook,
    out: Outcome,
    cur: Second,
    clients_left: usize,
    relays_left: usize,
    base: Instant,
    cancels: Vec<PeerSlot>,
    picked: Vec<floodgate_engine::BlockRef>,
    cands: Vec<(f64, u32, u16)>,
    client_origin_bytes: f64,
    /// Progressive filling scratch, per node (the origin last).
    share_up: Vec<f64>,
    share_down: Vec<f64>,
    fixed_up: Vec<f64>,
    fixed_down: Vec<f64>,
    bound_up: Vec<u32>,
    bound_down: Vec<u32>,
}

/// Runs one scenario to the end (every client done) or to its horizon.
pub fn run(s: &Scenario) -> Result<Outcome, SimError> {
    if s.clients == 0 || s.pieces == 0 || s.file_size == 0 {
        return Err(SimError::Scenario("clients, pieces and file size must be at least 1".into()));
    }
    if s.pieces > 1 << 20 || s.max_sources == 0 || s.max_sources >= usize::from(u16::MAX) {
        return Err(SimError::Scenario("pieces at most 2^20; max-sources 1..65534".into()));
    }
    let topo = Topology::build(s);
    if topo.relays == 0 && topo.seeds == 0 && !s.http {
        return Err(SimError::Scenario("no relay, no seed and no HTTP: nobody can give the file".into()));
    }
    if topo.offsets.windows(2).any(|w| w[1] - w[0] >= u32::from(u16::MAX)) {
        return Err(SimError::Scenario("a node has 65535 or more neighbours".into()));
    }
    let layout = Layout::single("sim", u64::from(s.pieces) * u64::from(BLOCK_SIZE), BLOCK_SIZE)
        .map_err(|e| SimError::Scenario(e.to_string()))?;
    let mut st = State::new(s, topo, &layout);
    st.simulate()?;
    Ok(st.finish())
}

fn cap_of(v: Option<u64>) -> i64 {
    v.map_or(-1, |b| i64::try_from(b).unwrap_or(i64::MAX))
}

impl<'a> State<'a> {
    fn new(s: &'a Scenario, topo: Topology, layout: &Layout) -> Self {
        let n = topo.len();
        let pieces = s.pieces;
        let base = Instant::now();
        let mut have = Vec::with_capacity(n);
        let mut peers: Vec<Option<Box<Peer>>> = Vec::with_capacity(n);
        for i in 0..n {
            if topo.kind(i) == Kind::Seed {
                have.push(Bitfield::full(pieces));
                peers.push(None);
                continue;
            }
            have.push(Bitfield::new(pieces));
            let map = Arc::new(PieceMap::new(layout));
            let picker = Picker::new(map.clone());
            let switch = (topo.kind(i) == Kind::Client && s.http).then(|| Switch::new(s.switch, base));
            peers.push(Some(Box::new(Peer {
                map,
                picker,
                switch,
                bt_sources: Vec::new(),
                http_flows: 0,
                origin_flows: 0,
                bt_bytes: 0.0,
                http_bytes: 0.0,
                origin_bytes: 0.0,
                origin_committed: 0.0,
                allowance: Allowance::None,
                http_at_sample: 0.0,
                bonus: 0.0,
            })));
        }
        // Seeds' bitfields reach their neighbours' maps (BITFIELD on connect).
        for (i, bits) in have.iter().enumerate() {
            if topo.kind(i) != Kind::Seed {
                continue;
            }
            for &nb in topo.neighbours(i) {
                if let Some(p) = &peers[nb as usize] {
                    // Cannot fail: the bitfield has the map's length.
                    let _ = p.map.add_peer(bits.view());
                }
            }
        }
        let limits = [
            s.origin_conns.unwrap_or(-1),
            i64::try_from(s.origin_cap as u64).unwrap_or(i64::MAX),
            cap_of(s.origin_quota),
        ];
        let book = LeaseBook::new(
            limits,
            &topo.relay_rows,
            s.lease_ttl.as_secs_f64(),
            [s.relay_pull_conns, s.relay_origin_rate as i64],
            s.lease_policy,
        );
        let mut out = Outcome {
            file: s.file_size as f64,
            clients: topo.clients,
            relays: topo.relays,
            completion: vec![None; topo.clients],
            class: (0..topo.clients).map(|i| s.mix.class_of(i, topo.clients).name).collect(),
            bt_bytes: vec![0.0; topo.clients],
            http_bytes: vec![0.0; topo.clients],
            origin_bytes: vec![0.0; topo.clients],
            ..Outcome::default()
        };
        let client_up: f64 = topo.up[..topo.clients].iter().sum();
        let relay_up: f64 = topo.up[topo.clients..topo.clients + topo.relays].iter().sum();
        let seed_up: f64 = topo.up[topo.clients + topo.relays..].iter().sum();
        let server_up = seed_up + if topo.relays > 0 || s.http { s.origin_cap } else { 0.0 };
        let d_min = topo.down[..topo.clients].iter().copied().fold(f64::INFINITY, f64::min);
        out.bound = kumar_ross(s.file_size as f64, server_up, client_up + relay_up, d_min, topo.clients);
        let pb = s.piece_bytes();
        out.dt = s.dt.unwrap_or_else(|| {
            let mean_up = client_up / topo.clients as f64;
            (pb / mean_up / 3.0).clamp(0.005, 0.5)
        });
        State {
            s,
            pb,
            pieces,
            up_flows: vec![0; n],
            down_flows: vec![0; n],
            origin_flows: 0,
            ft: FlowTable::new(n + 1, out.dt),
            due: Vec::new(),
            scratch2: Vec::new(),
            caps: Vec::new(),
            step: 0,
            now: 0.0,
            queued: vec![true; n],
            wake: (0..n as u32).collect(),
            book,
            out,
            cur: Second::default(),
            clients_left: topo.clients,
            relays_left: topo.relays,
            base,
            cancels: Vec::new(),
            picked: Vec::new(),
            cands: Vec::new(),
            client_origin_bytes: 0.0,
            share_up: vec![0.0; n + 1],
            share_down: vec![0.0; n + 1],
            fixed_up: vec![0.0; n + 1],
            fixed_down: vec![0.0; n + 1],
            bound_up: vec![0; n + 1],
            bound_down: vec![0; n + 1],
            have,
            peers,
            topo,
        }
    }

    fn simulate(&mut self) -> Result<(), SimError> {
        let dt = self.out.dt;
        let interval = self.s.switch.interval.as_secs_f64().max(dt);
        let mut t = 0.0f64;
        let mut next_sample = interval;
        let mut next_second = 1.0;
        let mut idle_since = 0.0;
        let mut step: u64 = 0;
        while self.clients_left > 0 && t < self.s.horizon {
            self.step = step;
            self.now = t;
            self.leases(t);
            self.drain_wakes(t)?;
            self.rates(t);
            self.land_due(t, dt)?;
            step += 1;
            t = step as f64 * dt;
            let sample = t + 1e-9 >= next_sample;
            if sample || t + 1e-9 >= next_second {
                self.settle_all(t);
            }
            if sample {
                self.samples(t);
                next_sample += interval;
            }
            while t + 1e-9 >= next_second {
                self.cur.t = next_second;
                self.cur.done = (self.topo.clients - self.clients_left) as u64;
                self.out.seconds.push(self.cur);
                self.cur = Second { switched: self.cur.switched, ..Second::default() };
                next_second += 1.0;
            }
            if self.ft.live == 0 {
                if t - idle_since > 2.0 * self.s.lease_ttl.as_secs_f64() + 10.0 * interval {
                    break; // nothing moves and nothing will (quota gone, nobody to give a piece)
                }
            } else {
                idle_since = t;
            }
        }
        self.out.simulated = t;

        Ok(())
    }

    fn finish(mut self) -> Outcome {
        for c in 0..self.topo.clients {
            if let Some(p) = &self.peers[c] {
                self.out.bt_bytes[c] = p.bt_bytes;
                self.out.http_bytes[c] = p.http_bytes;
                self.out.origin_bytes[c] = p.origin_bytes;
            }
        }
        for r in 0..self.topo.relays {
            if let Some(p) = &self.peers[self.topo.clients + r] {
                self.out.relay_origin_bytes += p.origin_bytes;
            }
        }
        self.out.quota_granted = self.book.granted() as f64 + self.client_origin_bytes;
        self.out.lease_refusals = self.book.refusals;
        self.out
    }

    fn wake(&mut self, i: u32) {
        if !self.queued[i as usize] {
            self.queued[i as usize] = true;
            self.wake.push(i);
        }
    }

    /// Node slot of a flow end (the origin has the last slot).
    fn slot(&self, x: u32) -> usize {
        if x == ORIGIN {
            self.topo.len()
        } else {
            x as usize
        }
    }

    fn leases(&mut self, t: f64) {
        let n = self.topo.clients;
        for r in 0..self.topo.relays {
            if t < self.book.next[r] {
                continue;
            }
            let Some(p) = &self.peers[n + r] else { continue };
            let remaining = f64::from(self.pieces - p.map.verified_count()) * self.pb;
            let needed = (p.origin_committed + remaining) as i64;
            if self.book.tick(r, t, needed) {
                self.wake((n + r) as u32);
            }
        }
    }

    /// A flow's cap from outside the links: lease rate (relay pulls), HTTP pace (clients).
    fn flow_cap(&self, f: &Flow) -> f64 {
        if f.kind == FlowKind::Bt {
            return f64::INFINITY;
        }
        let d = f.dst as usize;
        let n = self.topo.clients;
        let Some(p) = &self.peers[d] else { return f64::INFINITY };
        match f.kind {
            FlowKind::Origin if d >= n => self
                .book
                .lease(d - n)
                .map(|l| l.rate)
                .filter(|&r| r >= 0)
                .map_or(f64::INFINITY, |rate| rate as f64 / f64::from(p.origin_flows.max(1))),
            _ => match p.allowance {
                Allowance::Paced { rate, .. } => rate as f64 / f64::from(p.http_flows.max(1)),
                _ => f64::INFINITY,
            },
        }
    }

    fn up_cap(&self, x: usize) -> f64 {
        let eff = self.s.link_efficiency.clamp(0.01, 1.0);
        if x == self.topo.len() {
            eff * self.s.origin_cap
        } else {
            eff * self.topo.up[x]
        }
    }

    fn down_cap(&self, x: usize) -> f64 {
        self.s.link_efficiency.clamp(0.01, 1.0) * self.topo.down[x]
    }

    /// Rates by progressive filling over every flow (approximately max-min fair): each flow
    /// starts at the smaller of its sender's and receiver's equal shares; then, for a few
    /// rounds, what a node's flows bound elsewhere leave unused is shared among its flows
    /// bound by that node. Flows whose rate changes are settled and rescheduled.
    fn rates(&mut self, t: f64) {
        let len = self.ft.flows.len();
        self.caps.clear();
        self.caps.resize(len, f64::INFINITY);
        for id in 0..len {
            let f = self.ft.flows[id];
            if f.live {
                self.caps[id] = self.flow_cap(&f);
            }
        }
        for id in 0..len {
            let f = self.ft.flows[id];
            if !f.live {
                continue;
            }
            let (si, d) = (self.slot(f.src), f.dst as usize);
            self.share_up[si] = self.up_cap(si) / self.ft.out[si].len().max(1) as f64;
            self.share_down[d] = self.down_cap(d) / self.ft.inc[d].len().max(1) as f64;
        }
        for round in 0..3 {
            for id in 0..len {
                let f = self.ft.flows[id];
                if !f.live {
                    continue;
                }
                let si = self.slot(f.src);
                self.fixed_up[si] = 0.0;
                self.bound_up[si] = 0;
                self.fixed_down[f.dst as usize] = 0.0;
                self.bound_down[f.dst as usize] = 0;
            }
            for id in 0..len {
                let f = self.ft.flows[id];
                if !f.live {
                    continue;
                }
                let (si, d) = (self.slot(f.src), f.dst as usize);
                let (u, dn) = (self.share_up[si], self.share_down[d]);
                let r = u.min(dn).min(self.caps[id]);
                if r < u * 0.999 {
                    self.fixed_up[si] += r;
                } else {
                    self.bound_up[si] += 1;
                }
                if r < dn * 0.999 {
                    self.fixed_down[d] += r;
                } else {
                    self.bound_down[d] += 1;
                }
            }
            if round == 2 {
                break;
            }
            for id in 0..len {
                let f = self.ft.flows[id];
                if !f.live {
                    continue;
                }
                let (si, d) = (self.slot(f.src), f.dst as usize);
                if self.bound_up[si] > 0 {
                    self.share_up[si] =
                        ((self.up_cap(si) - self.fixed_up[si]) / f64::from(self.bound_up[si])).max(1.0);
                    self.bound_up[si] = 0; // recomputed once per node
                }
                if self.bound_down[d] > 0 {
                    self.share_down[d] =
                        ((self.down_cap(d) - self.fixed_down[d]) / f64::from(self.bound_down[d])).max(1.0);
                    self.bound_down[d] = 0;
                }
            }
        }
        for id in 0..len {
            let f = self.ft.flows[id];
            if !f.live {
                continue;
            }
            let r = self.share_up[self.slot(f.src)].min(self.share_down[f.dst as usize]).min(self.caps[id]);
            self.set_rate(id as u32, r.max(1.0), t);
        }
    }

    /// Moves flow `id`'s bytes up to `t` into the accounts.
    fn settle(&mut self, id: u32, t: f64) {
        let f = self.ft.flows[id as usize];
        if !f.live || t <= f.since {
            return;
        }
        let moved = (f.rate * (t - f.since)).min(f.left);
        let g = &mut self.ft.flows[id as usize];
        g.left -= moved;
        g.since = t;
        self.account(&f, moved);
    }

    fn settle_all(&mut self, t: f64) {
        for id in 0..self.ft.flows.len() as u32 {
            self.settle(id, t);
        }
    }

    /// Flow `id` moves at `rate` from `t` on; returns whether the rate changed.
    fn set_rate(&mut self, id: u32, rate: f64, t: f64) -> bool {
        let old = self.ft.flows[id as usize].rate;
        if old > 0.0 && (old - rate).abs() <= 1e-9 * rate {
            return false;
        }
        self.settle(id, t);
        self.ft.flows[id as usize].rate = rate;
        self.ft.schedule(id, self.step);
        true
    }

    /// Lands the pieces due in the step `[t, t + dt)`, each at its own time.
    fn land_due(&mut self, t: f64, dt: f64) -> Result<(), SimError> {
        let mut due = std::mem::take(&mut self.due);
        self.ft.due(self.step, &mut due);
        let step_end = t + dt;
        for &id in &due {
            loop {
                let f = self.ft.flows[id as usize];
                if !f.live {
                    break;
                }
                let at = f.finish();
                if self.ft.step_of(at) > self.step {
                    self.ft.schedule(id, self.step);
                    break;
                }
                self.account(&f, f.left);
                let g = &mut self.ft.flows[id as usize];
                g.left = 0.0;
                g.since = at;
                self.land(id, at)?;
                let f = self.ft.flows[id as usize];
                if !f.live {
                    break;
                }
                let g = &mut self.ft.flows[id as usize];
                g.piece += 1;
                if g.piece >= g.end || self.peers[f.dst as usize].is_none() {
                    self.end_flow(id, (step_end - at).max(0.0));
                    break;
                }
                g.left = self.pb;
            }
        }
        self.due = due;
        Ok(())
    }

    fn account(&mut self, f: &Flow, bytes: f64) {
        let d = f.dst as usize;
        let n = self.topo.clients;
        let is_relay = |x: u32| x != ORIGIN && (x as usize) >= n && (x as usize) < n + self.topo.relays;
        let Some(p) = self.peers[d].as_mut() else { return };
        match f.kind {
            FlowKind::Bt => {
                p.bt_bytes += bytes;
                if d < n {
                    self.cur.bt += bytes;
                }
                if is_relay(f.src) {
                    self.out.relay_bt_up += bytes;
                    self.cur.relay_up += bytes;
                }
            }
            FlowKind::Http => {
                p.http_bytes += bytes;
                self.cur.http += bytes;
                self.out.relay_http_up += bytes;
                self.cur.relay_up += bytes;
            }
            FlowKind::Origin => {
                p.origin_bytes += bytes;
                if d < n {
                    self.cur.origin_clients += bytes;
                    self.client_origin_bytes += bytes;
                } else {
                    self.cur.origin_relays += bytes;
                }
            }
        }
    }

    /// Piece `piece` of flow `id` arrived whole at `at`.
    fn land(&mut self, id: u32, at: f64) -> Result<(), SimError> {
        let f = self.ft.flows[id as usize];
        let d = f.dst as usize;
        let Some(p) = self.peers[d].as_ref() else { return Ok(()) };
        let piece = PieceIndex(f.piece);
        let block = p.map.block_ref(piece, 0);
        self.cancels.clear();
        let receipt = if f.kind == FlowKind::Bt {
            p.map.receive_block(block, f.slot, &mut self.cancels)?
        } else {
            p.map.receive_block_superseding(block, IMPORT_SLOT, &mut self.cancels)?
        };
        match receipt {
            Receipt::PieceComplete => {
                p.map.begin_verify(piece)?;
                p.map.mark_verified(piece)?;
                let complete = p.map.is_complete();
                self.announce(f.dst, f.piece);
                // Endgame duplicates of the piece are superseded: what they carried is waste.
                let mut ids = std::mem::take(&mut self.scratch2);
                ids.clear();
                ids.extend(self.ft.inc[d].iter().copied().filter(|&x| {
                    let g = &self.ft.flows[x as usize];
                    x != id && (complete || (g.kind == FlowKind::Bt && g.piece == f.piece))
                }));
                for &x in &ids {
                    self.settle(x, at);
                    self.out.duplicate_bytes += self.pb - self.ft.flows[x as usize].left;
                    self.end_flow(x, 0.0);
                }
                self.scratch2 = ids;
                if complete {
                    self.complete(d, at);
                }
            }
            Receipt::Duplicate | Receipt::Unrequested => self.out.duplicate_bytes += self.pb,
            Receipt::Accepted => {}
        }
        Ok(())
    }

    fn announce(&mut self, node: u32, piece: u32) {
        let idx = PieceIndex(piece);
        self.have[node as usize].set(idx);
        let (s, e) =
            (self.topo.offsets[node as usize] as usize, self.topo.offsets[node as usize + 1] as usize);
        for k in s..e {
            let nb = self.topo.adj[k];
            // A neighbour holding the piece never picks it again: its availability count would
            // not change a choice, so the HAVE is not applied (it is the costliest call here).
            if self.have[nb as usize].has(idx) {
                continue;
            }
            if let Some(p) = &self.peers[nb as usize] {
                // Cannot fail: the index is in range.
                let _ = p.map.peer_has(piece);
                if p.bt_sources.len() < self.s.max_sources {
                    self.wake(nb);
                }
            }
        }
    }

    fn complete(&mut self, d: usize, at: f64) {
        let n = self.topo.clients;
        let Some(p) = self.peers[d].take() else { return };
        if d < n {
            self.out.completion[d] = Some(at);
            self.out.bt_bytes[d] = p.bt_bytes;
            self.out.http_bytes[d] = p.http_bytes;
            self.out.origin_bytes[d] = p.origin_bytes;
            if p.switch.as_ref().is_some_and(|sw| sw.level() != Level::Off) {
                self.cur.switched = self.cur.switched.saturating_sub(1);
            }
            self.clients_left -= 1;
        } else {
            self.out.relay_origin_bytes += p.origin_bytes;
            self.book.release(d - n);
            self.relays_left -= 1;
        }
    }

    /// Removes flow `id`; `leftover` seconds of the step go to the receiver's next flow.
    fn end_flow(&mut self, id: u32, leftover: f64) {
        let src_slot = self.slot(self.ft.flows[id as usize].src);
        let dst = self.ft.flows[id as usize].dst as usize;
        let f = self.ft.remove(id, src_slot, dst);
        if f.src == ORIGIN {
            self.origin_flows -= 1;
        } else {
            self.up_flows[f.src as usize] -= 1;
        }
        self.down_flows[f.dst as usize] -= 1;
        if let Some(p) = self.peers[f.dst as usize].as_mut() {
            match f.kind {
                FlowKind::Bt => {
                    if let Some(k) = p.bt_sources.iter().position(|&x| x == f.src) {
                        p.bt_sources.swap_remove(k);
                    }
                }
                FlowKind::Http => p.http_flows -= 1,
                FlowKind::Origin => {
                    p.origin_flows -= 1;
                    if (f.dst as usize) < self.topo.clients {
                        p.http_flows -= 1;
                    } else {
                        // Unlanded pieces of the run return to the pool (none, unless cut short).
                        for q in f.piece..f.end {
                            let b = p.map.block_ref(PieceIndex(q), 0);
                            let _ = p.map.release_block(b, IMPORT_SLOT);
                        }
                    }
                }
            }
            p.bonus = p.bonus.max(leftover);
            self.wake(f.dst);
        }
    }

    fn start_flow(&mut self, src: u32, dst: u32, piece: u32, end: u32, slot: PeerSlot, kind: FlowKind) {
        if src == ORIGIN {
            self.origin_flows += 1;
        } else {
            self.up_flows[src as usize] += 1;
        }
        self.down_flows[dst as usize] += 1;
        let rtt = f64::from(self.topo.rtt[dst as usize]);
        let bonus = self.peers[dst as usize].as_mut().map_or(0.0, |p| std::mem::take(&mut p.bonus));
        let flow = Flow {
            src,
            dst,
            piece,
            end,
            slot,
            kind,
            left: self.pb,
            rate: 0.0,
            since: self.now + rtt - bonus,
            generation: 0,
            sched: u64::MAX,
            live: true,
        };
        let src_slot = self.slot(src);
        self.ft.insert(flow, src_slot, dst as usize);
    }

    fn drain_wakes(&mut self, t: f64) -> Result<(), SimError> {
        let mut list = std::mem::take(&mut self.wake);
        for &i in &list {
            self.queued[i as usize] = false;
        }
        for &i in &list {
            if self.peers[i as usize].is_none() {
                continue;
            }
            if !self.topo.blocked[i as usize] {
                self.pick_bt(i);
            }
            match self.topo.kind(i as usize) {
                Kind::Client => self.pick_http(i),
                Kind::Relay => self.pick_origin(i),
                Kind::Seed => {}
            }
        }
        list.clear();
        if self.wake.is_empty() {
            self.wake = list;
        }
        let _ = t;
        Ok(())
    }

    fn pick_bt(&mut self, c: u32) {
        let ci = c as usize;
        let Some(p) = self.peers[ci].as_ref() else { return };
        let mut free = self.s.max_sources.saturating_sub(p.bt_sources.len());
        if free == 0 {
            return;
        }
        let mine = self.have[ci].view().words();
        self.cands.clear();
        let (s, e) = (self.topo.offsets[ci] as usize, self.topo.offsets[ci + 1] as usize);
        for (slot, &nb) in self.topo.adj[s..e].iter().enumerate() {
            if p.bt_sources.contains(&nb) {
                continue;
            }
            let theirs = self.have[nb as usize].view().words();
            if !theirs.iter().zip(mine).any(|(a, b)| a & !b != 0) {
                continue;
            }
            let score = self.topo.up[nb as usize] / f64::from(self.up_flows[nb as usize] + 1);
            self.cands.push((score, nb, slot as u16));
        }
        self.cands.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
        let cands = std::mem::take(&mut self.cands);
        for &(_, nb, slot) in &cands {
            if free == 0 {
                break;
            }
            self.picked.clear();
            let Some(p) = self.peers[ci].as_ref() else { break };
            p.picker.pick(self.have[nb as usize].view(), PeerSlot(slot), 1, &mut self.picked);
            let Some(b) = self.picked.first().copied() else { continue };
            if let Some(p) = self.peers[ci].as_mut() {
                p.bt_sources.push(nb);
            }
            self.start_flow(nb, c, b.piece.0, b.piece.0 + 1, PeerSlot(slot), FlowKind::Bt);
            free -= 1;
        }
        self.cands = cands;
    }

    /// Claims `run` for HTTP in `map`; returns the end of the prefix claimed.
    fn claim_run(map: &PieceMap, first: u32, count: u32) -> u32 {
        let mut end = first;
        while end < first + count && map.claim_block(PieceIndex(end), IMPORT_SLOT).is_some() {
            end += 1;
        }
        end
    }

    fn pick_http(&mut self, c: u32) {
        let ci = c as usize;
        let per = self.s.relays_per_client.min(self.topo.relays);
        let Some(p) = self.peers[ci].as_ref() else { return };
        if p.switch.is_none() {
            return;
        }
        let (max_flows, budget) = match p.allowance {
            Allowance::None => return,
            Allowance::Paced { bytes, .. } => {
                (1, bytes as f64 - (p.http_bytes + p.origin_bytes - p.http_at_sample))
            }
            Allowance::Unlimited => (2, f64::INFINITY),
        };
        let overlap = matches!(p.allowance, Allowance::Unlimited);
        let mut budget = budget;
        let mut flows = p.http_flows;
        while flows < max_flows && budget >= self.pb * 0.5 {
            // The source: the relay (among this client's) with the most upload per flow.
            let srcs = self.topo.http_sources_of(ci, per);
            let src = if srcs.is_empty() {
                let quota = self.s.origin_quota.map_or(f64::INFINITY, |q| q as f64);
                if self.book.granted() as f64 + self.client_origin_bytes + self.pb > quota {
                    return;
                }
                ORIGIN
            } else {
                let Some(&r) = srcs.iter().max_by(|&&a, &&b| {
                    let sa = self.topo.up[a as usize] / f64::from(self.up_flows[a as usize] + 1);
                    let sb = self.topo.up[b as usize] / f64::from(self.up_flows[b as usize] + 1);
                    sa.total_cmp(&sb)
                }) else {
                    return;
                };
                r
            };
            let Some(p) = self.peers[ci].as_ref() else { return };
            let max_bytes = (self.s.run_bytes as f64).min(budget).max(self.pb) as u64;
            let max_pieces = ((max_bytes as f64 / self.pb).floor() as u64).max(1);
            let relay_have = if src == ORIGIN { None } else { Some(&self.have[src as usize]) };
            let run = plan_run(&p.map, max_pieces * u64::from(BLOCK_SIZE), overlap, |q| {
                relay_have.is_some_and(|h| !h.has(q))
            });
            let Some(run) = run else { return };
            let end = Self::claim_run(&p.map, run.first.0, run.count);
            if end == run.first.0 {
                return;
            }
            let kind = if src == ORIGIN { FlowKind::Origin } else { FlowKind::Http };
            if let Some(p) = self.peers[ci].as_mut() {
                p.http_flows += 1;
                if kind == FlowKind::Origin {
                    p.origin_flows += 1;
                }
            }
            self.start_flow(src, c, run.first.0, end, IMPORT_SLOT, kind);
            budget -= f64::from(end - run.first.0) * self.pb;
            flows += 1;
        }
    }

    fn pick_origin(&mut self, c: u32) {
        let ci = c as usize;
        let r = ci - self.topo.clients;
        let Some(lease) = self.book.lease(r) else { return };
        let conns = if lease.conns < 0 { self.s.relay_pull_conns } else { lease.conns };
        loop {
            let Some(p) = self.peers[ci].as_ref() else { return };
            if i64::from(p.origin_flows) >= conns {
                return;
            }
            let left = lease.allowance as f64 - p.origin_committed;
            if left < self.pb * 0.999 {
                return;
            }
            let max_pieces = ((self.s.run_bytes as f64).min(left) / self.pb).floor().max(1.0) as u64;
            let Some(run) = plan_run(&p.map, max_pieces * u64::from(BLOCK_SIZE), false, |_| false) else {
                return;
            };
            let end = Self::claim_run(&p.map, run.first.0, run.count);
            if end == run.first.0 {
                return;
            }
            if let Some(p) = self.peers[ci].as_mut() {
                p.origin_flows += 1;
                p.origin_committed += f64::from(end - run.first.0) * self.pb;
            }
            self.start_flow(ORIGIN, c, run.first.0, end, IMPORT_SLOT, FlowKind::Origin);
        }
    }

    fn samples(&mut self, t: f64) {
        let now = self.base + Duration::from_secs_f64(t);
        let mut switched = 0;
        for c in 0..self.topo.clients {
            let Some(p) = self.peers[c].as_ref() else { continue };
            if p.switch.is_none() {
                continue;
            }
            let mine = self.have[c].view().words();
            let nbs = self.topo.neighbours(c);
            let useful = nbs
                .iter()
                .any(|&nb| self.have[nb as usize].view().words().iter().zip(mine).any(|(a, b)| a & !b != 0));
            let remaining = f64::from(self.pieces - p.map.verified_count()) * self.pb;
            let sample = Sample {
                bt_bytes: p.bt_bytes as u64,
                http_bytes: (p.http_bytes + p.origin_bytes) as u64,
                remaining: remaining as u64,
                peers: nbs.len(),
                useful_peers: useful,
            };
            let Some(p) = self.peers[c].as_mut() else { continue };
            let Some(sw) = p.switch.as_mut() else { continue };
            sw.handle_sample(now, sample);
            p.allowance = sw.allowance();
            p.http_at_sample = p.http_bytes + p.origin_bytes;
            if sw.level() != Level::Off {
                switched += 1;
            }
            if p.allowance != Allowance::None {
                self.wake(c as u32);
            }
        }
        self.cur.switched = switched;
    }
}
