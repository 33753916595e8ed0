//! Human and `--json` output of the admin subcommands.

use crate::json::{self, state_name};
use floodgate_proto::v1 as pb;
use serde_json::Value;
use std::io::Write;

/// A relay whose piece hashes disagreed with another relay's, as `dist get` shows it. ctl
/// does not say which relay is right (with two relays it cannot).
fn conflict_line(c: &pb::HashConflict) -> String {
    let who = if c.clients == 1 { "client" } else { "clients" };
    format!(
        "conflict:  relay {} disagrees from piece {} (reported by {} {who}; hash taken first {}, the relay's {})",
        c.relay, c.first_piece, c.clients, c.hash_seen_first, c.hash_from_relay
    )
}

/// One distribution.
pub(super) fn dist(d: &pb::Distribution, as_json: bool) {
    if as_json {
        println!("{}", json::dist(d));
        return;
    }
    let s = d.stats.clone().unwrap_or_default();
    println!(
        "id:        {}\nurl:       {}\nstate:     {}\nrelays:    {}",
        d.id,
        floodgate_engine::http::redact(&d.origin_url),
        state_name(d.state),
        d.relay_ids.join(", ")
    );
    for m in &d.mirror_urls {
        println!("mirror:    {}", floodgate_engine::http::redact(m));
    }
    if !d.sha256.is_empty() {
        println!("sha256:    {}", d.sha256);
    }
    if !d.failure_reason.is_empty() {
        println!("failed:    {}", d.failure_reason);
    }
    for c in &d.hash_conflicts {
        println!("{}", conflict_line(c));
    }
    println!(
        "clients:   {} targets, {} pending, {} running, {} done, {} failed, {} cancelled",
        s.targets, s.pending, s.running, s.done, s.failed, s.cancelled
    );
    println!(
        "progress:  {:.1}%  speed {} B/s\nbytes:     bt {}  http-relay {}  origin {}  (origin total {}, offload {:.1}x)\nmin time:  {:.1} s (Kumar–Ross, {} rates)",
        s.progress * 100.0, s.speed_bps, s.bytes_bt, s.bytes_http_relay, s.bytes_http_origin, s.origin_bytes, s.offload_ratio, s.min_time_secs,
        basis_name(&s.min_time_basis)
    );
}

/// `min_time_basis` as shown: a ctl older than the field sends "" (its bound is configured or 0).
fn basis_name(basis: &str) -> &str {
    if basis.is_empty() {
        "unknown"
    } else {
        basis
    }
}

/// A list of distributions.
pub(super) fn dists(ds: &[pb::Distribution], as_json: bool) {
    if as_json {
        println!("{}", Value::Array(ds.iter().map(json::dist).collect()));
        return;
    }
    println!("{:<20} {:<10} {:>12} {:>8}  URL", "ID", "STATE", "DONE/TARGETS", "PROGRESS");
    for d in ds {
        let s = d.stats.clone().unwrap_or_default();
        println!(
            "{:<20} {:<10} {:>12} {:>7.1}%  {}",
            d.id,
            state_name(d.state),
            format!("{}/{}", s.done, s.targets),
            s.progress * 100.0,
            floodgate_engine::http::redact(&d.origin_url)
        );
        if !d.failure_reason.is_empty() {
            println!("{:<20} failed: {}", "", d.failure_reason);
        }
    }
}

/// A live progress line (`--watch`).
pub(super) fn progress_line(d: &pb::Distribution, as_json: bool) {
    if as_json {
        println!("{}", json::dist(d));
        return;
    }
    let s = d.stats.clone().unwrap_or_default();
    print!(
        "\r{} {:<9} {:>5.1}%  {}/{} done  {} failed  {} B/s  offload {:.1}x   ",
        d.id,
        state_name(d.state),
        s.progress * 100.0,
        s.done,
        s.targets,
        s.failed,
        s.speed_bps,
        s.offload_ratio
    );
    let _ = std::io::stdout().flush();
}

fn lim(v: Option<i64>) -> String {
    v.map_or("unlimited".into(), |x| x.to_string())
}

/// Origin limits.
pub(super) fn limits(ls: &[pb::OriginLimits], as_json: bool) {
    if as_json {
        let v: Vec<Value> = ls.iter().map(json::limits).collect();
        println!("{}", Value::Array(v));
        return;
    }
    for l in ls {
        let name = if l.origin.is_empty() { "(global)" } else { &l.origin };
        println!(
            "{name}: conns {} (used {}), rate {} B/s (used {}), bytes {} per {} s (used {}), {} live leases",
            lim(l.max_conns),
            l.used_conns,
            lim(l.max_rate_bps),
            l.used_rate_bps,
            lim(l.max_bytes),
            l.window_secs,
            l.used_bytes_in_window,
            l.live_leases
        );
    }
}

/// Relays.
pub(super) fn relays(rs: &[pb::RelayInfo], as_json: bool) {
    if as_json {
        let v: Vec<Value> = rs.iter().map(json::relay).collect();
        println!("{}", Value::Array(v));
        return;
    }
    println!("{:<20} {:<10} {:<6} {:>6}  ADDRESSES", "ID", "ZONE", "ALIVE", "LOAD");
    for r in rs {
        println!("{:<20} {:<10} {:<6} {:>6.2}  {}", r.id, r.zone, r.alive, r.load, r.addresses.join(" "));
    }
}

/// Clients.
pub(super) fn clients(cs: &[pb::ClientInfo], as_json: bool) {
    if as_json {
        let v: Vec<Value> = cs.iter().map(json::client).collect();
        println!("{}", Value::Array(v));
        return;
    }
    println!("{:<24} {:<10} LABELS", "ID", "ZONE");
    for c in cs {
        println!("{:<24} {:<10} {}", c.id, c.zone, c.labels.join(","));
    }
}

/// Audit log entries, newest first.
pub(super) fn audit(es: &[pb::AuditEntry], as_json: bool) {
    if as_json {
        println!("{}", Value::Array(es.iter().map(json::audit).collect()));
        return;
    }
    println!("{:<23}  {:<6} {:<5} {:<11} {:<20} DETAIL", "TIME (UTC)", "ROLE", "VIA", "ACTION", "TARGET");
    for e in es {
        println!(
            "{:<23}  {:<6} {:<5} {:<11} {:<20} {}",
            utc(e.at_unix_ms),
            e.role,
            e.via,
            e.action,
            e.target,
            e.detail
        );
    }
}

/// `YYYY-MM-DD HH:MM:SS.mmm` in UTC for unix milliseconds.
fn utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:03}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms.rem_euclid(1000)
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_formats_known_instants() {
        assert_eq!(super::utc(0), "1970-01-01 00:00:00.000");
        // 2026-12-02 07:47:58.123 UTC
        assert_eq!(super::utc(1_796_197_678_123), "2026-12-02 07:47:58.123");
        assert_eq!(super::utc(951_782_400_000), "2000-02-29 00:00:00.000");
    }

    #[test]
    fn a_conflict_line_names_the_relay_its_first_piece_and_the_clients() {
        let c = floodgate_proto::v1::HashConflict {
            relay: "relay-b".into(),
            first_piece: 3,
            clients: 2,
            hash_seen_first: "a".repeat(40),
            hash_from_relay: "b".repeat(40),
        };
        let line = super::conflict_line(&c);
        assert!(
            line.starts_with("conflict:  relay relay-b disagrees from piece 3 (reported by 2 clients;"),
            "{line}"
        );
        assert!(line.contains(&"a".repeat(40)) && line.contains(&"b".repeat(40)), "{line}");
    }
}
