//! Peer wire messages (BEP 3, BEP 6, BEP 10) and their encoding into caller-owned buffers.

use bytes::{BufMut, Bytes};

use crate::types::{BlockRef, PieceIndex};

/// Message ids (the byte after the length prefix).
pub mod id {
    /// BEP 3 `choke`.
    pub const CHOKE: u8 = 0;
    /// BEP 3 `unchoke`.
    pub const UNCHOKE: u8 = 1;
    /// BEP 3 `interested`.
    pub const INTERESTED: u8 = 2;
    /// BEP 3 `not interested`.
    pub const NOT_INTERESTED: u8 = 3;
    /// BEP 3 `have`.
    pub const HAVE: u8 = 4;
    /// BEP 3 `bitfield`.
    pub const BITFIELD: u8 = 5;
    /// BEP 3 `request`.
    pub const REQUEST: u8 = 6;
    /// BEP 3 `piece`.
    pub const PIECE: u8 = 7;
    /// BEP 3 `cancel`.
    pub const CANCEL: u8 = 8;
    /// BEP 5 `port` (DHT).
    pub const PORT: u8 = 9;
    /// BEP 6 `suggest piece`.
    pub const SUGGEST_PIECE: u8 = 13;
    /// BEP 6 `have all`.
    pub const HAVE_ALL: u8 = 14;
    /// BEP 6 `have none`.
    pub const HAVE_NONE: u8 = 15;
    /// BEP 6 `reject request`.
    pub const REJECT_REQUEST: u8 = 16;
    /// BEP 6 `allowed fast`.
    pub const ALLOWED_FAST: u8 = 17;
    /// BEP 10 extended message.
    pub const EXTENDED: u8 = 20;
}

/// Bytes before the payload of a PIECE message: length prefix, id, index, begin.
pub const PIECE_HEADER_LEN: usize = 13;

/// One peer wire message.
///
/// Payloads (`Piece::data`, `Bitfield`, `Extended::payload`, `Unknown::payload`) are
/// [`Bytes`] slices of the receive buffer: decoding copies no payload.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Message {
    /// Zero-length message that keeps the connection open.
    KeepAlive,
    /// The sender will not serve requests.
    Choke,
    /// The sender will serve requests.
    Unchoke,
    /// The sender wants pieces the receiver has.
    Interested,
    /// The sender wants nothing from the receiver.
    NotInterested,
    /// The sender now has this piece.
    Have(PieceIndex),
    /// The pieces the sender has, raw (high bit of the first byte is piece 0); see
    /// [`Bitfield`](super::Bitfield) to validate and query it.
    Bitfield(Bytes),
    /// Asks for a block.
    Request(BlockRef),
    /// A block of data.
    Piece {
        /// The piece the block belongs to.
        piece: PieceIndex,
        /// Byte offset of the block inside the piece.
        offset: u32,
        /// The block's bytes.
        data: Bytes,
    },
    /// Withdraws a request.
    Cancel(BlockRef),
    /// The sender's DHT port (BEP 5).
    Port(u16),
    /// BEP 6: the sender suggests downloading this piece.
    SuggestPiece(PieceIndex),
    /// BEP 6: the sender has every piece.
    HaveAll,
    /// BEP 6: the sender has no piece.
    HaveNone,
    /// BEP 6: the sender will not serve this request.
    RejectRequest(BlockRef),
    /// BEP 6: the receiver may request this piece even while choked.
    AllowedFast(PieceIndex),
    /// BEP 10 extended message: `id` 0 is the extended handshake, others are the ids the
    /// receiver assigned in its handshake's `m` dictionary.
    Extended {
        /// The extended message id.
        id: u8,
        /// The bytes after the extended id.
        payload: Bytes,
    },
    /// A message id Floodgate does not know. BEP 3 leaves these to be ignored, so the decoder
    /// hands them over (bounded in size) instead of failing; sessions should skip them.
    /// `id` must not be one of the known [`id`]s, or it encodes as that message.
    Unknown {
        /// The message id.
        id: u8,
        /// The bytes after the id.
        payload: Bytes,
    },
}

impl Message {
    /// The message id, `None` for keep-alive.
    pub fn id(&self) -> Option<u8> {
        Some(match self {
            Message::KeepAlive => return None,
            Message::Choke => id::CHOKE,
            Message::Unchoke => id::UNCHOKE,
            Message::Interested => id::INTERESTED,
            Message::NotInterested => id::NOT_INTERESTED,
            Message::Have(_) => id::HAVE,
            Message::Bitfield(_) => id::BITFIELD,
            Message::Request(_) => id::REQUEST,
            Message::Piece { .. } => id::PIECE,
            Message::Cancel(_) => id::CANCEL,
            Message::Port(_) => id::PORT,
            Message::SuggestPiece(_) => id::SUGGEST_PIECE,
            Message::HaveAll => id::HAVE_ALL,
            Message::HaveNone => id::HAVE_NONE,
            Message::RejectRequest(_) => id::REJECT_REQUEST,
            Message::AllowedFast(_) => id::ALLOWED_FAST,
            Message::Extended { .. } => id::EXTENDED,
            Message::Unknown { id, .. } => *id,
        })
    }

    /// The bulk payload that [`encode_head`](Self::encode_head) leaves out, if any.
    pub fn payload(&self) -> Option<&Bytes> {
        match self {
            Message::Bitfield(b) => Some(b),
            Message::Piece { data, .. } => Some(data),
            Message::Extended { payload, .. } | Message::Unknown { payload, .. } => Some(payload),
            _ => None,
        }
    }

    /// The length-prefix value: bytes after the 4-byte prefix.
    fn body_len(&self) -> usize {
        let fixed = match self {
            Message::KeepAlive => 0,
            Message::Choke
            | Message::Unchoke
            | Message::Interested
            | Message::NotInterested
            | Message::HaveAll
            | Message::HaveNone
            | Message::Bitfield(_)
            | Message::Unknown { .. } => 1,
            Message::Have(_) | Message::SuggestPiece(_) | Message::AllowedFast(_) => 5,
            Message::Request(_) | Message::Cancel(_) | Message::RejectRequest(_) => 13,
            Message::Piece { .. } => 9,
            Message::Port(_) => 3,
            Message::Extended { .. } => 2,
        };
        fixed + self.payload().map_or(0, Bytes::len)
    }

    /// Total encoded length, length prefix included.
    pub fn encoded_len(&self) -> usize {
        4 + self.body_len()
    }

    /// Appends the whole message to `buf`. Allocates nothing when `buf` has
    /// [`encoded_len`](Self::encoded_len) bytes of spare capacity.
    ///
    /// # Panics
    /// If a payload is longer than a length prefix can express (about 4 GiB), or `buf` is a
    /// fixed-size buffer that is too small.
    pub fn encode<B: BufMut>(&self, buf: &mut B) {
        if let Some(payload) = self.encode_head(buf) {
            buf.put_slice(payload);
        }
    }

    /// Appends everything but the bulk payload and returns that payload, so that it can be
    /// written with vectored I/O without copying. For PIECE this writes exactly
    /// [`PIECE_HEADER_LEN`] bytes.
    ///
    /// # Panics
    /// As [`encode`](Self::encode).
    pub fn encode_head<B: BufMut>(&self, buf: &mut B) -> Option<&Bytes> {
        let len = self.body_len();
        assert!(len <= u32::MAX as usize, "wire message body of {len} bytes does not fit a length prefix");
        // Build the head on the stack and append it in one go: one capacity check, one copy.
        let mut head = [0u8; MAX_HEAD_LEN];
        let mut w = &mut head[..];
        w.put_u32(len as u32);
        if let Some(msg_id) = self.id() {
            w.put_u8(msg_id);
        }
        match self {
            Message::Have(p) | Message::SuggestPiece(p) | Message::AllowedFast(p) => w.put_u32(p.0),
            Message::Request(b) | Message::Cancel(b) | Message::RejectRequest(b) => {
                w.put_u32(b.piece.0);
                w.put_u32(b.offset);
                w.put_u32(b.length);
            }
            Message::Piece { piece, offset, .. } => {
                w.put_u32(piece.0);
                w.put_u32(*offset);
            }
            Message::Port(port) => w.put_u16(*port),
            Message::Extended { id, .. } => w.put_u8(*id),
            _ => {}
        }
        let used = MAX_HEAD_LEN - w.len();
        buf.put_slice(head.get(..used).unwrap_or_default());
        self.payload()
    }
}

/// Longest head of any message: length prefix, id and three `u32`s (REQUEST, CANCEL, REJECT).
const MAX_HEAD_LEN: usize = 17;

/// The 13-byte header of a PIECE message carrying `data_len` bytes at `offset` in `piece`;
/// send it followed by the block itself (e.g. with vectored I/O).
///
/// # Panics
/// If `data_len` is larger than `u32::MAX - 9`.
pub fn piece_header(piece: PieceIndex, offset: u32, data_len: usize) -> [u8; PIECE_HEADER_LEN] {
    let len = data_len.checked_add(9).filter(|&l| l <= u32::MAX as usize);
    let Some(len) = len else { panic!("PIECE block of {data_len} bytes does not fit a length prefix") };
    let mut out = [0u8; PIECE_HEADER_LEN];
    let mut w = &mut out[..];
    w.put_u32(len as u32);
    w.put_u8(id::PIECE);
    w.put_u32(piece.0);
    w.put_u32(offset);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(piece: u32, offset: u32, length: u32) -> BlockRef {
        BlockRef { piece: PieceIndex(piece), offset, length }
    }

    fn enc(m: &Message) -> Vec<u8> {
        let mut v = Vec::new();
        m.encode(&mut v);
        assert_eq!(v.len(), m.encoded_len());
        v
    }

    #[test]
    fn exact_bytes_of_every_message() {
        let cases: Vec<(Message, Vec<u8>)> = vec![
            (Message::KeepAlive, vec![0, 0, 0, 0]),
            (Message::Choke, vec![0, 0, 0, 1, 0]),
            (Message::Unchoke, vec![0, 0, 0, 1, 1]),
            (Message::Interested, vec![0, 0, 0, 1, 2]),
            (Message::NotInterested, vec![0, 0, 0, 1, 3]),
            (Message::Have(PieceIndex(0x01020304)), vec![0, 0, 0, 5, 4, 1, 2, 3, 4]),
            (Message::Bitfield(Bytes::from_static(&[0xa0, 0x80])), vec![0, 0, 0, 3, 5, 0xa0, 0x80]),
            (
                Message::Request(block(1, 0x4000, 0x4000)),
                vec![0, 0, 0, 13, 6, 0, 0, 0, 1, 0, 0, 0x40, 0, 0, 0, 0x40, 0],
            ),
            (
                Message::Piece { piece: PieceIndex(2), offset: 16, data: Bytes::from_static(b"abc") },
                vec![0, 0, 0, 12, 7, 0, 0, 0, 2, 0, 0, 0, 16, b'a', b'b', b'c'],
            ),
            (Message::Cancel(block(1, 2, 3)), vec![0, 0, 0, 13, 8, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3]),
            (Message::Port(6881), vec![0, 0, 0, 3, 9, 0x1a, 0xe1]),
            (Message::SuggestPiece(PieceIndex(9)), vec![0, 0, 0, 5, 13, 0, 0, 0, 9]),
            (Message::HaveAll, vec![0, 0, 0, 1, 14]),
            (Message::HaveNone, vec![0, 0, 0, 1, 15]),
            (
                Message::RejectRequest(block(1, 2, 3)),
                vec![0, 0, 0, 13, 16, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3],
            ),
            (Message::AllowedFast(PieceIndex(5)), vec![0, 0, 0, 5, 17, 0, 0, 0, 5]),
            (
                Message::Extended { id: 3, payload: Bytes::from_static(b"de") },
                vec![0, 0, 0, 4, 20, 3, b'd', b'e'],
            ),
            (Message::Unknown { id: 99, payload: Bytes::from_static(b"x") }, vec![0, 0, 0, 2, 99, b'x']),
        ];
        for (m, bytes) in cases {
            assert_eq!(enc(&m), bytes, "{m:?}");
        }
    }

    #[test]
    fn head_plus_payload_equals_whole() {
        let data = Bytes::from(vec![0x55; 16384]);
        let m = Message::Piece { piece: PieceIndex(7), offset: 32768, data: data.clone() };
        let mut head = bytes::BytesMut::new();
        let payload = m.encode_head(&mut head).cloned();
        assert_eq!(head.len(), PIECE_HEADER_LEN);
        assert_eq!(&head[..], &piece_header(PieceIndex(7), 32768, data.len()));
        assert_eq!(payload.as_ref(), Some(&data));
        let mut whole = head.to_vec();
        whole.extend_from_slice(&data);
        assert_eq!(whole, enc(&m));
        assert_eq!(Message::Choke.encode_head(&mut head), None);
    }

    #[test]
    fn encode_into_reserved_buffer_does_not_grow() {
        let mut buf = bytes::BytesMut::with_capacity(64);
        let cap = buf.capacity();
        for _ in 0..3 {
            Message::Request(block(1, 2, 3)).encode(&mut buf);
        }
        assert_eq!(buf.capacity(), cap);
        assert_eq!(buf.len(), 51);
    }
}
