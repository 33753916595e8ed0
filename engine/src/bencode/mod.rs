//! Bencode (BEP 3): borrowed zero-copy decoding and streaming encoding.
//!
//! * [`decode`] / [`decode_with`] / [`decode_prefix`] turn bytes into a [`Value`] tree whose byte
//!   strings borrow from the input. Every node remembers its exact bytes ([`Value::raw`]), which is
//!   how an info-hash is taken over the `info` dictionary exactly as it appeared on the wire.
//! * [`Encoder`] writes bencode into a `Vec<u8>` the caller owns; dictionary keys are emitted in
//!   sorted order whatever order the caller wrote them in. [`encode`] writes a [`Value`] back in
//!   canonical form.
//!
//! Decoding is strict by default: no leading zeros, no `-0`, no trailing bytes, dictionary keys
//! sorted and unique, integers within `i64`, and [`DecodeLimits`] on depth, item count and
//! lengths. [`KeyOrder::Any`] relaxes only the sorting rule (duplicates are always rejected),
//! for real-world files written by sloppy tools; see [`crate::metainfo`] for where that is used.

mod decode;
mod encode;
mod value;

#[cfg(test)]
mod tests;

pub use decode::{decode, decode_prefix, decode_with, DecodeError, DecodeLimits, KeyOrder};
pub use encode::{encode, DictEncoder, EncodeError, Encoder};
pub use value::{Dict, Kind, Value};
