//! `AdminService`: distributions, limits, listings.

use crate::audit::Actor;
use crate::convert::{self, check_id};
use crate::db::{DistRow, LimitsRow};
use crate::error::{now_ms, CtlError, CtlResult};
use crate::events::Event;
use crate::selection;
use crate::state::State;
use crate::stats;
use data_encoding::BASE64;
use floodgate_proto::v1 as pb;
use floodgate_proto::v1::admin_service_server::AdminService;
use std::collections::{BTreeSet, HashMap};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

/// Largest accepted `.torrent` or piece-hash list.
pub(crate) const MAX_META_BYTES: usize = 16 << 20;

/// The admin service.
pub(crate) struct Admin(pub Arc<State>);

/// A distribution with relays and statistics.
pub(crate) async fn load_distribution(st: &State, d: &DistRow) -> CtlResult<pb::Distribution> {
    let relays = st.db.dist_relays(&d.id).await?;
    let s = stats::build(&st.db.stats(&d.id, d.size).await?, d.size);
    convert::distribution(d, relays, s, &st.db.hash_conflicts(&d.id).await?)
}

/// Creates a distribution (validate, resolve targets, pick relays, persist with its audit
/// entry, wake the pushers). Shared by gRPC and the HTTP API.
pub(crate) async fn create(
    st: &State,
    req: pb::CreateDistributionRequest,
    actor: &Actor,
) -> CtlResult<pb::CreateDistributionResponse> {
    let host = convert::origin_host(&req.origin_url)?;
    let mirror_urls = convert::mirror_urls(&req.origin_url, &req.mirror_urls)?;
    if req.torrent.len() > MAX_META_BYTES || req.piece_hashes.len() > MAX_META_BYTES {
        return Err(CtlError::Invalid(format!("torrent / piece hashes over {MAX_META_BYTES} bytes")));
    }
    if !req.piece_hashes.len().is_multiple_of(20) {
        return Err(CtlError::Invalid("piece_hashes must be a multiple of 20 bytes (SHA-1)".into()));
    }
    if !req.piece_hashes.is_empty() && req.piece_length == 0 {
        return Err(CtlError::Invalid("piece_length is required with piece_hashes".into()));
    }
    let sha256 = floodgate_proto::Sha256Digest::parse_optional(req.sha256.trim())
        .map_err(|e| CtlError::Invalid(format!("sha256: {e}")))?;
    if sha256.is_some() && (!req.torrent.is_empty() || !req.piece_hashes.is_empty()) {
        return Err(CtlError::Invalid(
            "sha256 is for URL-only distributions: a torrent's piece hashes already fix the content".into(),
        ));
    }
    let mut size = req.size;
    if !req.torrent.is_empty() {
        let total = super::torrent_length(&req.torrent)?;
        if size != 0 && size != total {
            return Err(CtlError::Invalid(format!("size {size} does not match the torrent's {total} bytes")));
        }
        size = total;
    }
    let config = convert::normalize_config(req.config)?;
    let sel = req.targets.unwrap_or_default();
    if sel.client_ids.is_empty() && sel.labels.is_empty() && !sel.all {
        return Err(CtlError::Invalid("targets: give client ids, labels or all".into()));
    }
    for id in &sel.client_ids {
        check_id("client", id)?;
    }
    let mut targets: BTreeSet<String> = sel.client_ids.iter().cloned().collect();
    targets.extend(st.db.clients_with_labels(&sel.labels).await?);
    if sel.all {
        targets.extend(st.db.all_client_ids().await?);
    }
    let targets: Vec<String> = targets.into_iter().collect();
    let relay_count = selection::relay_count(targets.len());
    let relays = st.db.list_relays().await?;
    let counts: HashMap<String, i64> = st.db.relay_task_counts().await?.into_iter().collect();
    let zones: Vec<String> = {
        let all = st.db.list_clients().await?;
        let set: BTreeSet<&String> = targets.iter().collect();
        all.into_iter().filter(|c| set.contains(&c.id)).map(|c| c.zone).collect()
    };
    let chosen: Vec<String> =
        selection::rank(&relays, &zones, &counts, &[]).into_iter().take(relay_count as usize).collect();
    let d = DistRow {
        id: format!("d-{}", crate::ids::random_id()),
        origin_url: req.origin_url.clone(),
        origin_host: host,
        torrent: BASE64.encode(&req.torrent),
        piece_hashes: BASE64.encode(&req.piece_hashes),
        piece_length: req.piece_length.min(i64::MAX as u64) as i64,
        selector: convert::encode_msg(&sel),
        config: convert::encode_msg(&config),
        priority: config.priority as i64,
        state: "active".into(),
        revision: 1,
        size: size.min(i64::MAX as u64) as i64,
        relay_count,
        created_ms: now_ms(),
        finished_ms: 0,
        sha256: sha256.map(|d| d.to_string()).unwrap_or_default(),
        failure_reason: String::new(),
        mirror_urls,
    };
    let audit = actor.entry(
        "dist.create",
        &d.id,
        serde_json::json!({
            "origin_url": floodgate_engine::http::redact(&d.origin_url), "size": d.size, "has_torrent": !req.torrent.is_empty(),
            "targets": {"client_ids": sel.client_ids, "labels": sel.labels, "all": sel.all},
            "target_count": targets.len(), "relay_ids": chosen, "priority": config.priority,
            "sha256": d.sha256,
            "mirror_urls": d.mirror_urls.iter().map(|u| floodgate_engine::http::redact(u)).collect::<Vec<_>>(),
        }),
    );
    st.db.insert_distribution(&d, &targets, &chosen, &audit).await?;
    st.bus.publish(Event::DistCreated { dist: d.id.clone() }).await;
    st.reconcile.notify_one();
    tracing::info!(id = %d.id, targets = targets.len(), relays = chosen.len(), "distribution created");
    Ok(pb::CreateDistributionResponse { id: d.id, target_count: targets.len() as u64, relay_ids: chosen })
}

fn limits_row(l: &pb::OriginLimits) -> CtlResult<LimitsRow> {
    let origin = if l.origin.is_empty() { String::new() } else { convert::origin_key(&l.origin)? };
    let check = |name: &str, v: Option<i64>| -> CtlResult<i64> {
        match v {
            Some(x) if x < 0 => Err(CtlError::Invalid(format!("{name} must not be negative (got {x})"))),
            Some(x) => Ok(x),
            None => Ok(-1),
        }
    };
    if l.window_secs < 0 {
        return Err(CtlError::Invalid(format!("window_secs must not be negative (got {})", l.window_secs)));
    }
    Ok(LimitsRow {
        origin,
        max_conns: check("max_conns", l.max_conns)?,
        max_rate_bps: check("max_rate_bps", l.max_rate_bps)?,
        max_bytes: check("max_bytes", l.max_bytes)?,
        window_secs: if l.window_secs == 0 { 3600 } else { l.window_secs },
        window_start_ms: 0,
        window_granted: 0,
    })
}

fn opt(v: i64) -> Option<i64> {
    (v >= 0).then_some(v)
}

/// Cancels an active distribution (recorded in the audit log) and announces it.
pub(crate) async fn cancel(st: &State, id: &str, actor: &Actor) -> CtlResult<pb::Distribution> {
    let d = st.db.get_distribution(id).await?;
    let audit = actor.entry("dist.cancel", id, serde_json::json!({"previous_state": d.state}));
    if !st.db.cancel_distribution(id, &audit).await? {
        return Err(CtlError::Precondition(format!("distribution {id} is already {}", d.state)));
    }
    st.bus.publish(Event::DistCancelled { dist: id.to_string() }).await;
    let d = st.db.get_distribution(id).await?;
    load_distribution(st, &d).await
}

/// Sets one limits row (recorded in the audit log), tells the lease holders to renew, and
/// returns the row with its usage.
pub(crate) async fn set_limits(
    st: &State,
    l: &pb::OriginLimits,
    actor: &Actor,
) -> CtlResult<pb::OriginLimits> {
    let row = limits_row(l)?;
    let target = if row.origin.is_empty() { "global" } else { row.origin.as_str() };
    let audit = actor.entry(
        "limits.set",
        target,
        serde_json::json!({
            "max_conns": opt(row.max_conns), "max_rate_bps": opt(row.max_rate_bps),
            "max_bytes": opt(row.max_bytes), "window_secs": row.window_secs,
        }),
    );
    let holders = st.db.set_limits(&row, &audit).await?;
    tracing::info!(origin = %row.origin, conns = row.max_conns, rate = row.max_rate_bps, bytes = row.max_bytes, lease_holders = holders.len(), "limits set");
    if !holders.is_empty() {
        st.bus.publish(crate::events::Event::LimitsChanged { relays: holders }).await;
    }
    get_limits(st)
        .await?
        .into_iter()
        .find(|x| x.origin == row.origin)
        .ok_or_else(|| CtlError::Corrupt("limits row vanished".into()))
}

/// Every distribution with statistics, newest first.
pub(crate) async fn list_distributions(st: &State) -> CtlResult<Vec<pb::Distribution>> {
    let mut out = Vec::new();
    for d in st.db.list_distributions().await? {
        out.push(load_distribution(st, &d).await?);
    }
    Ok(out)
}

/// Global and per-origin limits with their live usage.
pub(crate) async fn get_limits(st: &State) -> CtlResult<Vec<pb::OriginLimits>> {
    Ok(st
        .db
        .limits_with_usage()
        .await?
        .into_iter()
        .map(|(l, u)| pb::OriginLimits {
            origin: l.origin,
            max_conns: opt(l.max_conns),
            max_rate_bps: opt(l.max_rate_bps),
            max_bytes: opt(l.max_bytes),
            window_secs: l.window_secs,
            used_conns: u.conns,
            used_rate_bps: u.rate,
            used_bytes_in_window: l.window_granted,
            live_leases: u.count,
        })
        .collect())
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::Distribution, Status>> + Send>>;

#[tonic::async_trait]
impl AdminService for Admin {
    async fn create_distribution(
        &self,
        req: Request<pb::CreateDistributionRequest>,
    ) -> Result<Response<pb::CreateDistributionResponse>, Status> {
        let actor = Actor::grpc(&req);
        Ok(Response::new(create(&self.0, req.into_inner(), &actor).await?))
    }

    async fn get_distribution(
        &self,
        req: Request<pb::GetDistributionRequest>,
    ) -> Result<Response<pb::Distribution>, Status> {
        let d = self.0.db.get_distribution(&req.into_inner().id).await?;
        Ok(Response::new(load_distribution(&self.0, &d).await?))
    }

    async fn list_distributions(
        &self,
        _req: Request<pb::ListDistributionsRequest>,
    ) -> Result<Response<pb::ListDistributionsResponse>, Status> {
        Ok(Response::new(pb::ListDistributionsResponse { distributions: list_distributions(&self.0).await? }))
    }

    async fn cancel_distribution(
        &self,
        req: Request<pb::CancelDistributionRequest>,
    ) -> Result<Response<pb::Distribution>, Status> {
        let actor = Actor::grpc(&req);
        Ok(Response::new(cancel(&self.0, &req.into_inner().id, &actor).await?))
    }

    type WatchDistributionStream = WatchStream;

    async fn watch_distribution(
        &self,
        req: Request<pb::GetDistributionRequest>,
    ) -> Result<Response<Self::WatchDistributionStream>, Status> {
        let id = req.into_inner().id;
        let first = self.0.db.get_distribution(&id).await?;
        let st = self.0.clone();
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            let mut last: Option<pb::Distribution> = None;
            let mut d = first;
            loop {
                let msg = match load_distribution(&st, &d).await {
                    Ok(m) => m,
                    Err(e) => {
                        let _ = tx.send(Err(e.into())).await;
                        return;
                    }
                };
                let finished = d.state != "active";
                if last.as_ref() != Some(&msg) {
                    if tx.send(Ok(msg.clone())).await.is_err() {
                        return;
                    }
                    last = Some(msg);
                }
                if finished {
                    return;
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                    _ = tx.closed() => return,
                }
                d = match st.db.get_distribution(&id).await {
                    Ok(d) => d,
                    Err(e) => {
                        let _ = tx.send(Err(e.into())).await;
                        return;
                    }
                };
            }
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }

    async fn set_origin_limits(
        &self,
        req: Request<pb::SetOriginLimitsRequest>,
    ) -> Result<Response<pb::OriginLimits>, Status> {
        let actor = Actor::grpc(&req);
        let l = req.into_inner().limits.ok_or_else(|| Status::invalid_argument("limits missing"))?;
        Ok(Response::new(set_limits(&self.0, &l, &actor).await?))
    }

    async fn get_origin_limits(
        &self,
        _req: Request<pb::GetOriginLimitsRequest>,
    ) -> Result<Response<pb::GetOriginLimitsResponse>, Status> {
        Ok(Response::new(pb::GetOriginLimitsResponse { limits: get_limits(&self.0).await? }))
    }

    async fn list_relays(
        &self,
        _req: Request<pb::ListRelaysRequest>,
    ) -> Result<Response<pb::ListRelaysResponse>, Status> {
        let relays = self.0.db.list_relays().await?.iter().map(convert::relay_info).collect();
        Ok(Response::new(pb::ListRelaysResponse { relays }))
    }

    async fn list_clients(
        &self,
        _req: Request<pb::ListClientsRequest>,
    ) -> Result<Response<pb::ListClientsResponse>, Status> {
        let clients = self.0.db.list_clients().await?.iter().map(convert::client_info).collect();
        Ok(Response::new(pb::ListClientsResponse { clients }))
    }

    async fn list_audit_log(
        &self,
        req: Request<pb::ListAuditLogRequest>,
    ) -> Result<Response<pb::ListAuditLogResponse>, Status> {
        let limit = match req.into_inner().limit {
            0 => 100,
            n => n.min(10_000),
        };
        let entries =
            self.0.db.list_audit(i64::from(limit)).await?.into_iter().map(crate::audit::to_pb).collect();
        Ok(Response::new(pb::ListAuditLogResponse { entries }))
    }
}
