//! JSON API handlers behind the dashboard (shapes from `crate::json`, the same as the
//! CLI's `--json`), and `/metrics`.

use super::auth::{check, Access};
use super::error::ApiError;
use super::HttpState;
use crate::audit::Actor;
use crate::convert;
use crate::error::now_ms;
use crate::json;
use crate::service::admin;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use data_encoding::BASE64;
use floodgate_proto::v1 as pb;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;

type ApiResult = Result<Json<Value>, ApiError>;

/// Distributions shown on the overview (newest first).
const OVERVIEW_DISTS: usize = 50;
/// Audit entries shown on the overview.
const OVERVIEW_AUDIT: i64 = 20;

/// A distribution's JSON with its chart series and elapsed time.
fn dist_with_series(hs: &HttpState, d: &pb::Distribution, now: i64) -> Value {
    let mut v = json::dist(d);
    let end = if d.finished_unix_ms > 0 { d.finished_unix_ms } else { now };
    v["elapsed_secs"] = json!((end - d.created_unix_ms).max(0) as f64 / 1000.0);
    v["series"] = json!(hs.st.history.rates(&d.id));
    v
}

async fn relays_json(hs: &HttpState) -> Result<Vec<Value>, ApiError> {
    let leases: HashMap<String, _> =
        hs.st.db.live_leases_by_relay().await?.into_iter().map(|l| (l.relay_id.clone(), l)).collect();
    Ok(hs
        .st
        .db
        .list_relays()
        .await?
        .iter()
        .map(|r| {
            let mut v = json::relay(&convert::relay_info(r));
            let l = leases.get(&r.id).cloned().unwrap_or_default();
            v["live_leases"] = json!(l.count);
            v["leased_conns"] = json!(l.conns);
            v["leased_rate_bps"] = json!(l.rate_bps);
            v
        })
        .collect())
}

async fn clients_json(hs: &HttpState) -> Result<Vec<Value>, ApiError> {
    let online: HashSet<String> = hs.st.hub.online_clients().into_iter().collect();
    Ok(hs
        .st
        .db
        .list_clients()
        .await?
        .iter()
        .map(|c| {
            let mut v = json::client(&convert::client_info(c));
            v["online"] = json!(online.contains(&c.id));
            v
        })
        .collect())
}

async fn limits_json(hs: &HttpState) -> Result<Vec<Value>, ApiError> {
    Ok(admin::get_limits(&hs.st).await?.iter().map(json::limits).collect())
}

async fn audit_json(hs: &HttpState, limit: i64) -> Result<Vec<Value>, ApiError> {
    Ok(hs.st.db.list_audit(limit).await?.into_iter().map(|e| json::audit(&crate::audit::to_pb(e))).collect())
}

/// `GET /api/v1/overview`: everything the dashboard shows, in one poll.
pub(super) async fn overview(State(hs): State<HttpState>, headers: HeaderMap) -> ApiResult {
    check(&hs, &headers, Access::Read)?;
    let now = now_ms();
    let dists: Vec<Value> = admin::list_distributions(&hs.st)
        .await?
        .iter()
        .take(OVERVIEW_DISTS)
        .map(|d| dist_with_series(&hs, d, now))
        .collect();
    let clients = clients_json(&hs).await?;
    let online = clients.iter().filter(|c| c["online"] == true).count();
    Ok(Json(json!({
        "now_unix_ms": now,
        "open_reads": hs.open_reads,
        "distributions": dists,
        "relays": relays_json(&hs).await?,
        "clients": clients,
        "clients_online": online,
        "limits": limits_json(&hs).await?,
        "audit": audit_json(&hs, OVERVIEW_AUDIT).await?,
        "streams": {"client": hs.st.hub.client_streams(), "relay": hs.st.hub.relay_streams()},
    })))
}

/// `GET /api/v1/distributions`.
pub(super) async fn distributions(State(hs): State<HttpState>, headers: HeaderMap) -> ApiResult {
    check(&hs, &headers, Access::Read)?;
    let now = now_ms();
    let v: Vec<Value> =
        admin::list_distributions(&hs.st).await?.iter().map(|d| dist_with_series(&hs, d, now)).collect();
    Ok(Json(Value::Array(v)))
}

/// `GET /api/v1/distributions/{id}`.
pub(super) async fn distribution(
    State(hs): State<HttpState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    check(&hs, &headers, Access::Read)?;
    let d = hs.st.db.get_distribution(&id).await?;
    let d = admin::load_distribution(&hs.st, &d).await?;
    Ok(Json(dist_with_series(&hs, &d, now_ms())))
}

/// Body of `POST /api/v1/distributions`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateBody {
    /// Origin URL.
    origin_url: String,
    /// Selector text: `id1,label:web,all`.
    targets: String,
    /// File size in bytes if known.
    #[serde(default)]
    size: u64,
    /// Priority 0..=9 (default 5).
    #[serde(default)]
    priority: Option<u32>,
    /// A `.torrent`, base64.
    #[serde(default)]
    torrent_base64: Option<String>,
    /// SHA-256 of the whole file, 64 hex digits (URL-only distributions).
    #[serde(default)]
    sha256: Option<String>,
    /// Mirrors: other URLs of the same file.
    #[serde(default)]
    mirror_urls: Vec<String>,
}

/// `POST /api/v1/distributions` (admin).
pub(super) async fn create(
    State(hs): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Json<CreateBody>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    check(&hs, &headers, Access::Change)?;
    let Json(b) = body?;
    let torrent = match b.torrent_base64.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        Some(t) => BASE64
            .decode(t.as_bytes())
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("torrent_base64: {e}")))?,
        None => Vec::new(),
    };
    let req = pb::CreateDistributionRequest {
        origin_url: b.origin_url.trim().to_string(),
        torrent,
        sha256: b.sha256.unwrap_or_default(),
        mirror_urls: b.mirror_urls,
        size: b.size,
        targets: Some(convert::parse_selector(&b.targets)?),
        config: Some(pb::DistConfig { priority: b.priority.unwrap_or(5), ..Default::default() }),
        ..Default::default()
    };
    let r = admin::create(&hs.st, req, &Actor::http(peer)).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": r.id, "target_count": r.target_count, "relay_ids": r.relay_ids})),
    ))
}

/// `POST /api/v1/distributions/{id}/cancel` (admin).
pub(super) async fn cancel(
    State(hs): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    check(&hs, &headers, Access::Change)?;
    let d = admin::cancel(&hs.st, &id, &Actor::http(peer)).await?;
    Ok(Json(json::dist(&d)))
}

/// `GET /api/v1/limits`.
pub(super) async fn limits(State(hs): State<HttpState>, headers: HeaderMap) -> ApiResult {
    check(&hs, &headers, Access::Read)?;
    Ok(Json(Value::Array(limits_json(&hs).await?)))
}

/// Body of `PUT /api/v1/limits`: omitted (or null) limits become unlimited.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LimitsBody {
    /// Origin host ("" or absent: the global row).
    #[serde(default)]
    origin: String,
    /// Max concurrent origin connections.
    max_conns: Option<i64>,
    /// Max origin bytes/s.
    max_rate_bps: Option<i64>,
    /// Max origin bytes per window.
    max_bytes: Option<i64>,
    /// Window length for `max_bytes` (default 3600).
    #[serde(default)]
    window_secs: i64,
}

/// `PUT /api/v1/limits` (admin).
pub(super) async fn set_limits(
    State(hs): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Json<LimitsBody>, JsonRejection>,
) -> ApiResult {
    check(&hs, &headers, Access::Change)?;
    let Json(b) = body?;
    let l = pb::OriginLimits {
        origin: b.origin.trim().to_string(),
        max_conns: b.max_conns,
        max_rate_bps: b.max_rate_bps,
        max_bytes: b.max_bytes,
        window_secs: b.window_secs,
        ..Default::default()
    };
    let r = admin::set_limits(&hs.st, &l, &Actor::http(peer)).await?;
    Ok(Json(json::limits(&r)))
}

/// `GET /api/v1/relays`.
pub(super) async fn relays(State(hs): State<HttpState>, headers: HeaderMap) -> ApiResult {
    check(&hs, &headers, Access::Read)?;
    Ok(Json(Value::Array(relays_json(&hs).await?)))
}

/// `GET /api/v1/clients`.
pub(super) async fn clients(State(hs): State<HttpState>, headers: HeaderMap) -> ApiResult {
    check(&hs, &headers, Access::Read)?;
    Ok(Json(Value::Array(clients_json(&hs).await?)))
}

/// Query of `GET /api/v1/audit`.
#[derive(Debug, Deserialize)]
pub(super) struct AuditQuery {
    /// Most entries (default 100, at most 10000).
    limit: Option<i64>,
}

/// `GET /api/v1/audit`.
pub(super) async fn audit(
    State(hs): State<HttpState>,
    headers: HeaderMap,
    Query(q): Query<AuditQuery>,
) -> ApiResult {
    check(&hs, &headers, Access::Read)?;
    Ok(Json(Value::Array(audit_json(&hs, q.limit.unwrap_or(100).clamp(1, 10_000)).await?)))
}

/// `GET /metrics`: OpenMetrics text.
pub(super) async fn metrics(
    State(hs): State<HttpState>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    check(&hs, &headers, Access::Read)?;
    let body = crate::metrics::render(&hs.st).await?;
    Ok(([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], body))
}
