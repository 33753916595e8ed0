//! In-memory swarms of sans-IO sessions: whole torrents move between peers with no sockets.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};

use super::{PeerError, PeerEvent, PeerSession, SessionConfig};
use crate::hash::sha1;
use crate::layout::{FileSpan, Layout};
use crate::picker::Picker;
use crate::piece_map::{Bitfield, PeerSlot, PieceMap, Receipt};
use crate::store::Store;
use crate::types::{InfoHash, PeerId, PieceIndex};
use crate::wire::Message;

/// One peer's torrent state: piece map, picker, store, and the expected piece hashes.
struct Node {
    map: Arc<PieceMap>,
    picker: Arc<Picker>,
    store: Store,
    hashes: Arc<Vec<[u8; 20]>>,
    id: PeerId,
    hash_failures: u32,
}

impl Node {
    fn seeder(layout: &Layout, data: &[u8], hashes: Arc<Vec<[u8; 20]>>) -> Node {
        let full = Bitfield::full(layout.piece_count());
        let map = Arc::new(PieceMap::with_verified(layout, full.view()).unwrap());
        let store = Store::memory(layout.clone());
        store.write_at(0, data).unwrap();
        Self::with(map, store, hashes)
    }

    fn leecher(layout: &Layout, hashes: Arc<Vec<[u8; 20]>>) -> Node {
        Self::with(Arc::new(PieceMap::new(layout)), Store::memory(layout.clone()), hashes)
    }

    fn with(map: Arc<PieceMap>, store: Store, hashes: Arc<Vec<[u8; 20]>>) -> Node {
        let picker = Arc::new(Picker::new(map.clone()));
        Node { map, picker, store, hashes, id: PeerId::generate(), hash_failures: 0 }
    }
}

/// A connection: the session on each end, and which node each end belongs to.
struct Link {
    ends: [(usize, PeerSession); 2],
}

struct Swarm {
    nodes: Vec<Node>,
    links: Vec<Link>,
    rng: StdRng,
    now: Instant,
    info_hash: InfoHash,
    /// (link, end) pairs whose sent bytes vanish: a peer that went silent without closing.
    muted: Vec<(usize, usize)>,
    /// Steps (virtual milliseconds) so far. A session's timer runs when its `poll_timeout`
    /// is reached and on every 1000th step, as the driver's housekeeping does.
    steps: u64,
    /// Payload bytes the sessions reported as redundant ([`PeerEvent::Redundant`]).
    redundant: u64,
}

impl Swarm {
    fn new(nodes: Vec<Node>, seed: u64) -> Swarm {
        Swarm {
            nodes,
            links: Vec::new(),
            rng: StdRng::seed_from_u64(seed),
            now: Instant::now(),
            info_hash: InfoHash([7; 20]),
            muted: Vec::new(),
            steps: 0,
            redundant: 0,
        }
    }

    /// Connects node `a` to node `b`; each end gets the next free slot on its node.
    fn connect(&mut self, a: usize, b: usize) {
        self.connect_with(a, b, SessionConfig::default(), SessionConfig::default());
    }

    /// [`connect`](Self::connect) with a session configuration for each end.
    fn connect_with(&mut self, a: usize, b: usize, config_a: SessionConfig, config_b: SessionConfig) {
        let slot_for = |node: usize, links: &[Link]| {
            let used = links.iter().flat_map(|l| l.ends.iter()).filter(|(n, _)| *n == node).count();
            PeerSlot(used as u16)
        };
        let sa = slot_for(a, &self.links);
        let sb = slot_for(b, &self.links);
        let mk = |n: &Node, slot, config| {
            PeerSession::new(config, n.picker.clone(), slot, self.info_hash, n.id, self.now)
        };
        let ea = mk(&self.nodes[a], sa, config_a);
        let eb = mk(&self.nodes[b], sb, config_b);
        self.links.push(Link { ends: [(a, ea), (b, eb)] });
    }

    /// Moves queued bytes across every link (in random chunk sizes), then handles events.
    /// Returns whether anything moved.
    fn step(&mut self) -> bool {
        self.now += Duration::from_millis(1);
        self.steps += 1;
        // As a driver does: one timer per session at its `poll_timeout`, and a slow tick.
        let tick = self.steps.is_multiple_of(1000);
        for l in &mut self.links {
            for (_, s) in &mut l.ends {
                if tick || s.poll_timeout().is_some_and(|t| t <= self.now) {
                    let _ = s.handle_timeout(self.now);
                }
            }
        }
        let mut moved = false;
        for li in 0..self.links.len() {
            for dir in 0..2 {
                let mut bytes = Vec::new();
                let link = &mut self.links[li];
                while let Some(chunk) = link.ends[dir].1.poll_transmit(self.now) {
                    bytes.extend_from_slice(&chunk);
                }
                if self.muted.contains(&(li, dir)) {
                    continue;
                }
                let mut rest = &bytes[..];
                while !rest.is_empty() {
                    moved = true;
                    let cut = self.rng.random_range(1..=rest.len().min(40_000));
                    let (head, tail) = rest.split_at(cut);
                    self.links[li].ends[1 - dir]
                        .1
                        .handle_input(head, self.now)
                        .expect("peer accepts valid input");
                    rest = tail;
                }
            }
        }
        for li in 0..self.links.len() {
            for end in 0..2 {
                self.drain_events(li, end);
            }
        }
        moved
    }

    fn drain_events(&mut self, li: usize, end: usize) {
        let now = self.now;
        while let Some(ev) = self.links[li].ends[end].1.poll_event() {
            let node_ix = self.links[li].ends[end].0;
            match ev {
                PeerEvent::PeerInterest(true) => self.links[li].ends[end].1.set_choking(false),
                PeerEvent::Upload(block) => {
                    let node = &self.nodes[node_ix];
                    let off = piece_offset(&node.store, block.piece);
                    let data = node.store.read_at(off + block.offset as u64, block.length as usize).unwrap();
                    self.links[li].ends[end].1.send_block(block, data, now);
                }
                PeerEvent::Block { block, data, receipt } => {
                    let node = &self.nodes[node_ix];
                    let off = piece_offset(&node.store, block.piece) + block.offset as u64;
                    node.store.write_at(off, &data).unwrap();
                    if receipt == Receipt::PieceComplete {
                        self.verify(node_ix, block.piece);
                    }
                }
                PeerEvent::Redundant { bytes, .. } => self.redundant += u64::from(bytes),
                PeerEvent::CancelElsewhere { block, slots } => {
                    for l in &mut self.links {
                        for (n, s) in &mut l.ends {
                            if *n == node_ix && slots.contains(&s.slot()) {
                                s.cancel_request(block);
                            }
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// Hashes a completed piece and tells every session of the node the verdict.
    fn verify(&mut self, node_ix: usize, piece: PieceIndex) {
        let node = &mut self.nodes[node_ix];
        node.map.begin_verify(piece).unwrap();
        let bytes = node
            .store
            .read_at(piece_offset(&node.store, piece), node.map.piece_size(piece) as usize)
            .unwrap();
        let ok = sha1(&bytes) == node.hashes[piece.get()];
        if ok {
            node.map.mark_verified(piece).unwrap();
        } else {
            node.hash_failures += 1;
            node.map.mark_failed(piece).unwrap();
        }
        for l in &mut self.links {
            for (n, s) in &mut l.ends {
                if *n == node_ix {
                    if ok {
                        s.piece_verified(piece, self.now);
                    } else {
                        s.piece_failed(piece, self.now);
                    }
                }
            }
        }
    }

    /// Steps until `done` or nothing moves any more; at most `max_steps`.
    fn run(&mut self, max_steps: usize, done: impl Fn(&Swarm) -> bool) -> usize {
        for i in 0..max_steps {
            if done(self) {
                return i;
            }
            if !self.step() {
                // Quiet: let timers run (keep-alives, snub detection) before giving up.
                self.now += Duration::from_secs(40);
                for l in &mut self.links {
                    for (_, s) in &mut l.ends {
                        let _ = s.handle_timeout(self.now);
                    }
                }
                if !self.step() && done(self) {
                    return i;
                }
            }
        }
        max_steps
    }
}

fn piece_offset(store: &Store, piece: PieceIndex) -> u64 {
    store.layout().piece_offset(piece)
}

/// A multi-file torrent with a short last piece, its data and piece hashes.
fn torrent(seed: u64, piece_length: u32, lens: &[u64]) -> (Layout, Vec<u8>, Arc<Vec<[u8; 20]>>) {
    let files = lens
        .iter()
        .enumerate()
        .map(|(i, &length)| FileSpan { path: format!("f{i}").into(), length })
        .collect();
    let layout = Layout::new(files, piece_length).unwrap();
    let mut data = vec![0u8; layout.total_length() as usize];
    StdRng::seed_from_u64(seed).fill_bytes(&mut data);
    let hashes = data.chunks(piece_length as usize).map(sha1).collect();
    (layout, data, Arc::new(hashes))
}

fn stored(node: &Node) -> Vec<u8> {
    node.store.read_at(0, node.store.layout().total_length() as usize).map(|b: Bytes| b.to_vec()).unwrap()
}

#[test]
fn pair_transfers_a_multi_file_torrent() {
    let (layout, data, hashes) = torrent(1, 64 * 1024, &[1_000_000, 0, 777_777, 5]);
    let mut swarm =
        Swarm::new(vec![Node::seeder(&layout, &data, hashes.clone()), Node::leecher(&layout, hashes)], 11);
    swarm.connect(1, 0);
    let steps = swarm.run(10_000, |s| s.nodes[1].map.is_complete());
    assert!(swarm.nodes[1].map.is_complete(), "not complete after {steps} steps");
    assert_eq!(stored(&swarm.nodes[1]), data);
    assert_eq!(swarm.nodes[1].hash_failures, 0);
    swarm.nodes[1].map.check_invariants().unwrap();
    let (down, _) = swarm.links[0].ends[0].1.payload_totals();
    let (_, up) = swarm.links[0].ends[1].1.payload_totals();
    assert_eq!(down, data.len() as u64, "every byte downloaded exactly once");
    assert_eq!(up, down);
}

#[test]
fn two_seeders_share_the_work_and_endgame_cancels() {
    let (layout, data, hashes) = torrent(2, 32 * 1024, &[3_000_000]);
    let nodes = vec![
        Node::seeder(&layout, &data, hashes.clone()),
        Node::seeder(&layout, &data, hashes.clone()),
        Node::leecher(&layout, hashes),
    ];
    let mut swarm = Swarm::new(nodes, 3);
    swarm.connect(2, 0);
    swarm.connect(2, 1);
    swarm.run(20_000, |s| s.nodes[2].map.is_complete());
    assert!(swarm.nodes[2].map.is_complete());
    assert_eq!(stored(&swarm.nodes[2]), data);
    let from0 = swarm.links[0].ends[0].1.payload_totals().0;
    let from1 = swarm.links[1].ends[0].1.payload_totals().0;
    assert!(from0 > 0 && from1 > 0, "both seeders served: {from0} / {from1}");
    // Endgame may fetch a few blocks twice, never many.
    let extra = from0 + from1 - data.len() as u64;
    assert!(extra <= 64 * 16 * 1024, "{extra} duplicate bytes");
    // Every payload byte received is either used or reported redundant, never silently lost.
    assert_eq!(swarm.redundant, extra, "redundant bytes reported");
    swarm.nodes[2].map.check_invariants().unwrap();
}

#[test]
fn leechers_trade_pieces_with_each_other() {
    // The seeder talks only to leecher 1; leecher 2 gets everything through leecher 1.
    let (layout, data, hashes) = torrent(4, 16 * 1024, &[400_000]);
    let nodes = vec![
        Node::seeder(&layout, &data, hashes.clone()),
        Node::leecher(&layout, hashes.clone()),
        Node::leecher(&layout, hashes),
    ];
    let mut swarm = Swarm::new(nodes, 5);
    swarm.connect(1, 0);
    swarm.connect(2, 1);
    swarm.run(20_000, |s| s.nodes[1].map.is_complete() && s.nodes[2].map.is_complete());
    assert_eq!(stored(&swarm.nodes[1]), data);
    assert_eq!(stored(&swarm.nodes[2]), data);
}

#[test]
fn corrupt_piece_fails_its_hash_and_is_never_verified() {
    let (layout, data, hashes) = torrent(6, 16 * 1024, &[200_000]);
    let mut bad = data.clone();
    bad[5 * 16 * 1024 + 100] ^= 0xff; // piece 5 is corrupt at the seeder
    let mut swarm =
        Swarm::new(vec![Node::seeder(&layout, &bad, hashes.clone()), Node::leecher(&layout, hashes)], 7);
    swarm.connect(1, 0);
    swarm.run(2_000, |s| s.nodes[1].hash_failures >= 3);
    let leech = &swarm.nodes[1];
    assert!(leech.hash_failures >= 1);
    assert!(!leech.map.verified().has(PieceIndex(5)));
    assert_eq!(leech.map.verified_count(), layout.piece_count() - 1);
    leech.map.check_invariants().unwrap();
}

#[test]
fn wrong_info_hash_and_garbage_close_the_session() {
    let (layout, _, hashes) = torrent(8, 16 * 1024, &[100_000]);
    let node = Node::leecher(&layout, hashes);
    let now = Instant::now();
    let mut s = PeerSession::new(
        SessionConfig::default(),
        node.picker.clone(),
        PeerSlot(0),
        InfoHash([1; 20]),
        node.id,
        now,
    );
    let other = crate::wire::Handshake::new(InfoHash([2; 20]), PeerId::generate());
    assert!(matches!(s.handle_input(&other.to_bytes(), now), Err(super::PeerError::WrongInfoHash)));
    assert!(s.handle_input(b"", now).is_err(), "closed sessions refuse input");

    let mut s = PeerSession::new(
        SessionConfig::default(),
        node.picker.clone(),
        PeerSlot(1),
        InfoHash([1; 20]),
        node.id,
        now,
    );
    let ok = crate::wire::Handshake::new(InfoHash([1; 20]), PeerId::generate());
    s.handle_input(&ok.to_bytes(), now).unwrap();
    // HAVE for a piece past the end.
    let err = s.handle_input(&[0, 0, 0, 5, 4, 0, 0, 0x10, 0], now);
    assert!(err.is_err());
    assert_eq!(node.map.availability(PieceIndex(0)), 0);
}

#[test]
fn dropping_a_session_releases_its_claims() {
    let (layout, data, hashes) = torrent(9, 16 * 1024, &[300_000]);
    let mut swarm =
        Swarm::new(vec![Node::seeder(&layout, &data, hashes.clone()), Node::leecher(&layout, hashes)], 9);
    swarm.connect(1, 0);
    for _ in 0..3 {
        swarm.step();
    }
    let leech_map = swarm.nodes[1].map.clone();
    assert!(leech_map.unclaimed_blocks() < (300_000 / 16_384 + 1) as u64, "some blocks in flight");
    swarm.links.clear();
    assert_eq!(leech_map.availability(PieceIndex(0)), 0);
    leech_map.check_invariants().unwrap();
    let verified_blocks = leech_map.verified_count() as u64; // pieces are one block each here
    assert_eq!(leech_map.unclaimed_blocks() + verified_blocks, layout.piece_count() as u64);
}

#[test]
fn bitfield_after_the_extension_handshake_is_accepted() {
    // aria2's order: handshake, BEP 10 extended handshake, then BITFIELD.
    let (layout, _, hashes) = torrent(10, 16 * 1024, &[100_000]);
    let node = Node::leecher(&layout, hashes);
    let now = Instant::now();
    let info_hash = InfoHash([1; 20]);
    let mut s =
        PeerSession::new(SessionConfig::default(), node.picker.clone(), PeerSlot(0), info_hash, node.id, now);
    let mut input = crate::wire::Handshake::new(info_hash, PeerId::generate()).to_bytes().to_vec();
    let mut ext = bytes::BytesMut::new();
    crate::wire::ExtendedHandshake::default().to_message().encode(&mut ext);
    input.extend_from_slice(&ext);
    let mut bits = bytes::BytesMut::new();
    let wire_bits = crate::wire::Bitfield::from_fn(layout.piece_count(), |_| true);
    Message::Bitfield(wire_bits.into_bytes()).encode(&mut bits);
    input.extend_from_slice(&bits);
    s.handle_input(&input, now).expect("aria2's message order is accepted");
    assert_eq!(node.map.availability(PieceIndex(0)), 1);
    assert!(s.am_interested());
}

#[test]
fn request_pipeline_fills_within_milliseconds_of_the_first_blocks() {
    // A fast peer: the first blocks come back within a millisecond. The pipeline must grow to
    // its full depth right away (sized from the measured rate), not creep up over seconds.
    let (layout, data, hashes) = torrent(9, 256 * 1024, &[48 << 20]);
    let mut swarm =
        Swarm::new(vec![Node::seeder(&layout, &data, hashes.clone()), Node::leecher(&layout, hashes)], 5);
    swarm.connect(1, 0);
    let mut deepest = 0;
    for _ in 0..30 {
        swarm.step();
        deepest = deepest.max(swarm.links[0].ends[0].1.outstanding());
    }
    let max = SessionConfig::default().max_queue;
    assert!(deepest >= max / 2, "only {deepest} requests in flight after 30 ms (max {max})");
}

#[test]
fn queued_uploads_are_served_rarest_piece_first() {
    // A seed of 4 pieces; other peers hold pieces 0 and 2 (twice) and 3 (once): piece 1 is the
    // rarest, then 3, then 2 and 0.
    let (layout, data, hashes) = torrent(10, 16 * 1024, &[4 * 16 * 1024]);
    let node = Node::seeder(&layout, &data, hashes);
    for piece in [0, 2, 0, 2, 3] {
        node.map.peer_has(piece).unwrap();
    }
    let now = Instant::now();
    // A one-byte window: one upload at a time, the next only once the last was sent.
    let config = SessionConfig { upload_window: 1, ..SessionConfig::default() };
    let mut s = PeerSession::new(config, node.picker.clone(), PeerSlot(0), InfoHash([1; 20]), node.id, now);
    let hs = crate::wire::Handshake::new(InfoHash([1; 20]), PeerId::generate());
    s.handle_input(&hs.to_bytes(), now).unwrap();
    s.handle_input(&[0, 0, 0, 1, 2], now).unwrap(); // INTERESTED
    while s.poll_event().is_some() {}
    s.set_choking(false);
    while s.poll_transmit(now).is_some() {}
    let mut requests = bytes::BytesMut::new();
    for piece in [0, 1, 2, 3] {
        let block = crate::types::BlockRef { piece: PieceIndex(piece), offset: 0, length: 16 * 1024 };
        Message::Request(block).encode_head(&mut requests);
    }
    s.handle_input(&requests, now).unwrap();
    let mut served = Vec::new();
    for _ in 0..4 {
        let Some(PeerEvent::Upload(block)) = s.poll_event() else { panic!("expected an upload") };
        assert!(s.poll_event().is_none(), "the window holds one upload at a time");
        let start = block.piece.get() * 16 * 1024;
        s.send_block(block, Bytes::copy_from_slice(&data[start..start + 16 * 1024]), now);
        while s.poll_transmit(now).is_some() {}
        served.push(block.piece.0);
    }
    assert_eq!(served, vec![1, 3, 0, 2]);
}

#[test]
fn requests_beyond_the_queue_limit_are_refused_not_fatal() {
    let (layout, data, hashes) = torrent(11, 16 * 1024, &[4 * 16 * 1024]);
    let node = Node::seeder(&layout, &data, hashes);
    let now = Instant::now();
    let config = SessionConfig { upload_window: 1, max_peer_requests: 2, ..SessionConfig::default() };
    let mut s = PeerSession::new(config, node.picker.clone(), PeerSlot(0), InfoHash([1; 20]), node.id, now);
    let hs = crate::wire::Handshake::new(InfoHash([1; 20]), PeerId::generate());
    s.handle_input(&hs.to_bytes(), now).unwrap();
    s.handle_input(&[0, 0, 0, 1, 2], now).unwrap(); // INTERESTED
    while s.poll_event().is_some() {}
    s.set_choking(false);
    let mut requests = bytes::BytesMut::new();
    for piece in [0, 1, 2, 3] {
        let block = crate::types::BlockRef { piece: PieceIndex(piece), offset: 0, length: 16 * 1024 };
        Message::Request(block).encode_head(&mut requests);
    }
    s.handle_input(&requests, now).expect("too many requests are refused, the connection stays");
    let mut uploads = 0;
    while s.poll_transmit(now).is_some() {}
    while s.has_events() {
        if let Some(PeerEvent::Upload(block)) = s.poll_event() {
            uploads += 1;
            s.upload_failed(block);
        }
        while s.poll_transmit(now).is_some() {}
    }
    assert_eq!(uploads, 2, "only the first two requests are queued");
}

#[test]
fn requests_to_a_peer_that_went_silent_time_out_after_seconds_not_half_a_minute() {
    // A seed that answered within milliseconds stops sending (a dead link that stays open).
    // Its requests must be released (and cancelled) after the adaptive request timeout, the
    // 2 s minimum here, not the fixed 30 s limit; once it talks again the download finishes.
    let (layout, data, hashes) = torrent(12, 256 * 1024, &[64 << 20]);
    let mut swarm =
        Swarm::new(vec![Node::seeder(&layout, &data, hashes.clone()), Node::leecher(&layout, hashes)], 6);
    swarm.connect(1, 0);
    let max = SessionConfig::default().snub_timeout;
    for _ in 0..50 {
        if swarm.links[0].ends[0].1.request_timeout() < max {
            break; // the first blocks came back
        }
        swarm.step();
    }
    fn leecher(s: &Swarm) -> &PeerSession {
        &s.links[0].ends[0].1
    }
    assert!(leecher(&swarm).outstanding() > 1, "requests out to the seed");
    assert_eq!(leecher(&swarm).request_timeout(), SessionConfig::default().min_request_timeout);
    swarm.muted.push((0, 1));
    let muted_at = swarm.now;
    while !leecher(&swarm).is_snubbed()
        && swarm.now.saturating_duration_since(muted_at) < Duration::from_secs(40)
    {
        swarm.step();
    }
    let waited = swarm.now.saturating_duration_since(muted_at);
    assert!(leecher(&swarm).is_snubbed(), "never timed out");
    // At the timeout itself (the session's `poll_timeout`), not at the next 1 s tick.
    let limit = SessionConfig::default().min_request_timeout + Duration::from_millis(10);
    assert!(waited <= limit, "requests released after {waited:?}, limit {limit:?}");
    assert!(leecher(&swarm).outstanding() <= 1, "one probe request stays out");
    swarm.muted.clear();
    for _ in 0..20_000 {
        if swarm.nodes[1].map.is_complete() {
            break;
        }
        swarm.step();
    }
    assert!(swarm.nodes[1].map.is_complete(), "did not recover");
    assert!(!leecher(&swarm).is_snubbed());
    assert_eq!(stored(&swarm.nodes[1]), data);
}

#[test]
fn poll_timeout_names_the_keepalive_then_the_idle_limit() {
    // Two seeds have nothing to trade: once open, the next thing either session must do is a
    // keep-alive, `keepalive_interval` after it last wrote; a peer that then stays silent is
    // dropped at `idle_timeout` after it last spoke. Both at the instant `poll_timeout` names.
    let (layout, data, hashes) = torrent(14, 16 * 1024, &[64 * 1024]);
    let mut swarm = Swarm::new(
        vec![Node::seeder(&layout, &data, hashes.clone()), Node::seeder(&layout, &data, hashes)],
        8,
    );
    swarm.connect(1, 0);
    for _ in 0..100 {
        swarm.step();
    }
    let config = SessionConfig::default();
    let session = &mut swarm.links[0].ends[0].1;
    assert!(session.is_open());
    let due = session.poll_timeout().expect("an open session has a deadline");
    let quiet_since = swarm.now - Duration::from_millis(100);
    assert!(due > quiet_since + config.keepalive_interval, "keep-alive due at {:?}", due - quiet_since);
    assert!(due <= swarm.now + config.keepalive_interval + Duration::from_millis(1));
    // Just before: nothing to send. At it: a keep-alive (4 zero bytes), and the deadline moves on.
    session.handle_timeout(due - Duration::from_millis(2)).expect("open");
    assert!(session.poll_transmit(due).is_none());
    session.handle_timeout(due).expect("open");
    let sent: Vec<u8> = std::iter::from_fn(|| session.poll_transmit(due)).flatten().collect();
    assert_eq!(sent, [0, 0, 0, 0]);
    let next = session.poll_timeout().expect("still open");
    assert!(next > due, "the keep-alive moved the deadline");
    // The peer never speaks again: the deadline becomes the idle limit, and it closes there.
    let mut now = due;
    for _ in 0..10 {
        let at = session.poll_timeout().expect("open until idle");
        now = at;
        if session.handle_timeout(at).is_err() {
            break;
        }
        while session.poll_transmit(at).is_some() {}
    }
    assert!(session.poll_timeout().is_none(), "closed");
    assert!(now.saturating_duration_since(quiet_since) > config.idle_timeout);
    assert!(now.saturating_duration_since(quiet_since) <= config.idle_timeout + Duration::from_millis(101));
}

#[test]
fn a_slow_peer_is_not_given_a_deep_pipeline() {
    // Once blocks arrive, the pipeline follows the measured rate: a peer giving one block per
    // 100 ms (~160 KB/s) holds about `queue_time` of it, not `initial_queue` blocks that a
    // fast peer would later wait for.
    let (layout, data, hashes) = torrent(13, 256 * 1024, &[16 << 20]);
    let seed = Node::seeder(&layout, &data, hashes.clone());
    let leech = Node::leecher(&layout, hashes);
    let mut t = Instant::now();
    let ih = InfoHash([3; 20]);
    let mut a =
        PeerSession::new(SessionConfig::default(), leech.picker.clone(), PeerSlot(0), ih, leech.id, t);
    let mut b = PeerSession::new(SessionConfig::default(), seed.picker.clone(), PeerSlot(0), ih, seed.id, t);
    let mut to_b = Vec::new();
    let mut to_a = std::collections::VecDeque::new();
    let mut deepest_late = 0;
    for tick in 0..300u32 {
        t += Duration::from_millis(100);
        while let Some(c) = a.poll_transmit(t) {
            to_b.extend_from_slice(&c);
        }
        b.handle_input(&std::mem::take(&mut to_b), t).unwrap();
        while let Some(ev) = b.poll_event() {
            match ev {
                PeerEvent::PeerInterest(true) => b.set_choking(false),
                PeerEvent::Upload(block) => {
                    let off = piece_offset(&seed.store, block.piece) + block.offset as u64;
                    let bytes = seed.store.read_at(off, block.length as usize).unwrap();
                    b.send_block(block, bytes, t);
                }
                _ => {}
            }
        }
        while let Some(c) = b.poll_transmit(t) {
            to_a.push_back(c);
        }
        // The link carries the control bytes at once but one block per tick.
        let mut sent_block = false;
        while let Some(c) = to_a.front() {
            if c.len() >= 16 * 1024 {
                if sent_block {
                    break;
                }
                sent_block = true;
            }
            let c = to_a.pop_front().unwrap();
            a.handle_input(&c, t).unwrap();
        }
        while a.poll_event().is_some() {}
        if tick.is_multiple_of(10) {
            a.handle_timeout(t).unwrap();
        }
        if tick >= 100 {
            deepest_late = deepest_late.max(a.outstanding());
        }
    }
    let target = 2 * 164 * 1024 / (16 * 1024); // queue_time x rate, in blocks
    assert!(deepest_late <= target + 8, "{deepest_late} requests in flight to a ~160 KB/s peer");
    assert!(deepest_late >= SessionConfig::default().min_queue, "pipeline {deepest_late} below the floor");
}

#[test]
fn a_request_read_while_we_choke_the_peer_is_rejected() {
    // The driver was reading a block when the choker choked the peer: with the fast
    // extension the peer must get REJECT, or it would wait for the block until it times out.
    let (layout, data, hashes) = torrent(14, 16 * 1024, &[2 * 16 * 1024]);
    let node = Node::seeder(&layout, &data, hashes);
    let now = Instant::now();
    let ih = InfoHash([1; 20]);
    let mut s =
        PeerSession::new(SessionConfig::default(), node.picker.clone(), PeerSlot(0), ih, node.id, now);
    let mut hs = crate::wire::Handshake::new(ih, PeerId::generate());
    hs.reserved = crate::wire::Reserved::FLOODGATE;
    s.handle_input(&hs.to_bytes(), now).unwrap();
    s.handle_input(&[0, 0, 0, 1, 2], now).unwrap(); // INTERESTED
    while s.poll_event().is_some() {}
    s.set_choking(false);
    let block = crate::types::BlockRef { piece: PieceIndex(1), offset: 0, length: 16 * 1024 };
    let mut req = bytes::BytesMut::new();
    Message::Request(block).encode_head(&mut req);
    s.handle_input(&req, now).unwrap();
    let Some(PeerEvent::Upload(got)) = s.poll_event() else { panic!("expected an upload") };
    assert_eq!(got, block);
    while s.poll_transmit(now).is_some() {}
    s.set_choking(true);
    s.send_block(block, Bytes::copy_from_slice(&data[16 * 1024..]), now);
    let mut out = Vec::new();
    while let Some(c) = s.poll_transmit(now) {
        out.extend_from_slice(&c);
    }
    let mut expected = bytes::BytesMut::new();
    Message::Choke.encode_head(&mut expected);
    Message::RejectRequest(block).encode_head(&mut expected);
    assert_eq!(out, expected.to_vec(), "CHOKE then REJECT, and no PIECE");
}

#[test]
fn fleet_members_recognise_each_other_and_strangers_do_not_pass() {
    let (layout, data, hashes) = torrent(15, 64 * 1024, &[256 * 1024]);
    let mut swarm = Swarm::new(
        vec![
            Node::seeder(&layout, &data, hashes.clone()),
            Node::leecher(&layout, hashes.clone()),
            Node::leecher(&layout, hashes),
        ],
        8,
    );
    let member =
        || SessionConfig { fleet: Some(super::FleetKey::from_secret(b"dist-1")), ..SessionConfig::default() };
    let other =
        SessionConfig { fleet: Some(super::FleetKey::from_secret(b"dist-2")), ..SessionConfig::default() };
    swarm.connect_with(1, 0, member(), member());
    swarm.connect_with(2, 0, other, member());
    swarm.run(2_000, |s| s.nodes[1].map.is_complete() && s.nodes[2].map.is_complete());
    let [(_, a), (_, b)] = &swarm.links[0].ends;
    assert!(a.is_fleet_peer() && b.is_fleet_peer(), "same key: both ends see a fleet peer");
    let [(_, c), (_, d)] = &swarm.links[1].ends;
    assert!(!c.is_fleet_peer() && !d.is_fleet_peer(), "another key proves nothing");
    assert_eq!(stored(&swarm.nodes[2]), data, "a standard peer is still served");
}

#[test]
fn a_fleet_only_session_serves_members_and_closes_on_outsiders() {
    let (layout, data, hashes) = torrent(16, 64 * 1024, &[256 * 1024]);
    let key = super::FleetKey::from_secret(b"dist-1");
    let fleet_only = |fleet| SessionConfig { fleet, fleet_only: true, ..SessionConfig::default() };
    // Two members of a provisional swarm: the download completes.
    let mut swarm = Swarm::new(
        vec![Node::seeder(&layout, &data, hashes.clone()), Node::leecher(&layout, hashes.clone())],
        9,
    );
    swarm.connect_with(1, 0, fleet_only(Some(key)), fleet_only(Some(key)));
    swarm.run(2_000, |s| s.nodes[1].map.is_complete());
    assert_eq!(stored(&swarm.nodes[1]), data, "members trade");

    // An outsider that knows the info-hash but not the key (a standard session offering BEP
    // 10): the fleet-only seed closes at its extended handshake, having unchoked nothing even
    // though its driver asked to unchoke the interested peer at once.
    let (seed, leech) = (Node::seeder(&layout, &data, hashes.clone()), Node::leecher(&layout, hashes));
    let now = Instant::now();
    let info_hash = InfoHash([7; 20]);
    let mut a =
        PeerSession::new(fleet_only(Some(key)), seed.picker.clone(), PeerSlot(0), info_hash, seed.id, now);
    let mut b = PeerSession::new(
        SessionConfig::default(),
        leech.picker.clone(),
        PeerSlot(0),
        info_hash,
        leech.id,
        now,
    );
    a.set_choking(false);
    let drain =
        |s: &mut PeerSession| std::iter::from_fn(|| s.poll_transmit(now)).flatten().collect::<Vec<u8>>();
    // The outsider's handshake reaches the seed first; the seed answers with its handshake and
    // pieces; the outsider, interested now, answers with its extended handshake (no proof).
    let hello = drain(&mut b);
    a.handle_input(&hello, now).expect("a handshake for the right info-hash is taken");
    while a.poll_event().is_some() {}
    let to_b = drain(&mut a);
    b.handle_input(&to_b, now).expect("the outsider takes what the seed sends");
    while b.poll_event().is_some() {}
    let to_a = drain(&mut b);
    let refused = a.handle_input(&to_a, now).err();
    assert!(matches!(refused, Some(PeerError::NotInFleet)), "outsider refused: {refused:?}");
    assert!(b.am_interested(), "the outsider wanted pieces");
    assert_eq!(b.outstanding(), 0, "never unchoked, so it never asked for a block");
    assert!(a.poll_timeout().is_none(), "the seed's session is closed");

    // Without BEP 10 a peer cannot prove anything: refused at its handshake.
    let mut c =
        PeerSession::new(fleet_only(Some(key)), seed.picker.clone(), PeerSlot(1), info_hash, seed.id, now);
    let mut hs = crate::wire::Handshake::new(info_hash, PeerId::generate());
    hs.reserved = crate::wire::Reserved([0; 8]);
    assert!(matches!(c.handle_input(&hs.to_bytes(), now), Err(PeerError::NotInFleet)));
}

/// Found by the `peer_session` fuzz target: an extension message with an empty payload was
/// queued as an empty chunk, and a write batch of only empty chunks is a zero-byte write.
#[test]
fn poll_transmit_never_yields_an_empty_chunk() {
    let (layout, _, hashes) = torrent(12, 16 * 1024, &[100_000]);
    let node = Node::leecher(&layout, hashes);
    let now = Instant::now();
    let mut s = PeerSession::new(
        SessionConfig::default(),
        node.picker.clone(),
        PeerSlot(0),
        InfoHash([1; 20]),
        node.id,
        now,
    );
    let mut hs = crate::wire::Handshake::new(InfoHash([1; 20]), PeerId::generate());
    hs.reserved = crate::wire::Reserved::FLOODGATE;
    s.handle_input(&hs.to_bytes(), now).unwrap();
    while s.poll_transmit(now).is_some() {}
    s.send_extended(3, Bytes::new());
    let mut sent = Vec::new();
    while let Some(chunk) = s.poll_transmit(now) {
        assert!(!chunk.is_empty(), "an empty chunk to write");
        sent.extend_from_slice(&chunk);
    }
    assert_eq!(sent, [0, 0, 0, 2, 20, 3], "the message is still sent whole");
    assert!(!s.wants_transmit());
}

/// Found by the `peer_session` fuzz target: unchoking a peer before its handshake arrived only
/// recorded the decision; the peer, choked from the start, was never told, and a later choke
/// went out as a second CHOKE.
#[test]
fn an_unchoke_before_the_handshake_is_sent_once_the_connection_opens() {
    let (layout, data, hashes) = torrent(13, 16 * 1024, &[100_000]);
    let node = Node::seeder(&layout, &data, hashes);
    let now = Instant::now();
    let mut s = PeerSession::new(
        SessionConfig::default(),
        node.picker.clone(),
        PeerSlot(0),
        InfoHash([1; 20]),
        node.id,
        now,
    );
    s.set_choking(false);
    while s.poll_transmit(now).is_some() {}
    let hs = crate::wire::Handshake::new(InfoHash([1; 20]), PeerId::generate());
    s.handle_input(&hs.to_bytes(), now).unwrap();
    let mut decoder = crate::wire::Decoder::new(crate::wire::DecoderConfig::default());
    while let Some(chunk) = s.poll_transmit(now) {
        decoder.extend_from_slice(&chunk);
    }
    let mut sent = Vec::new();
    while let Some(m) = decoder.next().unwrap() {
        sent.push(m);
    }
    // Our pieces and extended handshake first, then the unchoke, once.
    assert_eq!(sent.last(), Some(&Message::Unchoke), "{sent:?}");
    assert_eq!(sent.iter().filter(|m| **m == Message::Unchoke).count(), 1, "{sent:?}");
    s.set_choking(true);
    let mut decoder = crate::wire::Decoder::new(crate::wire::DecoderConfig::default());
    while let Some(chunk) = s.poll_transmit(now) {
        decoder.extend_from_slice(&chunk);
    }
    assert_eq!(decoder.next().unwrap(), Some(Message::Choke));
}

#[test]
fn our_extended_handshake_names_the_client() {
    let (layout, _, hashes) = torrent(11, 16 * 1024, &[100_000]);
    let (a, b) = (Node::leecher(&layout, hashes.clone()), Node::leecher(&layout, hashes));
    let now = Instant::now();
    let info_hash = InfoHash([1; 20]);
    let mut ours =
        PeerSession::new(SessionConfig::default(), a.picker.clone(), PeerSlot(0), info_hash, a.id, now);
    let mut theirs =
        PeerSession::new(SessionConfig::default(), b.picker.clone(), PeerSlot(1), info_hash, b.id, now);
    let mut named = None;
    for _ in 0..4 {
        while let Some(bytes) = ours.poll_transmit(now) {
            theirs.handle_input(&bytes, now).expect("a valid stream");
        }
        while let Some(bytes) = theirs.poll_transmit(now) {
            ours.handle_input(&bytes, now).expect("a valid stream");
        }
        while let Some(ev) = theirs.poll_event() {
            if let PeerEvent::Extended(hs) = ev {
                named = hs.v;
            }
        }
    }
    assert_eq!(named.as_deref(), Some(crate::types::CLIENT_VERSION));
    assert!(crate::types::CLIENT_VERSION.starts_with("Floodgate "));
}

/// Moves every byte each session has to send into the other, `rounds` times.
fn pump(a: &mut PeerSession, b: &mut PeerSession, now: Instant) {
    while let Some(bytes) = a.poll_transmit(now) {
        b.handle_input(&bytes, now).expect("a valid stream");
    }
    while let Some(bytes) = b.poll_transmit(now) {
        a.handle_input(&bytes, now).expect("a valid stream");
    }
}

#[test]
fn a_cancel_takes_back_a_piece_not_yet_handed_to_the_driver() {
    let (layout, data, hashes) = torrent(12, 16 * 1024, &[256 * 1024]);
    let (seed, leech) = (Node::seeder(&layout, &data, hashes.clone()), Node::leecher(&layout, hashes));
    let now = Instant::now();
    let info_hash = InfoHash([1; 20]);
    let mut up =
        PeerSession::new(SessionConfig::default(), seed.picker.clone(), PeerSlot(0), info_hash, seed.id, now);
    let mut down = PeerSession::new(
        SessionConfig::default(),
        leech.picker.clone(),
        PeerSlot(1),
        info_hash,
        leech.id,
        now,
    );
    // Handshakes, interest, unchoke, and the leecher's requests reach the seed.
    let mut asked = Vec::new();
    for _ in 0..4 {
        pump(&mut down, &mut up, now);
        while let Some(ev) = up.poll_event() {
            match ev {
                PeerEvent::PeerInterest(true) => up.set_choking(false),
                PeerEvent::Upload(block) => asked.push(block),
                _ => {}
            }
        }
    }
    assert!(asked.len() >= 3, "the leecher asked for several blocks: {asked:?}");
    // The driver answers every request; the PIECEs wait in the seed's session.
    for &block in &asked {
        let off = piece_offset(&seed.store, block.piece) + u64::from(block.offset);
        let bytes = Bytes::copy_from_slice(&data[off as usize..off as usize + block.length as usize]);
        up.send_block(block, bytes, now);
    }
    // The leecher withdraws the last two (as when another peer delivered them) before the
    // seed's writer has taken them.
    let withdrawn = &asked[asked.len() - 2..];
    for &block in withdrawn {
        down.cancel_request(block);
    }
    while let Some(bytes) = down.poll_transmit(now) {
        up.handle_input(&bytes, now).expect("a valid stream");
    }
    pump(&mut up, &mut down, now);
    let (mut got, mut redundant) = (0, 0);
    while let Some(ev) = down.poll_event() {
        match ev {
            PeerEvent::Block { .. } => got += 1,
            PeerEvent::Redundant { .. } => redundant += 1,
            _ => {}
        }
    }
    assert_eq!((got, redundant), (asked.len() - 2, 0), "cancelled PIECEs were not sent");
    let sent: u64 = asked[..asked.len() - 2].iter().map(|b| u64::from(b.length)).sum();
    assert_eq!(up.payload_totals().1, sent, "only what went out counts as uploaded");
}
