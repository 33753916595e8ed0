//! Who made an admin change, turned into audit log entries (stored by `db::audit`).

use crate::db::AuditRow;
use crate::error::now_ms;
use floodgate_proto::v1 as pb;

/// The caller of an admin action.
#[derive(Debug, Clone)]
pub(crate) struct Actor {
    /// Role of the token it presented (changes need `admin`).
    pub role: &'static str,
    /// `grpc` or `http`.
    pub via: &'static str,
    /// Its address, if known.
    pub peer: String,
}

impl Actor {
    /// An admin calling over gRPC (the interceptor has already checked the token).
    pub(crate) fn grpc<T>(req: &tonic::Request<T>) -> Actor {
        Actor {
            role: "admin",
            via: "grpc",
            peer: req.remote_addr().map(|a| a.to_string()).unwrap_or_default(),
        }
    }

    /// An admin calling the HTTP API from `peer`.
    pub(crate) fn http(peer: std::net::SocketAddr) -> Actor {
        Actor { role: "admin", via: "http", peer: peer.to_string() }
    }

    /// An entry for `action` on `target`, with what changed as JSON, stamped now.
    pub(crate) fn entry(&self, action: &str, target: &str, detail: serde_json::Value) -> AuditRow {
        AuditRow {
            at_ms: now_ms(),
            role: self.role.to_string(),
            via: self.via.to_string(),
            peer: self.peer.clone(),
            action: action.to_string(),
            target: target.to_string(),
            detail: detail.to_string(),
        }
    }
}

/// The protobuf form of a stored entry.
pub(crate) fn to_pb(r: AuditRow) -> pb::AuditEntry {
    pb::AuditEntry {
        at_unix_ms: r.at_ms,
        role: r.role,
        via: r.via,
        peer: r.peer,
        action: r.action,
        target: r.target,
        detail: r.detail,
    }
}
