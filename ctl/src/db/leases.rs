//! Origin limits and lease transactions. Every grant, renewal and release locks the global
//! limits row (`FOR UPDATE` on PostgreSQL, `BEGIN IMMEDIATE` on SQLite) and reads the clock
//! after the lock, so grants from any number of replicas are serialized and the sum of live
//! grants stays within every limit.
//!
//! A lease of a pull with mirrors counts in full against the limits row of its origin host
//! and of every mirror host (`mirror_hosts`): the relay may put any share of its connections,
//! rate and bytes on any of them, so each host's limit holds whatever the split.

use super::{Db, WriteTx};
use crate::error::{now_ms, CtlError, CtlResult};
use crate::leases::{compute_grant, shrink, Dim, GrantInput};
use sqlx::any::AnyRow;
use sqlx::Row;

/// One limits row (`origin` "" = global); -1 = unlimited.
#[derive(Debug, Clone)]
pub(crate) struct LimitsRow {
    /// "" or an origin host.
    pub origin: String,
    /// Max concurrent origin connections.
    pub max_conns: i64,
    /// Max origin bytes/s.
    pub max_rate_bps: i64,
    /// Max bytes per window.
    pub max_bytes: i64,
    /// Window length, seconds.
    pub window_secs: i64,
    /// Start of the current window.
    pub window_start_ms: i64,
    /// Bytes granted in the current window.
    pub window_granted: i64,
}

/// A lease as stored.
#[derive(Debug, Clone)]
pub(crate) struct LeaseRow {
    /// Lease id.
    pub id: String,
    /// Holder.
    pub relay_id: String,
    /// Origin host.
    pub origin: String,
    /// Connections.
    pub conns: i64,
    /// Bytes/s (-1 unlimited).
    pub rate_bps: i64,
    /// Byte allowance (-1 unlimited).
    pub bytes: i64,
    /// Weight used for the grant.
    pub weight: f64,
    /// Last grant or renewal.
    pub granted_ms: i64,
    /// Expiry.
    pub expires_ms: i64,
    /// Window in which `win_bytes` were granted.
    pub win_start_ms: i64,
    /// Bytes granted in that window.
    pub win_bytes: i64,
    /// Hosts of the pull's mirrors other than `origin`, space-separated ('' = none).
    pub mirror_hosts: String,
}

/// What a relay asks for.
#[derive(Debug, Clone)]
pub(crate) struct LeaseGrant {
    /// Wanted conns, rate, bytes (0 = fair).
    pub want: [i64; 3],
    /// TTL in ms.
    pub ttl_ms: i64,
    /// The lease's weight.
    pub weight: f64,
}

fn limits_from(r: &AnyRow) -> CtlResult<LimitsRow> {
    Ok(LimitsRow {
        origin: r.try_get("origin")?,
        max_conns: r.try_get("max_conns")?,
        max_rate_bps: r.try_get("max_rate_bps")?,
        max_bytes: r.try_get("max_bytes")?,
        window_secs: r.try_get("window_secs")?,
        window_start_ms: r.try_get("window_start_ms")?,
        window_granted: r.try_get("window_granted")?,
    })
}

fn lease_from(r: &AnyRow) -> CtlResult<LeaseRow> {
    Ok(LeaseRow {
        id: r.try_get("id")?,
        relay_id: r.try_get("relay_id")?,
        origin: r.try_get("origin")?,
        conns: r.try_get("conns")?,
        rate_bps: r.try_get("rate_bps")?,
        bytes: r.try_get("bytes")?,
        weight: r.try_get("weight")?,
        granted_ms: r.try_get("granted_ms")?,
        expires_ms: r.try_get("expires_ms")?,
        win_start_ms: r.try_get("win_start_ms")?,
        win_bytes: r.try_get("win_bytes")?,
        mirror_hosts: r.try_get("mirror_hosts")?,
    })
}

const LIMIT_COLS: &str =
    "origin, max_conns, max_rate_bps, max_bytes, window_secs, window_start_ms, window_granted";
const LEASE_COLS: &str =
    "id, relay_id, origin, conns, rate_bps, bytes, weight, granted_ms, expires_ms, win_start_ms, win_bytes, \
     mirror_hosts";

/// The `LIKE` pattern matching `host` in a space-separated `mirror_hosts`.
fn host_pattern(host: &str) -> String {
    format!("% {host} %")
}

/// Leases that count against the limits row of a host (`$N` binds the host, `$N+1` its
/// [`host_pattern`]).
fn host_filter(n: usize) -> String {
    format!(" AND (origin = ${n} OR (' ' || mirror_hosts || ' ') LIKE ${})", n + 1)
}

/// Live usage of one limits row, excluding one lease.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Usage {
    /// Sum of connections.
    pub conns: i64,
    /// Sum of rates.
    pub rate: i64,
    /// Sum of weights.
    pub weight: f64,
    /// Number of live leases.
    pub count: i64,
}

impl Db {
    /// Locks the global and (if present) the hosts' limits rows (the origin's and its
    /// mirrors'), rolls expired byte windows, and returns the rows (global first) with `now`
    /// read after the lock.
    async fn lock_limits(&self, tx: &mut WriteTx, hosts: &[String]) -> CtlResult<(Vec<LimitsRow>, i64)> {
        let sql = format!(
            "SELECT {LIMIT_COLS} FROM origin_limits WHERE origin = '' OR origin IN ({}) ORDER BY origin{}",
            super::placeholders(0, hosts.len().max(1)),
            self.for_update()
        );
        let mut q = sqlx::query(&sql);
        for h in hosts {
            q = q.bind(h);
        }
        if hosts.is_empty() {
            q = q.bind("");
        }
        let rows = q.fetch_all(&mut ***tx).await?;
        let now = now_ms();
        let mut out = Vec::new();
        for r in &rows {
            let mut l = limits_from(r)?;
            if now >= l.window_start_ms + l.window_secs.max(1) * 1000 {
                l.window_start_ms = now;
                l.window_granted = 0;
                sqlx::query(
                    "UPDATE origin_limits SET window_start_ms = $2, window_granted = 0 WHERE origin = $1",
                )
                .bind(&l.origin)
                .bind(now)
                .execute(&mut ***tx)
                .await?;
            }
            out.push(l);
        }
        Ok((out, now))
    }

    async fn usage(
        &self,
        tx: &mut WriteTx,
        origin: Option<&str>,
        now: i64,
        exclude: &str,
    ) -> CtlResult<Usage> {
        let filter = if origin.is_some() { host_filter(3) } else { String::new() };
        let r = sqlx::query(&format!(
            "SELECT CAST(COALESCE(SUM(conns), 0) AS BIGINT) AS c, \
             CAST(COALESCE(SUM(CASE WHEN rate_bps > 0 THEN rate_bps ELSE 0 END), 0) AS BIGINT) AS r, \
             CAST(COALESCE(SUM(weight), 0) AS DOUBLE PRECISION) AS w, COUNT(*) AS n \
             FROM leases WHERE expires_ms > $1 AND id <> $2{filter}"
        ))
        .bind(now)
        .bind(exclude)
        .bind(origin.unwrap_or(""))
        .bind(host_pattern(origin.unwrap_or("")))
        .fetch_one(&mut ***tx)
        .await?;
        Ok(Usage {
            conns: r.try_get("c")?,
            rate: r.try_get("r")?,
            weight: r.try_get("w")?,
            count: r.try_get("n")?,
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn grant_input(
        &self,
        tx: &mut WriteTx,
        limits: &[LimitsRow],
        relay_id: &str,
        now: i64,
        exclude: &str,
        g: &LeaseGrant,
    ) -> CtlResult<GrantInput> {
        let mut rows = Vec::new();
        for l in limits {
            let u = self
                .usage(tx, if l.origin.is_empty() { None } else { Some(&l.origin) }, now, exclude)
                .await?;
            rows.push([
                Dim { limit: l.max_conns, used: u.conns, others_weight: u.weight },
                Dim { limit: l.max_rate_bps, used: u.rate, others_weight: u.weight },
                Dim { limit: l.max_bytes, used: l.window_granted, others_weight: u.weight },
            ]);
        }
        let others: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM leases WHERE relay_id = $1 AND expires_ms > $2 AND id <> $3",
        )
        .bind(relay_id)
        .bind(now)
        .bind(exclude)
        .fetch_one(&mut ***tx)
        .await?;
        Ok(GrantInput { want: g.want, rows, weight: g.weight, holds_other: others > 0 })
    }

    async fn add_window_bytes(&self, tx: &mut WriteTx, limits: &[LimitsRow], bytes: i64) -> CtlResult<()> {
        if bytes <= 0 {
            return Ok(());
        }
        for l in limits {
            sqlx::query("UPDATE origin_limits SET window_granted = window_granted + $2 WHERE origin = $1")
                .bind(&l.origin)
                .bind(bytes)
                .execute(&mut ***tx)
                .await?;
        }
        Ok(())
    }

    /// Grants a new lease for a pull from `origin` (a host) and mirrors on `mirror_hosts`
    /// (other hosts). `Exhausted` when a limited dimension has nothing left.
    pub(crate) async fn acquire_lease(
        &self,
        relay_id: &str,
        origin: &str,
        mirror_hosts: &[String],
        g: &LeaseGrant,
    ) -> CtlResult<LeaseRow> {
        let mut tx = self.begin_write().await?;
        let hosts: Vec<String> =
            std::iter::once(origin.to_string()).chain(mirror_hosts.iter().cloned()).collect();
        let (limits, now) = self.lock_limits(&mut tx, &hosts).await?;
        let input = self.grant_input(&mut tx, &limits, relay_id, now, "", g).await?;
        let [conns, rate, bytes] = compute_grant(&input);
        if conns == 0 || rate == 0 || bytes == 0 {
            return Err(CtlError::Exhausted("no origin quota available now; retry later".into()));
        }
        let lease = LeaseRow {
            id: format!("l-{}", crate::ids::random_id()),
            relay_id: relay_id.to_string(),
            origin: origin.to_string(),
            conns,
            rate_bps: rate,
            bytes,
            weight: g.weight,
            granted_ms: now,
            expires_ms: now + g.ttl_ms,
            win_start_ms: limits.first().map_or(now, |l| l.window_start_ms),
            win_bytes: bytes.max(0),
            mirror_hosts: mirror_hosts.join(" "),
        };
        sqlx::query(&format!("INSERT INTO leases ({LEASE_COLS}) VALUES ({})", super::placeholders(0, 12)))
            .bind(&lease.id)
            .bind(&lease.relay_id)
            .bind(&lease.origin)
            .bind(lease.conns)
            .bind(lease.rate_bps)
            .bind(lease.bytes)
            .bind(lease.weight)
            .bind(lease.granted_ms)
            .bind(lease.expires_ms)
            .bind(lease.win_start_ms)
            .bind(lease.win_bytes)
            .bind(&lease.mirror_hosts)
            .execute(&mut **tx)
            .await?;
        self.add_window_bytes(&mut tx, &limits, bytes).await?;
        tx.commit().await?;
        Ok(lease)
    }

    async fn live_lease(&self, tx: &mut WriteTx, id: &str, relay_id: &str, now: i64) -> CtlResult<LeaseRow> {
        let row = sqlx::query(&format!("SELECT {LEASE_COLS} FROM leases WHERE id = $1"))
            .bind(id)
            .fetch_optional(&mut ***tx)
            .await?;
        let lease = row.as_ref().map(lease_from).transpose()?;
        match lease {
            Some(l) if l.relay_id == relay_id && l.expires_ms > now => Ok(l),
            _ => Err(CtlError::NotFound(format!("lease {id:?} of relay {relay_id:?} (expired or unknown)"))),
        }
    }

    /// The hosts a lease counts against: its origin host, then its mirrors' hosts.
    async fn lease_hosts(&self, id: &str) -> CtlResult<Vec<String>> {
        let row = sqlx::query("SELECT origin, mirror_hosts FROM leases WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| CtlError::NotFound(format!("lease {id:?}")))?;
        let (origin, mirrors): (String, String) = (row.try_get("origin")?, row.try_get("mirror_hosts")?);
        Ok(std::iter::once(origin).chain(mirrors.split_whitespace().map(String::from)).collect())
    }

    /// Renews a live lease: new TTL, grant recomputed against the other live leases, and
    /// `want[2]` extra bytes on top of the allowance. NOT_FOUND once expired.
    pub(crate) async fn renew_lease(&self, id: &str, relay_id: &str, g: &LeaseGrant) -> CtlResult<LeaseRow> {
        let hosts = self.lease_hosts(id).await?;
        let mut tx = self.begin_write().await?;
        let (limits, now) = self.lock_limits(&mut tx, &hosts).await?;
        let mut lease = self.live_lease(&mut tx, id, relay_id, now).await?;
        let extra_bytes = g.want[2];
        let mut want = g.want;
        want[2] = extra_bytes.max(0);
        let input =
            self.grant_input(&mut tx, &limits, relay_id, now, id, &LeaseGrant { want, ..g.clone() }).await?;
        let [conns, rate, bytes] = compute_grant(&input);
        let window = limits.first().map_or(now, |l| l.window_start_ms);
        if lease.win_start_ms != window {
            lease.win_start_ms = window;
            lease.win_bytes = 0;
        }
        if lease.bytes >= 0 && extra_bytes > 0 && bytes > 0 {
            lease.bytes += bytes;
            lease.win_bytes += bytes;
            self.add_window_bytes(&mut tx, &limits, bytes).await?;
        }
        lease.conns = conns;
        lease.rate_bps = rate;
        lease.weight = g.weight;
        lease.granted_ms = now;
        lease.expires_ms = now + g.ttl_ms;
        sqlx::query(
            "UPDATE leases SET conns = $2, rate_bps = $3, bytes = $4, weight = $5, granted_ms = $6, expires_ms = $7, \
             win_start_ms = $8, win_bytes = $9 WHERE id = $1",
        )
        .bind(id)
        .bind(lease.conns)
        .bind(lease.rate_bps)
        .bind(lease.bytes)
        .bind(lease.weight)
        .bind(lease.granted_ms)
        .bind(lease.expires_ms)
        .bind(lease.win_start_ms)
        .bind(lease.win_bytes)
        .execute(&mut **tx)
        .await?;
        tx.commit().await?;
        Ok(lease)
    }

    /// Releases a lease now; unused bytes granted in the current window go back. Returns the
    /// release time.
    pub(crate) async fn release_lease(&self, id: &str, relay_id: &str, used_bytes: i64) -> CtlResult<i64> {
        let hosts = self.lease_hosts(id).await?;
        let mut tx = self.begin_write().await?;
        let (limits, now) = self.lock_limits(&mut tx, &hosts).await?;
        let lease = self.live_lease(&mut tx, id, relay_id, now).await?;
        let window = limits.first().map_or(now, |l| l.window_start_ms);
        if lease.bytes > 0 && lease.win_start_ms == window {
            let unused = (lease.bytes - used_bytes.max(0)).clamp(0, lease.win_bytes);
            for l in &limits {
                sqlx::query(
                    "UPDATE origin_limits SET window_granted = CASE WHEN window_granted > $2 \
                     THEN window_granted - $2 ELSE 0 END WHERE origin = $1",
                )
                .bind(&l.origin)
                .bind(unused)
                .execute(&mut **tx)
                .await?;
            }
        }
        sqlx::query("DELETE FROM leases WHERE id = $1").bind(id).execute(&mut **tx).await?;
        tx.commit().await?;
        Ok(now)
    }

    /// Deletes leases expired more than a minute ago (they no longer count anyway).
    pub(crate) async fn purge_expired_leases(&self) -> CtlResult<u64> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query("DELETE FROM leases WHERE expires_ms < $1")
            .bind(now_ms() - 60_000)
            .execute(&mut **tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n)
    }

    /// Sets one limits row (creating a per-origin row if needed) and, in the same transaction,
    /// shrinks the live leases the row covers so their sum fits the new limits at once (a
    /// lowered limit never waits for leases to expire). Returns the relays holding live leases
    /// under the row: they should renew now to learn their new grants. `audit` is recorded in
    /// the same transaction.
    pub(crate) async fn set_limits(&self, l: &LimitsRow, audit: &super::AuditRow) -> CtlResult<Vec<String>> {
        let mut tx = self.begin_write().await?;
        super::audit::insert(&mut tx, audit).await?;
        sqlx::query(
            "INSERT INTO origin_limits (origin, max_conns, max_rate_bps, max_bytes, window_secs, window_start_ms, \
             window_granted) VALUES ($1, $2, $3, $4, $5, 0, 0) ON CONFLICT (origin) DO UPDATE SET \
             max_conns = $2, max_rate_bps = $3, max_bytes = $4, window_secs = $5",
        )
        .bind(&l.origin)
        .bind(l.max_conns)
        .bind(l.max_rate_bps)
        .bind(l.max_bytes)
        .bind(l.window_secs)
        .execute(&mut **tx)
        .await?;
        // The upsert holds the row lock (PostgreSQL) or the write lock (SQLite): grants that
        // read this row wait for the commit, so they see the new limits and the shrunk leases.
        let now = now_ms();
        let filter = if l.origin.is_empty() { String::new() } else { host_filter(2) };
        let rows = sqlx::query(&format!("SELECT {LEASE_COLS} FROM leases WHERE expires_ms > $1{filter}"))
            .bind(now)
            .bind(&l.origin)
            .bind(host_pattern(&l.origin))
            .fetch_all(&mut **tx)
            .await?;
        let live = rows.iter().map(lease_from).collect::<CtlResult<Vec<_>>>()?;
        let conns = shrink(l.max_conns, &live.iter().map(|x| (x.conns, x.weight)).collect::<Vec<_>>());
        let rates = shrink(l.max_rate_bps, &live.iter().map(|x| (x.rate_bps, x.weight)).collect::<Vec<_>>());
        let mut relays = Vec::new();
        for ((lease, c), r) in live.iter().zip(conns).zip(rates) {
            if !relays.contains(&lease.relay_id) {
                relays.push(lease.relay_id.clone());
            }
            if c == lease.conns && r == lease.rate_bps {
                continue;
            }
            sqlx::query("UPDATE leases SET conns = $2, rate_bps = $3 WHERE id = $1")
                .bind(&lease.id)
                .bind(c)
                .bind(r)
                .execute(&mut **tx)
                .await?;
        }
        tx.commit().await?;
        Ok(relays)
    }

    /// All limits rows with their live usage (global first).
    pub(crate) async fn limits_with_usage(&self) -> CtlResult<Vec<(LimitsRow, Usage)>> {
        let mut tx = self.begin_write().await?;
        let rows = sqlx::query(&format!("SELECT {LIMIT_COLS} FROM origin_limits ORDER BY origin"))
            .fetch_all(&mut **tx)
            .await?;
        let now = now_ms();
        let mut out = Vec::new();
        for r in &rows {
            let mut l = limits_from(r)?;
            if now >= l.window_start_ms + l.window_secs.max(1) * 1000 {
                l.window_granted = 0;
            }
            let u = self
                .usage(&mut tx, if l.origin.is_empty() { None } else { Some(&l.origin) }, now, "")
                .await?;
            out.push((l, u));
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Highest priority among the relay's active distributions (0 if none).
    pub(crate) async fn relay_max_priority(&self, relay_id: &str) -> CtlResult<i64> {
        Ok(sqlx::query_scalar(
            "SELECT CAST(COALESCE(MAX(d.priority), 0) AS BIGINT) FROM relay_assignments ra \
             JOIN distributions d ON d.id = ra.dist_id WHERE ra.relay_id = $1 AND ra.state = 'active'",
        )
        .bind(relay_id)
        .fetch_one(self.pool())
        .await?)
    }
}

/// Live leases held by one relay, summed.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct RelayLeases {
    /// Relay id.
    pub relay_id: String,
    /// Number of live leases.
    pub count: i64,
    /// Sum of granted connections.
    pub conns: i64,
    /// Sum of granted rates (bytes/s) over the leases with a limited rate.
    pub rate_bps: i64,
}

impl Db {
    /// Live (unexpired) leases per relay, ordered by relay id.
    pub(crate) async fn live_leases_by_relay(&self) -> CtlResult<Vec<RelayLeases>> {
        let rows = sqlx::query(
            "SELECT relay_id, COUNT(*) AS n, CAST(COALESCE(SUM(conns), 0) AS BIGINT) AS conns, \
             CAST(COALESCE(SUM(CASE WHEN rate_bps > 0 THEN rate_bps ELSE 0 END), 0) AS BIGINT) AS rate \
             FROM leases WHERE expires_ms > $1 GROUP BY relay_id ORDER BY relay_id",
        )
        .bind(now_ms())
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RelayLeases {
                    relay_id: r.try_get("relay_id")?,
                    count: r.try_get("n")?,
                    conns: r.try_get("conns")?,
                    rate_bps: r.try_get("rate")?,
                })
            })
            .collect()
    }
}
