//! The `/metrics` of ctl, the relay and an agent after a real distribution (origin → relay →
//! agent): OpenMetrics text from prometheus-client, HELP and TYPE on every family, `_total`
//! counters, no `origin=""` label, values that match what happened; and the Grafana
//! dashboard and alerting rules in `deploy/` query only metrics that some component exports.

use std::collections::{BTreeSet, HashMap};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use floodgate_tests::wait_for;

use super::{workspace, Fleet};
use crate::e2e::ctl_json;
use crate::relay::curl;

const SIZE: usize = 4 * 1024 * 1024;

/// What one scrape after a finished distribution looked like.
struct Scrape {
    /// The distribution's id.
    dist: String,
    /// The `/metrics` body.
    text: String,
    /// The content type it was served with.
    content_type: String,
    /// The relay's `/metrics` body.
    relay: String,
    /// The agent's `/metrics` body.
    agent: String,
}

/// The body and content type of `GET url`.
fn get_metrics(url: &str) -> (String, String) {
    let (code, body) = curl(url, &[]);
    assert_eq!(code, 200, "{url}: {}", String::from_utf8_lossy(&body));
    let (_, head) = curl(url, &["-o", "/dev/null", "-D", "-"]);
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let content_type = head
        .lines()
        .find_map(|l| l.strip_prefix("content-type:").map(|v| v.trim().to_string()))
        .unwrap_or_default();
    (String::from_utf8(body).expect("utf-8 metrics"), content_type)
}

/// Runs one fleet for every test here (they read the same scrape).
fn scrape() -> &'static Scrape {
    static ONCE: OnceLock<Scrape> = OnceLock::new();
    ONCE.get_or_init(|| {
        let fleet = Fleet::start(SIZE, 4_000_000, 1);
        ctl_json(&fleet.ctl, &["limits", "set", "--rate", "100000000", "--conns", "8"])
            .expect("global limits");
        ctl_json(
            &fleet.ctl,
            &["limits", "set", "--origin", "127.0.0.1", "--rate", "50000000", "--conns", "4"],
        )
        .expect("origin limits");
        let id = fleet.distribute();
        let done = wait_for(Duration::from_secs(60), || {
            let d = ctl_json(&fleet.ctl, &["dist", "get", &id])?;
            (d["state"] == "done" && d["stats"]["origin_bytes"].as_u64() >= Some(SIZE as u64)).then_some(())
        });
        assert!(
            done.is_some(),
            "the distribution did not finish in 60 s: {:?}",
            ctl_json(&fleet.ctl, &["dist", "get", &id])
        );
        let (text, content_type) = get_metrics(&format!("http://{}/metrics", fleet.http));
        let (relay, relay_type) = get_metrics(&format!("http://{}/metrics", fleet.relay_http));
        let (agent, agent_type) = get_metrics(&format!("http://{}/metrics", fleet.agent_metrics[0]));
        for t in [&relay_type, &agent_type] {
            assert!(t.starts_with("application/openmetrics-text"), "{t}");
        }
        Scrape { dist: id, text, content_type, relay, agent }
    })
}

/// Sample lines as `(name, labels text, value)`.
fn samples(text: &str) -> Vec<(String, String, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap_or_else(|| panic!("bad sample line {l:?}"));
            let (name, labels) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            (
                name.to_string(),
                labels.to_string(),
                value.parse().unwrap_or_else(|_| panic!("bad value in {l:?}")),
            )
        })
        .collect()
}

/// The value of the one sample named `name` whose labels contain every `want` pair.
fn value(text: &str, name: &str, want: &[(&str, &str)]) -> f64 {
    let found: Vec<f64> = samples(text)
        .into_iter()
        .filter(|(n, labels, _)| {
            n == name && want.iter().all(|(k, v)| labels.contains(&format!("{k}=\"{v}\"")))
        })
        .map(|(_, _, v)| v)
        .collect();
    assert_eq!(found.len(), 1, "{name} {want:?}: {found:?} in\n{text}");
    found[0]
}

/// OpenMetrics text whose every family has HELP and TYPE, whose counters' samples end in
/// `_total`, every name starting with `prefix`.
fn assert_well_formed(t: &str, prefix: &str) {
    assert!(t.ends_with("# EOF\n"), "not OpenMetrics text");
    // Every family has HELP and TYPE; counters' samples end in _total.
    let mut types = HashMap::new();
    let mut helps = BTreeSet::new();
    for l in t.lines() {
        let parts: Vec<&str> = l.splitn(4, ' ').collect();
        match parts.as_slice() {
            ["#", "TYPE", name, kind] => {
                types.insert(name.to_string(), kind.to_string());
            }
            ["#", "HELP", name, ..] => {
                helps.insert(name.to_string());
            }
            _ => {}
        }
    }
    for (name, _, _) in samples(t) {
        let family = types
            .keys()
            .find(|f| name == **f || name == format!("{f}_total"))
            .unwrap_or_else(|| panic!("{name} has no TYPE line"));
        assert!(helps.contains(family), "{family} has no HELP line");
        assert!(name.starts_with(prefix), "{name}");
        if types[family] == "counter" {
            assert!(name.ends_with("_total"), "counter sample {name} does not end in _total");
        }
    }
}

/// The sum of the samples named `name` (any labels).
fn total(text: &str, name: &str) -> f64 {
    samples(text).into_iter().filter(|(n, _, _)| n == name).map(|(_, _, v)| v).sum()
}

#[test]
fn relay_and_agent_metrics_are_well_formed_and_match_the_distribution() {
    let s = scrape();
    let size = SIZE as f64;
    let r = &s.relay;
    assert_well_formed(r, "floodgate_relay_");
    assert_eq!(value(r, "floodgate_relay_tasks", &[]), 1.0);
    let pulled = total(r, "floodgate_relay_origin_bytes_total");
    assert!((size..=size * 1.1).contains(&pulled), "relay pulled {pulled} for {SIZE}\n{r}");
    assert_eq!(total(r, "floodgate_relay_size_bytes"), size);
    assert_eq!(total(r, "floodgate_relay_verified_bytes"), size);
    assert_eq!(total(r, "floodgate_relay_hash_failures_total"), 0.0);
    assert_eq!(total(r, "floodgate_relay_task_failed"), 0.0);
    let uploaded = total(r, "floodgate_relay_served_bytes_total");
    assert!(uploaded >= size * 0.5, "the relay uploaded {uploaded} to the one agent\n{r}");
    assert!(r.contains("floodgate_relay_peers{"), "{r}");

    let a = &s.agent;
    let id = s.dist.as_str();
    assert_well_formed(a, "floodgate_agent_");
    assert_eq!(value(a, "floodgate_agent_tasks", &[]), 1.0);
    assert_eq!(value(a, "floodgate_agent_verified_bytes", &[("dist", id)]), size);
    assert_eq!(value(a, "floodgate_agent_size_bytes", &[("dist", id)]), size);
    let received: f64 = ["bt", "http_relay", "origin"]
        .iter()
        .map(|src| value(a, "floodgate_agent_received_bytes_total", &[("dist", id), ("source", src)]))
        .sum();
    assert!((size..=size * 1.1).contains(&received), "agent received {received} for {SIZE}\n{a}");
    // ctl holds the agent's final report; blocks in flight at completion may add a little.
    let at_ctl = total(&s.text, "floodgate_dist_received_bytes_total");
    assert!(received >= at_ctl, "agent {received} vs ctl {at_ctl}");
    let levels: f64 = ["off", "partial", "full"]
        .iter()
        .map(|l| value(a, "floodgate_agent_gapfill_level", &[("dist", id), ("level", l)]))
        .sum();
    assert_eq!(levels, 1.0, "exactly one gap-fill level is current\n{a}");
    for l in ["off", "partial", "full"] {
        value(a, "floodgate_agent_gapfill_switches_total", &[("dist", id), ("level", l)]);
    }
    let rate = value(a, "floodgate_agent_download_rate_bytes_per_second", &[("dist", id)]);
    assert!(rate >= 0.0, "{rate}");
}

#[test]
fn ctl_metrics_are_well_formed_and_match_the_distribution() {
    let s = scrape();
    let t = &s.text;
    assert!(s.content_type.starts_with("application/openmetrics-text"), "{}", s.content_type);
    assert_well_formed(t, "floodgate_");
    assert!(!t.contains("origin=\"\""), "a global limit carries an empty origin label:\n{t}");

    // Values that match what happened.
    let id = s.dist.as_str();
    let origin = value(t, "floodgate_dist_origin_bytes_total", &[("dist", id)]);
    assert!((SIZE as f64..=SIZE as f64 * 1.1).contains(&origin), "origin bytes {origin} for {SIZE}");
    let received: f64 = ["bt", "http_relay", "origin"]
        .iter()
        .map(|src| value(t, "floodgate_dist_received_bytes_total", &[("dist", id), ("source", src)]))
        .sum();
    assert!((SIZE as f64..=SIZE as f64 * 1.1).contains(&received), "received {received} for {SIZE}");
    let ratio = value(t, "floodgate_dist_offload_ratio", &[("dist", id)]);
    assert!((ratio - received / origin).abs() < 1e-6, "offload {ratio} vs {received}/{origin}");
    assert_eq!(value(t, "floodgate_dist_targets", &[("dist", id), ("state", "done")]), 1.0);
    assert_eq!(value(t, "floodgate_dist_progress_ratio", &[("dist", id)]), 1.0);
    assert_eq!(value(t, "floodgate_dist_size_bytes", &[("dist", id)]), SIZE as f64);
    assert_eq!(value(t, "floodgate_distributions", &[("state", "done")]), 1.0);
    assert!(value(t, "floodgate_origin_bytes_total", &[("origin", "127.0.0.1")]) >= origin);
    assert!(
        value(t, "floodgate_ctl_lease_requests_total", &[("op", "acquire"), ("result", "granted")]) >= 1.0
    );
    assert_eq!(value(t, "floodgate_ctl_connected_streams", &[("kind", "relay")]), 1.0);
    assert_eq!(value(t, "floodgate_ctl_connected_streams", &[("kind", "client")]), 1.0);
    assert_eq!(value(t, "floodgate_ctl_clients_online", &[]), 1.0);
    assert_eq!(value(t, "floodgate_ctl_relay_up", &[("relay", "relay-1"), ("zone", "z1")]), 1.0);
    // Global limits without an origin label, per-origin limits with one.
    assert_eq!(value(t, "floodgate_global_limit_rate_bytes_per_second", &[]), 100_000_000.0);
    assert_eq!(value(t, "floodgate_global_limit_connections", &[]), 8.0);
    assert_eq!(
        value(t, "floodgate_origin_limit_rate_bytes_per_second", &[("origin", "127.0.0.1")]),
        50_000_000.0
    );
    assert_eq!(value(t, "floodgate_origin_limit_connections", &[("origin", "127.0.0.1")]), 4.0);
}

/// Metric names (`floodgate_…`) a deploy file mentions.
fn names_in(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let b = text.as_bytes();
    let mut i = 0;
    while let Some(off) = text[i..].find("floodgate_") {
        let start = i + off;
        let boundary = start == 0 || !(b[start - 1].is_ascii_alphanumeric() || b[start - 1] == b'_');
        let mut end = start;
        while end < b.len() && (b[end].is_ascii_lowercase() || b[end].is_ascii_digit() || b[end] == b'_') {
            end += 1;
        }
        if boundary {
            out.insert(text[start..end].to_string());
        }
        i = end;
    }
    out
}

#[test]
fn deploy_files_query_only_exported_metrics() {
    let s = scrape();
    let exported: BTreeSet<String> =
        [&s.text, &s.relay, &s.agent].into_iter().flat_map(|t| samples(t)).map(|(n, _, _)| n).collect();
    let known = |n: &str| exported.contains(n);
    let root = workspace().join("deploy");
    for file in ["grafana/floodgate-ctl.json", "prometheus/floodgate-alerts.yml"] {
        let text = std::fs::read_to_string(root.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let names = names_in(&text);
        assert!(names.len() >= 10, "{file} queries only {names:?}");
        let unknown: Vec<&String> = names.iter().filter(|n| !known(n)).collect();
        assert!(unknown.is_empty(), "{file} queries metrics no component exports: {unknown:?}");
    }
    // The Grafana file is what its generator writes.
    let generated = Command::new("python3")
        .arg(root.join("grafana/make-dashboard.py"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(generated, "deploy/grafana/make-dashboard.py failed (python3 missing?)");
    let diff = Command::new("git")
        .args(["diff", "--exit-code", "--quiet", "--"])
        .arg(root.join("grafana/floodgate-ctl.json"))
        .current_dir(workspace())
        .status();
    assert!(
        diff.is_ok_and(|s| s.success()),
        "deploy/grafana/floodgate-ctl.json differs from make-dashboard.py's output"
    );
}

#[test]
fn alert_rules_pass_promtool() {
    let ok = Command::new("promtool").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status();
    assert!(ok.is_ok_and(|s| s.success()), "promtool is not installed: run tools/ci-setup.sh");
    let out = Command::new("promtool")
        .args(["check", "rules"])
        .arg(workspace().join("deploy/prometheus/floodgate-alerts.yml"))
        .output()
        .expect("run promtool");
    assert!(
        out.status.success(),
        "promtool check rules: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // (`promtool check metrics` is not used on the scrape: it parses the classic text format,
    // where a counter's HELP carries the `_total` name, while OpenMetrics puts it on the family.)
}
