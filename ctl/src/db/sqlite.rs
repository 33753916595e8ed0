//! SQLite specifics: URL handling and per-connection pragmas (WAL, busy timeout).

use crate::error::CtlResult;
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Executor};

/// Default database when `--db` is not given: `floodgate.db` in the working directory.
pub(crate) const DEFAULT_URL: &str = "sqlite://floodgate.db";

/// Adds `mode=rwc` (create the file if missing) unless a mode is given.
pub(crate) fn normalize_url(url: &str) -> String {
    if url.contains("mode=") {
        url.to_string()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    }
}

/// Opens the pool with WAL journaling and a busy timeout on every connection.
pub(crate) async fn connect(opts: AnyPoolOptions, url: &str) -> CtlResult<AnyPool> {
    let pool = opts
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                conn.execute("PRAGMA journal_mode = WAL").await?;
                conn.execute("PRAGMA busy_timeout = 10000").await?;
                conn.execute("PRAGMA synchronous = NORMAL").await?;
                Ok(())
            })
        })
        .connect(url)
        .await?;
    Ok(pool)
}
