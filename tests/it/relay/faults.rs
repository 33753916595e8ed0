//! Origin faults: 500s and truncated bodies are retried; a file that changes mid-pull fails the
//! task clearly and nothing unverified is served.

use std::time::Duration;

use super::{curl, Fixture, Origin, Relay, PIECE};

#[test]
fn origin_500s_and_truncated_bodies_are_retried() {
    let len = 6 * 1024 * 1024 + 5;
    let fx = Fixture::new(len);
    let origin =
        Origin::start(&fx.file, &["--fail-first", "3", "--fail-every", "5", "--truncate-after", "400000"]);
    let relay = Relay::start(&fx, &origin.url(), &fx.dir.path().join("relay"), &[]);
    let task = relay.wait_state("complete", Duration::from_secs(60));
    assert!(task["origin_retries"].as_u64().unwrap_or(0) >= 3, "retries counted: {task}");
    let (code, body) = curl(&relay.data_url(), &[]);
    assert_eq!(code, 200);
    assert!(body == fx.data, "served bytes differ after retries");
}

#[test]
fn origin_file_changing_mid_pull_fails_the_task_clearly() {
    let len = 8 * 1024 * 1024;
    let fx = Fixture::new(len);
    // Requests after the 4th see other bytes under a new ETag.
    let origin = Origin::start(&fx.file, &["--change-after", "4", "--rate", "4000000"]);
    let relay = Relay::start(&fx, &origin.url(), &fx.dir.path().join("relay"), &[]);
    let task = relay.wait_state("failed", Duration::from_secs(60));
    let error = task["error"].as_str().unwrap_or("");
    assert!(error.contains("changed"), "the error says the origin file changed: {task}");
    let verified = task["pieces_verified"].as_u64().unwrap_or(0);
    let pieces = task["pieces"].as_u64().unwrap_or(0);
    assert!(verified < pieces, "the task cannot be complete: {task}");
    // Verified pieces are still served, correct; the rest answer 503, never other bytes.
    if verified > 0 {
        let (code, body) = curl(&relay.data_url(), &["-r", &format!("0-{}", PIECE - 1)]);
        if code == 206 {
            assert!(body == fx.data[..PIECE as usize], "served bytes differ");
        } else {
            assert_eq!(code, 503);
        }
    }
    let (code, body) = curl(&relay.data_url(), &[]);
    assert!(code == 503 || (code == 200 && body.len() < len), "whole file not served: {code}");
    assert!(fx.data.starts_with(&body) || code == 503, "a short body is still a correct prefix");
}
