//! The sans-IO BitTorrent peer wire protocol: bytes in, messages out; messages in, bytes out.
//!
//! No sockets, no clock, no runtime. The I/O edge reads into a [`Decoder`] and writes what
//! [`Message::encode`] (or [`Message::encode_head`] plus the payload, for vectored writes) puts
//! into its own buffers.
//!
//! ```
//! use floodgate_engine::wire::{Decoder, DecoderConfig, Handshake, Message};
//! use floodgate_engine::{InfoHash, PeerId};
//!
//! // What the peer sent, as it might arrive from the socket.
//! let mut sent = Vec::new();
//! Handshake::new(InfoHash([1; 20]), PeerId([2; 20])).encode(&mut sent);
//! Message::Unchoke.encode(&mut sent);
//!
//! let mut decoder = Decoder::new(DecoderConfig::default());
//! decoder.extend_from_slice(&sent); // or read into decoder.buffer_mut()
//! let hs = decoder.handshake()?.expect("whole handshake buffered");
//! assert_eq!(hs.info_hash, InfoHash([1; 20]));
//! while let Some(msg) = decoder.next()? {
//!     assert_eq!(msg, Message::Unchoke);
//! }
//! # Ok::<(), floodgate_engine::wire::WireError>(())
//! ```
//!
//! Files: [`handshake`](Handshake) and reserved bits, [`Message`] and its encoding,
//! [`Decoder`], [`Bitfield`], BEP 10 [`ExtendedHandshake`] and BEP 9 [`MetadataMessage`].
//!
//! Policy left to the peer session: whether BEP 6 messages are allowed (the fast bit was
//! negotiated), which request lengths to serve, what to do with [`Message::Unknown`] (skip it).

mod bitfield;
mod decoder;
mod error;
mod extended;
mod handshake;
mod message;
mod metadata;

#[cfg(test)]
mod tests;

pub use bitfield::{byte_len as bitfield_byte_len, Bitfield};
pub use decoder::{Decoder, DecoderConfig};
pub use error::{ExtensionError, WireError};
pub use extended::{ExtendedHandshake, EXTENDED_HANDSHAKE_ID, UT_METADATA};
pub use handshake::{Handshake, Reserved, PROTOCOL};
pub use message::{id, piece_header, Message, PIECE_HEADER_LEN};
pub use metadata::{
    metadata_piece_count, piece_len as metadata_piece_len, MetadataMessage, METADATA_PIECE_LEN,
};
