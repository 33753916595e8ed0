//! [`PeerSession`]: the protocol state of one peer connection, driven by its caller.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::{FleetKey, PeerError, RateMeter, RequestLatency, SuperSeeding};
use crate::picker::Picker;
use crate::piece_map::{Bitfield, PeerSlot, PieceMap, Receipt};
use crate::types::{BlockRef, InfoHash, PeerId, PieceIndex, BLOCK_SIZE};
use crate::wire::{Decoder, DecoderConfig, ExtendedHandshake, Handshake, Message, Reserved};

/// Settings of one session. The defaults suit fast links; every bound keeps per-peer memory
/// finite whatever the peer sends.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// Requests kept in flight at the start, before the first block from the peer.
    pub initial_queue: usize,
    /// Fewest requests kept in flight once the rate is known (a slow peer holds about
    /// `queue_time` of its own rate, not a fixed deep pipeline that fast peers then wait for).
    pub min_queue: usize,
    /// Most requests ever kept in flight to one peer.
    pub max_queue: usize,
    /// The in-flight target is the measured rate times this (a bandwidth-delay product with room).
    pub queue_time: Duration,
    /// In endgame (every missing block requested by someone) keep at most this many in flight:
    /// new requests are then duplicates of other peers' blocks, and most duplicates arrive
    /// twice whatever the CANCEL (the owner has usually sent its copy). Two per idle peer, as
    /// libtorrent asks one busy block at a time: with 16 each client of an 8-client swarm got
    /// 2.2 % of the file twice, with 2 about 0.8 %, and finished no later (BENCHMARKS.md).
    pub endgame_queue: usize,
    /// Most requests from the peer we hold unanswered (advertised as `reqq`); more are rejected.
    pub max_peer_requests: usize,
    /// Most bytes queued for sending before the peer's next request is handed to the driver.
    /// Requests beyond it wait in the session and are served rarest piece first (lowest
    /// availability in the piece map), so a seed whose upload is the bottleneck spreads the
    /// pieces few peers have first; it also bounds the read-ahead per peer.
    pub upload_window: usize,
    /// Largest block the peer may request.
    pub max_request_len: u32,
    /// Send a keep-alive after this long without sending anything.
    pub keepalive_interval: Duration,
    /// Close after this long without receiving anything.
    pub idle_timeout: Duration,
    /// Longest wait for a block with requests out before the peer counts as snubbing us; the
    /// wait actually used adapts to the peer's measured request latency (see
    /// [`RequestLatency`](super::RequestLatency)), never below `min_request_timeout`.
    pub snub_timeout: Duration,
    /// Shortest request timeout (the timer runs about once a second).
    pub min_request_timeout: Duration,
    /// Our BEP 10 extended handshake (sent when both sides set the extension bit).
    pub extended: ExtendedHandshake,
    /// The distribution's fleet key: peers proving they hold it are fleet members (served
    /// without tit-for-tat). `None`: a standard peer only.
    pub fleet: Option<FleetKey>,
    /// Super-seeding (BEP 16): unless [`SuperSeeding::Off`], announce nothing at the start
    /// (HAVE NONE with the fast extension); the driver reveals pieces one by one with
    /// [`PeerSession::piece_verified`] (and decides when `Auto` stops).
    pub super_seed: SuperSeeding,
    /// Only fleet members may take part (a distribution's provisional swarm): a peer that does
    /// not speak BEP 10, whose extended handshake carries no valid proof of [`fleet`], or
    /// that asks for or sends a block before proving it, is closed with
    /// [`PeerError::NotInFleet`]; until it proves it we neither unchoke nor ask it for
    /// anything. Without a `fleet` key every peer is refused.
    ///
    /// [`fleet`]: SessionConfig::fleet
    pub fleet_only: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            initial_queue: 64,
            min_queue: 4,
            max_queue: 2048,
            queue_time: Duration::from_secs(2),
            endgame_queue: 2,
            max_peer_requests: 4096,
            upload_window: 4 << 20,
            max_request_len: 128 * 1024,
            keepalive_interval: Duration::from_secs(90),
            idle_timeout: Duration::from_secs(240),
            snub_timeout: Duration::from_secs(30),
            min_request_timeout: Duration::from_secs(2),
            extended: ExtendedHandshake::default(),
            fleet: None,
            super_seed: SuperSeeding::Off,
            fleet_only: false,
        }
    }
}

/// One chunk ready to write.
#[derive(Debug)]
struct Outgoing {
    bytes: Bytes,
    /// The block whose PIECE message this chunk is (its 13-byte head or its payload, `true`
    /// for the payload): a CANCEL that arrives before the driver takes it takes it back.
    piece: Option<(BlockRef, bool)>,
}

/// Something the driver must act on.
#[derive(Debug)]
pub enum PeerEvent {
    /// The peer's handshake arrived and matched our torrent.
    Handshake {
        /// The peer's id.
        peer_id: PeerId,
        /// The peer's reserved bits.
        reserved: Reserved,
    },
    /// The peer's BEP 10 extended handshake.
    Extended(ExtendedHandshake),
    /// A requested block arrived and was recorded in the piece map. Store `data` at the block's
    /// place; on [`Receipt::PieceComplete`] hash the piece and call
    /// [`PeerSession::piece_verified`] (on every session) or mark it failed.
    Block {
        /// Which block.
        block: BlockRef,
        /// Its bytes: a slice of the receive buffer.
        data: Bytes,
        /// What the piece map made of it (only `Accepted` and `PieceComplete` are delivered).
        receipt: Receipt,
    },
    /// The peer asks for a block we have and are willing to send: read it and call
    /// [`PeerSession::send_block`].
    Upload(BlockRef),
    /// Endgame: these other sessions also requested `block`; call
    /// [`PeerSession::cancel_request`] on each.
    CancelElsewhere {
        /// The block that arrived.
        block: BlockRef,
        /// The slots of the sessions that requested it too.
        slots: Vec<PeerSlot>,
    },
    /// The peer's interest in us changed (input to the choker).
    PeerInterest(bool),
    /// The peer sent a message this engine does not handle (BEP 10 extension or unknown id).
    Unhandled(Message),
    /// A block arrived that was not used: not requested (or cancelled before it came), or
    /// already received from another peer. Its bytes are dropped; count them as redundant.
    Redundant {
        /// Which block.
        block: BlockRef,
        /// Its payload length.
        bytes: u32,
    },
}

/// A request from the peer waiting in the session, ordered by the availability of its piece
/// when it arrived, then by arrival.
#[derive(Clone, Copy, Debug)]
struct QueuedRequest {
    availability: u32,
    seq: u64,
    block: BlockRef,
}

impl QueuedRequest {
    fn key(&self) -> (u32, u64) {
        (self.availability, self.seq)
    }
}

impl PartialEq for QueuedRequest {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for QueuedRequest {}

impl PartialOrd for QueuedRequest {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for QueuedRequest {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    Handshake,
    Open,
    Closed,
}

/// The protocol state of one peer connection. See the [module docs](super) for the call order.
#[derive(Debug)]
pub struct PeerSession {
    config: SessionConfig,
    info_hash: InfoHash,
    our_id: PeerId,
    our_reserved: Reserved,
    phase: Phase,
    map: Arc<PieceMap>,
    picker: Arc<Picker>,
    slot: PeerSlot,
    decoder: Decoder,
    /// Control bytes not yet handed out by `poll_transmit`.
    pending: BytesMut,
    /// Chunks ready to write, in order.
    queue: VecDeque<Outgoing>,
    events: VecDeque<PeerEvent>,
    /// The pieces the peer has, always counted in the map's availability while open.
    peer_has: Bitfield,
    fast: bool,
    extended: bool,
    am_choking: bool,
    am_interested: bool,
    peer_choking: bool,
    peer_interested: bool,
    /// Our requests in flight to the peer with the time each was sent, oldest first (peers
    /// answer in order, so an arriving block is nearly always at the front).
    outstanding: VecDeque<(BlockRef, Instant)>,
    /// Time from request to block, for the adaptive request timeout.
    latency: RequestLatency,
    /// When the peer choked us while requests were out (fast extension: they should be
    /// rejected one by one; the ones that are not are released after a timeout).
    choked_at: Option<Instant>,
    /// The peer's requests we have handed to the driver as `Upload` and not yet answered.
    uploads_pending: usize,
    /// The peer's requests not yet handed to the driver, rarest piece first (availability when
    /// the request arrived), then in arrival order.
    upload_queue: BinaryHeap<Reverse<QueuedRequest>>,
    /// Arrival counter for `upload_queue`'s tie-break.
    upload_seq: u64,
    /// Bytes in `queue` not yet handed out by `poll_transmit`.
    queued_bytes: usize,
    /// Bytes of the `Upload` events handed out and not yet answered.
    upload_bytes_out: usize,
    peer_reqq: Option<usize>,
    /// The peer's id, from its handshake.
    peer_id: Option<PeerId>,
    /// Whether the peer proved it belongs to our fleet.
    fleet_peer: bool,
    snubbed: bool,
    last_recv: Instant,
    last_send: Instant,
    last_block: Instant,
    down: RateMeter,
    up: RateMeter,
    pick_buf: Vec<BlockRef>,
}

impl PeerSession {
    /// A session for one connection (either direction), with our handshake queued.
    ///
    /// `slot` must be unique among the torrent's live sessions.
    pub fn new(
        config: SessionConfig,
        picker: Arc<Picker>,
        slot: PeerSlot,
        info_hash: InfoHash,
        our_id: PeerId,
        now: Instant,
    ) -> Self {
        let map = picker.map().clone();
        let piece_count = map.piece_count();
        let decoder =
            Decoder::new(DecoderConfig { piece_count: Some(piece_count), ..DecoderConfig::default() });
        let our_reserved = Reserved::FLOODGATE;
        let mut pending = BytesMut::with_capacity(256);
        let mut hs = Handshake::new(info_hash, our_id);
        hs.reserved = our_reserved;
        hs.encode(&mut pending);
        PeerSession {
            config,
            info_hash,
            our_id,
            our_reserved,
            phase: Phase::Handshake,
            map,
            picker,
            slot,
            decoder,
            pending,
            queue: VecDeque::new(),
            events: VecDeque::new(),
            peer_has: Bitfield::new(piece_count),
            fast: false,
            extended: false,
            am_choking: true,
            am_interested: false,
            peer_choking: true,
            peer_interested: false,
            outstanding: VecDeque::new(),
            latency: RequestLatency::default(),
            choked_at: None,
            uploads_pending: 0,
            upload_queue: BinaryHeap::new(),
            upload_seq: 0,
            queued_bytes: 0,
            upload_bytes_out: 0,
            peer_reqq: None,
            peer_id: None,
            fleet_peer: false,
            snubbed: false,
            last_recv: now,
            last_send: now,
            last_block: now,
            down: RateMeter::new(Duration::from_secs(5), now),
            up: RateMeter::new(Duration::from_secs(5), now),
            pick_buf: Vec::new(),
        }
    }

    /// This session's slot in the piece map.
    pub fn slot(&self) -> PeerSlot {
        self.slot
    }

    /// Whether the handshake is done and the connection open.
    pub fn is_open(&self) -> bool {
        self.phase == Phase::Open
    }

    /// Whether the peer has every piece.
    pub fn peer_is_seed(&self) -> bool {
        self.peer_has.count_ones() == self.peer_has.len()
    }

    /// Whether we choke the peer.
    pub fn am_choking(&self) -> bool {
        self.am_choking
    }

    /// Whether the peer wants data from us.
    pub fn peer_interested(&self) -> bool {
        self.peer_interested
    }

    /// Whether we want data from the peer.
    pub fn am_interested(&self) -> bool {
        self.am_interested
    }

    /// Whether the peer proved (in its extended handshake) that it holds our fleet key.
    pub fn is_fleet_peer(&self) -> bool {
        self.fleet_peer
    }

    /// Whether the peer has stopped sending us requested blocks.
    pub fn is_snubbed(&self) -> bool {
        self.snubbed
    }

    /// Number of our requests in flight.
    pub fn outstanding(&self) -> usize {
        self.outstanding.len()
    }

    /// Download rate from this peer, payload bytes per second.
    pub fn download_rate(&mut self, now: Instant) -> f64 {
        self.down.rate(now)
    }

    /// Upload rate to this peer, payload bytes per second.
    pub fn upload_rate(&mut self, now: Instant) -> f64 {
        self.up.rate(now)
    }

    /// Payload bytes received and sent so far.
    pub fn payload_totals(&self) -> (u64, u64) {
        (self.down.total(), self.up.total())
    }

    /// The receive buffer, for drivers that read straight into it (then call
    /// [`handle_input`](Self::handle_input) with an empty slice).
    pub fn recv_buffer(&mut self) -> &mut BytesMut {
        self.decoder.buffer_mut()
    }

    /// Feeds received bytes and processes every complete message. An error means: close the
    /// connection and drop the session.
    pub fn handle_input(&mut self, data: &[u8], now: Instant) -> Result<(), PeerError> {
        if self.phase == Phase::Closed {
            return Err(PeerError::Closed);
        }
        self.decoder.extend_from_slice(data);
        if self.decoder.buffered() > 0 {
            self.last_recv = now;
        }
        let result = self.process(now);
        if result.is_err() {
            self.close();
        }
        result
    }

    fn process(&mut self, now: Instant) -> Result<(), PeerError> {
        if self.phase == Phase::Handshake {
            let Some(hs) = self.decoder.handshake()? else { return Ok(()) };
            self.on_handshake(hs)?;
        }
        while let Some(msg) = self.decoder.next()? {
            self.on_message(msg, now)?;
        }
        self.fill_requests(now);
        Ok(())
    }

    fn on_handshake(&mut self, hs: Handshake) -> Result<(), PeerError> {
        if hs.info_hash != self.info_hash {
            return Err(PeerError::WrongInfoHash);
        }
        if hs.peer_id == self.our_id {
            return Err(PeerError::SelfConnection);
        }
        self.phase = Phase::Open;
        self.peer_id = Some(hs.peer_id);
        self.fast = hs.reserved.fast() && self.our_reserved.fast();
        self.extended = hs.reserved.extension_protocol() && self.our_reserved.extension_protocol();
        if self.config.fleet_only && (!self.extended || self.config.fleet.is_none()) {
            // It cannot prove membership without BEP 10 (or we cannot check it).
            self.close();
            return Err(PeerError::NotInFleet);
        }
        self.events.push_back(PeerEvent::Handshake { peer_id: hs.peer_id, reserved: hs.reserved });
        self.send_our_pieces();
        if self.extended {
            // Tell the peer how many requests we queue (`reqq`); beyond that we reject.
            let mut ext = self.config.extended.clone();
            let reqq = u32::try_from(self.config.max_peer_requests).unwrap_or(u32::MAX);
            ext.reqq.get_or_insert(reqq);
            ext.v.get_or_insert_with(|| crate::types::CLIENT_VERSION.to_owned());
            if let Some(key) = &self.config.fleet {
                ext.fleet = Some(key.proof(self.info_hash, self.our_id, hs.peer_id));
            }
            self.push(&ext.to_message());
        }
        if !self.am_choking && !self.awaiting_fleet_proof() {
            // Unchoked before the handshake (`set_choking` only recorded it): the peer starts
            // out choked, so tell it.
            self.push(&Message::Unchoke);
        }
        Ok(())
    }

    /// Whether this is a fleet-only session whose peer has not proved membership yet.
    fn awaiting_fleet_proof(&self) -> bool {
        self.config.fleet_only && !self.fleet_peer
    }

    /// Announces what we have: HAVE ALL / HAVE NONE with the fast extension, else a BITFIELD
    /// (skipped when empty, as BEP 3 allows).
    fn send_our_pieces(&mut self) {
        if self.config.super_seed != SuperSeeding::Off {
            if self.fast {
                self.push(&Message::HaveNone);
            }
            return;
        }
        let verified = self.map.verified();
        let count = self.map.verified_count();
        if self.fast && count == self.map.piece_count() {
            self.push(&Message::HaveAll);
        } else if self.fast && count == 0 {
            self.push(&Message::HaveNone);
        } else if count > 0 {
            self.push(&Message::Bitfield(Bytes::from(verified.to_wire())));
        }
    }

    fn on_message(&mut self, msg: Message, now: Instant) -> Result<(), PeerError> {
        match msg {
            Message::KeepAlive => {}
            Message::Choke => {
                self.peer_choking = true;
                if !self.fast {
                    // Without BEP 6 a choke drops every pending request.
                    self.release_outstanding();
                } else if !self.outstanding.is_empty() {
                    self.choked_at.get_or_insert(now);
                }
            }
            Message::Unchoke => {
                self.peer_choking = false;
                self.choked_at = None;
            }
            Message::Interested => self.set_peer_interest(true),
            Message::NotInterested => self.set_peer_interest(false),
            Message::Have(piece) => {
                let piece = self.map.piece(piece.0)?;
                if !self.peer_has.has(piece) {
                    self.peer_has.set(piece);
                    self.map.peer_has(piece.0)?;
                    if !self.am_interested && !self.map.verified().has(piece) {
                        self.set_interest(true);
                    }
                }
            }
            // BEP 3 wants these first, but real clients (aria2) send their BEP 10 handshake before
            // them; like libtorrent we accept them at any point, the latest one replacing the
            // peer's piece set.
            Message::Bitfield(bits) => {
                self.replace_peer_has(Bitfield::from_wire(&bits, self.map.piece_count())?)?;
            }
            Message::HaveAll | Message::HaveNone if !self.fast => {
                return Err(PeerError::Protocol("HAVE ALL/NONE without the fast extension"))
            }
            Message::HaveAll => self.replace_peer_has(Bitfield::full(self.map.piece_count()))?,
            Message::HaveNone => self.replace_peer_has(Bitfield::new(self.map.piece_count()))?,
            Message::Request(_) | Message::Piece { .. } if self.awaiting_fleet_proof() => {
                self.close();
                return Err(PeerError::NotInFleet);
            }
            Message::Request(block) => self.on_request(block)?,
            Message::Cancel(block) => {
                // Still queued here, as a request or as a PIECE not yet handed to the driver:
                // drop it (with the fast extension a cancelled request is answered with a
                // reject). Otherwise the driver is reading or writing it; a late PIECE is
                // harmless, only wasted upload (endgame duplicates, released snubs).
                let before = self.upload_queue.len();
                self.upload_queue.retain(|Reverse(q)| q.block != block);
                if (self.upload_queue.len() < before || self.take_back_piece(block)) && self.fast {
                    self.push(&Message::RejectRequest(block));
                }
            }
            Message::Piece { piece, offset, data } => {
                let len = u32::try_from(data.len()).map_err(|_| PeerError::Protocol("oversized block"))?;
                self.on_block(BlockRef { piece, offset, length: len }, data, now)?;
            }
            Message::RejectRequest(block) => {
                if !self.fast {
                    return Err(PeerError::Protocol("REJECT without the fast extension"));
                }
                if self.take_outstanding(block).is_some() {
                    self.map.release_block(block, self.slot)?;
                }
            }
            Message::SuggestPiece(_) | Message::AllowedFast(_) | Message::Port(_) => {}
            Message::Extended { id: 0, payload } => match ExtendedHandshake::decode(&payload) {
                Ok(hs) => {
                    self.peer_reqq = hs.reqq.map(|q| q.clamp(1, 100_000) as usize);
                    self.fleet_peer = match (&self.config.fleet, &hs.fleet, self.peer_id) {
                        (Some(key), Some(proof), Some(id)) => {
                            key.verify(proof, self.info_hash, id, self.our_id)
                        }
                        _ => false,
                    };
                    if self.config.fleet_only {
                        if !self.fleet_peer {
                            self.close();
                            return Err(PeerError::NotInFleet);
                        }
                        // Proven: what was held back until now may go.
                        if !self.am_choking {
                            self.push(&Message::Unchoke);
                        }
                        self.fill_requests(now);
                    }
                    self.events.push_back(PeerEvent::Extended(hs));
                }
                Err(_) => return Err(PeerError::Protocol("malformed extended handshake")),
            },
            other @ (Message::Extended { .. } | Message::Unknown { .. }) => {
                self.events.push_back(PeerEvent::Unhandled(other))
            }
        }
        Ok(())
    }

    fn replace_peer_has(&mut self, bits: Bitfield) -> Result<(), PeerError> {
        self.map.remove_peer(self.peer_has.view())?;
        self.peer_has = bits;
        self.map.add_peer(self.peer_has.view())?;
        let wants = self.peer_has.view().iter_ones().any(|p| !self.map.verified().has(p));
        self.set_interest(wants);
        Ok(())
    }

    fn on_request(&mut self, block: BlockRef) -> Result<(), PeerError> {
        let piece = self.map.piece(block.piece.0)?;
        let size = self.map.piece_size(piece);
        let valid = block.length > 0
            && block.length <= self.config.max_request_len
            && block.offset.checked_add(block.length).is_some_and(|end| end <= size);
        if !valid {
            return Err(PeerError::Protocol("request outside the piece"));
        }
        let servable = !self.am_choking && self.map.verified().has(piece);
        if !servable {
            if self.fast {
                self.push(&Message::RejectRequest(block));
            }
            return Ok(());
        }
        if self.uploads_pending + self.upload_queue.len() >= self.config.max_peer_requests {
            // More than we queue (and told the peer in `reqq`): not kept, so memory stays
            // bounded; rejected with the fast extension, else dropped (as libtorrent does; the
            // peer times the request out). Transmission 3.00 queues far more than 4096 at speed.
            if self.fast {
                self.push(&Message::RejectRequest(block));
            }
            return Ok(());
        }
        let availability = self.map.availability(piece);
        self.upload_queue.push(Reverse(QueuedRequest { availability, seq: self.upload_seq, block }));
        self.upload_seq += 1;
        Ok(())
    }

    fn on_block(&mut self, block: BlockRef, data: Bytes, now: Instant) -> Result<(), PeerError> {
        self.down.add(data.len() as u64, now);
        let bytes = data.len() as u32;
        let Some(sent) = self.take_outstanding(block) else {
            // Unrequested or already cancelled: not an error (requests race with cancels).
            self.events.push_back(PeerEvent::Redundant { block, bytes });
            return Ok(());
        };
        self.latency.sample(now.saturating_duration_since(sent));
        self.last_block = now;
        self.snubbed = false;
        let mut cancels = Vec::new();
        let receipt = self.map.receive_block(block, self.slot, &mut cancels)?;
        if !cancels.is_empty() {
            self.events.push_back(PeerEvent::CancelElsewhere { block, slots: cancels });
        }
        if matches!(receipt, Receipt::Accepted | Receipt::PieceComplete) {
            self.events.push_back(PeerEvent::Block { block, data, receipt });
        } else {
            self.events.push_back(PeerEvent::Redundant { block, bytes });
        }
        Ok(())
    }

    fn set_peer_interest(&mut self, interested: bool) {
        if self.peer_interested != interested {
            self.peer_interested = interested;
            self.events.push_back(PeerEvent::PeerInterest(interested));
        }
    }

    fn set_interest(&mut self, interested: bool) {
        if self.am_interested != interested {
            self.am_interested = interested;
            self.push(if interested { &Message::Interested } else { &Message::NotInterested });
        }
    }

    /// How many requests to keep in flight: `initial_queue` until the first block, then the
    /// measured rate times `queue_time`, within bounds (one while snubbed).
    fn queue_target(&mut self, now: Instant) -> usize {
        if self.snubbed {
            return 1;
        }
        let by_rate =
            (self.down.rate(now) * self.config.queue_time.as_secs_f64() / BLOCK_SIZE as f64) as usize;
        let floor =
            if self.latency.samples() == 0 { self.config.initial_queue } else { self.config.min_queue };
        let mut target = by_rate.max(floor).min(self.config.max_queue);
        if self.map.in_endgame() {
            target = target.min(self.config.endgame_queue);
        }
        self.peer_reqq.map_or(target, |q| target.min(q))
    }

    /// Tops up our requests to the peer from the picker.
    fn fill_requests(&mut self, now: Instant) {
        if self.phase != Phase::Open
            || self.peer_choking
            || !self.am_interested
            || self.map.is_complete()
            || self.awaiting_fleet_proof()
        {
            tracing::trace!(
                open = self.phase == Phase::Open,
                choked = self.peer_choking,
                interested = self.am_interested,
                "no requests"
            );
            return;
        }
        let target = self.queue_target(now);
        if self.outstanding.len() >= target {
            return;
        }
        let mut picked = std::mem::take(&mut self.pick_buf);
        picked.clear();
        let pick =
            self.picker.pick(self.peer_has.view(), self.slot, target - self.outstanding.len(), &mut picked);
        if self.outstanding.is_empty() {
            self.last_block = now;
        }
        for block in picked.drain(..) {
            self.outstanding.push_back((block, now));
            self.push(&Message::Request(block));
        }
        self.pick_buf = picked;
        if pick.blocks == 0 && self.outstanding.is_empty() {
            // Nothing left to take from this peer right now.
            let wants = self.peer_has.view().iter_ones().any(|p| !self.map.verified().has(p));
            self.set_interest(wants);
        }
    }

    /// Sends a block the peer asked for (answer to [`PeerEvent::Upload`]). The payload is queued
    /// as is, after a 13-byte header.
    pub fn send_block(&mut self, block: BlockRef, data: Bytes, _now: Instant) {
        self.uploads_pending = self.uploads_pending.saturating_sub(1);
        self.upload_bytes_out = self.upload_bytes_out.saturating_sub(block.length as usize);
        if self.phase != Phase::Open {
            return;
        }
        if self.am_choking {
            // Choked while the driver read it: with the fast extension the peer must hear that
            // this request is dropped, or it waits for the block until its request timeout.
            if self.fast {
                self.push(&Message::RejectRequest(block));
            }
            return;
        }
        // Head and payload as chunks of their own, so a CANCEL can still take both back.
        self.flush_pending();
        let msg = Message::Piece { piece: block.piece, offset: block.offset, data };
        let payload = msg.encode_head(&mut self.pending).cloned();
        let head = self.pending.split().freeze();
        self.queued_bytes += head.len();
        self.queue.push_back(Outgoing { bytes: head, piece: Some((block, false)) });
        if let Some(payload) = payload.filter(|p| !p.is_empty()) {
            self.queued_bytes += payload.len();
            self.queue.push_back(Outgoing { bytes: payload, piece: Some((block, true)) });
        }
    }

    /// Removes the PIECE message for `block` from the chunks not yet handed to the driver;
    /// whether it was there.
    fn take_back_piece(&mut self, block: BlockRef) -> bool {
        // Only while its head is still here: once the head is out, the payload must follow.
        let Some(at) = self.queue.iter().position(|c| c.piece == Some((block, false))) else {
            return false;
        };
        let payload_follows = self.queue.get(at + 1).is_some_and(|c| c.piece == Some((block, true)));
        for c in self.queue.drain(at..at + 1 + usize::from(payload_follows)) {
            self.queued_bytes = self.queued_bytes.saturating_sub(c.bytes.len());
        }
        true
    }

    /// The driver could not read a block it was asked for: reject it (fast extension) and
    /// forget it.
    pub fn upload_failed(&mut self, block: BlockRef) {
        self.uploads_pending = self.uploads_pending.saturating_sub(1);
        self.upload_bytes_out = self.upload_bytes_out.saturating_sub(block.length as usize);
        if self.fast && self.phase == Phase::Open {
            self.push(&Message::RejectRequest(block));
        }
    }

    /// Whether the peer told us it has `piece`.
    pub fn peer_has_piece(&self, piece: PieceIndex) -> bool {
        self.peer_has.has(piece)
    }

    /// A piece passed its hash check (or, super-seeding, is revealed to this peer): tell the
    /// peer, and re-check our interest.
    pub fn piece_verified(&mut self, piece: PieceIndex, now: Instant) {
        if self.phase != Phase::Open {
            return;
        }
        self.push(&Message::Have(piece));
        if self.am_interested && self.peer_has.has(piece) {
            let wants = self.peer_has.view().iter_ones().any(|p| !self.map.verified().has(p));
            self.set_interest(wants);
        }
        self.fill_requests(now);
    }

    /// A piece failed its hash check and went back to missing: request it again if useful.
    pub fn piece_failed(&mut self, piece: PieceIndex, now: Instant) {
        self.piece_available(piece, now);
    }

    /// A piece we lack became fetchable (failed and missing again, or its hash was just
    /// published in a provisional swarm): if the peer has it, want it and ask now.
    pub fn piece_available(&mut self, piece: PieceIndex, now: Instant) {
        if self.peer_has.has(piece) && !self.am_interested {
            self.set_interest(true);
        }
        self.fill_requests(now);
    }

    /// Endgame: another session received `block`; withdraw our request for it.
    pub fn cancel_request(&mut self, block: BlockRef) {
        if self.take_outstanding(block).is_some() && self.phase == Phase::Open {
            self.push(&Message::Cancel(block));
        }
    }

    /// Sends a BEP 10 extension message (e.g. a `ut_metadata` answer) under the id the peer
    /// assigned in its extended handshake. Ignored unless the connection is open and both sides
    /// speak the extension protocol.
    pub fn send_extended(&mut self, id: u8, payload: Bytes) {
        if self.phase == Phase::Open && self.extended {
            self.push(&Message::Extended { id, payload });
        }
    }

    /// Chokes or unchokes the peer (the choker's decision).
    pub fn set_choking(&mut self, choke: bool) {
        if self.am_choking == choke || self.phase != Phase::Open || self.awaiting_fleet_proof() {
            // Recorded only: the message goes out when the connection opens, or when the peer
            // proves it belongs to a fleet-only swarm (and a choke needs no message then).
            self.am_choking = choke;
            return;
        }
        self.am_choking = choke;
        self.push(if choke { &Message::Choke } else { &Message::Unchoke });
        if choke {
            // A choke drops the peer's queued requests; with the fast extension each one is
            // rejected explicitly.
            for Reverse(QueuedRequest { block, .. }) in std::mem::take(&mut self.upload_queue).into_vec() {
                if self.fast {
                    self.push(&Message::RejectRequest(block));
                }
            }
        }
    }

    /// Keep-alives, idle and snub detection, and request top-up. Call at
    /// [`poll_timeout`](Self::poll_timeout), and at least every few seconds.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), PeerError> {
        if self.phase == Phase::Closed {
            return Err(PeerError::Closed);
        }
        if now.saturating_duration_since(self.last_recv) > self.config.idle_timeout {
            self.close();
            return Err(PeerError::Idle);
        }
        let timeout = self.request_timeout();
        if self.peer_choking && self.choked_at.is_some_and(|t| now.saturating_duration_since(t) > timeout) {
            // Choked and the requests neither rejected nor answered: give them to other peers.
            self.choked_at = None;
            self.cancel_outstanding();
        }
        if !self.outstanding.is_empty()
            && !self.peer_choking
            && now.saturating_duration_since(self.last_block) > timeout
            && !self.snubbed
        {
            // Let other peers have these blocks (and tell the peer not to send them); keep one
            // request out to notice recovery.
            tracing::debug!(
                timeout_ms = timeout.as_millis() as u64,
                outstanding = self.outstanding.len(),
                "peer snubbed us"
            );
            self.snubbed = true;
            self.cancel_outstanding();
        }
        if self.phase == Phase::Open
            && self.pending.is_empty()
            && self.queue.is_empty()
            && now.saturating_duration_since(self.last_send) > self.config.keepalive_interval
        {
            self.push(&Message::KeepAlive);
        }
        self.fill_requests(now);
        Ok(())
    }

    /// When [`handle_timeout`](Self::handle_timeout) next has something to do: the idle limit,
    /// the release of requests a silent or choking peer holds, or a keep-alive (`None` once
    /// closed). The driver arms one timer for the earliest of these (quinn's `poll_timeout`),
    /// asks again after every input, and calls `handle_timeout` when it fires; calling it
    /// earlier does no harm. The instant is just past each limit, as the limits are strict.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.phase == Phase::Closed {
            return None;
        }
        let timeout = self.request_timeout();
        let mut at = self.last_recv + self.config.idle_timeout;
        if let (true, Some(choked)) = (self.peer_choking, self.choked_at) {
            at = at.min(choked + timeout);
        }
        if !self.outstanding.is_empty() && !self.peer_choking && !self.snubbed {
            at = at.min(self.last_block + timeout);
        }
        // With bytes waiting to be written no keep-alive is due: the write will reset it.
        if self.phase == Phase::Open && self.pending.is_empty() && self.queue.is_empty() {
            at = at.min(self.last_send + self.config.keepalive_interval);
        }
        Some(at + Duration::from_millis(1))
    }

    /// The next event for the driver. The peer's requests come out as [`PeerEvent::Upload`]
    /// while less than [`SessionConfig::upload_window`] bytes wait to be sent (poll again after
    /// [`poll_transmit`](Self::poll_transmit) drained some), rarest piece first.
    pub fn poll_event(&mut self) -> Option<PeerEvent> {
        if self.events.is_empty() && self.window_has_room() {
            if let Some(Reverse(QueuedRequest { block, .. })) = self.upload_queue.pop() {
                self.uploads_pending += 1;
                self.upload_bytes_out += block.length as usize;
                return Some(PeerEvent::Upload(block));
            }
        }
        self.events.pop_front()
    }

    /// Whether bytes queued to send plus uploads handed out and not yet answered leave room in
    /// the upload window.
    fn window_has_room(&self) -> bool {
        self.queued_bytes + self.upload_bytes_out < self.config.upload_window
    }

    /// Whether [`poll_event`](Self::poll_event) has something now.
    pub fn has_events(&self) -> bool {
        !self.events.is_empty() || (!self.upload_queue.is_empty() && self.window_has_room())
    }

    /// The next chunk of bytes to write, in order. Call until `None` after every input.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Bytes> {
        self.flush_pending();
        let chunk = self.queue.pop_front()?;
        self.last_send = now;
        self.queued_bytes = self.queued_bytes.saturating_sub(chunk.bytes.len());
        if let Some((_, true)) = chunk.piece {
            // Counted as uploaded once handed to the driver: a PIECE taken back never was.
            self.up.add(chunk.bytes.len() as u64, now);
        }
        Some(chunk.bytes)
    }

    /// Whether bytes are waiting to be written.
    pub fn wants_transmit(&self) -> bool {
        !self.pending.is_empty() || !self.queue.is_empty()
    }

    /// Ends the session: releases block claims and availability. Idempotent; also done on drop.
    pub fn close(&mut self) {
        if self.phase == Phase::Closed {
            return;
        }
        self.phase = Phase::Closed;
        self.upload_queue.clear();
        self.release_outstanding();
        let _ = self.map.remove_peer(self.peer_has.view());
        self.peer_has = Bitfield::new(self.map.piece_count());
    }

    /// How long requests may go unanswered before the peer counts as snubbing us: the
    /// measured latency with room, within [`SessionConfig::min_request_timeout`] and
    /// [`SessionConfig::snub_timeout`].
    pub fn request_timeout(&self) -> Duration {
        self.latency.timeout(self.config.min_request_timeout, self.config.snub_timeout)
    }

    /// Removes `block` from our requests in flight; when it was sent, if it was there. Checks
    /// the oldest first: peers answer in request order.
    fn take_outstanding(&mut self, block: BlockRef) -> Option<Instant> {
        if self.outstanding.front().is_some_and(|(b, _)| *b == block) {
            return self.outstanding.pop_front().map(|(_, sent)| sent);
        }
        let i = self.outstanding.iter().position(|(b, _)| *b == block)?;
        self.outstanding.remove(i).map(|(_, sent)| sent)
    }

    fn release_outstanding(&mut self) {
        for (block, _) in self.outstanding.drain(..) {
            let _ = self.map.release_block(block, self.slot);
        }
    }

    /// Releases every request in flight and sends CANCEL for each, so the peer does not spend
    /// upload on blocks other peers now fetch.
    fn cancel_outstanding(&mut self) {
        let blocks: Vec<BlockRef> = self.outstanding.iter().map(|(b, _)| *b).collect();
        self.release_outstanding();
        if self.phase == Phase::Open {
            for block in blocks {
                self.push(&Message::Cancel(block));
            }
        }
    }

    /// Encodes a message: control bytes accumulate; a payload is queued as its own chunk. An
    /// empty payload is not queued: `poll_transmit` never yields an empty chunk (a batch of only
    /// empty chunks would be a zero-byte write, which the driver takes for a dead socket).
    fn push(&mut self, msg: &Message) {
        if let Some(payload) = msg.encode_head(&mut self.pending).filter(|p| !p.is_empty()) {
            let payload = payload.clone();
            self.flush_pending();
            self.queued_bytes += payload.len();
            self.queue.push_back(Outgoing { bytes: payload, piece: None });
        }
    }

    fn flush_pending(&mut self) {
        if !self.pending.is_empty() {
            let chunk = self.pending.split().freeze();
            self.queued_bytes += chunk.len();
            self.queue.push_back(Outgoing { bytes: chunk, piece: None });
        }
    }
}

impl Drop for PeerSession {
    fn drop(&mut self) {
        self.close();
    }
}
