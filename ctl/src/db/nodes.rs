//! Relays and clients: registration, heartbeats, liveness, relay reassignment.

use super::dists::insert_relay_assignment;
use super::Db;
use crate::error::{now_ms, CtlError, CtlResult};
use sqlx::any::AnyRow;
use sqlx::Row;

pub(crate) use crate::relay_row::RelayRow;

const RELAY_COLS: &str = "id, addresses, zone, capacity_bps, load, origin_rate_bps, origin_latency_ms, \
     origin_errors, bytes_served, last_seen_ms, alive";

fn relay_from(r: &AnyRow) -> CtlResult<RelayRow> {
    let addrs: String = r.try_get("addresses")?;
    Ok(RelayRow {
        id: r.try_get("id")?,
        addresses: serde_json::from_str(&addrs)
            .map_err(|e| CtlError::Corrupt(format!("relay addresses: {e}")))?,
        zone: r.try_get("zone")?,
        capacity_bps: r.try_get("capacity_bps")?,
        load: r.try_get("load")?,
        origin_rate_bps: r.try_get("origin_rate_bps")?,
        origin_latency_ms: r.try_get("origin_latency_ms")?,
        origin_errors: r.try_get("origin_errors")?,
        bytes_served: r.try_get("bytes_served")?,
        last_seen_ms: r.try_get("last_seen_ms")?,
        alive: r.try_get::<i64, _>("alive")? != 0,
    })
}

/// A registered client.
#[derive(Debug, Clone)]
pub(crate) struct ClientRow {
    /// Client id.
    pub id: String,
    /// Labels.
    pub labels: Vec<String>,
    /// Zone label.
    pub zone: String,
    /// Last registration or report.
    pub last_seen_ms: i64,
}

impl Db {
    /// Registers or updates a relay and marks it alive.
    pub(crate) async fn upsert_relay(
        &self,
        id: &str,
        addresses: &[String],
        zone: &str,
        capacity_bps: i64,
    ) -> CtlResult<()> {
        let addrs = serde_json::to_string(addresses).map_err(|e| CtlError::Invalid(e.to_string()))?;
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO relays (id, addresses, zone, capacity_bps, load, origin_rate_bps, origin_latency_ms, \
             origin_errors, bytes_served, last_seen_ms, alive) VALUES ($1, $2, $3, $4, 0, 0, 0, 0, 0, $5, 1) \
             ON CONFLICT (id) DO UPDATE SET addresses = $2, zone = $3, capacity_bps = $4, last_seen_ms = $5, alive = 1",
        )
        .bind(id)
        .bind(addrs)
        .bind(zone)
        .bind(capacity_bps)
        .bind(now_ms())
        .execute(&mut **tx)
        .await?;
        tx.commit().await
    }

    /// Records a heartbeat. NOT_FOUND if the relay never registered.
    pub(crate) async fn relay_heartbeat(
        &self,
        id: &str,
        load: f64,
        origin_rate_bps: i64,
        origin_latency_ms: f64,
        origin_errors: i64,
        bytes_served: i64,
    ) -> CtlResult<()> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query(
            "UPDATE relays SET load = $2, origin_rate_bps = $3, origin_latency_ms = $4, origin_errors = $5, \
             bytes_served = $6, last_seen_ms = $7, alive = 1 WHERE id = $1",
        )
        .bind(id)
        .bind(load)
        .bind(origin_rate_bps)
        .bind(origin_latency_ms)
        .bind(origin_errors)
        .bind(bytes_served)
        .bind(now_ms())
        .execute(&mut **tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        if n == 0 {
            return Err(CtlError::NotFound(format!("relay {id:?} is not registered")));
        }
        Ok(())
    }

    /// One relay.
    pub(crate) async fn get_relay(&self, id: &str) -> CtlResult<Option<RelayRow>> {
        let row = sqlx::query(&format!("SELECT {RELAY_COLS} FROM relays WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(relay_from).transpose()
    }

    /// All relays.
    pub(crate) async fn list_relays(&self) -> CtlResult<Vec<RelayRow>> {
        let rows = sqlx::query(&format!("SELECT {RELAY_COLS} FROM relays ORDER BY id"))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(relay_from).collect()
    }

    /// Relays with `ids`, in one query.
    pub(crate) async fn relays_by_ids(&self, ids: &[String]) -> CtlResult<Vec<RelayRow>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {RELAY_COLS} FROM relays WHERE id IN ({}) ORDER BY id",
            super::placeholders(0, ids.len())
        );
        let mut q = sqlx::query(&sql);
        for id in ids {
            q = q.bind(id);
        }
        let rows = q.fetch_all(self.pool()).await?;
        rows.iter().map(relay_from).collect()
    }

    /// Number of active relay assignments per relay.
    pub(crate) async fn relay_task_counts(&self) -> CtlResult<Vec<(String, i64)>> {
        let rows = sqlx::query(
            "SELECT relay_id, COUNT(*) AS n FROM relay_assignments WHERE state = 'active' GROUP BY relay_id",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(|r| Ok((r.try_get("relay_id")?, r.try_get("n")?))).collect()
    }

    /// Marks relays silent since `cutoff_ms` dead and returns the (dist, relay) assignments
    /// they held, now set to `replaced`. Runs under an advisory lock on PostgreSQL so only
    /// one replica handles each death.
    pub(crate) async fn reap_dead_relays(&self, cutoff_ms: i64) -> CtlResult<Vec<(String, String)>> {
        let mut tx = self.begin_write().await?;
        if self.is_postgres() {
            super::postgres::xact_lock(&mut tx, super::postgres::RELAY_LOCK).await?;
        }
        let dead: Vec<String> =
            sqlx::query_scalar("SELECT id FROM relays WHERE alive = 1 AND last_seen_ms < $1")
                .bind(cutoff_ms)
                .fetch_all(&mut **tx)
                .await?;
        let mut out = Vec::new();
        for id in &dead {
            sqlx::query("UPDATE relays SET alive = 0 WHERE id = $1").bind(id).execute(&mut **tx).await?;
            let dists: Vec<String> = sqlx::query_scalar(
                "SELECT dist_id FROM relay_assignments WHERE relay_id = $1 AND state = 'active'",
            )
            .bind(id)
            .fetch_all(&mut **tx)
            .await?;
            sqlx::query(
                "UPDATE relay_assignments SET state = 'replaced' WHERE relay_id = $1 AND state = 'active'",
            )
            .bind(id)
            .execute(&mut **tx)
            .await?;
            out.extend(dists.into_iter().map(|d| (d, id.clone())));
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Adds relays to a distribution (bumping its revision) if it is still active and still
    /// short of relays. Returns the relays actually added.
    pub(crate) async fn assign_relays(
        &self,
        dist_id: &str,
        want_total: i64,
        candidates: &[String],
    ) -> CtlResult<Vec<String>> {
        let mut tx = self.begin_write().await?;
        if self.is_postgres() {
            super::postgres::xact_lock(&mut tx, super::postgres::RELAY_LOCK).await?;
        }
        let state: Option<String> = sqlx::query_scalar("SELECT state FROM distributions WHERE id = $1")
            .bind(dist_id)
            .fetch_optional(&mut **tx)
            .await?;
        if state.as_deref() != Some("active") {
            return Ok(Vec::new());
        }
        let current: Vec<String> = sqlx::query_scalar(
            "SELECT relay_id FROM relay_assignments WHERE dist_id = $1 AND state = 'active'",
        )
        .bind(dist_id)
        .fetch_all(&mut **tx)
        .await?;
        let need = (want_total - current.len() as i64).max(0) as usize;
        let added: Vec<String> =
            candidates.iter().filter(|c| !current.contains(c)).take(need).cloned().collect();
        if added.is_empty() {
            return Ok(added);
        }
        let now = now_ms();
        for r in &added {
            insert_relay_assignment(&mut tx, dist_id, r, now).await?;
        }
        sqlx::query("UPDATE distributions SET revision = revision + 1 WHERE id = $1")
            .bind(dist_id)
            .execute(&mut **tx)
            .await?;
        tx.commit().await?;
        Ok(added)
    }

    /// Registers or updates a client and its labels.
    pub(crate) async fn upsert_client(&self, id: &str, labels: &[String], zone: &str) -> CtlResult<()> {
        let json = serde_json::to_string(labels).map_err(|e| CtlError::Invalid(e.to_string()))?;
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO clients (id, labels, zone, last_seen_ms) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (id) DO UPDATE SET labels = $2, zone = $3, last_seen_ms = $4",
        )
        .bind(id)
        .bind(json)
        .bind(zone)
        .bind(now_ms())
        .execute(&mut **tx)
        .await?;
        sqlx::query("DELETE FROM client_labels WHERE client_id = $1").bind(id).execute(&mut **tx).await?;
        for l in labels {
            sqlx::query(
                "INSERT INTO client_labels (client_id, label) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(l)
            .execute(&mut **tx)
            .await?;
        }
        tx.commit().await
    }

    /// All clients.
    pub(crate) async fn list_clients(&self) -> CtlResult<Vec<ClientRow>> {
        let rows = sqlx::query("SELECT id, labels, zone, last_seen_ms FROM clients ORDER BY id")
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| {
                let labels: String = r.try_get("labels")?;
                Ok(ClientRow {
                    id: r.try_get("id")?,
                    labels: serde_json::from_str(&labels)
                        .map_err(|e| CtlError::Corrupt(format!("client labels: {e}")))?,
                    zone: r.try_get("zone")?,
                    last_seen_ms: r.try_get("last_seen_ms")?,
                })
            })
            .collect()
    }

    /// Registered clients carrying any of `labels`.
    pub(crate) async fn clients_with_labels(&self, labels: &[String]) -> CtlResult<Vec<String>> {
        if labels.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT DISTINCT client_id FROM client_labels WHERE label IN ({}) ORDER BY client_id",
            super::placeholders(0, labels.len())
        );
        let mut q = sqlx::query_scalar(&sql);
        for l in labels {
            q = q.bind(l);
        }
        Ok(q.fetch_all(self.pool()).await?)
    }

    /// Every registered client id.
    pub(crate) async fn all_client_ids(&self) -> CtlResult<Vec<String>> {
        Ok(sqlx::query_scalar("SELECT id FROM clients ORDER BY id").fetch_all(self.pool()).await?)
    }

    /// Zone of each listed client that is registered.
    pub(crate) async fn client_zones(&self, dist_id: &str) -> CtlResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT c.zone FROM client_assignments a JOIN clients c ON c.id = a.client_id WHERE a.dist_id = $1",
        )
        .bind(dist_id)
        .fetch_all(self.pool())
        .await?)
    }
}
