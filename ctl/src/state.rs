//! State shared by the gRPC services and background loops of one replica.

use crate::db::Db;
use crate::events::EventBus;
use crate::progress::ProgressWriter;
use crate::push::Hub;
use std::sync::Arc;
use tokio::sync::Notify;

/// Tunables of a running ctl.
#[derive(Debug, Clone)]
pub(crate) struct Runtime {
    /// A relay silent this long is dead and replaced.
    pub relay_timeout_ms: i64,
    /// Default lease TTL.
    pub lease_ttl_ms: i64,
    /// Largest lease TTL a relay may ask for.
    pub lease_ttl_max_ms: i64,
    /// Most progress reports written in one transaction.
    pub progress_batch: usize,
}

/// Everything the services share.
pub(crate) struct State {
    /// Database.
    pub db: Db,
    /// Local streams.
    pub hub: Arc<Hub>,
    /// Change events.
    pub bus: EventBus,
    /// Tunables.
    pub rt: Runtime,
    /// Group commit of progress reports.
    pub progress: ProgressWriter,
    /// Wakes the reconcile loop (relay registered, distribution created).
    pub reconcile: Arc<Notify>,
    /// Counters for `/metrics`.
    pub metrics: crate::metrics::Metrics,
    /// Recent rate samples of distributions, for the dashboard's charts.
    pub history: crate::history::History,
}

impl State {
    /// Heartbeat interval told to relays: a third of the relay timeout.
    pub(crate) fn heartbeat_interval_ms(&self) -> u32 {
        (self.rt.relay_timeout_ms / 3).clamp(100, u32::MAX as i64) as u32
    }
}
