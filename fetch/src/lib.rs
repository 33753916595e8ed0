//! The project's one HTTP/1.1 client: the Range fetcher shared by the relay's origin pull and
//! the client's HTTP gap-filling, small-document GETs, and tracker announces.
//!
//! * [`Conn`]: one keep-alive connection (plain TCP or rustls), every read and write bounded in
//!   time, bodies streamed in bounded chunks;
//! * [`probe`] learns a source's [`Validators`] (length, ETag) with a HEAD, retried;
//! * [`fetch_run`] fetches a run of consecutive pieces with one Range request, checks the
//!   response against the validators (status, `Content-Range`, `Content-Length`, ETag) and hands
//!   each whole piece to the caller as it lands; [`fetch_parts`] does the same for a run made
//!   of several Range requests (one per file of a multi-file torrent's BEP 19 web seed);
//! * [`Quota`]: connections, bytes/s and a byte allowance that every body read waits on;
//! * [`get_body`] / [`get_response`]: a plain GET of a small document (a relay's hash list),
//!   any body framing ([`dechunk`] for chunked ones), bounded;
//! * [`announce`]: one tracker announce (HTTP or HTTPS) around the engine's sans-IO tracker
//!   core;
//! * [`backoff`]: the retry schedule.
//!
//! URLs are parsed by `floodgate_engine::http::HttpUrl` (the one URL parser); everything that
//! shows a URL uses `floodgate_engine::http::redact`.

mod announce;
mod chunked;
mod conn;
mod error;
mod get;
mod quota;
mod range;
mod tls;

pub use announce::{announce, AnnounceError};
pub use chunked::{dechunk, ChunkedError};
pub use conn::{Conn, SourceIo};
pub use error::FetchError;
pub use floodgate_engine::http::HttpUrl;
pub use get::{get_body, get_response};
pub use quota::Quota;
pub use range::{
    backoff, check_status, fetch_parts, fetch_run, probe, Flow, RunPart, RunSpec, Tally, Validators,
};
pub use tls::{client_config, TlsSetupError};
pub use tokio_rustls::rustls::ClientConfig;
