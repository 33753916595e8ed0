//! A registered relay as the policies see it: plain data, no SQL (`db::nodes` reads and writes
//! it). Its own file so that the pure policies (`leases`, `selection`) depend on nothing else of
//! ctl; the simulator (`sim/src/ctl.rs`) compiles these three files as they are.

/// A registered relay.
#[derive(Debug, Clone)]
pub struct RelayRow {
    /// Relay id.
    pub id: String,
    /// Addresses (decoded from JSON).
    pub addresses: Vec<String>,
    /// Zone label.
    pub zone: String,
    /// Upload capacity, bytes/s.
    pub capacity_bps: i64,
    /// 0..1.
    pub load: f64,
    /// Origin pull rate, bytes/s.
    pub origin_rate_bps: i64,
    /// Origin latency, ms.
    pub origin_latency_ms: f64,
    /// Origin errors in the last heartbeat.
    pub origin_errors: i64,
    /// Bytes served in total.
    pub bytes_served: i64,
    /// Last heartbeat or registration.
    pub last_seen_ms: i64,
    /// Not timed out.
    pub alive: bool,
}
