//! Generated gRPC types and clients for the Floodgate control plane (`floodgate.v1`).
//!
//! Relay and client code use the clients: [`v1::relay_service_client::RelayServiceClient`],
//! [`v1::lease_service_client::LeaseServiceClient`], [`v1::client_service_client::ClientServiceClient`],
//! and admin tools [`v1::admin_service_client::AdminServiceClient`]. Every call carries
//! `authorization: Bearer <token>`; [`Bearer`] is the interceptor for it. [`CtlTarget`] opens
//! the channel (plaintext `http://`, or `https://` with a CA file and a client certificate).
//! Servers are generated behind the default `server` feature.

#![forbid(unsafe_code)]
#![allow(clippy::all, missing_docs)]

mod bearer;
mod channel;
mod config_file;
mod digest;
mod instance;
mod logging;
mod reconnect;

pub use bearer::{bearer, Bearer};
pub use channel::{CtlConnectError, CtlTarget, CONNECT_TIMEOUT};
pub use config_file::{with_config_file, ConfigFileError};
pub use digest::{DigestParseError, Sha256Digest};
pub use instance::process_instance;
pub use logging::{init_logging, LogFormat};
pub use reconnect::{
    follow_stream, retry_unless_permanent, retry_until_ok, watch_forever, Backoff, WatchConfig, FIRST_BACKOFF,
};

/// The `floodgate.v1` package: messages, clients and (with `server`) servers.
pub mod v1 {
    tonic::include_proto!("floodgate.v1");
}

/// Encoded `FileDescriptorSet` of all Floodgate protos, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/floodgate_descriptor.bin"));
