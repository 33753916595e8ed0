//! The audit log of admin actions: written inside the transaction of the change it records,
//! so an action and its entry are committed together or not at all.

use super::{Db, WriteTx};
use crate::error::CtlResult;
use sqlx::Row;

/// One recorded admin action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AuditRow {
    /// When, unix ms.
    pub at_ms: i64,
    /// Role of the token that made the change.
    pub role: String,
    /// `grpc` or `http`.
    pub via: String,
    /// Caller address as seen by ctl (empty if unknown).
    pub peer: String,
    /// `dist.create`, `dist.cancel`, `limits.set`.
    pub action: String,
    /// Distribution id or limits row (`global` or an origin host).
    pub target: String,
    /// What changed, JSON.
    pub detail: String,
}

/// Inserts an entry inside a write transaction.
pub(crate) async fn insert(tx: &mut WriteTx, e: &AuditRow) -> CtlResult<()> {
    sqlx::query(
        "INSERT INTO audit_log (id, at_ms, role, via, peer, action, target, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(format!("a-{}", crate::ids::random_id()))
    .bind(e.at_ms)
    .bind(&e.role)
    .bind(&e.via)
    .bind(&e.peer)
    .bind(&e.action)
    .bind(&e.target)
    .bind(&e.detail)
    .execute(&mut ***tx)
    .await?;
    Ok(())
}

impl Db {
    /// The newest `limit` entries, newest first.
    pub(crate) async fn list_audit(&self, limit: i64) -> CtlResult<Vec<AuditRow>> {
        let rows = sqlx::query(
            "SELECT at_ms, role, via, peer, action, target, detail FROM audit_log \
             ORDER BY at_ms DESC, id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditRow {
                    at_ms: r.try_get("at_ms")?,
                    role: r.try_get("role")?,
                    via: r.try_get("via")?,
                    peer: r.try_get("peer")?,
                    action: r.try_get("action")?,
                    target: r.try_get("target")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }
}
