//! Generated gRPC types and clients for the Floodgate control plane (being written).
