//! Persistence: one `Db` over SQLite (default) or PostgreSQL, through sqlx's `Any` driver.
//! All SQL of Floodgate lives under this module.

mod audit;
mod conflicts;
mod dists;
mod leases;
mod migrations;
mod nodes;
pub(crate) mod postgres;
pub(crate) mod sqlite;

pub(crate) use audit::AuditRow;
pub(crate) use conflicts::{ConflictReport, ConflictSummary};
pub(crate) use dists::{DistRow, ProgressRow, RelayTaskRow, Reported, StatsRow};
pub(crate) use leases::{LeaseGrant, LeaseRow, LimitsRow};
pub(crate) use nodes::{ClientRow, RelayRow};

use crate::error::CtlResult;
use sqlx::any::AnyPoolOptions;
use sqlx::{Any, AnyPool, Transaction};
use std::sync::Arc;
use tokio::sync::Mutex;

/// Which database backs a `Db`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    /// A local SQLite file (one ctl).
    Sqlite,
    /// PostgreSQL (one or several ctl replicas).
    Postgres,
}

/// The database handle shared by all services.
#[derive(Clone)]
pub(crate) struct Db {
    pool: AnyPool,
    backend: Backend,
    url: String,
    /// Serializes write transactions within this process on SQLite (one writer anyway).
    write_lock: Arc<Mutex<()>>,
}

impl Db {
    /// Connects to `url` (`sqlite://PATH` or `postgres://…`) and applies migrations.
    pub(crate) async fn open(url: &str) -> CtlResult<Db> {
        sqlx::any::install_default_drivers();
        let (backend, url) = if url.starts_with("sqlite:") {
            (Backend::Sqlite, sqlite::normalize_url(url))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_string())
        } else {
            return Err(crate::error::CtlError::Invalid(format!(
                "unsupported --db URL {url:?}: use sqlite://PATH or postgres://…"
            )));
        };
        let opts = AnyPoolOptions::new().max_connections(if backend == Backend::Sqlite { 8 } else { 16 });
        let pool = match backend {
            Backend::Sqlite => sqlite::connect(opts, &url).await?,
            Backend::Postgres => opts.connect(&url).await?,
        };
        let db = Db { pool, backend, url, write_lock: Arc::new(Mutex::new(())) };
        migrations::migrate(&db).await?;
        Ok(db)
    }

    /// The pool, for reads.
    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// True on PostgreSQL.
    pub(crate) fn is_postgres(&self) -> bool {
        self.backend == Backend::Postgres
    }

    /// The connection URL (PostgreSQL listener connects with it).
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// Begins a write transaction: `BEGIN IMMEDIATE` on SQLite (takes the write lock at once),
    /// a plain transaction on PostgreSQL (callers lock rows with `FOR UPDATE`).
    pub(crate) async fn begin_write(&self) -> CtlResult<WriteTx> {
        match self.backend {
            Backend::Sqlite => {
                let guard = self.write_lock.clone().lock_owned().await;
                let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
                Ok(WriteTx { tx, _guard: Some(guard) })
            }
            Backend::Postgres => Ok(WriteTx { tx: self.pool.begin().await?, _guard: None }),
        }
    }

    /// `" FOR UPDATE"` on PostgreSQL, empty on SQLite (whose transaction already locks).
    pub(crate) fn for_update(&self) -> &'static str {
        if self.is_postgres() {
            " FOR UPDATE"
        } else {
            ""
        }
    }
}

/// A write transaction (plus, on SQLite, this process's writer lock).
pub(crate) struct WriteTx {
    tx: Transaction<'static, Any>,
    _guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl WriteTx {
    /// Commits.
    pub(crate) async fn commit(self) -> CtlResult<()> {
        self.tx.commit().await?;
        Ok(())
    }
}

impl std::ops::Deref for WriteTx {
    type Target = Transaction<'static, Any>;
    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

/// `$1, $2, …` placeholders for `n` values starting after `start`.
pub(crate) fn placeholders(start: usize, n: usize) -> String {
    (start + 1..=start + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}
