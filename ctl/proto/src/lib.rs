//! Generated gRPC types and clients for the Floodgate control plane (`floodgate.v1`).
//!
//! Relay and client code use the clients: [`v1::relay_service_client::RelayServiceClient`],
//! [`v1::lease_service_client::LeaseServiceClient`], [`v1::client_service_client::ClientServiceClient`],
//! and admin tools [`v1::admin_service_client::AdminServiceClient`]. Every call carries
//! `authorization: Bearer <token>`; [`Bearer`] is the interceptor for it.
//! Servers are generated behind the default `server` feature.

#![allow(clippy::all, missing_docs)]

mod bearer;

pub use bearer::{bearer, Bearer};

/// The `floodgate.v1` package: messages, clients and (with `server`) servers.
pub mod v1 {
    tonic::include_proto!("floodgate.v1");
}

/// Encoded `FileDescriptorSet` of all Floodgate protos, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/floodgate_descriptor.bin"));

/// Reads a server stream (task pushes) until it ends or fails, handing each message to
/// `on_event`. Returns how many messages arrived, so a reconnect loop can reset its backoff.
/// Ends are logged; the caller reconnects (streams replay open state on connect).
pub async fn follow_stream<T, F, Fut>(mut stream: tonic::Streaming<T>, mut on_event: F) -> u64
where
    F: FnMut(T) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut received = 0;
    loop {
        match stream.message().await {
            Ok(Some(event)) => {
                received += 1;
                on_event(event).await;
            }
            Ok(None) => {
                tracing::warn!("ctl closed the task stream; reconnecting");
                return received;
            }
            Err(e) => {
                tracing::warn!(error = %e, "task stream failed; reconnecting");
                return received;
            }
        }
    }
}
