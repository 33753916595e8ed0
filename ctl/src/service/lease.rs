//! `LeaseService`: origin quota leases (policy in `leases`, transactions in `db::leases`).

use crate::convert::{self, check_id};
use crate::db::{LeaseGrant, LeaseRow};
use crate::error::{CtlError, CtlResult};
use crate::leases;
use crate::state::State;
use floodgate_proto::v1 as pb;
use floodgate_proto::v1::lease_service_server::LeaseService;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// The lease service.
pub(crate) struct Lease(pub Arc<State>);

fn to_pb(l: LeaseRow) -> pb::OriginLease {
    pb::OriginLease {
        lease_id: l.id,
        origin: l.origin,
        conns: l.conns,
        rate_bps: l.rate_bps,
        bytes: l.bytes,
        granted_unix_ms: l.granted_ms,
        expires_unix_ms: l.expires_ms,
    }
}

async fn grant(st: &State, relay_id: &str, want: [i64; 3], ttl_ms: i64) -> CtlResult<LeaseGrant> {
    check_id("relay", relay_id)?;
    if want.iter().any(|w| *w < 0) || ttl_ms < 0 {
        return Err(CtlError::Invalid("wanted amounts and ttl must not be negative".into()));
    }
    let relay = st
        .db
        .get_relay(relay_id)
        .await?
        .ok_or_else(|| CtlError::NotFound(format!("relay {relay_id:?} is not registered")))?;
    let prio = st.db.relay_max_priority(relay_id).await?;
    let ttl = if ttl_ms == 0 { st.rt.lease_ttl_ms } else { ttl_ms.clamp(200, st.rt.lease_ttl_max_ms) };
    Ok(LeaseGrant { want, ttl_ms: ttl, weight: leases::weight(Some(&relay), prio) })
}

/// The `result` label of a lease request: granted, refused (no quota now) or error.
fn outcome<T>(r: &CtlResult<T>) -> &'static str {
    match r {
        Ok(_) => "granted",
        Err(CtlError::Exhausted(_)) => "refused",
        Err(_) => "error",
    }
}

#[tonic::async_trait]
impl LeaseService for Lease {
    async fn acquire_origin_lease(
        &self,
        req: Request<pb::AcquireLeaseRequest>,
    ) -> Result<Response<pb::OriginLease>, Status> {
        let r = req.into_inner();
        let origin = convert::origin_key(&r.origin)?;
        let mirror_hosts = convert::mirror_hosts(&origin, &r.mirrors)?;
        let res = match grant(&self.0, &r.relay_id, [r.want_conns, r.want_rate_bps, r.want_bytes], r.ttl_ms)
            .await
        {
            Ok(g) => self.0.db.acquire_lease(&r.relay_id, &origin, &mirror_hosts, &g).await,
            Err(e) => Err(e),
        };
        self.0.metrics.lease_request("acquire", outcome(&res));
        Ok(Response::new(to_pb(res?)))
    }

    async fn renew_origin_lease(
        &self,
        req: Request<pb::RenewLeaseRequest>,
    ) -> Result<Response<pb::OriginLease>, Status> {
        let r = req.into_inner();
        if r.used_bytes < 0 {
            return Err(Status::invalid_argument("used_bytes must not be negative"));
        }
        let res = match grant(&self.0, &r.relay_id, [r.want_conns, r.want_rate_bps, r.want_bytes], r.ttl_ms)
            .await
        {
            Ok(g) => self.0.db.renew_lease(&r.lease_id, &r.relay_id, &g).await,
            Err(e) => Err(e),
        };
        self.0.metrics.lease_request("renew", outcome(&res));
        Ok(Response::new(to_pb(res?)))
    }

    async fn release_origin_lease(
        &self,
        req: Request<pb::ReleaseLeaseRequest>,
    ) -> Result<Response<pb::ReleaseLeaseResponse>, Status> {
        let r = req.into_inner();
        check_id("relay", &r.relay_id)?;
        let at = self.0.db.release_lease(&r.lease_id, &r.relay_id, r.used_bytes).await?;
        Ok(Response::new(pb::ReleaseLeaseResponse { released_unix_ms: at }))
    }
}
