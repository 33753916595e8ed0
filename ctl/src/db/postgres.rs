//! PostgreSQL specifics: advisory locks that serialize work across ctl replicas.
//! (Events use `LISTEN/NOTIFY`, see `crate::events`.)

use super::WriteTx;
use crate::error::CtlResult;

/// Advisory lock key for schema migrations.
pub(crate) const MIGRATION_LOCK: i64 = 4_242_001;
/// Advisory lock key for relay reassignment.
pub(crate) const RELAY_LOCK: i64 = 4_242_002;

/// Takes a transaction-scoped advisory lock (released at commit or rollback).
pub(crate) async fn xact_lock(tx: &mut WriteTx, key: i64) -> CtlResult<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(key).execute(&mut ***tx).await?;
    Ok(())
}
