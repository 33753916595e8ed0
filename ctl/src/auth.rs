//! Bearer tokens per role, checked on every call by a tonic interceptor.
//!
//! Header: `authorization: Bearer <token>`. The admin token is accepted by every service;
//! the relay and client tokens only by their own. Anything else → `UNAUTHENTICATED`, before
//! the handler runs (so nothing changes).

use std::sync::Arc;
use tonic::{Request, Status};

/// Which token a service expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// Admin API.
    Admin,
    /// Relay and lease APIs.
    Relay,
    /// Client API.
    Client,
}

/// The three tokens.
#[derive(Clone)]
pub(crate) struct Tokens {
    /// Admin token.
    pub admin: String,
    /// Relay token.
    pub relay: String,
    /// Client token.
    pub client: String,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tokens(<redacted>)")
    }
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// An interceptor admitting `role` (or admin).
pub(crate) fn interceptor(
    tokens: Arc<Tokens>,
    role: Role,
) -> impl FnMut(Request<()>) -> Result<Request<()>, Status> + Clone {
    move |req: Request<()>| {
        let given = req
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| Status::unauthenticated("missing bearer token (authorization: Bearer <token>)"))?;
        let want = match role {
            Role::Admin => &tokens.admin,
            Role::Relay => &tokens.relay,
            Role::Client => &tokens.client,
        };
        if ct_eq(given.as_bytes(), want.as_bytes()) || ct_eq(given.as_bytes(), tokens.admin.as_bytes()) {
            Ok(req)
        } else {
            Err(Status::unauthenticated("invalid token for this service"))
        }
    }
}
