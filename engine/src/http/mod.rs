//! Sans-IO HTTP/1.1 pieces for the Range client (origin pulls, gap-filling) and the Range server
//! (relay): request and response heads parsed with `httparse` under size limits, and byte ranges.
//!
//! Nothing here touches a socket: callers hand in the bytes they have read and get either a
//! parsed head plus the number of bytes it used, `Ok(None)` for "need more bytes", or a typed
//! error.

mod error;
mod query;
mod range;
mod request;
mod response;
pub mod status;
mod url;

pub use error::HttpError;
pub use query::{query_number, query_pairs, QueryPairsError};
pub use range::{ByteRange, ContentRange, RangeSpec};
pub use request::{parse_request, Method, RequestHead};
pub use response::{parse_response, ResponseHead};
pub use url::{redact, HttpUrl, UrlError};

/// Largest request or response head accepted, in bytes.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Largest number of header fields accepted in one head.
pub const MAX_HEADERS: usize = 64;
