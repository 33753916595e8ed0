#![no_main]
//! One `PeerSession` (engine/src/peer/session.rs) driven like a real driver would, by a
//! structure-aware sequence of operations (`arbitrary`): the peer's handshake and messages
//! (well-formed, built from an enum, or raw garbage, in chunks), answers to our requests, timer
//! advances on a virtual clock, and the driver's calls (`piece_verified`, `piece_failed`,
//! `cancel_request` after another source got a block, `set_choking`, `send_block`, `upload_failed`, `send_extended`, `close`).
//!
//! After every step, from the public API only:
//! - the piece map's invariants (I1–I12) hold and our requests in flight stay within the queue;
//! - everything the session writes decodes as valid BitTorrent: our handshake, then messages
//!   within the torrent, choke/unchoke and interested/not-interested strictly alternating, no
//!   PIECE while we choke, PIECEs exactly the blocks the driver sent, HAVE only for verified
//!   pieces, BEP 6 / BEP 10 messages only when negotiated; the bytes one step queues are
//!   bounded, and draining `poll_transmit` leaves nothing wanted;
//! - events are consistent: one handshake, blocks only as requested and of their length,
//!   uploads only of verified pieces the peer asked for while we unchoke, within the upload
//!   window; no cancel for other sessions (there are none);
//! - once closed (by an error, a timeout or `close`), nothing more comes out, and the map holds
//!   no claim and no availability of this peer; likewise after the session is dropped.
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use floodgate_engine::layout::Layout;
use floodgate_engine::peer::{PeerError, PeerEvent, PeerSession, SessionConfig, SuperSeeding};
use floodgate_engine::picker::Picker;
use floodgate_engine::piece_map::{Bitfield, PeerSlot, PieceMap, PieceState, Receipt};
use floodgate_engine::types::{BlockRef, InfoHash, PeerId, PieceIndex, BLOCK_SIZE};
use floodgate_engine::wire::{Decoder, DecoderConfig, ExtendedHandshake, Handshake, Message, Reserved};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

const INFO_HASH: InfoHash = InfoHash([0x5a; 20]);
const OUR_ID: PeerId = PeerId([1; 20]);
const PEER_ID: PeerId = PeerId([2; 20]);
const SLOT: PeerSlot = PeerSlot(3);
/// Another source of blocks (an HTTP fetch).
const OTHER: PeerSlot = PeerSlot(4);

#[derive(Arbitrary, Debug)]
struct Setup {
    /// Pieces: 1 + this % 8.
    pieces: u8,
    /// Two blocks per piece instead of one.
    two_blocks: bool,
    /// How much shorter the last piece is (bytes).
    short_last: u16,
    /// Pieces we have verified at the start (bit i: piece i).
    verified: u8,
    super_seed: bool,
    /// Small queues and windows, so the bounds are reached.
    small: bool,
}

/// A piece index: mostly in range, sometimes just past the end.
#[derive(Arbitrary, Debug, Clone, Copy)]
struct Piece(u8);

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Len {
    Whole,
    Short(u16),
    Any(u32),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
struct Block {
    piece: Piece,
    block: u8,
    len: Len,
}

#[derive(Arbitrary, Debug)]
enum Msg {
    KeepAlive,
    Choke,
    Unchoke,
    Interested,
    NotInterested,
    Have(Piece),
    /// A bitfield of the right length with these bits (bit i: piece i).
    Bitfield(u8),
    /// A bitfield of any length.
    RawBitfield(Vec<u8>),
    Request(Block),
    Piece(Block),
    Cancel(Block),
    Port(u16),
    Suggest(Piece),
    HaveAll,
    HaveNone,
    Reject(Block),
    AllowedFast(Piece),
    ExtendedHandshake {
        reqq: Option<u32>,
        metadata_size: Option<u64>,
    },
    Extended {
        id: u8,
        payload: Vec<u8>,
    },
    Unknown {
        id: u8,
        payload: Vec<u8>,
    },
}

#[derive(Arbitrary, Debug)]
enum Op {
    /// The peer's handshake.
    Handshake {
        right_hash: bool,
        our_id: bool,
        fast: bool,
        extended: bool,
        split: u8,
    },
    /// A well-formed message, fed in two chunks.
    Message {
        msg: Msg,
        split: u8,
    },
    /// Raw bytes from the peer.
    Garbage(Vec<u8>),
    /// Raw bytes read straight into the receive buffer.
    ReadIntoBuffer(Vec<u8>),
    /// The peer answers our `k`-th request seen on the wire (maybe with a wrong length).
    Answer {
        k: u8,
        truncate: bool,
    },
    /// The peer rejects our `k`-th request.
    Reject {
        k: u8,
    },
    /// Time passes; the driver calls `handle_timeout`.
    Advance {
        ms: u32,
    },
    /// The hasher finishes a complete piece (or reveals a verified one while super-seeding).
    Verify {
        piece: Piece,
        pass: bool,
    },
    /// Another source (an HTTP fetch) got the block of our `k`-th request first.
    CancelRequest {
        k: u8,
    },
    SetChoking(bool),
    /// The driver answers the `k`-th upload it was asked for (or fails to read it).
    Serve {
        k: u8,
        fail: bool,
    },
    SendExtended {
        id: u8,
        len: u8,
    },
    /// The driver takes up to this many events.
    PollEvents(u8),
    Close,
}

#[derive(Arbitrary, Debug)]
struct Input {
    setup: Setup,
    ops: Vec<Op>,
}

/// What the driver (this harness) knows.
struct Harness {
    session: Option<PeerSession>,
    map: Arc<PieceMap>,
    config: SessionConfig,
    now: Instant,
    /// Our side of the wire, decoded.
    wire: Decoder,
    wire_handshake: bool,
    /// The messages we sent so far, to check order rules.
    sent_choke: bool,
    sent_interested: bool,
    bitfield_allowed: bool,
    /// Negotiated with the peer (from its handshake); `None` when raw bytes may have formed
    /// the handshake, so it is not known.
    fast: Option<bool>,
    extended: Option<bool>,
    /// The flags of the handshake being fed, when nothing else is buffered before it.
    expect_handshake: Option<(bool, bool)>,
    /// Bytes were fed before the session opened.
    fed_before_open: bool,
    /// Raw bytes were fed (they may hold any message).
    raw_fed: bool,
    handshake_events: usize,
    peer_interest: bool,
    /// Our requests seen on the wire (bounded).
    our_requests: Vec<BlockRef>,
    /// Requests the peer sent (bounded).
    peer_requests: Vec<BlockRef>,
    /// Uploads handed to the driver and not yet answered.
    uploads: Vec<BlockRef>,
    /// Blocks sent with `send_block` and not yet seen on the wire.
    served: VecDeque<(BlockRef, Bytes)>,
    closed: bool,
}

fn piece_ix(map: &PieceMap, p: Piece) -> u32 {
    u32::from(p.0) % (map.piece_count() + 1)
}

fn block_ref(map: &PieceMap, b: Block) -> BlockRef {
    let piece = piece_ix(map, b.piece);
    let size = if piece < map.piece_count() { map.piece_size(PieceIndex(piece)) } else { BLOCK_SIZE };
    let offset = u32::from(b.block % 3) * BLOCK_SIZE;
    let whole = size.saturating_sub(offset).min(BLOCK_SIZE);
    let length = match b.len {
        Len::Whole => whole,
        Len::Short(n) => u32::from(n) % (whole + 1),
        Len::Any(n) => n % (1 << 20),
    };
    BlockRef { piece: PieceIndex(piece), offset, length }
}

fn block_data(block: BlockRef, len: usize) -> Bytes {
    Bytes::from((0..len).map(|i| (i as u32 ^ block.piece.0 ^ block.offset) as u8).collect::<Vec<u8>>())
}

impl Harness {
    fn encode(&self, msg: &Msg) -> Vec<u8> {
        let map = &self.map;
        let count = map.piece_count();
        let m = match msg {
            Msg::KeepAlive => Message::KeepAlive,
            Msg::Choke => Message::Choke,
            Msg::Unchoke => Message::Unchoke,
            Msg::Interested => Message::Interested,
            Msg::NotInterested => Message::NotInterested,
            Msg::Have(p) => Message::Have(PieceIndex(piece_ix(map, *p))),
            Msg::Bitfield(bits) => {
                let mut wire = vec![0u8; count.div_ceil(8) as usize];
                for i in (0..count).filter(|i| bits & (1 << i) != 0) {
                    wire[(i / 8) as usize] |= 0x80 >> (i % 8);
                }
                Message::Bitfield(Bytes::from(wire))
            }
            Msg::RawBitfield(b) => Message::Bitfield(Bytes::copy_from_slice(b)),
            Msg::Request(b) => Message::Request(block_ref(map, *b)),
            Msg::Piece(b) => {
                let r = block_ref(map, *b);
                let len = (r.length as usize).min(2 * BLOCK_SIZE as usize);
                Message::Piece { piece: r.piece, offset: r.offset, data: block_data(r, len) }
            }
            Msg::Cancel(b) => Message::Cancel(block_ref(map, *b)),
            Msg::Port(p) => Message::Port(*p),
            Msg::Suggest(p) => Message::SuggestPiece(PieceIndex(piece_ix(map, *p))),
            Msg::HaveAll => Message::HaveAll,
            Msg::HaveNone => Message::HaveNone,
            Msg::Reject(b) => Message::RejectRequest(block_ref(map, *b)),
            Msg::AllowedFast(p) => Message::AllowedFast(PieceIndex(piece_ix(map, *p))),
            Msg::ExtendedHandshake { reqq, metadata_size } => {
                ExtendedHandshake { reqq: *reqq, metadata_size: *metadata_size, ..Default::default() }
                    .to_message()
            }
            Msg::Extended { id, payload } => {
                Message::Extended { id: id.saturating_add(1), payload: Bytes::copy_from_slice(payload) }
            }
            // Ids 21.. are unknown to BEP 3/5/6/10.
            Msg::Unknown { id, payload } => {
                Message::Unknown { id: 21 + id % 200, payload: Bytes::copy_from_slice(payload) }
            }
        };
        let mut out = Vec::new();
        m.encode(&mut out);
        out
    }

    /// Feeds the peer's bytes in two chunks.
    fn input(&mut self, bytes: &[u8], split: u8) {
        let cut = if bytes.is_empty() { 0 } else { usize::from(split) % bytes.len() };
        for chunk in [&bytes[..cut], &bytes[cut..]] {
            let Some(s) = self.session.as_mut() else { return };
            let was_open = s.is_open();
            let result = s.handle_input(chunk, self.now);
            if !was_open && s.is_open() {
                let expected = self.expect_handshake.take();
                self.fast = expected.map(|(fast, _)| fast && Reserved::FLOODGATE.fast());
                self.extended = expected.map(|(_, ext)| ext && Reserved::FLOODGATE.extension_protocol());
            }
            if !s.is_open() && !chunk.is_empty() {
                self.fed_before_open = true;
            }
            match result {
                Ok(()) => {}
                Err(PeerError::Closed) => assert!(self.closed, "Closed from an open session"),
                Err(_) => {
                    assert!(!s.is_open(), "an input error leaves the session open");
                    self.on_closed();
                    return;
                }
            }
        }
    }

    fn step(&mut self, op: &Op) {
        let now = self.now;
        match op {
            Op::Handshake { right_hash, our_id, fast, extended, split } => {
                let mut hs = Handshake::new(
                    if *right_hash { INFO_HASH } else { InfoHash([9; 20]) },
                    if *our_id { OUR_ID } else { PEER_ID },
                );
                hs.reserved = Reserved::default().with_fast(*fast).with_extension_protocol(*extended);
                let was_open = self.session.as_ref().is_some_and(PeerSession::is_open);
                let clean = !was_open && !self.fed_before_open && !self.closed;
                self.expect_handshake = clean.then_some((*fast, *extended));
                let mut bytes = Vec::new();
                hs.encode(&mut bytes);
                self.input(&bytes, *split);
                self.expect_handshake = None;
                if clean {
                    let open = self.session.as_ref().is_some_and(PeerSession::is_open);
                    assert_eq!(open, *right_hash && !*our_id, "handshake outcome");
                }
            }
            Op::Message { msg, split } => {
                let bytes = self.encode(msg);
                if let Msg::Request(b) = msg {
                    if self.peer_requests.len() < 512 {
                        self.peer_requests.push(block_ref(&self.map, *b));
                    }
                }
                self.input(&bytes, *split);
            }
            Op::Garbage(bytes) => {
                self.raw_fed |= !bytes.is_empty();
                self.input(bytes, 0)
            }
            Op::ReadIntoBuffer(bytes) => {
                self.raw_fed |= !bytes.is_empty();
                if self.session.as_ref().is_some_and(|s| !s.is_open()) && !bytes.is_empty() {
                    self.fed_before_open = true;
                }
                if let Some(s) = self.session.as_mut() {
                    s.recv_buffer().extend_from_slice(bytes);
                }
                self.input(&[], 0);
            }
            Op::Answer { k, truncate } => {
                let Some(&r) = self.our_requests.get(usize::from(*k) % self.our_requests.len().max(1)) else {
                    return;
                };
                let len = if *truncate { r.length as usize / 2 } else { r.length as usize };
                let mut bytes = Vec::new();
                Message::Piece { piece: r.piece, offset: r.offset, data: block_data(r, len) }
                    .encode(&mut bytes);
                self.input(&bytes, *k);
            }
            Op::Reject { k } => {
                let Some(&r) = self.our_requests.get(usize::from(*k) % self.our_requests.len().max(1)) else {
                    return;
                };
                let mut bytes = Vec::new();
                Message::RejectRequest(r).encode(&mut bytes);
                self.input(&bytes, 0);
            }
            Op::Advance { ms } => {
                self.now += Duration::from_millis(u64::from(*ms % 400_000));
                let now = self.now;
                if let Some(s) = self.session.as_mut() {
                    match s.handle_timeout(now) {
                        Ok(()) => assert!(!self.closed),
                        Err(PeerError::Closed) => assert!(self.closed),
                        Err(_) => {
                            assert!(!s.is_open());
                            self.on_closed();
                        }
                    }
                }
            }
            Op::Verify { piece, pass } => {
                let p = piece_ix(&self.map, *piece);
                let Ok(p) = self.map.piece(p) else { return };
                let Some(s) = self.session.as_mut() else { return };
                match self.map.piece_state(p) {
                    PieceState::Complete => {
                        self.map.begin_verify(p).expect("a complete piece can be verified");
                        if *pass {
                            self.map.mark_verified(p).expect("verifying");
                            s.piece_verified(p, now);
                        } else {
                            self.map.mark_failed(p).expect("verifying");
                            s.piece_failed(p, now);
                        }
                    }
                    // Super-seeding reveals verified pieces one by one.
                    PieceState::Verified => s.piece_verified(p, now),
                    _ => {}
                }
            }
            Op::CancelRequest { k } => {
                let Some(&r) = self.our_requests.get(usize::from(*k) % self.our_requests.len().max(1)) else {
                    return;
                };
                // As in the swarm: the block arrived elsewhere (an HTTP piece, which takes it
                // whoever requested it), and the sessions that requested it are told.
                let mut cancels = Vec::new();
                let receipt = self.map.receive_block_superseding(r, OTHER, &mut cancels);
                assert!(receipt.is_ok(), "our request {r:?} is not a block of the torrent");
                assert!(cancels.iter().all(|&c| c == SLOT));
                if let Some(s) = self.session.as_mut() {
                    for _ in cancels {
                        s.cancel_request(r);
                    }
                }
            }
            Op::SetChoking(choke) => {
                if let Some(s) = self.session.as_mut() {
                    s.set_choking(*choke);
                    assert_eq!(s.am_choking(), *choke);
                }
            }
            Op::Serve { k, fail } => {
                if self.uploads.is_empty() {
                    return;
                }
                let b = self.uploads.remove(usize::from(*k) % self.uploads.len());
                let Some(s) = self.session.as_mut() else { return };
                if *fail {
                    s.upload_failed(b);
                } else {
                    let data = block_data(b, b.length as usize);
                    if s.is_open() && !s.am_choking() {
                        self.served.push_back((b, data.clone()));
                    }
                    s.send_block(b, data, now);
                }
            }
            Op::SendExtended { id, len } => {
                if let Some(s) = self.session.as_mut() {
                    s.send_extended(id.saturating_add(1), Bytes::from(vec![*len; usize::from(*len)]));
                }
            }
            Op::PollEvents(n) => {
                for _ in 0..*n {
                    if !self.poll_one() {
                        break;
                    }
                }
            }
            Op::Close => {
                if let Some(s) = self.session.as_mut() {
                    s.close();
                    s.close();
                    assert!(!s.is_open());
                }
                if !self.closed {
                    self.on_closed();
                }
            }
        }
    }

    /// Takes one event and acts on it; false when there was none.
    fn poll_one(&mut self) -> bool {
        let Some(s) = self.session.as_mut() else { return false };
        let has = s.has_events();
        let Some(ev) = s.poll_event() else {
            assert!(!has, "has_events but no event");
            return false;
        };
        assert!(!self.closed, "an event after close: {ev:?}");
        match ev {
            PeerEvent::Handshake { peer_id, .. } => {
                self.handshake_events += 1;
                assert_eq!(self.handshake_events, 1);
                assert_ne!(peer_id, OUR_ID, "a connection to ourselves");
            }
            PeerEvent::Extended(_) | PeerEvent::Redundant { .. } => {}
            PeerEvent::Block { block, data, receipt } => {
                assert_eq!(data.len(), block.length as usize);
                assert!(matches!(receipt, Receipt::Accepted | Receipt::PieceComplete));
                assert!(
                    self.our_requests.contains(&block) || self.our_requests.len() >= 512,
                    "a block we did not request: {block:?}"
                );
            }
            PeerEvent::Upload(block) => {
                assert!(!s.am_choking(), "an upload while we choke");
                assert!(self.map.verified().has(block.piece), "an upload of a piece we lack");
                assert!(block.length > 0 && block.length <= self.config.max_request_len);
                let size = self.map.piece_size(block.piece);
                assert!(block.offset.checked_add(block.length).is_some_and(|e| e <= size));
                if !self.raw_fed && self.peer_requests.len() < 512 {
                    assert!(self.peer_requests.contains(&block), "an upload the peer did not ask for");
                }
                self.uploads.push(block);
                let out: usize = self.uploads.iter().map(|b| b.length as usize).sum();
                assert!(out < self.config.upload_window + self.config.max_request_len as usize, "window");
            }
            PeerEvent::CancelElsewhere { block, slots } => {
                panic!("cancel for other sessions {slots:?} of {block:?}, with no other session")
            }
            PeerEvent::PeerInterest(i) => {
                assert_ne!(i, self.peer_interest, "interest event without a change");
                self.peer_interest = i;
            }
            PeerEvent::Unhandled(m) => {
                assert!(matches!(m, Message::Extended { id: 1..=255, .. } | Message::Unknown { .. }), "{m:?}")
            }
        }
        true
    }

    fn on_closed(&mut self) {
        // What was queued before the close may still be taken; nothing after.
        for _ in 0..100_000 {
            if !self.poll_one() {
                break;
            }
        }
        self.closed = true;
        self.uploads.clear();
    }

    /// Drains what the session wants to write and checks it as the peer would.
    fn transmit(&mut self, bound: usize, closed_before: bool) {
        let Some(s) = self.session.as_mut() else { return };
        let mut total = 0;
        while let Some(chunk) = s.poll_transmit(self.now) {
            assert!(!chunk.is_empty());
            total += chunk.len();
            self.wire.extend_from_slice(&chunk);
        }
        assert!(!s.wants_transmit(), "wants to transmit after a full drain");
        if closed_before {
            // What was queued before the close went out in the step that closed.
            assert_eq!(total, 0, "bytes written after close");
        }
        assert!(total <= bound, "{total} bytes queued by one step (bound {bound})");
        if !self.wire_handshake {
            match self.wire.handshake().expect("our handshake is valid") {
                Some(hs) => {
                    assert_eq!((hs.info_hash, hs.peer_id), (INFO_HASH, OUR_ID));
                    self.wire_handshake = true;
                    self.bitfield_allowed = true;
                }
                None => return,
            }
        }
        while let Some(m) = self.wire.next().expect("what we send decodes") {
            self.check_sent(m);
        }
    }

    fn check_sent(&mut self, m: Message) {
        let map = &self.map;
        let first = std::mem::replace(&mut self.bitfield_allowed, false);
        match m {
            Message::Choke => {
                assert!(!self.sent_choke, "choke twice");
                self.sent_choke = true;
            }
            Message::Unchoke => {
                assert!(self.sent_choke, "unchoke while the peer is unchoked");
                self.sent_choke = false;
            }
            Message::Interested => {
                assert!(!self.sent_interested, "interested twice");
                self.sent_interested = true;
            }
            Message::NotInterested => {
                assert!(self.sent_interested, "not interested twice");
                self.sent_interested = false;
            }
            Message::Have(p) => assert!(map.verified().has(p), "HAVE of a piece not verified"),
            Message::Bitfield(_) => assert!(first, "BITFIELD after the first message"),
            Message::HaveAll | Message::HaveNone => {
                assert!(first && self.fast != Some(false), "HAVE ALL/NONE")
            }
            Message::RejectRequest(_) => assert!(self.fast != Some(false), "REJECT without BEP 6"),
            Message::Extended { .. } => {
                assert!(self.extended != Some(false), "extended message without BEP 10")
            }
            Message::Request(b) => {
                assert!(b.piece.0 < map.piece_count());
                assert!(b.length > 0 && b.length <= BLOCK_SIZE && b.offset % BLOCK_SIZE == 0);
                assert!(b.offset + b.length <= map.piece_size(b.piece));
                if self.our_requests.len() < 512 {
                    self.our_requests.push(b);
                }
            }
            Message::Piece { piece, offset, data } => {
                assert!(!self.sent_choke, "PIECE while we choke");
                let (b, d) = self.served.pop_front().expect("a PIECE the driver did not send");
                assert_eq!((b.piece, b.offset), (piece, offset));
                assert_eq!(d, data);
            }
            Message::Cancel(b) => assert!(self.our_requests.contains(&b) || self.our_requests.len() >= 512),
            Message::KeepAlive => {}
            other => panic!("we sent {other:?}"),
        }
    }

    /// Checks that nothing of this peer is left in the map.
    fn check_released(&self) {
        self.map.check_invariants().expect("piece map invariants");
        for p in 0..self.map.piece_count() {
            let p = PieceIndex(p);
            assert_eq!(self.map.availability(p), 0, "availability of {p:?} left");
            assert!(!self.map.is_held_by(p, SLOT), "claim on {p:?} left");
        }
    }
}

fuzz_target!(|input: Input| {
    let s = &input.setup;
    let pieces = 1 + u32::from(s.pieces % 8);
    let piece_length = if s.two_blocks { 2 * BLOCK_SIZE } else { BLOCK_SIZE };
    let length = u64::from(pieces * piece_length) - u64::from(u32::from(s.short_last) % piece_length);
    let layout = Layout::single("f", length, piece_length).expect("a valid layout");
    let mut verified = Bitfield::new(pieces);
    for i in (0..pieces).filter(|i| s.verified & (1 << i) != 0) {
        verified.set(PieceIndex(i));
    }
    let map = Arc::new(PieceMap::with_verified(&layout, verified.view()).expect("the bitfield fits"));
    let picker = Arc::new(Picker::new(map.clone()));
    let super_seed = if s.super_seed { SuperSeeding::On } else { SuperSeeding::Off };
    let mut config = SessionConfig { super_seed, ..SessionConfig::default() };
    if s.small {
        config.initial_queue = 2;
        config.max_queue = 4;
        config.endgame_queue = 1;
        config.max_peer_requests = 3;
        config.upload_window = 2 * BLOCK_SIZE as usize;
        config.max_request_len = BLOCK_SIZE;
        config.keepalive_interval = Duration::from_secs(5);
        config.idle_timeout = Duration::from_secs(20);
        config.snub_timeout = Duration::from_secs(3);
    }
    let now = Instant::now();
    let session = PeerSession::new(config.clone(), picker, SLOT, INFO_HASH, OUR_ID, now);
    let wire = Decoder::new(DecoderConfig {
        piece_count: Some(pieces),
        max_block_len: config.max_request_len,
        ..DecoderConfig::default()
    });
    let mut h = Harness {
        session: Some(session),
        map,
        config: config.clone(),
        now,
        wire,
        wire_handshake: false,
        sent_choke: true,
        sent_interested: false,
        bitfield_allowed: false,
        fast: None,
        extended: None,
        expect_handshake: None,
        fed_before_open: false,
        raw_fed: false,
        handshake_events: 0,
        peer_interest: false,
        our_requests: Vec::new(),
        peer_requests: Vec::new(),
        uploads: Vec::new(),
        served: VecDeque::new(),
        closed: false,
    };
    // Control bytes one step may queue: the handshakes, a full pipeline of requests, a reject
    // for every queued peer request, and a little per input byte.
    let control = 1024 + 17 * (config.max_queue + config.max_peer_requests + pieces as usize);
    h.transmit(control, false);
    for op in input.ops.iter().take(256) {
        let input_len = match op {
            Op::Garbage(b) | Op::ReadIntoBuffer(b) => b.len(),
            Op::Message { .. } | Op::Answer { .. } | Op::Handshake { .. } => 2 * BLOCK_SIZE as usize,
            _ => 0,
        };
        let closed_before = h.closed;
        h.step(op);
        let served: usize = h.served.iter().map(|(_, d)| d.len() + 13).sum();
        h.transmit(control + 4 * input_len + served, closed_before);
        assert!(h.served.is_empty(), "blocks sent by the driver never went out");
        h.map.check_invariants().expect("piece map invariants");
        if let Some(s) = &h.session {
            assert!(s.outstanding() <= config.max_queue, "{} requests in flight", s.outstanding());
            if h.closed {
                assert!(!s.is_open() && s.outstanding() == 0);
                h.check_released();
            }
        }
    }
    drop(h.session.take());
    h.check_released();
});
