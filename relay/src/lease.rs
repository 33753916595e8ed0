//! Ctl mode: origin leases. Every pull holds one lease from ctl (`AcquireOriginLease`), and its
//! [`Quota`] is exactly what the lease grants: connections, bytes/s and a byte allowance.
//! The keeper renews at a third of the TTL (at once when ctl says limits were lowered, or when
//! the allowance ran out), releases the lease when the pull ends, and pauses the pull when it
//! cannot hold a lease: a relay never uses the origin beyond a live grant.

use std::sync::Arc;
use std::time::{Duration, Instant};

use floodgate_proto::v1 as pb;
use floodgate_proto::Bearer;
use pb::lease_service_client::LeaseServiceClient;
use tokio::sync::Notify;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::origin::Quota;
use crate::task::{Task, TaskState};

/// The lease gRPC client.
pub(crate) type LeaseClient = LeaseServiceClient<InterceptedService<Channel, Bearer>>;

/// Time limit of one lease call.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait before asking again after a refusal or an error.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What the relay asks ctl for.
#[derive(Clone, Debug)]
pub(crate) struct Want {
    /// Connections (the pull's worker count).
    pub conns: i64,
    /// Bytes/s (0 = as much as fair).
    pub rate_bps: i64,
}

/// Signals from the rest of the relay to one keeper.
#[derive(Debug, Default)]
pub(crate) struct Signals {
    /// Renew now (ctl lowered limits).
    pub renew: Notify,
    /// The pull ended: release the lease and stop.
    pub done: Notify,
}

/// A lease held right now.
struct Held {
    id: String,
    /// Renew at this time.
    renew_at: Instant,
    /// Past this time the lease is gone on ctl's side.
    expires_at: Instant,
    /// `quota.used()` when the lease was granted: bytes before it are not its bytes.
    base_used: u64,
}

/// Keeps `quota` backed by a live lease for `task`'s pull until `signals.done`.
pub(crate) struct Keeper {
    /// Lease calls go here.
    pub client: LeaseClient,
    /// This relay's id.
    pub relay_id: String,
    /// The origin URL (ctl keys limits by its host).
    pub origin: String,
    /// The pull's mirrors: the lease counts against their hosts' limits too.
    pub mirrors: Vec<String>,
    /// The pull's budget.
    pub quota: Arc<Quota>,
    /// What to ask for.
    pub want: Want,
    /// The pulled task (for how many bytes are still needed).
    pub task: Arc<Task>,
    /// Renew and stop signals.
    pub signals: Arc<Signals>,
}

impl Keeper {
    /// Runs until the pull ends, then releases the lease.
    pub(crate) async fn run(mut self) {
        let mut held: Option<Held> = None;
        let mut backoff = Duration::from_millis(100);
        // An empty allowance asks for a renewal at most once a second.
        let mut starved_renewal = Instant::now();
        loop {
            if self.task.state() != TaskState::Pulling {
                break;
            }
            let result = match &held {
                None => self.acquire().await,
                Some(h) => self.renew(h).await,
            };
            let sleep_until = match result {
                Ok(next) => {
                    backoff = Duration::from_millis(100);
                    let renew_at = next.renew_at;
                    held = Some(next);
                    renew_at
                }
                Err(Failure::Gone) if held.is_some() => {
                    // Expired or taken back on ctl's side: stop, and ask for a new one now.
                    self.quota.pause();
                    held = None;
                    Instant::now()
                }
                Err(Failure::Gone) => {
                    // ctl does not know this relay (yet): the registration loop will fix it.
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    Instant::now() + backoff
                }
                Err(Failure::Retry(why)) => {
                    tracing::debug!(task = %self.task.id, why, "no origin lease yet; waiting");
                    if held.as_ref().is_none_or(|h| Instant::now() >= h.expires_at) {
                        self.quota.pause();
                        held = None;
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    let retry = Instant::now() + backoff;
                    held.as_ref().map_or(retry, |h| retry.min(h.expires_at))
                }
            };
            tokio::select! {
                () = tokio::time::sleep_until(sleep_until.into()) => {}
                () = self.signals.renew.notified() => {}
                () = self.quota.starved(), if held.is_some() && starved_renewal.elapsed() > Duration::from_secs(1) => {
                    starved_renewal = Instant::now();
                }
                () = self.signals.done.notified() => break,
            }
            if let Some(h) = &held {
                if Instant::now() >= h.expires_at {
                    // Renewal came too late: ctl already counts the lease as free.
                    self.quota.pause();
                    held = None;
                }
            }
        }
        self.quota.pause();
        if let Some(h) = held {
            self.release(h).await;
        }
    }

    /// Bytes the pull still needs, with a little room for retried requests.
    fn needed(&self) -> u64 {
        let left = self.task.layout.total_length().saturating_sub(self.task.verified_bytes());
        left + left / 50 + (1 << 20)
    }

    async fn acquire(&mut self) -> Result<Held, Failure> {
        let req = pb::AcquireLeaseRequest {
            relay_id: self.relay_id.clone(),
            origin: self.origin.clone(),
            want_conns: self.want.conns,
            want_rate_bps: self.want.rate_bps,
            want_bytes: i64::try_from(self.needed()).unwrap_or(i64::MAX),
            ttl_ms: 0,
            mirrors: self.mirrors.clone(),
        };
        let sent = Instant::now();
        let lease = call(self.client.acquire_origin_lease(req)).await?;
        let base_used = self.quota.used();
        tracing::info!(task = %self.task.id, lease = %lease.lease_id, conns = lease.conns, rate = lease.rate_bps, bytes = lease.bytes, "origin lease granted");
        Ok(self.apply(&lease, sent, lease.lease_id.clone(), base_used))
    }

    async fn renew(&mut self, h: &Held) -> Result<Held, Failure> {
        let used = self.quota.used().saturating_sub(h.base_used);
        let more = match self.quota.left() {
            Some(left) => self.needed().saturating_sub(left),
            None => 0,
        };
        let req = pb::RenewLeaseRequest {
            lease_id: h.id.clone(),
            relay_id: self.relay_id.clone(),
            want_conns: self.want.conns,
            want_rate_bps: self.want.rate_bps,
            want_bytes: i64::try_from(more).unwrap_or(i64::MAX),
            ttl_ms: 0,
            used_bytes: i64::try_from(used).unwrap_or(i64::MAX),
        };
        let sent = Instant::now();
        let lease = call(self.client.renew_origin_lease(req)).await?;
        tracing::debug!(task = %self.task.id, lease = %lease.lease_id, conns = lease.conns, rate = lease.rate_bps, bytes = lease.bytes, "origin lease renewed");
        Ok(self.apply(&lease, sent, h.id.clone(), h.base_used))
    }

    /// Sets the quota from a granted lease; times count from when the call was sent, so the
    /// relay's idea of the expiry is never later than ctl's.
    fn apply(&self, lease: &pb::OriginLease, sent: Instant, id: String, base_used: u64) -> Held {
        let conns = usize::try_from(lease.conns.clamp(0, self.want.conns.max(1))).unwrap_or(0);
        let rate = u64::try_from(lease.rate_bps).ok();
        let bytes = u64::try_from(lease.bytes).ok().map(|b| base_used.saturating_add(b));
        self.quota.grant(conns, rate, bytes);
        let ttl =
            Duration::from_millis(u64::try_from(lease.expires_unix_ms - lease.granted_unix_ms).unwrap_or(0));
        Held { id, renew_at: sent + ttl / 3, expires_at: sent + ttl, base_used }
    }

    async fn release(&mut self, h: Held) {
        let used = self.quota.used().saturating_sub(h.base_used);
        let req = pb::ReleaseLeaseRequest {
            lease_id: h.id.clone(),
            relay_id: self.relay_id.clone(),
            used_bytes: i64::try_from(used).unwrap_or(i64::MAX),
        };
        match call(self.client.release_origin_lease(req)).await {
            Ok(_) => tracing::info!(task = %self.task.id, lease = %h.id, used, "origin lease released"),
            Err(e) => {
                tracing::warn!(task = %self.task.id, lease = %h.id, error = ?e, "cannot release the origin lease; it will expire")
            }
        }
    }
}

/// Why a lease call did not give a lease.
#[derive(Debug)]
enum Failure {
    /// The lease is unknown or expired on ctl: acquire a new one.
    Gone,
    /// Refused for now (no quota) or ctl unreachable: wait and ask again.
    Retry(String),
}

async fn call<T>(
    fut: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T, Failure> {
    match tokio::time::timeout(CALL_TIMEOUT, fut).await {
        Ok(Ok(r)) => Ok(r.into_inner()),
        Ok(Err(s)) if s.code() == tonic::Code::NotFound => Err(Failure::Gone),
        Ok(Err(s)) => Err(Failure::Retry(format!("{}: {}", s.code(), s.message()))),
        Err(_) => Err(Failure::Retry("ctl did not answer in time".into())),
    }
}
