//! `ClientService`: registration, task stream, progress reports.

use crate::convert::{self, check_id};
use crate::db::{ConflictReport, ProgressRow, RelayRow};
use crate::error::CtlError;
use crate::events::Event;
use crate::push::Watch;
use crate::state::State;
use floodgate_proto::v1 as pb;
use floodgate_proto::v1::client_service_server::ClientService;
use floodgate_proto::v1::{task_event, TaskEvent};
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// The client service.
pub(crate) struct Client(pub Arc<State>);

fn clamp_u64(v: u64) -> i64 {
    v.min(i64::MAX as u64) as i64
}

/// Assigns active label/all distributions matching a newly registered client.
async fn join_label_distributions(st: &State, id: &str, labels: &[String]) -> Result<(), CtlError> {
    for d in st.db.active_distributions().await? {
        let sel: pb::TargetSelector = convert::decode_msg(&d.selector)?;
        if sel.all || sel.labels.iter().any(|l| labels.contains(l)) {
            let added = st.db.add_assignments(&d.id, &[id.to_string()]).await?;
            if !added.is_empty() {
                st.bus.publish(Event::ClientsAdded { dist: d.id.clone(), clients: added }).await;
            }
        }
    }
    Ok(())
}

#[tonic::async_trait]
impl ClientService for Client {
    async fn register_client(
        &self,
        req: Request<pb::RegisterClientRequest>,
    ) -> Result<Response<pb::RegisterClientResponse>, Status> {
        let r = req.into_inner();
        check_id("client", &r.id)?;
        if r.labels.len() > 256
            || r.labels.iter().any(|l| l.is_empty() || l.len() > 256)
            || r.zone.len() > 256
        {
            return Err(Status::invalid_argument("labels must be 1..=256 characters, at most 256 of them"));
        }
        self.0.db.upsert_client(&r.id, &r.labels, &r.zone).await?;
        join_label_distributions(&self.0, &r.id, &r.labels).await?;
        Ok(Response::new(pb::RegisterClientResponse {}))
    }

    type WatchTasksStream = Watch<TaskEvent>;

    async fn watch_tasks(
        &self,
        req: Request<pb::WatchTasksRequest>,
    ) -> Result<Response<Self::WatchTasksStream>, Status> {
        let id = req.into_inner().client_id;
        check_id("client", &id)?;
        let (tx, watch) = self.0.hub.subscribe_client(&id);
        for d in self.0.db.client_open_distributions(&id).await? {
            let relays = self.0.db.relays_by_ids(&self.0.db.dist_relays(&d.id).await?).await?;
            let ev = TaskEvent { event: Some(task_event::Event::Assign(convert::task(&d, &relays)?)) };
            let _ = tx.send(Ok(ev));
        }
        for (dist_id, reason) in self.0.db.client_failed_distributions(&id).await? {
            let ev = TaskEvent { event: Some(task_event::Event::Failed(pb::DistFailed { dist_id, reason })) };
            let _ = tx.send(Ok(ev));
        }
        Ok(Response::new(watch))
    }

    async fn report_progress(
        &self,
        req: Request<pb::ProgressReport>,
    ) -> Result<Response<pb::ReportProgressResponse>, Status> {
        let p = req.into_inner();
        check_id("client", &p.client_id)?;
        check_id("distribution", &p.dist_id)?;
        let state = match pb::TaskState::try_from(p.state) {
            Ok(pb::TaskState::Running) => "running",
            Ok(pb::TaskState::Done) => "done",
            Ok(pb::TaskState::Failed) => "failed",
            _ => return Err(Status::invalid_argument("state must be RUNNING, DONE or FAILED")),
        };
        if p.reason.len() > 4096 {
            return Err(Status::invalid_argument("reason is over 4096 bytes"));
        }
        let row = ProgressRow {
            bytes: [clamp_u64(p.bytes_bt), clamp_u64(p.bytes_http_relay), clamp_u64(p.bytes_http_origin)],
            speed_bps: clamp_u64(p.speed_bps),
            upload_bps: clamp_u64(p.upload_capacity_bps),
            download_bps: clamp_u64(p.download_capacity_bps),
            state,
            dist_id: p.dist_id,
            client_id: p.client_id,
            reason: p.reason,
            // Stored as the same 64 bits.
            instance: p.instance as i64,
        };
        let now = self.0.progress.report(row).await?;
        Ok(Response::new(pb::ReportProgressResponse {
            cancelled: now.state == "cancelled",
            failed_reason: now.failed_reason,
        }))
    }

    async fn get_distribution_meta(
        &self,
        req: Request<pb::DistributionMetaRequest>,
    ) -> Result<Response<pb::DistributionMeta>, Status> {
        Ok(Response::new(super::distribution_meta(&self.0, &req.into_inner().dist_id).await?))
    }

    async fn report_hash_conflict(
        &self,
        req: Request<pb::ReportHashConflictRequest>,
    ) -> Result<Response<pb::ReportHashConflictResponse>, Status> {
        let r = req.into_inner();
        check_id("client", &r.client_id)?;
        check_id("distribution", &r.dist_id)?;
        let first = sha1_hex("hash_seen_first", &r.hash_seen_first)?;
        let theirs = sha1_hex("hash_from_relay", &r.hash_from_relay)?;
        if first == theirs {
            return Err(Status::invalid_argument("the two hashes are the same: no conflict"));
        }
        let d = self.0.db.get_distribution(&r.dist_id).await?;
        if !self.0.db.is_assigned(&d.id, &r.client_id).await? {
            return Err(Status::permission_denied(format!(
                "client {:?} is not a target of {}",
                r.client_id, d.id
            )));
        }
        let relays = self.0.db.relays_by_ids(&self.0.db.dist_relays_ever(&d.id).await?).await?;
        let Some(relay) = resolve_relay(&r.relay, &relays) else {
            return Err(Status::invalid_argument(format!(
                "{:?} is neither the id nor an address of a relay of {}",
                r.relay, d.id
            )));
        };
        let report = ConflictReport {
            dist_id: d.id,
            client_id: r.client_id,
            relay,
            piece: i64::from(r.piece),
            hash_seen_first: first,
            hash_from_relay: theirs,
        };
        let recorded = self.0.db.record_hash_conflict(&report).await?;
        if recorded {
            self.0.metrics.hash_conflict();
            tracing::warn!(dist = %report.dist_id, client = %report.client_id, relay = %report.relay, piece = report.piece, first = %report.hash_seen_first, relay_hash = %report.hash_from_relay, "hash conflict reported: the relay's piece hash disagrees with another relay's");
        }
        Ok(Response::new(pb::ReportHashConflictResponse { recorded }))
    }
}

/// A SHA-1 in hex (40 digits), lowercased; an invalid argument otherwise.
fn sha1_hex(what: &str, s: &str) -> Result<String, CtlError> {
    if s.len() != 40 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(CtlError::Invalid(format!("{what} must be 40 hex digits, not {s:?}")));
    }
    Ok(s.to_ascii_lowercase())
}

/// The id of the relay among `relays` that `reported` names: its id, or one of its addresses
/// (`HOST:PORT`, with or without a scheme such as `http://`).
fn resolve_relay(reported: &str, relays: &[RelayRow]) -> Option<String> {
    if let Some(r) = relays.iter().find(|r| r.id == reported) {
        return Some(r.id.clone());
    }
    let bare = |a: &str| -> String {
        let a = a.split_once("://").map_or(a, |(_, rest)| rest);
        a.trim_end_matches('/').to_string()
    };
    let want = bare(reported);
    if want.is_empty() {
        return None;
    }
    relays.iter().find(|r| r.addresses.iter().any(|a| bare(a) == want)).map(|r| r.id.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relay(id: &str, addrs: &[&str]) -> RelayRow {
        RelayRow {
            id: id.into(),
            addresses: addrs.iter().map(|a| a.to_string()).collect(),
            zone: String::new(),
            capacity_bps: 0,
            load: 0.0,
            origin_rate_bps: 0,
            origin_latency_ms: 0.0,
            origin_errors: 0,
            bytes_served: 0,
            last_seen_ms: 0,
            alive: true,
        }
    }

    #[test]
    fn a_reported_relay_is_found_by_id_or_address() {
        let relays = [
            relay("relay-a", &["http://127.0.0.2:8080", "bt://127.0.0.2:6881"]),
            relay("relay-b", &["http://127.0.0.3:8080/"]),
        ];
        assert_eq!(resolve_relay("relay-b", &relays).as_deref(), Some("relay-b"));
        assert_eq!(resolve_relay("127.0.0.3:8080", &relays).as_deref(), Some("relay-b"));
        assert_eq!(resolve_relay("http://127.0.0.2:8080", &relays).as_deref(), Some("relay-a"));
        assert_eq!(resolve_relay("127.0.0.9:8080", &relays), None);
        assert_eq!(resolve_relay("", &relays), None);
    }

    #[test]
    fn hashes_must_be_sha1_hex() {
        assert_eq!(sha1_hex("h", &"AB".repeat(20)).ok(), Some("ab".repeat(20)));
        assert!(sha1_hex("h", "ab").is_err());
        assert!(sha1_hex("h", &"zz".repeat(20)).is_err());
    }
}
