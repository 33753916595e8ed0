//! One peer connection on an io_uring runtime thread: a [`PeerSession`] driven over a
//! tokio-uring TCP stream by three local tasks (reader, writer, control) that share it.
//!
//! The reader reads straight into the session's receive buffer (owned-buffer I/O, no copy) and
//! acts on the events; the writer sends the session's queued chunks with vectored writes (block
//! payloads go out as the `Bytes` they are); the control task applies torrent-wide events (HAVE
//! broadcasts, endgame cancels), the choker's decisions, and timers.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use tokio::sync::{broadcast, Notify};
use tokio_uring::buf::BoundedBuf;
use tokio_uring::net::TcpStream;

use super::throttle;
use super::torrent::{PeerShared, Torrent, TorrentEvent};
use crate::peer::{
    answer_metadata_request, unchoke_on_interest, PeerError, PeerEvent, PeerSession, RevealView, SuperSeed,
    SuperSeeding, OUR_UT_METADATA_ID,
};
use crate::piece_map::Bitfield;
use crate::ratelimit::RateChain;
use crate::types::{BlockRef, PeerId, PieceIndex};
use crate::wire::{Message, UT_METADATA};

/// Bytes read per receive call, at most.
const READ_CHUNK: usize = 256 * 1024;
/// Bytes read per receive call at first. The size doubles (up to `READ_CHUNK`) each time a
/// read fills the space it was given, so a downloading peer soon reads in large chunks while an
/// idle or upload-only peer (a relay's or seed's many leechers) holds 16 KiB, not 256 KiB.
const READ_FIRST: usize = 16 * 1024;
/// Housekeeping that is not the session's (rates for the choker, the choker's decisions) runs
/// at least this often; the session's own deadlines arm the same timer when sooner.
const HOUSEKEEPING: Duration = Duration::from_secs(1);
/// Chunks handed to one `writev` (under IOV_MAX).
const MAX_IOVECS: usize = 512;
/// Bytes taken from the session per write. The rest waits in the session, where a CANCEL can
/// still take a PIECE back (endgame duplicates, requests a peer released): what a write has
/// taken is committed.
const MAX_BATCH_BYTES: usize = 256 * 1024;

struct Shared {
    session: PeerSession,
    /// Pieces we told this peer we have (HAVE or bitfield), to resync after a lagged broadcast.
    announced: Bitfield,
    /// The piece last read for upload: peers ask for a piece's blocks in a row, so one read
    /// serves them all (blocks are zero-copy slices of it).
    upload_cache: Option<(PieceIndex, Bytes)>,
    closed: bool,
    /// The id the peer wants `ut_metadata` messages under (its extended handshake).
    peer_ut_metadata: Option<u8>,
    /// Super-seeding: what this peer was shown (`None` when not super-seeding).
    super_seed: Option<SuperSeed>,
    /// Blocks asked for upload whose piece is not in the page cache: the cold reader's queue
    /// (bounded by the session's limit on the peer's open requests).
    cold: Vec<BlockRef>,
    /// Wakes the cold reader.
    wake_cold: Rc<Notify>,
}

/// Runs one connection to the end. `initial` holds bytes already read from the socket (the
/// handshake of an inbound connection).
pub(crate) async fn run(
    torrent: Arc<Torrent>,
    stream: TcpStream,
    addr: SocketAddr,
    peer_id: PeerId,
    initial: Bytes,
) -> Result<(), PeerError> {
    let Some(peer) = torrent.register_peer(addr) else {
        tracing::debug!(%addr, "refused: torrent full, peer banned or already connected");
        return Ok(());
    };
    let _ = stream.set_nodelay(true);
    // Unsent bytes wait in the session (see MAX_BATCH_BYTES), not in the kernel.
    let _ = crate::uring::set_notsent_lowat(&stream, MAX_BATCH_BYTES as u32);
    let now = Instant::now();
    // Super-seeding announces nothing up front; pieces are revealed one by one.
    let mut config = torrent.session.clone();
    config.super_seed = torrent.super_seeding_for_new_peer();
    let super_seed = config.super_seed != SuperSeeding::Off;
    let session =
        PeerSession::new(config, torrent.picker.clone(), peer.slot, torrent.info_hash, peer_id, now);
    let announced =
        if super_seed { Bitfield::new(torrent.map.piece_count()) } else { torrent.map.verified().snapshot() };
    let wake_cold = Rc::new(Notify::new());
    let shared = Rc::new(RefCell::new(Shared {
        session,
        announced,
        upload_cache: None,
        closed: false,
        peer_ut_metadata: None,
        super_seed: super_seed.then(|| SuperSeed::new(now)),
        cold: Vec::new(),
        wake_cold: wake_cold.clone(),
    }));
    let stream = Rc::new(stream);
    let wake_writer = Rc::new(Notify::new());
    let cold =
        tokio_uring::spawn(cold_reader(torrent.clone(), shared.clone(), wake_writer.clone(), wake_cold));

    let writer = tokio_uring::spawn(write_loop(
        torrent.clone(),
        peer.clone(),
        stream.clone(),
        shared.clone(),
        wake_writer.clone(),
    ));
    let control = tokio_uring::spawn(control_loop(
        torrent.clone(),
        peer.clone(),
        shared.clone(),
        wake_writer.clone(),
        torrent.events.subscribe(),
    ));
    let result = read_loop(&torrent, &peer, &stream, &shared, &wake_writer, initial).await;
    match &result {
        Ok(()) => tracing::debug!(%addr, "peer closed the connection"),
        Err(e) => tracing::debug!(%addr, "connection closed: {e}"),
    }
    shared.borrow_mut().closed = true;
    shared.borrow_mut().session.close();
    wake_writer.notify_one();
    let _ = stream.shutdown(std::net::Shutdown::Both);
    let _ = writer.await;
    control.abort();
    cold.abort();
    torrent.unregister_peer(&peer);
    result
}

async fn read_loop(
    torrent: &Torrent,
    peer: &PeerShared,
    stream: &TcpStream,
    shared: &Rc<RefCell<Shared>>,
    wake_writer: &Notify,
    initial: Bytes,
) -> Result<(), PeerError> {
    {
        let mut s = shared.borrow_mut();
        s.session.handle_input(&initial, Instant::now())?;
        drain_events(torrent, peer, &mut s);
    }
    wake_writer.notify_one();
    let mut received = 0u64;
    let mut read_size = READ_FIRST;
    loop {
        // Pay for the last read before the next one: TCP flow control then slows the sender.
        throttle::acquire(&torrent.down, std::mem::take(&mut received)).await;
        let mut buf = std::mem::take(shared.borrow_mut().session.recv_buffer());
        if buf.capacity() - buf.len() < read_size / 4 {
            buf.reserve(read_size);
        }
        // Read into the spare capacity after the unparsed bytes (a read writes at the start of
        // the buffer it is given).
        let filled = buf.len();
        let spare = buf.capacity() - filled;
        let (res, slice) = stream.read(buf.slice(filled..)).await;
        let buf = slice.into_inner();
        let mut s = shared.borrow_mut();
        *s.session.recv_buffer() = buf;
        if s.closed || peer.close.load(Ordering::Relaxed) {
            return Ok(());
        }
        match res {
            Ok(0) => return Ok(()),
            Ok(n) => {
                received = n as u64;
                if n == spare {
                    read_size = (read_size * 2).min(READ_CHUNK);
                }
                tracing::trace!(addr = %peer.addr, n, "read");
            }
            Err(e) => return Err(PeerError::Io(e)),
        }
        s.session.handle_input(&[], Instant::now())?;
        drain_events(torrent, peer, &mut s);
        reveal(torrent, &mut s, Instant::now());
        if s.session.wants_transmit() {
            wake_writer.notify_one();
        }
    }
}

/// Acts on everything the session has to say.
fn drain_events(torrent: &Torrent, peer: &PeerShared, s: &mut Shared) {
    let now = Instant::now();
    while let Some(ev) = s.session.poll_event() {
        match ev {
            PeerEvent::Block { block, data, .. } => torrent.on_block(peer.slot, block, data),
            PeerEvent::Upload(block) => {
                let cached = s.upload_cache.as_ref().is_some_and(|(p, _)| *p == block.piece);
                let queued = !cached && s.cold.iter().any(|b| b.piece == block.piece);
                if queued || (!cached && !torrent.store.is_cached(block.piece)) {
                    // Off the runtime (and behind its piece's read, when that is under way).
                    s.cold.push(block);
                    s.wake_cold.notify_one();
                    continue;
                }
                match upload_block(torrent, &mut s.upload_cache, block) {
                    Some(data) => s.session.send_block(block, data, now),
                    None => s.session.upload_failed(block),
                }
            }
            PeerEvent::CancelElsewhere { block, slots } => {
                let _ = torrent.events.send(TorrentEvent::Cancel(block, slots.into()));
            }
            PeerEvent::PeerInterest(interested) => {
                peer.interested.store(interested, Ordering::Relaxed);
                // A fleet peer needs no slot: every interested member is served at once.
                let fleet = peer.fleet.load(Ordering::Relaxed);
                let unchoked = peer.unchoked.load(Ordering::Relaxed);
                if unchoke_on_interest(interested, unchoked, fleet, || torrent.try_unchoke_slot()) {
                    peer.unchoked.store(true, Ordering::Relaxed);
                    peer.want_unchoke.store(true, Ordering::Relaxed);
                    s.session.set_choking(false);
                }
            }
            PeerEvent::Extended(hs) => {
                s.peer_ut_metadata = hs.extension_id(UT_METADATA);
                peer.fleet.store(s.session.is_fleet_peer(), Ordering::Relaxed);
            }
            PeerEvent::Unhandled(Message::Extended { id: OUR_UT_METADATA_ID, payload }) => {
                serve_metadata(torrent, s, &payload);
            }
            PeerEvent::Redundant { bytes, .. } => {
                torrent.counters.redundant.fetch_add(u64::from(bytes), Ordering::Relaxed);
            }
            PeerEvent::Handshake { .. } | PeerEvent::Unhandled(_) => {}
        }
    }
    peer.is_seed.store(s.session.peer_is_seed(), Ordering::Relaxed);
}

/// What [`SuperSeed`] sees: the torrent's pieces and this peer's side of them.
struct Reveal<'a> {
    torrent: &'a Torrent,
    session: &'a PeerSession,
    announced: &'a Bitfield,
}

impl RevealView for Reveal<'_> {
    fn piece_count(&self) -> u32 {
        self.torrent.map.piece_count()
    }
    fn may_reveal(&self, p: PieceIndex) -> bool {
        self.torrent.map.verified().has(p) && !self.announced.has(p) && !self.session.peer_has_piece(p)
    }
    fn peer_has(&self, p: PieceIndex) -> bool {
        self.session.peer_has_piece(p)
    }
    fn availability(&self, p: PieceIndex) -> u32 {
        self.torrent.map.availability(p)
    }
    fn reveals(&self, p: PieceIndex) -> u32 {
        self.torrent.reveals[p.0 as usize].load(Ordering::Relaxed)
    }
    fn unannounced(&self) -> u32 {
        self.torrent.map.piece_count() - self.announced.count_ones()
    }
    fn announced(&self, p: PieceIndex) -> bool {
        self.announced.has(p)
    }
}

/// Super-seeding: reveals (HAVE) to this peer what its [`SuperSeed`] policy picks now. An
/// automatic super-seed whose first copy is out announces everything instead and stops.
fn reveal(torrent: &Torrent, s: &mut Shared, now: Instant) {
    let Some(mut policy) = s.super_seed.take() else { return };
    if torrent.session.super_seed == SuperSeeding::Auto && torrent.check_first_copy_out() {
        // Revealed pieces it has not taken are announced again too: their HAVE may be lost.
        for &p in policy.outstanding() {
            s.session.piece_verified(p, now);
        }
        // Pieces the peer lacks first: the HAVE that completes our set must reach a peer
        // that wants something from us (see `SuperSeed`'s note on libtorrent).
        let verified = torrent.map.verified().snapshot();
        for peer_has in [false, true] {
            for p in verified.view().iter_ones() {
                if !s.announced.has(p) && s.session.peer_has_piece(p) == peer_has {
                    s.announced.set(p);
                    s.session.piece_verified(p, now);
                }
            }
        }
        return;
    }
    let again = policy.repeat_due(now, &Reveal { torrent, session: &s.session, announced: &s.announced });
    for p in again {
        s.session.piece_verified(p, now);
    }
    loop {
        let view = Reveal { torrent, session: &s.session, announced: &s.announced };
        let Some(p) = policy.next_reveal(now, &view) else { break };
        torrent.reveals[p.0 as usize].fetch_add(1, Ordering::Relaxed);
        s.announced.set(p);
        s.session.piece_verified(p, now);
    }
    s.super_seed = Some(policy);
}

/// Answers a BEP 9 request (see [`answer_metadata_request`]).
fn serve_metadata(torrent: &Torrent, s: &mut Shared, payload: &Bytes) {
    let (Some(peer_id), Some(reply)) =
        (s.peer_ut_metadata, answer_metadata_request(torrent.info_bytes.as_ref(), payload))
    else {
        return;
    };
    let mut out = Vec::new();
    reply.encode(&mut out);
    s.session.send_extended(peer_id, Bytes::from(out));
}

/// A block for upload, sliced from the cached piece (read whole on a miss).
fn upload_block(
    torrent: &Torrent,
    cache: &mut Option<(PieceIndex, Bytes)>,
    block: BlockRef,
) -> Option<Bytes> {
    if cache.as_ref().is_none_or(|(p, _)| *p != block.piece) {
        *cache = Some((block.piece, torrent.read_piece(block.piece)?));
    }
    let (_, piece) = cache.as_ref()?;
    slice_block(torrent, piece, block)
}

/// `block`'s bytes out of its whole `piece`, counted as uploaded.
fn slice_block(torrent: &Torrent, piece: &Bytes, block: BlockRef) -> Option<Bytes> {
    let start = block.offset as usize;
    let end = start.checked_add(block.length as usize).filter(|&e| e <= piece.len())?;
    torrent.counters.uploaded.fetch_add(block.length as u64, Ordering::Relaxed);
    Some(piece.slice(start..end))
}

/// Serves the blocks queued in `Shared::cold`: one piece at a time, read off the runtime
/// ([`ColdReads`](super::cold::ColdReads)), then every queued block of that piece sent from it, and the piece kept as
/// the upload cache for the peer's next requests. Ends when the connection closes.
async fn cold_reader(
    torrent: Arc<Torrent>,
    shared: Rc<RefCell<Shared>>,
    wake_writer: Rc<Notify>,
    wake: Rc<Notify>,
) {
    loop {
        wake.notified().await;
        loop {
            let piece = {
                let s = shared.borrow();
                if s.closed {
                    return;
                }
                match s.cold.first() {
                    Some(b) => b.piece,
                    None => break,
                }
            };
            let data = torrent.cold.read(&torrent, piece).await;
            let mut s = shared.borrow_mut();
            if s.closed {
                return;
            }
            let now = Instant::now();
            let (mine, rest): (Vec<BlockRef>, Vec<BlockRef>) =
                std::mem::take(&mut s.cold).into_iter().partition(|b| b.piece == piece);
            s.cold = rest;
            for block in mine {
                match data.as_ref().and_then(|d| slice_block(&torrent, d, block)) {
                    Some(bytes) => s.session.send_block(block, bytes, now),
                    None => s.session.upload_failed(block),
                }
            }
            if let Some(d) = data {
                s.upload_cache = Some((piece, d));
            }
            drop(s);
            wake_writer.notify_one();
        }
    }
}

async fn write_loop(
    torrent: Arc<Torrent>,
    peer: Arc<PeerShared>,
    stream: Rc<TcpStream>,
    shared: Rc<RefCell<Shared>>,
    wake: Rc<Notify>,
) {
    let limit: &RateChain = &torrent.up;
    let mut bufs: Vec<Bytes> = Vec::with_capacity(MAX_IOVECS);
    loop {
        let closed = collect_chunks(&shared, &mut bufs);
        {
            // Taking chunks made room in the upload window: serve the peer's next requests
            // (rarest first) while these chunks are written.
            let mut s = shared.borrow_mut();
            if !closed && s.session.has_events() {
                drain_events(&torrent, &peer, &mut s);
            }
        }
        if bufs.is_empty() {
            if closed {
                // Wakes the reader, which may be blocked in a read.
                let _ = stream.shutdown(std::net::Shutdown::Both);
                return;
            }
            if !shared.borrow().session.wants_transmit() {
                wake.notified().await;
            }
            continue;
        }
        tracing::trace!(chunks = bufs.len(), "write");
        throttle::acquire(limit, bufs.iter().map(|b| b.len() as u64).sum()).await;
        match write_all(&stream, std::mem::take(&mut bufs)).await {
            Ok(empty) => bufs = empty,
            Err(_) => {
                shared.borrow_mut().closed = true;
                let _ = stream.shutdown(std::net::Shutdown::Both);
                return;
            }
        }
    }
}

/// Moves up to [`MAX_IOVECS`] queued chunks, about [`MAX_BATCH_BYTES`], into `bufs`; returns
/// whether the connection is closing.
fn collect_chunks(shared: &RefCell<Shared>, bufs: &mut Vec<Bytes>) -> bool {
    let mut s = shared.borrow_mut();
    let now = Instant::now();
    let mut bytes = 0;
    while bufs.len() < MAX_IOVECS && bytes < MAX_BATCH_BYTES {
        match s.session.poll_transmit(now) {
            Some(chunk) => {
                bytes += chunk.len();
                bufs.push(chunk);
            }
            None => break,
        }
    }
    s.closed
}

/// Writes every chunk with vectored writes, resuming after short writes. Returns the emptied
/// vector for reuse.
async fn write_all(stream: &TcpStream, mut bufs: Vec<Bytes>) -> std::io::Result<Vec<Bytes>> {
    while !bufs.is_empty() {
        let (res, mut back) = stream.writev(bufs).await;
        let mut n = res?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        let mut done = 0;
        for b in back.iter_mut() {
            if n >= b.len() {
                n -= b.len();
                done += 1;
            } else {
                b.advance(n);
                break;
            }
        }
        back.drain(..done);
        bufs = back;
    }
    Ok(bufs)
}

async fn control_loop(
    torrent: Arc<Torrent>,
    peer: Arc<PeerShared>,
    shared: Rc<RefCell<Shared>>,
    wake_writer: Rc<Notify>,
    mut events: broadcast::Receiver<TorrentEvent>,
) {
    // One timer: the session's next deadline, a super-seed reveal falling due, or housekeeping.
    let mut housekeeping = Instant::now() + HOUSEKEEPING;
    loop {
        let wake = {
            let s = shared.borrow();
            [s.session.poll_timeout(), s.super_seed.as_ref().and_then(SuperSeed::deadline)]
                .into_iter()
                .flatten()
                .fold(housekeeping, Instant::min)
                // Never sooner than 1 ms from now: a deadline that handling failed to move
                // cannot spin the thread.
                .max(Instant::now() + Duration::from_millis(1))
        };
        tokio::select! {
            ev = events.recv() => {
                let mut s = shared.borrow_mut();
                let now = Instant::now();
                match ev {
                    Ok(TorrentEvent::Verified(_)) if s.super_seed.is_some() => reveal(&torrent, &mut s, now),
                    Ok(TorrentEvent::Verified(p)) => {
                        if !s.announced.has(p) {
                            s.announced.set(p);
                            s.session.piece_verified(p, now);
                        }
                    }
                    Ok(TorrentEvent::Failed(p) | TorrentEvent::Available(p)) => s.session.piece_available(p, now),
                    Ok(TorrentEvent::Cancel(block, slots)) => {
                        if slots.contains(&peer.slot) {
                            s.session.cancel_request(block);
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) if s.super_seed.is_some() => {
                        reveal(&torrent, &mut s, now)
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        // Missed some HAVEs: announce whatever is verified and not yet told.
                        let verified = torrent.map.verified().snapshot();
                        for p in verified.view().iter_ones() {
                            if !s.announced.has(p) {
                                s.announced.set(p);
                                s.session.piece_verified(p, now);
                            }
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
            () = tokio::time::sleep_until(wake.into()) => {
                let mut s = shared.borrow_mut();
                let now = Instant::now();
                if now >= housekeeping {
                    housekeeping = now + HOUSEKEEPING;
                }
                if peer.close.load(Ordering::Relaxed) || s.session.handle_timeout(now).is_err() {
                    s.closed = true;
                    drop(s);
                    wake_writer.notify_one();
                    return;
                }
                reveal(&torrent, &mut s, now);
                PeerShared::set_rate(&peer.down_rate, s.session.download_rate(now));
                PeerShared::set_rate(&peer.up_rate, s.session.upload_rate(now));
                let want = peer.want_unchoke.load(Ordering::Relaxed);
                if want == s.session.am_choking() {
                    s.session.set_choking(!want);
                }
            }
        }
        if shared.borrow().session.wants_transmit() {
            wake_writer.notify_one();
        }
    }
}
