//! URL-only fast start survives `kill -9` of an agent mid-pull: restarted with the same data
//! directory, it keeps every piece it had verified (checked against the relay's hash list),
//! fetches only the rest, and ends byte-identical.

use std::net::SocketAddr;
use std::time::Duration;

use floodgate_tests::{free_addr, wait_for};

use crate::e2e::spawn_agent_with;
use crate::faststart::UrlOnlySetup;
use crate::relay::json;

/// File size: 12 MiB, pulled at 1.5 MB/s (about 8 s).
const SIZE: usize = 12 * 1024 * 1024;

/// The sum of the agent's `name{...}` samples at `metrics` (0 when absent).
fn metric_sum(metrics: SocketAddr, name: &str) -> Option<u64> {
    let text = crate::relay::curl(&format!("http://{metrics}/metrics"), &[]);
    if text.0 != 200 {
        return None;
    }
    let text = String::from_utf8(text.1).ok()?;
    let sum = text
        .lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>();
    Some(sum as u64)
}

#[test]
fn url_only_agent_killed_mid_pull_resumes_without_fetching_verified_pieces_again() {
    let setup = UrlOnlySetup::start(SIZE, "1500000");
    let (ctl, fx, http) = (&setup.ctl, &setup.fx, setup.http);
    let out = fx.dir.path().join("agent");
    let file = out.join("blob.bin");
    let first_metrics = free_addr();
    let mut agent =
        spawn_agent_with(ctl, "agent-1", "fs", &out, &["--metrics-listen", &first_metrics.to_string()]);
    setup.create_when_registered(&["agent-1".to_string()]);

    // Some pieces verified, the relay still pulling: kill -9.
    let before = wait_for(Duration::from_secs(60), || {
        let task = json(&format!("http://{http}/tasks"))?.as_array()?.first()?.clone();
        if task["state"] != "pulling" {
            return Some(Err(format!("the pull ended before the agent verified 1 MiB: {task}")));
        }
        let verified = metric_sum(first_metrics, "floodgate_agent_verified_bytes")?;
        (verified >= 1024 * 1024).then_some(Ok((verified, task)))
    });
    let (verified, task) = match before {
        Some(Ok(v)) => v,
        Some(Err(e)) => panic!("{e}"),
        None => panic!("the agent did not verify 1 MiB within 60 s"),
    };
    agent.kill();
    let piece = task["piece_length"].as_u64().expect("piece length");
    let relay_had = json(&format!("http://{http}/tasks")).map(|t| t[0]["pieces_verified"].clone());
    eprintln!("killed the agent with {verified} bytes verified; relay had {relay_had:?} pieces");
    let still_pulling = json(&format!("http://{http}/tasks")).is_some_and(|t| t[0]["state"] == "pulling");
    assert!(still_pulling, "the relay must still be pulling when the agent restarts");

    // Second life: same id, same data directory.
    let second_metrics = free_addr();
    let _agent =
        spawn_agent_with(ctl, "agent-1", "fs", &out, &["--metrics-listen", &second_metrics.to_string()]);
    let done =
        wait_for(Duration::from_secs(90), || std::fs::read(&file).is_ok_and(|d| d == fx.data).then_some(()));
    assert!(done.is_some(), "the restarted agent must end byte-identical within 90 s");
    let received = wait_for(Duration::from_secs(20), || {
        let size = metric_sum(second_metrics, "floodgate_agent_size_bytes")?;
        let verified = metric_sum(second_metrics, "floodgate_agent_verified_bytes")?;
        (size == SIZE as u64 && verified == size)
            .then(|| metric_sum(second_metrics, "floodgate_agent_received_bytes_total"))
            .flatten()
    })
    .expect("the restarted agent's metrics show the whole file verified");
    let bound = SIZE as u64 - verified + 3 * piece;
    eprintln!("second life received {received} bytes (bound {bound}: file {SIZE} - verified {verified} + 3 pieces of {piece})");
    assert!(
        received <= bound,
        "the restarted agent received {received} bytes; it had {verified} of {SIZE} verified (bound {bound})"
    );
    if received == 0 {
        // Seen in some full-suite runs under load (2026-12-04, -07), not understood: show what
        // the agent counted.
        let text = crate::relay::curl(&format!("http://{second_metrics}/metrics"), &[]);
        eprintln!("second life's metrics:\n{}", String::from_utf8_lossy(&text.1));
    }
    assert!(received > 0, "the restarted agent fetched the missing pieces");
    let failures = metric_sum(second_metrics, "floodgate_agent_hash_failures_total");
    assert_eq!(failures, Some(0), "no piece failed its hash in the second life");
}
