//! Hash conflicts agents report: a relay of a URL-only distribution published a piece hash
//! that disagrees with the one the agent took first from another relay. Stored one row per
//! (distribution, client, relay) with the first piece that client saw disagree; ctl only
//! records and shows them (it cannot tell which relay is right).

use super::Db;
use crate::error::{now_ms, CtlResult};
use sqlx::Row;

/// One agent's report against one relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConflictReport {
    /// Distribution.
    pub dist_id: String,
    /// The reporting client.
    pub client_id: String,
    /// The relay (its id, or the address the agent knew it by).
    pub relay: String,
    /// The piece whose hashes disagree.
    pub piece: i64,
    /// The hash the agent took first (another relay's), lowercase hex.
    pub hash_seen_first: String,
    /// The relay's hash, lowercase hex.
    pub hash_from_relay: String,
}

/// What the reports against one relay of a distribution add up to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConflictSummary {
    /// The relay.
    pub relay: String,
    /// The lowest piece reported.
    pub first_piece: i64,
    /// Clients that reported it.
    pub clients: i64,
    /// The hashes of the earliest report of `first_piece`: taken first, and the relay's.
    pub hashes: (String, String),
}

impl Db {
    /// Stores a report; `Ok(false)` if this client had reported this relay for this
    /// distribution already (the first report is kept).
    pub(crate) async fn record_hash_conflict(&self, r: &ConflictReport) -> CtlResult<bool> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query(
            "INSERT INTO hash_conflicts (dist_id, client_id, relay, piece, hash_seen_first, hash_from_relay, reported_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (dist_id, client_id, relay) DO NOTHING",
        )
        .bind(&r.dist_id)
        .bind(&r.client_id)
        .bind(&r.relay)
        .bind(r.piece)
        .bind(&r.hash_seen_first)
        .bind(&r.hash_from_relay)
        .bind(now_ms())
        .execute(&mut **tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(n > 0)
    }

    /// The reports against each relay of `dist_id`, by relay.
    pub(crate) async fn hash_conflicts(&self, dist_id: &str) -> CtlResult<Vec<ConflictSummary>> {
        let rows = sqlx::query(
            "SELECT relay, CAST(MIN(piece) AS BIGINT) AS first_piece, CAST(COUNT(*) AS BIGINT) AS clients \
             FROM hash_conflicts WHERE dist_id = $1 GROUP BY relay ORDER BY relay",
        )
        .bind(dist_id)
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let relay: String = r.try_get("relay")?;
            let first_piece: i64 = r.try_get("first_piece")?;
            let h = sqlx::query(
                "SELECT hash_seen_first, hash_from_relay FROM hash_conflicts \
                 WHERE dist_id = $1 AND relay = $2 AND piece = $3 ORDER BY reported_ms, client_id LIMIT 1",
            )
            .bind(dist_id)
            .bind(&relay)
            .bind(first_piece)
            .fetch_one(self.pool())
            .await?;
            out.push(ConflictSummary {
                relay,
                first_piece,
                clients: r.try_get("clients")?,
                hashes: (h.try_get("hash_seen_first")?, h.try_get("hash_from_relay")?),
            });
        }
        Ok(out)
    }

    /// Every relay ever assigned to `dist_id` (active or replaced), ordered by id.
    pub(crate) async fn dist_relays_ever(&self, dist_id: &str) -> CtlResult<Vec<String>> {
        Ok(sqlx::query_scalar("SELECT relay_id FROM relay_assignments WHERE dist_id = $1 ORDER BY relay_id")
            .bind(dist_id)
            .fetch_all(self.pool())
            .await?)
    }

    /// Whether `client_id` is a target of `dist_id`.
    pub(crate) async fn is_assigned(&self, dist_id: &str, client_id: &str) -> CtlResult<bool> {
        let n: i64 = sqlx::query_scalar(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM client_assignments WHERE dist_id = $1 AND client_id = $2",
        )
        .bind(dist_id)
        .bind(client_id)
        .fetch_one(self.pool())
        .await?;
        Ok(n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(client: &str, relay: &str, piece: i64) -> ConflictReport {
        ConflictReport {
            dist_id: "d1".into(),
            client_id: client.into(),
            relay: relay.into(),
            piece,
            hash_seen_first: format!("{piece:040x}"),
            hash_from_relay: "f".repeat(40),
        }
    }

    /// On a fresh SQLite file: reports are idempotent per (distribution, client, relay), and
    /// the summary gives each relay's lowest piece, its hashes and how many clients reported.
    #[test]
    fn reports_are_kept_once_per_client_and_summed_per_relay() {
        let dir = std::env::temp_dir().join(format!("fg-ctl-conflicts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let url = format!("sqlite://{}", dir.join("t.db").display());
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async {
            let db = Db::open(&url).await.expect("open");
            assert!(db.record_hash_conflict(&report("c1", "relay-2", 7)).await.expect("insert"));
            assert!(
                !db.record_hash_conflict(&report("c1", "relay-2", 3)).await.expect("again"),
                "a second report of the same client against the same relay is not counted"
            );
            assert!(db.record_hash_conflict(&report("c2", "relay-2", 5)).await.expect("insert"));
            assert!(db.record_hash_conflict(&report("c2", "relay-3", 9)).await.expect("insert"));
            let other = ConflictReport { dist_id: "d2".into(), ..report("c3", "relay-2", 1) };
            assert!(db.record_hash_conflict(&other).await.expect("insert"));
            let s = db.hash_conflicts("d1").await.expect("summary");
            assert_eq!(
                s,
                vec![
                    ConflictSummary {
                        relay: "relay-2".into(),
                        first_piece: 5,
                        clients: 2,
                        hashes: (format!("{:040x}", 5), "f".repeat(40)),
                    },
                    ConflictSummary {
                        relay: "relay-3".into(),
                        first_piece: 9,
                        clients: 1,
                        hashes: (format!("{:040x}", 9), "f".repeat(40)),
                    },
                ]
            );
            assert!(db.hash_conflicts("nope").await.expect("summary").is_empty());
        });
        let _ = std::fs::remove_dir_all(&dir);
    }
}
