//! `ClientService`: registration, task stream, progress reports.

use crate::convert::{self, check_id};
use crate::db::ProgressRow;
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
}
