//! Task push: the streams of connected clients and relays on this replica, and the
//! dispatcher that turns [`Event`]s into pushed messages.

use crate::convert;
use crate::db::Db;
use crate::error::CtlResult;
use crate::events::{Event, EventBus};
use floodgate_proto::v1 as pb;
use floodgate_proto::v1::{relay_task_event, task_event, RelayTaskEvent, RenewLeases, TaskEvent};
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tonic::Status;

type Senders<T> = HashMap<String, Vec<(u64, UnboundedSender<Result<T, Status>>)>>;

/// Connected task streams on this replica.
#[derive(Default)]
pub(crate) struct Hub {
    clients: Mutex<Senders<TaskEvent>>,
    relays: Mutex<Senders<RelayTaskEvent>>,
    next: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A task stream that unregisters itself when the peer goes away.
pub(crate) struct Watch<T: Send + 'static> {
    rx: UnboundedReceiver<Result<T, Status>>,
    on_drop: Option<Box<dyn FnOnce() + Send + Sync>>,
}

impl<T: Send + 'static> tokio_stream::Stream for Watch<T> {
    type Item = Result<T, Status>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

impl<T: Send + 'static> Drop for Watch<T> {
    fn drop(&mut self) {
        if let Some(f) = self.on_drop.take() {
            f();
        }
    }
}

fn subscribe<T: Send + 'static>(
    hub: &Arc<Hub>,
    pick: fn(&Hub) -> &Mutex<Senders<T>>,
    id: &str,
) -> (UnboundedSender<Result<T, Status>>, Watch<T>) {
    let (tx, rx) = unbounded_channel();
    let conn = hub.next.fetch_add(1, Ordering::Relaxed);
    lock(pick(hub)).entry(id.to_string()).or_default().push((conn, tx.clone()));
    let hub2 = hub.clone();
    let id2 = id.to_string();
    let on_drop = Box::new(move || {
        let mut map = lock(pick(&hub2));
        if let Some(v) = map.get_mut(&id2) {
            v.retain(|(c, _)| *c != conn);
            if v.is_empty() {
                map.remove(&id2);
            }
        }
    });
    (tx, Watch { rx, on_drop: Some(on_drop) })
}

fn send_all<T: Clone>(map: &Mutex<Senders<T>>, ids: &[String], ev: &T) -> usize {
    let map = lock(map);
    let mut n = 0;
    for id in ids {
        if let Some(conns) = map.get(id) {
            for (_, tx) in conns {
                if tx.send(Ok(ev.clone())).is_ok() {
                    n += 1;
                }
            }
        }
    }
    n
}

impl Hub {
    /// Registers a client stream; the sender is for the backlog.
    pub(crate) fn subscribe_client(
        self: &Arc<Self>,
        id: &str,
    ) -> (UnboundedSender<Result<TaskEvent, Status>>, Watch<TaskEvent>) {
        subscribe(self, |h| &h.clients, id)
    }

    /// Registers a relay stream; the sender is for the backlog.
    pub(crate) fn subscribe_relay(
        self: &Arc<Self>,
        id: &str,
    ) -> (UnboundedSender<Result<RelayTaskEvent, Status>>, Watch<RelayTaskEvent>) {
        subscribe(self, |h| &h.relays, id)
    }

    /// Number of connected client streams.
    pub(crate) fn client_streams(&self) -> usize {
        lock(&self.clients).values().map(Vec::len).sum()
    }

    /// Ids of the clients with a stream on this replica, sorted.
    pub(crate) fn online_clients(&self) -> Vec<String> {
        let mut ids: Vec<String> = lock(&self.clients).keys().cloned().collect();
        ids.sort();
        ids
    }

    /// Number of connected relay streams.
    pub(crate) fn relay_streams(&self) -> usize {
        lock(&self.relays).values().map(Vec::len).sum()
    }

    /// Sends to the listed clients connected here; returns how many streams got it.
    pub(crate) fn send_clients(&self, ids: &[String], ev: &TaskEvent) -> usize {
        send_all(&self.clients, ids, ev)
    }

    /// Sends to the listed relays connected here.
    pub(crate) fn send_relays(&self, ids: &[String], ev: &RelayTaskEvent) -> usize {
        send_all(&self.relays, ids, ev)
    }
}

/// Applies events to the local streams until the bus closes.
pub(crate) async fn dispatch(db: Db, hub: Arc<Hub>, bus: EventBus) {
    let mut rx = bus.subscribe();
    loop {
        let ev = match rx.recv().await {
            Ok(ev) => ev,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "event dispatcher lagged; re-pushing open and recent state");
                if let Err(e) = resync(&db, &hub).await {
                    tracing::error!(error = %e, "resync failed");
                }
                continue;
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        };
        if let Err(e) = handle(&db, &hub, &ev).await {
            tracing::error!(error = %e, ?ev, "event handling failed");
        }
    }
}

/// After lost events: re-push every active distribution and the cancellations of the last
/// hour to the streams on this replica (at-least-once; receivers apply idempotently).
async fn resync(db: &Db, hub: &Hub) -> CtlResult<()> {
    let recent = crate::error::now_ms() - 3_600_000;
    for d in db.list_distributions().await? {
        let ev = match d.state.as_str() {
            "active" => Event::DistCreated { dist: d.id },
            "cancelled" if d.finished_ms > recent => Event::DistCancelled { dist: d.id },
            _ => continue,
        };
        handle(db, hub, &ev).await?;
    }
    Ok(())
}

async fn handle(db: &Db, hub: &Hub, ev: &Event) -> CtlResult<()> {
    match ev {
        Event::DistCreated { dist } => {
            let d = db.get_distribution(dist).await?;
            let relay_ids = db.dist_relays(dist).await?;
            let relays = db.relays_by_ids(&relay_ids).await?;
            let clients: Vec<String> =
                db.open_assignments(dist).await?.into_iter().map(|a| a.client_id).collect();
            let task = TaskEvent { event: Some(task_event::Event::Assign(convert::task(&d, &relays)?)) };
            let n = hub.send_clients(&clients, &task);
            let rt = RelayTaskEvent {
                event: Some(relay_task_event::Event::Assign(convert::relay_task(&d, clients.len() as u64)?)),
            };
            hub.send_relays(&relay_ids, &rt);
            tracing::debug!(dist, pushed = n, targets = clients.len(), "distribution pushed");
        }
        Event::DistCancelled { dist } => {
            let clients = db.assigned_clients(dist).await?;
            hub.send_clients(
                &clients,
                &TaskEvent { event: Some(task_event::Event::CancelDistId(dist.clone())) },
            );
            let relays: Vec<String> =
                sqlx::query_scalar("SELECT relay_id FROM relay_assignments WHERE dist_id = $1")
                    .bind(dist)
                    .fetch_all(db.pool())
                    .await?;
            hub.send_relays(
                &relays,
                &RelayTaskEvent { event: Some(relay_task_event::Event::CancelDistId(dist.clone())) },
            );
        }
        Event::RelaysChanged { dist, added, removed } => {
            let d = db.get_distribution(dist).await?;
            if d.state != "active" {
                return Ok(());
            }
            let clients: Vec<String> =
                db.open_assignments(dist).await?.into_iter().map(|a| a.client_id).collect();
            let rt = RelayTaskEvent {
                event: Some(relay_task_event::Event::Assign(convert::relay_task(&d, clients.len() as u64)?)),
            };
            hub.send_relays(added, &rt);
            hub.send_relays(
                removed,
                &RelayTaskEvent { event: Some(relay_task_event::Event::CancelDistId(dist.clone())) },
            );
            let relays = db.relays_by_ids(&db.dist_relays(dist).await?).await?;
            let task = TaskEvent { event: Some(task_event::Event::Assign(convert::task(&d, &relays)?)) };
            hub.send_clients(&clients, &task);
        }
        Event::ClientsAdded { dist, clients } => {
            let d = db.get_distribution(dist).await?;
            if d.state != "active" {
                return Ok(());
            }
            let relays = db.relays_by_ids(&db.dist_relays(dist).await?).await?;
            let task = TaskEvent { event: Some(task_event::Event::Assign(convert::task(&d, &relays)?)) };
            hub.send_clients(clients, &task);
        }
        Event::TorrentPublished { dist } => {
            let d = db.get_distribution(dist).await?;
            if d.state != "active" {
                return Ok(());
            }
            let clients: Vec<String> =
                db.open_assignments(dist).await?.into_iter().map(|a| a.client_id).collect();
            let relays = db.relays_by_ids(&db.dist_relays(dist).await?).await?;
            let task = TaskEvent { event: Some(task_event::Event::Assign(convert::task(&d, &relays)?)) };
            hub.send_clients(&clients, &task);
        }
        Event::DistFailed { dist, reason, relay } => {
            let clients: Vec<String> =
                db.open_assignments(dist).await?.into_iter().map(|a| a.client_id).collect();
            let failed = pb::DistFailed { dist_id: dist.clone(), reason: reason.clone() };
            let n = hub.send_clients(&clients, &TaskEvent { event: Some(task_event::Event::Failed(failed)) });
            let others: Vec<String> =
                db.dist_relays(dist).await?.into_iter().filter(|r| r != relay).collect();
            hub.send_relays(
                &others,
                &RelayTaskEvent { event: Some(relay_task_event::Event::CancelDistId(dist.clone())) },
            );
            tracing::debug!(dist, pushed = n, "distribution failure pushed");
        }
        Event::LimitsChanged { relays } => {
            let ev = RelayTaskEvent { event: Some(relay_task_event::Event::RenewLeases(RenewLeases {})) };
            hub.send_relays(relays, &ev);
        }
    }
    Ok(())
}
