//! Background reconciliation: dead relays are replaced, distributions short of relays get
//! new ones, old expired leases are purged. Runs on every replica; the database transactions
//! (advisory lock on PostgreSQL) make each change happen once.

use crate::error::{now_ms, CtlResult};
use crate::events::Event;
use crate::selection;
use crate::state::State;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

/// Runs forever: every second, or sooner when woken.
pub(crate) async fn run(st: Arc<State>) {
    let mut ticks: u64 = 0;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(1000)) => {}
            _ = st.reconcile.notified() => {}
        }
        if let Err(e) = reconcile(&st).await {
            tracing::warn!(error = %e, "reconcile failed");
        }
        ticks += 1;
        if ticks.is_multiple_of(30) {
            if let Err(e) = st.db.purge_expired_leases().await {
                tracing::warn!(error = %e, "lease purge failed");
            }
        }
    }
}

/// One reconciliation pass.
pub(crate) async fn reconcile(st: &State) -> CtlResult<()> {
    let dead = st.db.reap_dead_relays(now_ms() - st.rt.relay_timeout_ms).await?;
    let mut removed: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (dist, relay) in dead {
        tracing::warn!(%relay, %dist, "relay missed heartbeats; reassigning its task");
        removed.entry(dist).or_default().push(relay);
    }
    let dists = st.db.active_distributions().await?;
    let mut relays = None;
    for d in dists {
        let current = st.db.dist_relays(&d.id).await?;
        let gone = removed.remove(&d.id).unwrap_or_default();
        let mut added = Vec::new();
        if (current.len() as i64) < d.relay_count {
            if relays.is_none() {
                relays = Some((
                    st.db.list_relays().await?,
                    st.db.relay_task_counts().await?.into_iter().collect::<HashMap<_, _>>(),
                ));
            }
            if let Some((all, counts)) = &relays {
                let mut exclude = current.clone();
                exclude.extend(gone.iter().cloned());
                // No relay to add: skip reading every target's zone (100,000 rows a second
                // for a fleet-wide distribution short of relays took most of a core).
                if all.iter().any(|r| r.alive && !exclude.contains(&r.id)) {
                    let zones = st.db.client_zones(&d.id).await?;
                    let ranked = selection::rank(all, &zones, counts, &exclude);
                    if !ranked.is_empty() {
                        added = st.db.assign_relays(&d.id, d.relay_count, &ranked).await?;
                    }
                }
            }
        }
        if !added.is_empty() || !gone.is_empty() {
            tracing::info!(dist = %d.id, ?added, ?gone, "relay set changed");
            st.bus.publish(Event::RelaysChanged { dist: d.id.clone(), added, removed: gone }).await;
        }
    }
    Ok(())
}
