//! The incremental decoder: received bytes in, handshake and messages out.

use bytes::{Buf, BytesMut};

use super::bitfield;
use super::message::id;
use super::{Handshake, Message, WireError};
use crate::types::{BlockRef, PieceIndex, BLOCK_SIZE};

/// Bounds the decoder enforces on what a peer may send. Every bound is checked on the length
/// prefix, before the message body is buffered, so an oversize prefix costs nothing.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct DecoderConfig {
    /// Largest PIECE block accepted, in bytes (default [`BLOCK_SIZE`]: a PIECE frame is then at
    /// most 16 KiB + 13 header bytes).
    pub max_block_len: u32,
    /// The torrent's piece count, once known. When set, a BITFIELD must be exactly
    /// `ceil(piece_count / 8)` bytes with zero spare bits, and every piece index must be below it.
    pub piece_count: Option<u32>,
    /// Largest BITFIELD payload accepted while the piece count is unknown (default 1 MiB, enough
    /// for 8 Mi pieces).
    pub max_bitfield_len: u32,
    /// Largest BEP 10 payload (after the extended id) accepted (default 16 KiB + 4 KiB, room for
    /// a `ut_metadata` data message).
    pub max_extended_len: u32,
    /// Largest payload of a message with an unknown id (default 16 KiB + 4 KiB).
    pub max_unknown_len: u32,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        DecoderConfig {
            max_block_len: BLOCK_SIZE,
            piece_count: None,
            max_bitfield_len: 1 << 20,
            max_extended_len: BLOCK_SIZE + 4096,
            max_unknown_len: BLOCK_SIZE + 4096,
        }
    }
}

/// Incremental, sans-IO decoder over one connection's received byte stream.
///
/// Calling order: append received bytes ([`buffer_mut`](Self::buffer_mut) to read into, or
/// [`extend_from_slice`](Self::extend_from_slice)); call [`handshake`](Self::handshake) until it
/// yields the peer's handshake; then call [`next`](Self::next) until it returns `Ok(None)`, and
/// read more. Bytes after the handshake in the same read stay buffered for `next`.
///
/// Payloads come out as [`Bytes`](bytes::Bytes) slices of the buffer (no copy). After an error
/// the stream is out of sync: the offending message stays unconsumed (calling again returns the
/// same error) and the connection should be closed.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: BytesMut,
    config: DecoderConfig,
}

impl Decoder {
    /// A decoder with an empty buffer.
    pub fn new(config: DecoderConfig) -> Self {
        Decoder { buf: BytesMut::new(), config }
    }

    /// A decoder whose buffer starts with `capacity` bytes reserved.
    pub fn with_capacity(config: DecoderConfig, capacity: usize) -> Self {
        Decoder { buf: BytesMut::with_capacity(capacity), config }
    }

    /// The receive buffer: append received bytes at its end (e.g. reserve, then read into the
    /// spare capacity). Do not remove bytes from it.
    pub fn buffer_mut(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Appends received bytes (a copy; reading into [`buffer_mut`](Self::buffer_mut) avoids it).
    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received and not yet decoded.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The bounds in force.
    pub fn config(&self) -> &DecoderConfig {
        &self.config
    }

    /// Sets the piece count once it is known (e.g. after fetching metadata); from then on
    /// bitfields and piece indexes are checked against it.
    pub fn set_piece_count(&mut self, piece_count: Option<u32>) {
        self.config.piece_count = piece_count;
    }

    /// How many more bytes complete the message at the front of the buffer (at least 1 when
    /// the buffer holds no complete message, 0 when one is ready); a hint for read sizes.
    pub fn needed(&self) -> usize {
        match self.length_prefix() {
            None => 4 - self.buf.len(),
            Some(len) => (len as usize).saturating_add(4).saturating_sub(self.buf.len()),
        }
    }

    /// Decodes the 68-byte handshake at the front of the buffer: `Ok(None)` until all of it has
    /// arrived, an error as soon as a wrong protocol byte is seen.
    pub fn handshake(&mut self) -> Result<Option<Handshake>, WireError> {
        match Handshake::decode(&self.buf) {
            Ok(hs) => {
                self.buf.advance(Handshake::LEN);
                Ok(Some(hs))
            }
            Err(WireError::Incomplete { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Decodes the next message: `Ok(None)` when the buffer holds no complete message yet.
    /// Lengths are validated as soon as the length prefix and id byte arrive.
    #[allow(clippy::should_implement_trait)] // fallible and resumable: `None` means "read more"
    pub fn next(&mut self) -> Result<Option<Message>, WireError> {
        let Some(len) = self.length_prefix() else { return Ok(None) };
        if len == 0 {
            self.buf.advance(4);
            return Ok(Some(Message::KeepAlive));
        }
        let Some(&msg_id) = self.buf.get(4) else { return Ok(None) };
        self.check_len(msg_id, len)?;
        let total = (len as usize).saturating_add(4);
        if self.buf.len() < total {
            return Ok(None);
        }
        let body = self.buf.get(5..total).unwrap_or_default();
        let msg = match msg_id {
            id::CHOKE => Message::Choke,
            id::UNCHOKE => Message::Unchoke,
            id::INTERESTED => Message::Interested,
            id::NOT_INTERESTED => Message::NotInterested,
            id::HAVE_ALL => Message::HaveAll,
            id::HAVE_NONE => Message::HaveNone,
            id::HAVE => Message::Have(self.piece(body, 0)?),
            id::SUGGEST_PIECE => Message::SuggestPiece(self.piece(body, 0)?),
            id::ALLOWED_FAST => Message::AllowedFast(self.piece(body, 0)?),
            id::REQUEST => Message::Request(self.block(body)?),
            id::CANCEL => Message::Cancel(self.block(body)?),
            id::REJECT_REQUEST => Message::RejectRequest(self.block(body)?),
            id::PORT => Message::Port(match *body {
                [a, b] => u16::from_be_bytes([a, b]),
                _ => 0,
            }),
            id::BITFIELD => {
                if let Some(n) = self.config.piece_count {
                    bitfield::check(body, n)?;
                }
                Message::Bitfield(self.take_payload(total, 5))
            }
            id::PIECE => {
                let piece = self.piece(body, 0)?;
                let offset = read_u32(body, 4);
                Message::Piece { piece, offset, data: self.take_payload(total, 13) }
            }
            id::EXTENDED => {
                let ext = body.first().copied().unwrap_or_default();
                Message::Extended { id: ext, payload: self.take_payload(total, 6) }
            }
            other => Message::Unknown { id: other, payload: self.take_payload(total, 5) },
        };
        if msg.payload().is_none() {
            // Fixed-size message, parsed in place; payload-carrying ones were split off already.
            self.buf.advance(total);
        }
        Ok(Some(msg))
    }

    /// The length prefix at the front of the buffer, if all 4 bytes are there.
    fn length_prefix(&self) -> Option<u32> {
        match self.buf.get(..4)? {
            &[a, b, c, d] => Some(u32::from_be_bytes([a, b, c, d])),
            _ => None,
        }
    }

    /// Checks a length prefix against the rules and bounds for `msg_id`.
    fn check_len(&self, msg_id: u8, len: u32) -> Result<(), WireError> {
        let c = &self.config;
        let (min, max) = match msg_id {
            id::CHOKE | id::UNCHOKE | id::INTERESTED | id::NOT_INTERESTED | id::HAVE_ALL | id::HAVE_NONE => {
                (1, 1)
            }
            id::HAVE | id::SUGGEST_PIECE | id::ALLOWED_FAST => (5, 5),
            id::REQUEST | id::CANCEL | id::REJECT_REQUEST => (13, 13),
            id::PORT => (3, 3),
            id::BITFIELD => match c.piece_count {
                Some(n) => {
                    let expected = bitfield::byte_len(n) as u32;
                    if len - 1 != expected {
                        return Err(WireError::BitfieldLength { len: len - 1, expected });
                    }
                    (1, len)
                }
                None => (1, c.max_bitfield_len.saturating_add(1)),
            },
            id::PIECE => (9, c.max_block_len.saturating_add(9)),
            id::EXTENDED => (2, c.max_extended_len.saturating_add(2)),
            _ => (1, c.max_unknown_len.saturating_add(1)),
        };
        if len < min || (min == max && len != min) {
            Err(WireError::BadLength { id: msg_id, len })
        } else if len > max {
            Err(WireError::MessageTooLong { id: msg_id, len, max })
        } else {
            Ok(())
        }
    }

    /// The piece index at `at` in `body`, checked against the piece count if known.
    fn piece(&self, body: &[u8], at: usize) -> Result<PieceIndex, WireError> {
        let index = read_u32(body, at);
        match self.config.piece_count {
            Some(piece_count) if index >= piece_count => {
                Err(WireError::PieceOutOfRange { index, piece_count })
            }
            _ => Ok(PieceIndex(index)),
        }
    }

    /// The block `index begin length` in `body`.
    fn block(&self, body: &[u8]) -> Result<BlockRef, WireError> {
        Ok(BlockRef { piece: self.piece(body, 0)?, offset: read_u32(body, 4), length: read_u32(body, 8) })
    }

    /// Removes the `total`-byte frame from the buffer and returns its bytes from `skip` on,
    /// without copying them.
    fn take_payload(&mut self, total: usize, skip: usize) -> bytes::Bytes {
        let mut frame = self.buf.split_to(total);
        frame.advance(skip.min(frame.len()));
        frame.freeze()
    }
}

/// The big-endian `u32` at `at` in `b` (0 if out of bounds; callers validate lengths first).
fn read_u32(b: &[u8], at: usize) -> u32 {
    match b.get(at..at.saturating_add(4)) {
        Some(&[a, b, c, d]) => u32::from_be_bytes([a, b, c, d]),
        _ => 0,
    }
}
