//! Distributions, client assignments (with progress) and relay assignments.

use super::{placeholders, Db};
use crate::error::{now_ms, CtlError, CtlResult};
use sqlx::any::AnyRow;
use sqlx::Row;
use std::collections::HashMap;

/// RUNNING reports stored by one statement (10 parameters each: far below SQLite's and
/// PostgreSQL's limits).
const BULK_REPORTS: usize = 256;

/// One client's progress report, as stored.
#[derive(Debug, Clone)]
pub(crate) struct ProgressRow {
    /// Distribution.
    pub dist_id: String,
    /// Client.
    pub client_id: String,
    /// Bytes by source: BitTorrent, HTTP from relays, HTTP from the origin.
    pub bytes: [i64; 3],
    /// Download speed, bytes/s.
    pub speed_bps: i64,
    /// Upload link rate, bytes/s.
    pub upload_bps: i64,
    /// Download link rate, bytes/s.
    pub download_bps: i64,
    /// `running`, `done` or `failed`.
    pub state: &'static str,
    /// Why it failed.
    pub reason: String,
    /// The reporting process (`ProgressReport.instance` as stored, 0 = unknown): another
    /// instance than the stored one means a restart, and the stored counts are kept.
    pub instance: i64,
}

/// What a progress report leaves: the assignment's state after it, and why ctl failed the
/// distribution if it did (so the client stops).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reported {
    /// The assignment state after the report (`cancelled` if the distribution was cancelled).
    pub state: String,
    /// The distribution's failure reason when ctl failed it ('' otherwise).
    pub failed_reason: String,
}

/// A stored distribution. `selector` and `config` are base64 prost encodings.
#[derive(Debug, Clone)]
pub(crate) struct DistRow {
    /// Distribution id.
    pub id: String,
    /// Origin URL.
    pub origin_url: String,
    /// Host part of the origin URL.
    pub origin_host: String,
    /// Base64 `.torrent` (empty if none).
    pub torrent: String,
    /// Base64 piece hashes (empty if none).
    pub piece_hashes: String,
    /// Piece length for `piece_hashes`.
    pub piece_length: i64,
    /// Base64 `TargetSelector`.
    pub selector: String,
    /// Base64 `DistConfig`.
    pub config: String,
    /// Priority 0..=9.
    pub priority: i64,
    /// `active`, `done`, `cancelled` or `failed`.
    pub state: String,
    /// Bumped when the relay set changes.
    pub revision: i64,
    /// File size, 0 if unknown.
    pub size: i64,
    /// How many relays this distribution wants.
    pub relay_count: i64,
    /// Creation time.
    pub created_ms: i64,
    /// Finish time (0 while active).
    pub finished_ms: i64,
    /// SHA-256 of the whole file, lowercase hex ('' = none given).
    pub sha256: String,
    /// Why ctl failed it ('' unless failed by ctl, e.g. a digest mismatch).
    pub failure_reason: String,
    /// Mirrors: other URLs of the same file (stored one per line).
    pub mirror_urls: Vec<String>,
}

const DIST_COLS: &str =
    "id, origin_url, origin_host, torrent, piece_hashes, piece_length, selector, config, \
     priority, state, revision, size, relay_count, created_ms, finished_ms, sha256, failure_reason, mirror_urls";

fn dist_from(r: &AnyRow) -> CtlResult<DistRow> {
    Ok(DistRow {
        id: r.try_get("id")?,
        origin_url: r.try_get("origin_url")?,
        origin_host: r.try_get("origin_host")?,
        torrent: r.try_get("torrent")?,
        piece_hashes: r.try_get("piece_hashes")?,
        piece_length: r.try_get("piece_length")?,
        selector: r.try_get("selector")?,
        config: r.try_get("config")?,
        priority: r.try_get("priority")?,
        state: r.try_get("state")?,
        revision: r.try_get("revision")?,
        size: r.try_get("size")?,
        relay_count: r.try_get("relay_count")?,
        created_ms: r.try_get("created_ms")?,
        finished_ms: r.try_get("finished_ms")?,
        sha256: r.try_get("sha256")?,
        failure_reason: r.try_get("failure_reason")?,
        mirror_urls: r
            .try_get::<String, _>("mirror_urls")?
            .lines()
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect(),
    })
}

/// One client's assignment and its latest progress.
#[derive(Debug, Clone)]
pub(crate) struct AssignmentRow {
    /// Client id.
    pub client_id: String,
}

/// Aggregates over one distribution's assignments and relays, input of `stats`.
#[derive(Debug, Clone, Default)]
pub(crate) struct StatsRow {
    /// Counts per state.
    pub targets: i64,
    /// Not started.
    pub pending: i64,
    /// Reporting progress.
    pub running: i64,
    /// Finished.
    pub done: i64,
    /// Failed.
    pub failed: i64,
    /// Cancelled.
    pub cancelled: i64,
    /// Sums of bytes by source.
    pub bytes_bt: i64,
    /// HTTP from relays.
    pub bytes_http_relay: i64,
    /// Directly from the origin.
    pub bytes_http_origin: i64,
    /// Sum of running clients' speeds.
    pub speed_bps: i64,
    /// Sum of clients' upload capacities.
    pub upload_sum_bps: i64,
    /// Smallest reported client download capacity (0 if none).
    pub download_min_bps: i64,
    /// Bytes relays pulled from the origin.
    pub relay_origin_bytes: i64,
    /// Sum of the capacities of the distribution's active relays.
    pub relay_capacity_bps: i64,
    /// Smallest current download speed of a running client (0 if none reports one).
    pub speed_min_bps: i64,
    /// Sum of the current origin pull rates of this distribution's pulls on its active
    /// relays (each relay's rate for this distribution; a relay too old to report one counts
    /// with its whole origin rate).
    pub relay_origin_rate_bps: i64,
    /// Bytes delivered to the targets neither failed nor cancelled, each target's capped at
    /// the file size, a done target's taken as the size (uncapped when the size is unknown).
    pub delivered_open: i64,
    /// Bytes delivered to every target, capped and counted the same way.
    pub delivered_capped: i64,
}

/// One distribution's counters in a relay heartbeat.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RelayTaskRow {
    /// The relay process's instance id (0 = unknown).
    pub instance: i64,
    /// Bytes this process pulled from the origin for the distribution.
    pub origin_bytes: i64,
    /// Bytes this process served of it.
    pub served: i64,
    /// The file size once known (0 = not yet).
    pub size: i64,
    /// The current pull rate for this distribution (`None`: the relay does not report one).
    pub origin_rate_bps: Option<i64>,
}

impl Db {
    /// Inserts a distribution, its client assignments, relay assignments and the audit entry
    /// atomically.
    pub(crate) async fn insert_distribution(
        &self,
        d: &DistRow,
        clients: &[String],
        relays: &[String],
        audit: &super::AuditRow,
    ) -> CtlResult<()> {
        let mut tx = self.begin_write().await?;
        super::audit::insert(&mut tx, audit).await?;
        sqlx::query(&format!("INSERT INTO distributions ({DIST_COLS}) VALUES ({})", placeholders(0, 18)))
            .bind(&d.id)
            .bind(&d.origin_url)
            .bind(&d.origin_host)
            .bind(&d.torrent)
            .bind(&d.piece_hashes)
            .bind(d.piece_length)
            .bind(&d.selector)
            .bind(&d.config)
            .bind(d.priority)
            .bind(&d.state)
            .bind(d.revision)
            .bind(d.size)
            .bind(d.relay_count)
            .bind(d.created_ms)
            .bind(d.finished_ms)
            .bind(&d.sha256)
            .bind(&d.failure_reason)
            .bind(d.mirror_urls.join("\n"))
            .execute(&mut **tx)
            .await?;
        let now = now_ms();
        for chunk in clients.chunks(400) {
            let values: Vec<String> =
                (0..chunk.len()).map(|i| format!("($1, ${}, 'pending', $2)", i + 3)).collect();
            let sql = format!(
                "INSERT INTO client_assignments (dist_id, client_id, state, updated_ms) VALUES {}",
                values.join(", ")
            );
            let mut q = sqlx::query(&sql).bind(&d.id).bind(now);
            for c in chunk {
                q = q.bind(c);
            }
            q.execute(&mut **tx).await?;
        }
        for r in relays {
            insert_relay_assignment(&mut tx, &d.id, r, now).await?;
        }
        tx.commit().await
    }

    /// One distribution.
    pub(crate) async fn get_distribution(&self, id: &str) -> CtlResult<DistRow> {
        let row = sqlx::query(&format!("SELECT {DIST_COLS} FROM distributions WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| CtlError::NotFound(format!("distribution {id:?}")))?;
        dist_from(&row)
    }

    /// All distributions, newest first.
    pub(crate) async fn list_distributions(&self) -> CtlResult<Vec<DistRow>> {
        let rows =
            sqlx::query(&format!("SELECT {DIST_COLS} FROM distributions ORDER BY created_ms DESC, id"))
                .fetch_all(self.pool())
                .await?;
        rows.iter().map(dist_from).collect()
    }

    /// Active distributions.
    pub(crate) async fn active_distributions(&self) -> CtlResult<Vec<DistRow>> {
        let rows = sqlx::query(&format!("SELECT {DIST_COLS} FROM distributions WHERE state = 'active'"))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(dist_from).collect()
    }

    /// Cancels an active distribution and its unfinished assignments, recording `audit` in the
    /// same transaction. Returns false (and records nothing) if it was not active.
    pub(crate) async fn cancel_distribution(&self, id: &str, audit: &super::AuditRow) -> CtlResult<bool> {
        let mut tx = self.begin_write().await?;
        let now = now_ms();
        let n = sqlx::query(
            "UPDATE distributions SET state = 'cancelled', finished_ms = $2 WHERE id = $1 AND state = 'active'",
        )
        .bind(id)
        .bind(now)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        if n > 0 {
            sqlx::query(
                "UPDATE client_assignments SET state = 'cancelled', updated_ms = $2 \
                 WHERE dist_id = $1 AND state IN ('pending', 'running')",
            )
            .bind(id)
            .bind(now)
            .execute(&mut **tx)
            .await?;
            sqlx::query(
                "UPDATE relay_assignments SET state = 'cancelled' WHERE dist_id = $1 AND state = 'active'",
            )
            .bind(id)
            .execute(&mut **tx)
            .await?;
            super::audit::insert(&mut tx, audit).await?;
        }
        tx.commit().await?;
        Ok(n > 0)
    }

    /// Fails an active distribution with `reason` (e.g. a relay's SHA-256 mismatch); its
    /// client assignments stay as they are until the clients report. Returns false (and
    /// changes nothing) if it was not active.
    pub(crate) async fn fail_distribution(&self, id: &str, reason: &str) -> CtlResult<bool> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query(
            "UPDATE distributions SET state = 'failed', failure_reason = $2, finished_ms = $3 \
             WHERE id = $1 AND state = 'active'",
        )
        .bind(id)
        .bind(reason)
        .bind(now_ms())
        .execute(&mut **tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(n > 0)
    }

    /// Stores the `.torrent` of a URL-only distribution (and its size), bumping the revision.
    /// `Ok(false)` when that same torrent is already stored; `Precondition` when a different
    /// one (or piece hashes) is.
    pub(crate) async fn publish_torrent(&self, id: &str, torrent_b64: &str, size: i64) -> CtlResult<bool> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query(
            "UPDATE distributions SET torrent = $2, size = $3, revision = revision + 1 \
             WHERE id = $1 AND torrent = '' AND piece_hashes = '' AND state = 'active'",
        )
        .bind(id)
        .bind(torrent_b64)
        .bind(size)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        if n > 0 {
            return Ok(true);
        }
        let d = self.get_distribution(id).await?;
        if d.torrent == torrent_b64 {
            Ok(false)
        } else if d.state != "active" {
            Err(CtlError::Precondition(format!("{id} is {}: nothing is published", d.state)))
        } else {
            Err(CtlError::Precondition(format!("{id} already has other piece hashes")))
        }
    }

    /// Unfinished assignments of a distribution.
    pub(crate) async fn open_assignments(&self, dist_id: &str) -> CtlResult<Vec<AssignmentRow>> {
        let rows = sqlx::query(
            "SELECT client_id FROM client_assignments WHERE dist_id = $1 AND state IN ('pending', 'running')",
        )
        .bind(dist_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(|r| Ok(AssignmentRow { client_id: r.try_get("client_id")? })).collect()
    }

    /// Ids of all clients assigned to a distribution (any state).
    pub(crate) async fn assigned_clients(&self, dist_id: &str) -> CtlResult<Vec<String>> {
        Ok(sqlx::query_scalar("SELECT client_id FROM client_assignments WHERE dist_id = $1")
            .bind(dist_id)
            .fetch_all(self.pool())
            .await?)
    }

    /// Active distributions with an unfinished assignment for this client.
    pub(crate) async fn client_open_distributions(&self, client_id: &str) -> CtlResult<Vec<DistRow>> {
        // Without the target selector (left empty): a task does not carry it, and for a
        // fleet-wide distribution it is ~1.3 MB (100,000 ids) read for every stream opened;
        // 50,000 agents reconnecting at once took a replica past 20 GiB.
        let cols: Vec<String> = DIST_COLS
            .split(", ")
            .map(|c| if c == "selector" { "'' AS selector".to_string() } else { format!("d.{c}") })
            .collect();
        let rows = sqlx::query(&format!(
            "SELECT {} FROM client_assignments a JOIN distributions d ON d.id = a.dist_id \
             WHERE a.client_id = $1 AND a.state IN ('pending', 'running') AND d.state = 'active' \
             ORDER BY d.created_ms",
            cols.join(", ")
        ))
        .bind(client_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(dist_from).collect()
    }

    /// Distributions ctl failed (with a reason) where this client's assignment is still open:
    /// `(dist_id, failure_reason)`, so a client that missed the push hears of it on reconnect.
    pub(crate) async fn client_failed_distributions(
        &self,
        client_id: &str,
    ) -> CtlResult<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT d.id, d.failure_reason FROM client_assignments a JOIN distributions d ON d.id = a.dist_id \
             WHERE a.client_id = $1 AND a.state IN ('pending', 'running') AND d.state = 'failed' \
             AND d.failure_reason <> '' ORDER BY d.created_ms",
        )
        .bind(client_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(|r| Ok((r.try_get("id")?, r.try_get("failure_reason")?))).collect()
    }

    /// Adds assignments for `dist_id` to these clients if missing. Returns the ones added.
    pub(crate) async fn add_assignments(&self, dist_id: &str, clients: &[String]) -> CtlResult<Vec<String>> {
        let mut tx = self.begin_write().await?;
        let now = now_ms();
        let mut added = Vec::new();
        for c in clients {
            let n = sqlx::query(
                "INSERT INTO client_assignments (dist_id, client_id, state, updated_ms) VALUES ($1, $2, 'pending', $3) \
                 ON CONFLICT (dist_id, client_id) DO NOTHING",
            )
            .bind(dist_id)
            .bind(c)
            .bind(now)
            .execute(&mut **tx)
            .await?
            .rows_affected();
            if n > 0 {
                added.push(c.clone());
            }
        }
        tx.commit().await?;
        Ok(added)
    }

    /// Records many clients' progress in one write transaction (group commit): one result
    /// per report, in order. A report for an unknown assignment fails alone (NOT_FOUND); a
    /// database error fails the whole batch.
    pub(crate) async fn report_progress_batch(
        &self,
        reports: &[ProgressRow],
    ) -> CtlResult<Vec<CtlResult<Reported>>> {
        let mut tx = self.begin_write().await?;
        // Each distribution's failure reason once per batch, not once per report: on SQLite
        // the row's `state` lies behind its `selector`, which for a fleet-wide distribution
        // is a long overflow chain (~1.3 MB for 100,000 client ids) read on every lookup.
        let mut failed: HashMap<&str, String> = HashMap::new();
        for r in reports {
            if !failed.contains_key(r.dist_id.as_str()) {
                let reason = self.failure_reason_in(&mut tx, &r.dist_id).await?;
                failed.insert(&r.dist_id, reason);
            }
        }
        // RUNNING reports of assignments reported once in the batch go in multi-row updates;
        // the rest (DONE/FAILED, which may close the distribution, and repeated assignments,
        // whose order matters) one by one, in order.
        let mut times: HashMap<(&str, &str), usize> = HashMap::new();
        for r in reports {
            *times.entry((&r.dist_id, &r.client_id)).or_default() += 1;
        }
        let bulk: Vec<usize> = (0..reports.len())
            .filter(|&i| {
                let r = &reports[i];
                r.state == "running" && times.get(&(r.dist_id.as_str(), r.client_id.as_str())) == Some(&1)
            })
            .collect();
        let mut state: Vec<Option<CtlResult<String>>> = (0..reports.len()).map(|_| None).collect();
        for chunk in bulk.chunks(BULK_REPORTS) {
            let rows: Vec<&ProgressRow> = chunk.iter().map(|&i| &reports[i]).collect();
            if self.record_running_many(&mut tx, &rows).await? {
                for &i in chunk {
                    state[i] = Some(Ok("running".to_string()));
                }
            }
        }
        for (i, r) in reports.iter().enumerate() {
            if state[i].is_none() {
                state[i] = Some(match self.record_report(&mut tx, r).await {
                    Err(CtlError::Db(e)) => return Err(CtlError::Db(e)),
                    other => other,
                });
            }
        }
        tx.commit().await?;
        Ok(reports
            .iter()
            .zip(state)
            .map(|(r, s)| {
                let failed_reason = failed.get(r.dist_id.as_str()).cloned().unwrap_or_default();
                s.unwrap_or_else(|| Ok("running".into())).map(|state| Reported { state, failed_reason })
            })
            .collect())
    }

    /// RUNNING reports of distinct assignments in one statement. True if every one of them
    /// was stored; false if some assignment is missing or cancelled, and then the caller
    /// stores each one on its own (storing a report again changes nothing: its instance
    /// matches by then, so no count is folded twice).
    async fn record_running_many(&self, tx: &mut super::WriteTx, rows: &[&ProgressRow]) -> CtlResult<bool> {
        const COLS: usize = 10;
        let values: Vec<String> =
            (0..rows.len()).map(|k| format!("({})", super::placeholders(k * COLS, COLS))).collect();
        let now_param = rows.len() * COLS + 1;
        let sql = format!(
            "WITH v(dist_id, client_id, b_bt, b_relay, b_origin, speed, up, down, reason, inst) AS \
             (VALUES {}) \
             UPDATE client_assignments SET \
             earlier_bt = earlier_bt + CASE WHEN client_assignments.instance <> v.inst THEN client_assignments.bytes_bt ELSE 0 END, \
             earlier_http_relay = earlier_http_relay + CASE WHEN client_assignments.instance <> v.inst \
             THEN client_assignments.bytes_http_relay ELSE 0 END, \
             earlier_http_origin = earlier_http_origin + CASE WHEN client_assignments.instance <> v.inst \
             THEN client_assignments.bytes_http_origin ELSE 0 END, \
             instance = v.inst, bytes_bt = v.b_bt, bytes_http_relay = v.b_relay, bytes_http_origin = v.b_origin, \
             speed_bps = v.speed, upload_bps = v.up, download_bps = v.down, state = 'running', reason = v.reason, \
             updated_ms = ${now_param} \
             FROM v WHERE client_assignments.dist_id = v.dist_id AND client_assignments.client_id = v.client_id \
             AND client_assignments.state <> 'cancelled'",
            values.join(", ")
        );
        let mut q = sqlx::query(&sql);
        for p in rows {
            q = q
                .bind(p.dist_id.as_str())
                .bind(p.client_id.as_str())
                .bind(p.bytes[0])
                .bind(p.bytes[1])
                .bind(p.bytes[2])
                .bind(p.speed_bps)
                .bind(p.upload_bps)
                .bind(p.download_bps)
                .bind(p.reason.as_str())
                .bind(p.instance);
        }
        let updated = q.bind(now_ms()).execute(&mut ***tx).await?.rows_affected();
        Ok(updated == rows.len() as u64)
    }

    /// The failure reason of a distribution ctl failed ('' for any other).
    async fn failure_reason_in(&self, tx: &mut super::WriteTx, dist_id: &str) -> CtlResult<String> {
        Ok(sqlx::query_scalar("SELECT failure_reason FROM distributions WHERE id = $1 AND state = 'failed'")
            .bind(dist_id)
            .fetch_optional(&mut ***tx)
            .await?
            .unwrap_or_default())
    }

    /// Stores one report; returns the assignment state after it (`cancelled`, unchanged, if
    /// the assignment was cancelled). NOT_FOUND if not assigned. One statement in the usual
    /// case: the update itself skips a cancelled row, and only then is the row looked at.
    async fn record_report(&self, tx: &mut super::WriteTx, p: &ProgressRow) -> CtlResult<String> {
        let (dist_id, client_id, state) = (p.dist_id.as_str(), p.client_id.as_str(), p.state);
        let now = now_ms();
        let updated = sqlx::query(
            // SET reads the row as it was: a new instance folds the old counts into `earlier_*`.
            "UPDATE client_assignments SET \
             earlier_bt = earlier_bt + CASE WHEN instance <> $12 THEN bytes_bt ELSE 0 END, \
             earlier_http_relay = earlier_http_relay + CASE WHEN instance <> $12 THEN bytes_http_relay ELSE 0 END, \
             earlier_http_origin = earlier_http_origin + CASE WHEN instance <> $12 THEN bytes_http_origin ELSE 0 END, \
             instance = $12, bytes_bt = $3, bytes_http_relay = $4, bytes_http_origin = $5, \
             speed_bps = $6, upload_bps = $7, download_bps = $8, state = $9, reason = $10, updated_ms = $11 \
             WHERE dist_id = $1 AND client_id = $2 AND state <> 'cancelled'",
        )
        .bind(dist_id)
        .bind(client_id)
        .bind(p.bytes[0])
        .bind(p.bytes[1])
        .bind(p.bytes[2])
        .bind(p.speed_bps)
        .bind(p.upload_bps)
        .bind(p.download_bps)
        .bind(state)
        .bind(&p.reason)
        .bind(now)
.bind(p.instance)
        .execute(&mut ***tx)
        .await?
        .rows_affected();
        if updated == 0 {
            let cur: Option<String> = sqlx::query_scalar(
                "SELECT state FROM client_assignments WHERE dist_id = $1 AND client_id = $2",
            )
            .bind(dist_id)
            .bind(client_id)
            .fetch_optional(&mut ***tx)
            .await?;
            return match cur {
                Some(cur) => Ok(cur),
                None => Err(CtlError::NotFound(format!(
                    "client {client_id:?} has no task for distribution {dist_id:?}"
                ))),
            };
        }
        if state == "done" || state == "failed" {
            let open: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM client_assignments WHERE dist_id = $1 AND state IN ('pending', 'running')",
            )
            .bind(dist_id)
            .fetch_one(&mut ***tx)
            .await?;
            if open == 0 {
                let done: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM client_assignments WHERE dist_id = $1 AND state = 'done'",
                )
                .bind(dist_id)
                .fetch_one(&mut ***tx)
                .await?;
                let final_state = if done > 0 { "done" } else { "failed" };
                sqlx::query(
                    "UPDATE distributions SET state = $2, finished_ms = $3 WHERE id = $1 AND state = 'active'",
                )
                .bind(dist_id)
                .bind(final_state)
                .bind(now)
                .execute(&mut ***tx)
                .await?;
            }
        }
        Ok(state.to_string())
    }

    /// Aggregates for statistics; `size` (0 = unknown) caps each target's delivered bytes.
    pub(crate) async fn stats(&self, dist_id: &str, size: i64) -> CtlResult<StatsRow> {
        // One target's bytes over all its processes, capped at the size when it is known; a
        // done target has the whole file, even when a life killed -9 did not report its last
        // bytes (it resumed them from disk).
        let capped = "CASE WHEN $2 > 0 AND (state = 'done' OR bytes_bt + earlier_bt + bytes_http_relay \
                      + earlier_http_relay + bytes_http_origin + earlier_http_origin > $2) THEN $2 \
                      ELSE bytes_bt + earlier_bt + bytes_http_relay + earlier_http_relay \
                      + bytes_http_origin + earlier_http_origin END";
        let r = sqlx::query(&format!(
            "SELECT COUNT(*) AS targets, \
             CAST(COALESCE(SUM(CASE WHEN state = 'pending' THEN 1 ELSE 0 END), 0) AS BIGINT) AS pending, \
             CAST(COALESCE(SUM(CASE WHEN state = 'running' THEN 1 ELSE 0 END), 0) AS BIGINT) AS running, \
             CAST(COALESCE(SUM(CASE WHEN state = 'done' THEN 1 ELSE 0 END), 0) AS BIGINT) AS done, \
             CAST(COALESCE(SUM(CASE WHEN state = 'failed' THEN 1 ELSE 0 END), 0) AS BIGINT) AS failed, \
             CAST(COALESCE(SUM(CASE WHEN state = 'cancelled' THEN 1 ELSE 0 END), 0) AS BIGINT) AS cancelled, \
             CAST(COALESCE(SUM(bytes_bt + earlier_bt), 0) AS BIGINT) AS bytes_bt, \
             CAST(COALESCE(SUM(bytes_http_relay + earlier_http_relay), 0) AS BIGINT) AS bytes_http_relay, \
             CAST(COALESCE(SUM(bytes_http_origin + earlier_http_origin), 0) AS BIGINT) AS bytes_http_origin, \
             CAST(COALESCE(SUM(CASE WHEN state = 'running' THEN speed_bps ELSE 0 END), 0) AS BIGINT) AS speed_bps, \
             CAST(COALESCE(SUM(upload_bps), 0) AS BIGINT) AS upload_sum, \
             CAST(COALESCE(MIN(CASE WHEN download_bps > 0 THEN download_bps END), 0) AS BIGINT) AS download_min, \
             CAST(COALESCE(MIN(CASE WHEN state = 'running' AND speed_bps > 0 THEN speed_bps END), 0) AS BIGINT) \
             AS speed_min, \
             CAST(COALESCE(SUM(CASE WHEN state IN ('failed', 'cancelled') THEN 0 ELSE {capped} END), 0) \
             AS BIGINT) AS delivered_open, \
             CAST(COALESCE(SUM({capped}), 0) AS BIGINT) AS delivered_capped \
             FROM client_assignments WHERE dist_id = $1"
        ))
        .bind(dist_id)
        .bind(size)
        .fetch_one(self.pool())
        .await?;
        let rel = sqlx::query(
            "SELECT CAST(COALESCE(SUM(ra.origin_bytes + ra.earlier_origin_bytes), 0) AS BIGINT) AS origin_bytes, \
             CAST(COALESCE(SUM(CASE WHEN ra.state = 'active' THEN r.capacity_bps ELSE 0 END), 0) AS BIGINT) AS cap, \
             CAST(COALESCE(SUM(CASE WHEN ra.state <> 'active' THEN 0 \
               WHEN ra.origin_rate_bps >= 0 THEN ra.origin_rate_bps ELSE r.origin_rate_bps END), 0) AS BIGINT) \
             AS origin_rate \
             FROM relay_assignments ra JOIN relays r ON r.id = ra.relay_id WHERE ra.dist_id = $1",
        )
        .bind(dist_id)
        .fetch_one(self.pool())
        .await?;
        Ok(StatsRow {
            targets: r.try_get("targets")?,
            pending: r.try_get("pending")?,
            running: r.try_get("running")?,
            done: r.try_get("done")?,
            failed: r.try_get("failed")?,
            cancelled: r.try_get("cancelled")?,
            bytes_bt: r.try_get("bytes_bt")?,
            bytes_http_relay: r.try_get("bytes_http_relay")?,
            bytes_http_origin: r.try_get("bytes_http_origin")?,
            speed_bps: r.try_get("speed_bps")?,
            upload_sum_bps: r.try_get("upload_sum")?,
            download_min_bps: r.try_get("download_min")?,
            relay_origin_bytes: rel.try_get("origin_bytes")?,
            relay_capacity_bps: rel.try_get("cap")?,
            speed_min_bps: r.try_get("speed_min")?,
            relay_origin_rate_bps: rel.try_get("origin_rate")?,
            delivered_open: r.try_get("delivered_open")?,
            delivered_capped: r.try_get("delivered_capped")?,
        })
    }

    /// Active relay ids of a distribution.
    pub(crate) async fn dist_relays(&self, dist_id: &str) -> CtlResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT relay_id FROM relay_assignments WHERE dist_id = $1 AND state = 'active' ORDER BY relay_id",
        )
        .bind(dist_id)
        .fetch_all(self.pool())
        .await?)
    }

    /// Active distributions this relay serves.
    pub(crate) async fn relay_open_distributions(&self, relay_id: &str) -> CtlResult<Vec<DistRow>> {
        let cols: Vec<String> = DIST_COLS.split(", ").map(|c| format!("d.{c}")).collect();
        let rows = sqlx::query(&format!(
            "SELECT {} FROM relay_assignments ra JOIN distributions d ON d.id = ra.dist_id \
             WHERE ra.relay_id = $1 AND ra.state = 'active' AND d.state = 'active' ORDER BY d.created_ms",
            cols.join(", ")
        ))
        .bind(relay_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(dist_from).collect()
    }

    /// Relay-reported counters for one distribution; learns the file size. `instance` is the
    /// relay process's (0 = unknown): a new one keeps the earlier process's counts.
    /// `origin_rate_bps` is the relay's current pull rate for this distribution, `None` from a
    /// relay too old to report it (the statistics then take the relay's whole rate).
    pub(crate) async fn relay_task_status(
        &self,
        relay_id: &str,
        dist_id: &str,
        s: &RelayTaskRow,
    ) -> CtlResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE relay_assignments SET \
             earlier_origin_bytes = earlier_origin_bytes + CASE WHEN instance <> $5 THEN origin_bytes ELSE 0 END, \
             earlier_bytes_served = earlier_bytes_served + CASE WHEN instance <> $5 THEN bytes_served ELSE 0 END, \
             instance = $5, origin_bytes = $3, bytes_served = $4, origin_rate_bps = $6 \
             WHERE dist_id = $1 AND relay_id = $2",
        )
        .bind(dist_id)
        .bind(relay_id)
        .bind(s.origin_bytes)
        .bind(s.served)
        .bind(s.instance)
        .bind(s.origin_rate_bps.unwrap_or(-1))
        .execute(&mut **tx)
        .await?;
        if s.size > 0 {
            sqlx::query("UPDATE distributions SET size = $2 WHERE id = $1 AND size = 0")
                .bind(dist_id)
                .bind(s.size)
                .execute(&mut **tx)
                .await?;
        }
        tx.commit().await
    }
}

/// Inserts (or re-activates) a relay assignment inside a transaction.
pub(crate) async fn insert_relay_assignment(
    tx: &mut super::WriteTx,
    dist_id: &str,
    relay_id: &str,
    now: i64,
) -> CtlResult<()> {
    sqlx::query(
        "INSERT INTO relay_assignments (dist_id, relay_id, state, assigned_ms) VALUES ($1, $2, 'active', $3) \
         ON CONFLICT (dist_id, relay_id) DO UPDATE SET state = 'active', assigned_ms = $3",
    )
    .bind(dist_id)
    .bind(relay_id)
    .bind(now)
    .execute(&mut ***tx)
    .await?;
    Ok(())
}

impl Db {
    /// Bytes taken from each origin host over all distributions: relays' pulls plus clients'
    /// direct origin fetches, ordered by host.
    pub(crate) async fn origin_bytes_by_host(&self) -> CtlResult<Vec<(String, i64)>> {
        let rows = sqlx::query(
            "SELECT host, CAST(SUM(b) AS BIGINT) AS bytes FROM ( \
               SELECT d.origin_host AS host, ra.origin_bytes + ra.earlier_origin_bytes AS b FROM relay_assignments ra \
                 JOIN distributions d ON d.id = ra.dist_id \
               UNION ALL \
               SELECT d.origin_host AS host, ca.bytes_http_origin + ca.earlier_http_origin AS b FROM client_assignments ca \
                 JOIN distributions d ON d.id = ca.dist_id \
             ) t GROUP BY host ORDER BY host",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(|r| Ok((r.try_get("host")?, r.try_get("bytes")?))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::AuditRow;

    /// A fresh SQLite database in a file of its own, removed when the guard drops.
    struct TempDb(std::path::PathBuf);

    impl Drop for TempDb {
        fn drop(&mut self) {
            for ext in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{ext}", self.0.display()));
            }
        }
    }

    fn run<F: std::future::Future<Output = CtlResult<()>>>(f: impl FnOnce(Db) -> F) {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("fg-ctl-dists-{}-{n}.db", std::process::id()));
        let guard = TempDb(path.clone());
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async move {
            let db = Db::open(&format!("sqlite://{}", path.display())).await?;
            f(db).await
        })
        .expect("database test");
        drop(guard);
    }

    fn dist(id: &str, size: i64) -> DistRow {
        DistRow {
            id: id.into(),
            origin_url: format!("http://origin/{id}"),
            origin_host: "origin".into(),
            torrent: String::new(),
            piece_hashes: String::new(),
            piece_length: 0,
            selector: String::new(),
            config: String::new(),
            priority: 0,
            state: "active".into(),
            revision: 0,
            size,
            relay_count: 1,
            created_ms: 0,
            finished_ms: 0,
            sha256: String::new(),
            failure_reason: String::new(),
            mirror_urls: Vec::new(),
        }
    }

    fn audit(target: &str) -> AuditRow {
        AuditRow {
            at_ms: 0,
            role: "admin".into(),
            via: "grpc".into(),
            peer: String::new(),
            action: "dist.create".into(),
            target: target.into(),
            detail: "{}".into(),
        }
    }

    fn task(origin_bytes: i64, rate: Option<i64>) -> RelayTaskRow {
        RelayTaskRow { instance: 7, origin_bytes, served: 0, size: 1000, origin_rate_bps: rate }
    }

    #[test]
    fn each_distribution_bound_takes_only_its_own_pull_rate_on_a_shared_relay() {
        run(|db| async move {
            let (a, b) = ("dist-a", "dist-b");
            db.upsert_relay("r1", &[], "", 0).await?;
            db.upsert_relay("r2", &[], "", 0).await?;
            db.insert_distribution(&dist(a, 1000), &["c1".into()], &["r1".into(), "r2".into()], &audit(a))
                .await?;
            db.insert_distribution(&dist(b, 1000), &["c2".into()], &["r1".into()], &audit(b)).await?;
            // r1 pulls both at 300 B/s in all: 100 for a, 200 for b. r2 pulls a at 50.
            db.relay_heartbeat("r1", 0.0, 300, 0.0, 0, 0).await?;
            db.relay_heartbeat("r2", 0.0, 50, 0.0, 0, 0).await?;
            db.relay_task_status("r1", a, &task(10, Some(100))).await?;
            db.relay_task_status("r1", b, &task(20, Some(200))).await?;
            db.relay_task_status("r2", a, &task(5, Some(50))).await?;
            assert_eq!(db.stats(a, 1000).await?.relay_origin_rate_bps, 150);
            assert_eq!(db.stats(b, 1000).await?.relay_origin_rate_bps, 200);
            // A pull that ended reports 0 for its distribution: the relay's whole rate (now
            // all b's) stays out of a's bound.
            db.relay_task_status("r1", a, &task(10, Some(0))).await?;
            assert_eq!(db.stats(a, 1000).await?.relay_origin_rate_bps, 50);
            // A relay too old to report per-distribution rates counts with its whole rate.
            db.relay_task_status("r2", a, &task(5, None)).await?;
            db.relay_heartbeat("r2", 0.0, 70, 0.0, 0, 0).await?;
            assert_eq!(db.stats(a, 1000).await?.relay_origin_rate_bps, 70);
            Ok(())
        });
    }

    fn report(dist: &str, client: &str, bytes: i64, state: &'static str) -> ProgressRow {
        ProgressRow {
            dist_id: dist.into(),
            client_id: client.into(),
            bytes: [bytes, 0, 0],
            speed_bps: 0,
            upload_bps: 0,
            download_bps: 0,
            state,
            reason: String::new(),
            instance: 1,
        }
    }

    #[test]
    fn delivered_bytes_are_summed_per_state_and_capped_per_target() {
        run(|db| async move {
            let d = "dist-p";
            let clients: Vec<String> = ["c1", "c2", "c3"].map(String::from).into();
            db.insert_distribution(&dist(d, 1000), &clients, &[], &audit(d)).await?;
            let reports = [
                // Over the size (a piece fetched twice): capped at 1000.
                report(d, "c1", 1200, "running"),
                report(d, "c2", 300, "running"),
                report(d, "c3", 400, "failed"),
            ];
            for r in db.report_progress_batch(&reports).await? {
                r?;
            }
            let row = db.stats(d, 1000).await?;
            assert_eq!((row.delivered_open, row.delivered_capped, row.bytes_bt), (1300, 1700, 1900));
            assert_eq!(crate::stats::progress(&row, 1000), 0.65);
            // Size unknown: nothing is capped.
            assert_eq!(db.stats(d, 0).await?.delivered_open, 1500);
            // A done target counts whole, even with bytes of a killed life unreported (it
            // resumed them from disk): c2 done at 900.
            db.report_progress_batch(&[report(d, "c2", 900, "done")]).await?.remove(0)?;
            let row = db.stats(d, 1000).await?;
            assert_eq!((row.delivered_open, row.delivered_capped), (2000, 2400));
            assert_eq!(crate::stats::progress(&row, 1000), 1.0);
            Ok(())
        });
    }
}
