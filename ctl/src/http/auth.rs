//! Who may do what over HTTP: the same tokens and roles as gRPC. Every change needs the
//! admin token (`authorization: Bearer <token>`); reads need it too unless the listener is on
//! a loopback address, where reads are open. The page and its assets are always served (they
//! hold no data; the page asks for the token when the API wants one).

use super::error::ApiError;
use super::HttpState;
use axum::http::{HeaderMap, StatusCode};

/// What a request wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Read state (dashboard, API GETs, `/metrics`).
    Read,
    /// Change state (create, cancel, limits).
    Change,
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Admits the request or says why not: 401 without a bearer token, 403 with a wrong one.
pub(crate) fn check(hs: &HttpState, headers: &HeaderMap, want: Access) -> Result<(), ApiError> {
    if want == Access::Read && hs.open_reads {
        return Ok(());
    }
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            ApiError::new(StatusCode::UNAUTHORIZED, "admin token required (authorization: Bearer <token>)")
        })?;
    if ct_eq(given.trim().as_bytes(), hs.tokens.admin.as_bytes()) {
        Ok(())
    } else {
        Err(ApiError::new(StatusCode::FORBIDDEN, "invalid admin token"))
    }
}
