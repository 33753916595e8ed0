//! `kill -9` mid-pull and a restart: verified pieces are kept, only the rest is pulled again.

use std::time::Duration;

use floodgate_tests::wait_for;

use super::{curl, Fixture, Origin, Relay, PIECE};

#[test]
fn kill_9_mid_pull_resumes_from_verified_pieces() {
    let len = 10 * 1024 * 1024 + 3;
    let fx = Fixture::new(len);
    let origin = Origin::start(&fx.file, &["--rate", "2500000"]);
    let data_dir = fx.dir.path().join("relay");
    let mut relay = Relay::start(&fx, &origin.url(), &data_dir, &[]);
    let pieces = relay.task()["pieces"].as_u64().unwrap_or(0);
    wait_for(Duration::from_secs(30), || {
        Some(()).filter(|_| relay.task()["pieces_verified"].as_u64().unwrap_or(0) >= pieces * 2 / 5)
    })
    .expect("the pull makes progress");
    relay.child.kill();
    // Let the origin notice the dead connections (bytes it wrote meanwhile still count).
    std::thread::sleep(Duration::from_millis(500));
    let (_, before) = origin.stats();
    assert!(before < len as u64, "killed mid-pull");

    let relay = Relay::start(&fx, &origin.url(), &data_dir, &[]);
    let task = relay.wait_state("complete", Duration::from_secs(60));
    let resumed = task["resumed_pieces"].as_u64().unwrap_or(0);
    assert!(resumed >= pieces / 3, "most verified pieces survived kill -9: {task}");
    let (_, after) = origin.stats();
    let second = after - before;
    // Slack: bytes the origin wrote into dying sockets around the kill.
    assert!(
        second <= (pieces - resumed + 4) * PIECE,
        "re-pulled {second} bytes for {} missing pieces",
        pieces - resumed
    );
    let (code, body) = curl(&relay.data_url(), &[]);
    assert_eq!(code, 200);
    assert!(body == fx.data, "resumed data differs");
}
