//! `RelayService`: registration, heartbeats, relay task stream.

use crate::convert::{self, check_id};
use crate::db::RelayTaskRow;
use crate::error::CtlError;
use crate::push::Watch;
use crate::state::State;
use data_encoding::BASE64;
use floodgate_proto::v1 as pb;
use floodgate_proto::v1::relay_service_server::RelayService;
use floodgate_proto::v1::{relay_task_event, RelayTaskEvent};
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// The relay service.
pub(crate) struct Relay(pub Arc<State>);

fn clamp_u64(v: u64) -> i64 {
    v.min(i64::MAX as u64) as i64
}

#[tonic::async_trait]
impl RelayService for Relay {
    async fn register_relay(
        &self,
        req: Request<pb::RegisterRelayRequest>,
    ) -> Result<Response<pb::RegisterRelayResponse>, Status> {
        let r = req.into_inner();
        check_id("relay", &r.id)?;
        if r.addresses.len() > 64 || r.zone.len() > 256 {
            return Err(Status::invalid_argument("too many addresses or zone too long"));
        }
        self.0.db.upsert_relay(&r.id, &r.addresses, &r.zone, clamp_u64(r.capacity_bps)).await?;
        self.0.reconcile.notify_one();
        tracing::info!(relay = %r.id, zone = %r.zone, "relay registered");
        Ok(Response::new(pb::RegisterRelayResponse { heartbeat_interval_ms: self.0.heartbeat_interval_ms() }))
    }

    async fn relay_heartbeat(
        &self,
        req: Request<pb::RelayHeartbeatRequest>,
    ) -> Result<Response<pb::RelayHeartbeatResponse>, Status> {
        let h = req.into_inner();
        check_id("relay", &h.id)?;
        if !h.load.is_finite() || !h.origin_latency_ms.is_finite() || h.origin_latency_ms < 0.0 {
            return Err(Status::invalid_argument("load and origin_latency_ms must be finite and >= 0"));
        }
        self.0
            .db
            .relay_heartbeat(
                &h.id,
                h.load.clamp(0.0, 1.0),
                clamp_u64(h.origin_rate_bps),
                h.origin_latency_ms,
                clamp_u64(h.origin_errors),
                clamp_u64(h.bytes_served),
            )
            .await?;
        for t in &h.tasks {
            self.0
                .db
                .relay_task_status(
                    &h.id,
                    &t.dist_id,
                    &RelayTaskRow {
                        instance: h.instance as i64,
                        origin_bytes: clamp_u64(t.origin_bytes),
                        served: clamp_u64(t.bytes_served),
                        size: clamp_u64(t.size),
                        origin_rate_bps: t.origin_rate_bps.map(clamp_u64),
                    },
                )
                .await?;
        }
        Ok(Response::new(pb::RelayHeartbeatResponse {}))
    }

    type WatchRelayTasksStream = Watch<RelayTaskEvent>;

    async fn watch_relay_tasks(
        &self,
        req: Request<pb::WatchRelayTasksRequest>,
    ) -> Result<Response<Self::WatchRelayTasksStream>, Status> {
        let id = req.into_inner().relay_id;
        check_id("relay", &id)?;
        if self.0.db.get_relay(&id).await?.is_none() {
            return Err(CtlError::NotFound(format!(
                "relay {id:?} is not registered; call RegisterRelay first"
            ))
            .into());
        }
        let (tx, watch) = self.0.hub.subscribe_relay(&id);
        for d in self.0.db.relay_open_distributions(&id).await? {
            let targets = self.0.db.stats(&d.id, d.size).await?.targets.max(0) as u64;
            let ev = RelayTaskEvent {
                event: Some(relay_task_event::Event::Assign(convert::relay_task(&d, targets)?)),
            };
            let _ = tx.send(Ok(ev));
        }
        Ok(Response::new(watch))
    }

    async fn publish_torrent(
        &self,
        req: Request<pb::PublishTorrentRequest>,
    ) -> Result<Response<pb::PublishTorrentResponse>, Status> {
        let r = req.into_inner();
        check_id("relay", &r.relay_id)?;
        if r.torrent.len() > super::admin::MAX_META_BYTES {
            return Err(CtlError::Invalid("torrent too large".into()).into());
        }
        let d = self.0.db.get_distribution(&r.dist_id).await?;
        if !self.0.db.dist_relays(&d.id).await?.contains(&r.relay_id) {
            return Err(Status::permission_denied(format!(
                "relay {:?} is not assigned to {}",
                r.relay_id, d.id
            )));
        }
        if d.state != "active" {
            return Err(
                CtlError::Precondition(format!("{} is {}: nothing is published", d.id, d.state)).into()
            );
        }
        let size = super::torrent_length(&r.torrent)?;
        if d.size > 0 && size != d.size as u64 {
            return Err(CtlError::Invalid(format!(
                "torrent describes {size} bytes, the distribution {}",
                d.size
            ))
            .into());
        }
        let stored = self.0.db.publish_torrent(&d.id, &BASE64.encode(&r.torrent), size as i64).await?;
        if stored {
            tracing::info!(dist = %d.id, relay = %r.relay_id, size, "URL-only distribution: torrent published");
            self.0.bus.publish(crate::events::Event::TorrentPublished { dist: d.id }).await;
        }
        Ok(Response::new(pb::PublishTorrentResponse { stored }))
    }

    async fn report_digest_mismatch(
        &self,
        req: Request<pb::ReportDigestMismatchRequest>,
    ) -> Result<Response<pb::ReportDigestMismatchResponse>, Status> {
        let r = req.into_inner();
        check_id("relay", &r.relay_id)?;
        let parse = |what: &str, s: &str| {
            floodgate_proto::Sha256Digest::parse(s).map_err(|e| CtlError::Invalid(format!("{what}: {e}")))
        };
        let (expected, actual) = (parse("expected", &r.expected)?, parse("actual", &r.actual)?);
        let d = self.0.db.get_distribution(&r.dist_id).await?;
        if !self.0.db.dist_relays(&d.id).await?.contains(&r.relay_id) {
            return Err(Status::permission_denied(format!(
                "relay {:?} is not assigned to {}",
                r.relay_id, d.id
            )));
        }
        if d.sha256 != expected.to_string() {
            return Err(CtlError::Invalid(format!(
                "{} expects SHA-256 {:?}, not {expected}",
                d.id, d.sha256
            ))
            .into());
        }
        if expected == actual {
            return Err(
                CtlError::Invalid("expected and actual are the same digest: no mismatch".into()).into()
            );
        }
        let reason = format!(
            "SHA-256 mismatch: the file from the origin has {actual}, expected {expected} (relay {})",
            r.relay_id
        );
        let failed = self.0.db.fail_distribution(&d.id, &reason).await?;
        if failed {
            tracing::error!(dist = %d.id, relay = %r.relay_id, %expected, %actual, "distribution failed: SHA-256 mismatch");
            self.0
                .bus
                .publish(crate::events::Event::DistFailed { dist: d.id, reason, relay: r.relay_id })
                .await;
        }
        Ok(Response::new(pb::ReportDigestMismatchResponse { failed }))
    }

    async fn get_distribution_meta(
        &self,
        req: Request<pb::DistributionMetaRequest>,
    ) -> Result<Response<pb::DistributionMeta>, Status> {
        Ok(Response::new(super::distribution_meta(&self.0, &req.into_inner().dist_id).await?))
    }
}
