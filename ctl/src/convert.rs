//! Conversions between stored rows and protobuf messages, and config defaults.

use crate::db::{ClientRow, DistRow, RelayRow};
use crate::error::{CtlError, CtlResult};
use data_encoding::BASE64;
use floodgate_proto::v1 as pb;
use prost::Message;

/// Encodes a message as base64 text for a TEXT column.
pub(crate) fn encode_msg<M: Message>(m: &M) -> String {
    BASE64.encode(&m.encode_to_vec())
}

/// Decodes a message stored by [`encode_msg`].
pub(crate) fn decode_msg<M: Message + Default>(s: &str) -> CtlResult<M> {
    let bytes = BASE64.decode(s.as_bytes()).map_err(|e| CtlError::Corrupt(e.to_string()))?;
    M::decode(bytes.as_slice()).map_err(|e| CtlError::Corrupt(e.to_string()))
}

/// Base64 bytes column.
pub(crate) fn decode_bytes(s: &str) -> CtlResult<Vec<u8>> {
    BASE64.decode(s.as_bytes()).map_err(|e| CtlError::Corrupt(e.to_string()))
}

/// Parses a target selector, `id1,label:x,all` (comma-separated client ids, `label:NAME`
/// terms, `all`).
pub(crate) fn parse_selector(s: &str) -> CtlResult<pb::TargetSelector> {
    let mut sel = pb::TargetSelector::default();
    for t in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        if t == "all" || t == "*" {
            sel.all = true;
        } else if let Some(l) = t.strip_prefix("label:") {
            sel.labels.push(l.to_string());
        } else {
            sel.client_ids.push(t.strip_prefix("id:").unwrap_or(t).to_string());
        }
    }
    if sel.client_ids.is_empty() && sel.labels.is_empty() && !sel.all {
        return Err(CtlError::Invalid("targets are empty: give client ids, label:NAME or all".into()));
    }
    Ok(sel)
}

/// Fills zero fields with the design defaults and validates ranges.
pub(crate) fn normalize_config(c: Option<pb::DistConfig>) -> CtlResult<pb::DistConfig> {
    let mut c = c.unwrap_or_default();
    let or = |v: u32, d: u32| if v == 0 { d } else { v };
    if c.bt_slow_threshold_bps == 0 {
        c.bt_slow_threshold_bps = 500_000;
    }
    c.check_interval_ms = or(c.check_interval_ms, 2_000);
    c.window_ms = or(c.window_ms, 45_000);
    c.cooldown_ms = or(c.cooldown_ms, 120_000);
    c.http_share_percent = or(c.http_share_percent, 30);
    c.timeout_ms = or(c.timeout_ms, 30_000);
    c.retries = or(c.retries, 5);
    if c.priority > 9 {
        return Err(CtlError::Invalid(format!("priority {} is out of range 0..=9", c.priority)));
    }
    if c.http_share_percent > 100 {
        return Err(CtlError::Invalid(format!("http_share_percent {} is over 100", c.http_share_percent)));
    }
    if c.deadline_unix_ms < 0 {
        return Err(CtlError::Invalid("deadline_unix_ms is negative".into()));
    }
    Ok(c)
}

/// The client task for a distribution served by `relays`.
pub(crate) fn task(d: &DistRow, relays: &[RelayRow]) -> CtlResult<pb::Task> {
    Ok(pb::Task {
        dist_id: d.id.clone(),
        origin_url: d.origin_url.clone(),
        revision: d.revision as u64,
        relays: relays.iter().map(endpoint).collect(),
        config: Some(decode_msg(&d.config)?),
        has_torrent: !d.torrent.is_empty() || !d.piece_hashes.is_empty(),
        size: d.size.max(0) as u64,
    })
}

/// The relay task for a distribution.
pub(crate) fn relay_task(d: &DistRow, target_count: u64) -> CtlResult<pb::RelayTask> {
    Ok(pb::RelayTask {
        dist_id: d.id.clone(),
        origin_url: d.origin_url.clone(),
        has_torrent: !d.torrent.is_empty() || !d.piece_hashes.is_empty(),
        size: d.size.max(0) as u64,
        config: Some(decode_msg(&d.config)?),
        target_count,
        sha256: d.sha256.clone(),
        mirror_urls: d.mirror_urls.clone(),
    })
}

/// Where a relay is.
pub(crate) fn endpoint(r: &RelayRow) -> pb::RelayEndpoint {
    pb::RelayEndpoint { relay_id: r.id.clone(), addresses: r.addresses.clone(), zone: r.zone.clone() }
}

/// Stored state name → enum.
pub(crate) fn dist_state(s: &str) -> pb::DistState {
    match s {
        "active" => pb::DistState::Active,
        "done" => pb::DistState::Done,
        "cancelled" => pb::DistState::Cancelled,
        "failed" => pb::DistState::Failed,
        _ => pb::DistState::Unspecified,
    }
}

/// A distribution with its statistics.
pub(crate) fn distribution(
    d: &DistRow,
    relay_ids: Vec<String>,
    stats: pb::DistStats,
    conflicts: &[crate::db::ConflictSummary],
) -> CtlResult<pb::Distribution> {
    Ok(pb::Distribution {
        id: d.id.clone(),
        origin_url: d.origin_url.clone(),
        state: dist_state(&d.state) as i32,
        config: Some(decode_msg(&d.config)?),
        targets: Some(decode_msg(&d.selector)?),
        created_unix_ms: d.created_ms,
        finished_unix_ms: d.finished_ms,
        size: d.size.max(0) as u64,
        has_torrent: !d.torrent.is_empty() || !d.piece_hashes.is_empty(),
        relay_ids,
        stats: Some(stats),
        sha256: d.sha256.clone(),
        failure_reason: d.failure_reason.clone(),
        mirror_urls: d.mirror_urls.clone(),
        hash_conflicts: conflicts
            .iter()
            .map(|c| pb::HashConflict {
                relay: c.relay.clone(),
                first_piece: u32::try_from(c.first_piece.max(0)).unwrap_or(u32::MAX),
                clients: c.clients.max(0) as u64,
                hash_seen_first: c.hashes.0.clone(),
                hash_from_relay: c.hashes.1.clone(),
            })
            .collect(),
    })
}

/// A relay for listings.
pub(crate) fn relay_info(r: &RelayRow) -> pb::RelayInfo {
    pb::RelayInfo {
        id: r.id.clone(),
        addresses: r.addresses.clone(),
        zone: r.zone.clone(),
        capacity_bps: r.capacity_bps.max(0) as u64,
        load: r.load,
        origin_rate_bps: r.origin_rate_bps.max(0) as u64,
        origin_latency_ms: r.origin_latency_ms,
        bytes_served: r.bytes_served.max(0) as u64,
        last_seen_unix_ms: r.last_seen_ms,
        alive: r.alive,
    }
}

/// A client for listings.
pub(crate) fn client_info(c: &ClientRow) -> pb::ClientInfo {
    pb::ClientInfo {
        id: c.id.clone(),
        labels: c.labels.clone(),
        zone: c.zone.clone(),
        last_seen_unix_ms: c.last_seen_ms,
    }
}

/// Host of an http(s) URL, lowercased (an IPv6 address in brackets); `Invalid` for anything
/// else. Parsed by the project's one URL parser, whose errors never show credentials.
pub(crate) fn origin_host(url: &str) -> CtlResult<String> {
    let parsed = floodgate_engine::http::HttpUrl::parse(url)
        .map_err(|e| CtlError::Invalid(format!("invalid origin URL: {e}")))?;
    let host = parsed.host.to_ascii_lowercase();
    Ok(if host.contains(':') { format!("[{host}]") } else { host })
}

/// Most mirrors of one distribution (with the origin, the design's 8 sources).
pub(crate) const MAX_MIRRORS: usize = 7;

/// Checks a distribution's mirrors: http(s) URLs with a host, at most [`MAX_MIRRORS`];
/// duplicates and the origin itself are dropped, the order is kept.
pub(crate) fn mirror_urls(origin: &str, mirrors: &[String]) -> CtlResult<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for m in mirrors.iter().map(|m| m.trim()) {
        let shown = floodgate_engine::http::redact(m);
        if m.chars().any(char::is_control) {
            return Err(CtlError::Invalid(format!("mirror URL {shown:?} has control characters")));
        }
        origin_host(m).map_err(|_| {
            CtlError::Invalid(format!("mirror URL {shown:?} is not an http(s) URL with a host"))
        })?;
        if m != origin.trim() && !out.iter().any(|o| o == m) {
            out.push(m.to_string());
        }
    }
    if out.len() > MAX_MIRRORS {
        return Err(CtlError::Invalid(format!("{} mirrors; at most {MAX_MIRRORS}", out.len())));
    }
    Ok(out)
}

/// The hosts among `mirrors` (URLs or hosts) other than `origin_host`, each once, for a lease.
pub(crate) fn mirror_hosts(origin_host: &str, mirrors: &[String]) -> CtlResult<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for m in mirrors {
        let h = origin_key(m)?;
        if h != origin_host && !out.contains(&h) {
            out.push(h);
        }
    }
    if out.len() > MAX_MIRRORS {
        return Err(CtlError::Invalid(format!("{} mirror hosts; at most {MAX_MIRRORS}", out.len())));
    }
    Ok(out)
}

/// An origin given as a URL or a bare host → host.
pub(crate) fn origin_key(s: &str) -> CtlResult<String> {
    if s.contains("://") {
        origin_host(s)
    } else if s.is_empty() || s.contains('/') || s.contains(char::is_whitespace) {
        Err(CtlError::Invalid(format!("invalid origin host {s:?}")))
    } else {
        Ok(s.to_ascii_lowercase())
    }
}

/// Checks an id from a request: 1..=256 printable characters.
pub(crate) fn check_id(kind: &str, id: &str) -> CtlResult<()> {
    if id.is_empty() || id.len() > 256 || id.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(CtlError::Invalid(format!("{kind} id {id:?} must be 1..=256 visible characters")));
    }
    Ok(())
}

#[cfg(test)]
mod origin_host_tests {
    use super::origin_host;

    #[test]
    fn hosts_come_lowercased_and_errors_hide_credentials() {
        assert_eq!(
            origin_host("https://User:pw@Origin.Example:8443/a?b=c").ok().as_deref(),
            Some("origin.example")
        );
        assert_eq!(origin_host("http://[::1]:8080/f").ok().as_deref(), Some("[::1]"));
        for bad in ["ftp://u:secret@h/f", "http://u:secret@/f", "https://u:secret@h:99999/f"] {
            let e = origin_host(bad).expect_err(bad).to_string();
            assert!(!e.contains("secret"), "{bad}: {e}");
        }
    }
}
