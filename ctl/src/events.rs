//! Change events that make replicas push tasks. On SQLite they stay in-process; on
//! PostgreSQL they go through `NOTIFY floodgate_events` so clients connected to any replica
//! hear about them (each replica, including the sender, `LISTEN`s).

use crate::db::Db;
use crate::error::CtlResult;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

/// The PostgreSQL channel name.
pub(crate) const CHANNEL: &str = "floodgate_events";

/// Something changed that connected relays or clients must hear about.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "k", rename_all = "snake_case")]
pub(crate) enum Event {
    /// A distribution was created: push tasks to its clients and relays.
    DistCreated {
        /// Distribution id.
        dist: String,
    },
    /// A distribution was cancelled: push cancellations.
    DistCancelled {
        /// Distribution id.
        dist: String,
    },
    /// Relays were added to or removed from a distribution.
    RelaysChanged {
        /// Distribution id.
        dist: String,
        /// New relays (get the relay task).
        added: Vec<String>,
        /// Dropped relays (get a cancellation).
        removed: Vec<String>,
    },
    /// Clients joined a distribution after its creation (label match at registration).
    ClientsAdded {
        /// Distribution id.
        dist: String,
        /// The new targets.
        clients: Vec<String>,
    },
    /// A relay published the `.torrent` of a URL-only distribution: push the task again.
    TorrentPublished {
        /// Distribution id.
        dist: String,
    },
    /// ctl failed a distribution (a relay's pulled file did not match its SHA-256): tell its
    /// clients, cancel it on its other relays.
    DistFailed {
        /// Distribution id.
        dist: String,
        /// Why.
        reason: String,
        /// The relay that reported it (keeps its task, shown failed).
        relay: String,
    },
    /// Origin limits changed: these relays hold live leases under them and should renew now
    /// (lowered limits already shrank their grants; raised ones may grow them).
    LimitsChanged {
        /// Holders of live leases under the changed limits.
        relays: Vec<String>,
    },
}

/// Publishes events to every replica's dispatcher.
#[derive(Clone)]
pub(crate) struct EventBus {
    tx: broadcast::Sender<Event>,
    db: Db,
}

impl EventBus {
    /// A bus over `db`; call [`EventBus::start`] to begin receiving.
    pub(crate) fn new(db: Db) -> Self {
        let (tx, _) = broadcast::channel(4096);
        EventBus { tx, db }
    }

    /// A receiver of every event (from this and, on PostgreSQL, other replicas).
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }

    /// Starts the PostgreSQL listener (no-op on SQLite). Waits until it listens.
    pub(crate) async fn start(&self) -> CtlResult<()> {
        if !self.db.is_postgres() {
            return Ok(());
        }
        let mut listener = sqlx::postgres::PgListener::connect(self.db.url()).await?;
        listener.listen(CHANNEL).await?;
        let tx = self.tx.clone();
        tokio::spawn(async move {
            loop {
                match listener.recv().await {
                    Ok(n) => match serde_json::from_str::<Event>(n.payload()) {
                        Ok(ev) => {
                            let _ = tx.send(ev);
                        }
                        Err(e) => tracing::warn!(error = %e, "ignoring malformed event"),
                    },
                    Err(e) => {
                        tracing::warn!(error = %e, "event listener error; reconnecting");
                        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                    }
                }
            }
        });
        Ok(())
    }

    /// Publishes an event (after the change is committed).
    pub(crate) async fn publish(&self, ev: Event) {
        if self.db.is_postgres() {
            let payload = match serde_json::to_string(&ev) {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(error = %e, "cannot encode event");
                    return;
                }
            };
            if let Err(e) = sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(payload)
                .execute(self.db.pool())
                .await
            {
                tracing::error!(error = %e, "NOTIFY failed");
            }
        } else {
            let _ = self.tx.send(ev);
        }
    }
}
