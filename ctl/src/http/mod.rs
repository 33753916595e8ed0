//! ctl's HTTP side (axum): the dashboard page, its JSON API and Prometheus `/metrics`,
//! served by `floodgate-ctl serve --http-listen`.
//!
//! Routes: `GET /` (page), `GET /assets/*` (embedded script and style), `GET /metrics`,
//! `GET /api/v1/{overview,distributions,distributions/ID,limits,relays,clients,audit}`,
//! `POST /api/v1/distributions`, `POST /api/v1/distributions/ID/cancel`, `PUT /api/v1/limits`.
//! Access rules are in [`auth`].

mod api;
mod assets;
pub(crate) mod auth;
mod error;

use crate::auth::Tokens;
use crate::state::State;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use std::net::SocketAddr;
use std::sync::Arc;

/// What the HTTP handlers share.
#[derive(Clone)]
pub(crate) struct HttpState {
    /// ctl's state.
    pub st: Arc<State>,
    /// The same tokens as gRPC.
    pub tokens: Arc<Tokens>,
    /// Reads need no token (the listener is on a loopback address).
    pub open_reads: bool,
}

/// Largest accepted request body (a create request may carry a base64 `.torrent`).
const MAX_BODY: usize = 24 << 20;

/// The router with every route.
pub(crate) fn router(hs: HttpState) -> Router {
    Router::new()
        .route("/", get(assets::index))
        .route("/assets/app.js", get(assets::script))
        .route("/assets/app.css", get(assets::style))
        .route("/metrics", get(api::metrics))
        .route("/api/v1/overview", get(api::overview))
        .route("/api/v1/distributions", get(api::distributions).post(api::create))
        .route("/api/v1/distributions/{id}", get(api::distribution))
        .route("/api/v1/distributions/{id}/cancel", post(api::cancel))
        .route("/api/v1/limits", get(api::limits).put(api::set_limits))
        .route("/api/v1/relays", get(api::relays))
        .route("/api/v1/clients", get(api::clients))
        .route("/api/v1/audit", get(api::audit))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(hs)
}

/// Serves until the process ends; a failing listener is logged.
pub(crate) async fn serve(l: tokio::net::TcpListener, hs: HttpState) {
    let app = router(hs).into_make_service_with_connect_info::<SocketAddr>();
    if let Err(e) = axum::serve(l, app).await {
        tracing::error!(error = %e, "HTTP listener failed");
    }
}
