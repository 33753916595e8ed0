//! The one error type of the peer wire decoder.

/// Why bytes from a peer could not be decoded.
///
/// Every variant except [`WireError::Incomplete`] means the peer sent something that breaks the
/// protocol; the stream can no longer be trusted and the connection should be closed. The
/// [`Decoder`](super::Decoder) never returns `Incomplete` (it returns `Ok(None)` and waits for more
/// bytes); only the slice-level [`Handshake::decode`](super::Handshake::decode) does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Not enough bytes yet; `needed` more are required before decoding can go on.
    #[error("incomplete: {needed} more bytes needed")]
    Incomplete {
        /// How many more bytes are needed at least.
        needed: usize,
    },
    /// The handshake's first byte (protocol string length) is not 19.
    #[error("handshake protocol string length is {len}, expected 19")]
    BadProtocolLength {
        /// The length byte received.
        len: u8,
    },
    /// The handshake's protocol string is not `BitTorrent protocol`.
    #[error("handshake protocol string is not \"BitTorrent protocol\"")]
    BadProtocolString,
    /// A length prefix is larger than the configured bound for its message id; nothing was
    /// allocated or buffered for it.
    #[error("message id {id} has length {len}, more than the maximum {max}")]
    MessageTooLong {
        /// The message id.
        id: u8,
        /// The length prefix received (id byte included).
        len: u32,
        /// The largest length accepted for this id.
        max: u32,
    },
    /// A length prefix that no message with this id can have: a fixed-size message of the wrong
    /// size, or a variable-size one shorter than its fixed header.
    #[error("message id {id} cannot have length {len}")]
    BadLength {
        /// The message id.
        id: u8,
        /// The length prefix received (id byte included).
        len: u32,
    },
    /// A piece index at or past the torrent's piece count (checked only when the count is known).
    #[error("piece index {index} out of range (torrent has {piece_count} pieces)")]
    PieceOutOfRange {
        /// The index received.
        index: u32,
        /// The torrent's piece count.
        piece_count: u32,
    },
    /// A bitfield whose byte length does not match the piece count (BEP 3: an error).
    #[error("bitfield is {len} bytes, expected {expected} for the piece count")]
    BitfieldLength {
        /// Bytes received.
        len: u32,
        /// `ceil(piece_count / 8)`.
        expected: u32,
    },
    /// A bitfield with a spare bit (past the last piece) set (BEP 3: an error).
    #[error("bitfield has spare bits set past the last piece")]
    BitfieldSpareBits,
}

/// Why a BEP 10 extended handshake or a BEP 9 `ut_metadata` message could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtensionError {
    /// The payload is not valid bencode.
    #[error("invalid bencode: {0}")]
    Bencode(#[from] crate::bencode::DecodeError),
    /// The payload is bencode but not a dictionary.
    #[error("payload is a bencoded {kind}, expected a dictionary")]
    NotADict {
        /// What it is instead (`"int"`, `"bytes"`, `"list"`).
        kind: &'static str,
    },
    /// A required key is absent.
    #[error("required key {key:?} is missing")]
    MissingField {
        /// The key.
        key: &'static str,
    },
    /// A key holds the wrong kind of value or a value out of range.
    #[error("key {key:?} has a wrong type or an out-of-range value")]
    BadField {
        /// The key.
        key: &'static str,
    },
    /// A `ut_metadata` message whose `msg_type` is not request (0), data (1) or reject (2).
    #[error("unknown ut_metadata msg_type {msg_type}")]
    UnknownMetadataType {
        /// The `msg_type` received.
        msg_type: i64,
    },
    /// A `ut_metadata` data message whose data does not fit its piece index and `total_size`
    /// (every piece is 16 KiB but the last, which holds the rest).
    #[error("ut_metadata piece {piece} of {len} bytes does not fit total_size {total_size}")]
    MetadataPieceSize {
        /// The piece index.
        piece: u32,
        /// Bytes of data after the dictionary.
        len: usize,
        /// The announced metadata size.
        total_size: u64,
    },
}
