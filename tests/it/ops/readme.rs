//! The README's commands run as written: every ```sh block preceded by
//! `<!-- runs-in-test -->` is run, in order, in one bash shell (`set -euo pipefail`) against
//! the freshly built binaries, in an empty directory and in a network namespace of its own
//! (the blocks use fixed loopback ports), within 300 s. Any failing command fails the test.

use std::process::Command;

use floodgate_tests::bin;

use super::workspace;

/// The marker line before a block that runs in this test.
const MARK: &str = "<!-- runs-in-test -->";

/// The marked ```sh blocks of `text`, in order.
fn marked_blocks(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut blocks = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if l.trim() != MARK {
            continue;
        }
        let fence = lines.get(i + 1).map(|l| l.trim());
        assert_eq!(fence, Some("```sh"), "README line {}: {MARK} must be followed by a ```sh block", i + 1);
        let body: Vec<&str> = lines[i + 2..].iter().take_while(|l| l.trim() != "```").copied().collect();
        assert!(i + 2 + body.len() < lines.len(), "README line {}: unterminated block", i + 1);
        blocks.push(body.join("\n"));
    }
    blocks
}

#[test]
fn readme_blocks_marked_runs_in_test_run_as_written() {
    let readme = std::fs::read_to_string(workspace().join("README.md")).expect("README.md");
    let blocks = marked_blocks(&readme);
    assert!(blocks.len() >= 3, "only {} README blocks are marked {MARK}", blocks.len());
    let mut script = String::from(
        "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true' EXIT\n",
    );
    for (n, b) in blocks.iter().enumerate() {
        script.push_str(&format!("echo '=== README block {}' >&2\n{b}\n", n + 1));
    }
    script.push_str("echo '=== README: all blocks ran'\n");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("readme.sh"), &script).expect("write script");
    let bin_dir = bin("floodgate").parent().expect("bin dir").to_path_buf();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let out = Command::new("timeout")
        .args(["--kill-after=10", "300", "unshare", "--net", "bash", "-c"])
        .arg("ip link set lo up && exec bash readme.sh")
        .current_dir(dir.path())
        .env("PATH", path)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run timeout/unshare/bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("=== README: all blocks ran"),
        "the README's marked blocks failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    for want in
        ["BitTorrent download identical", "first MiB from the relay identical", "agent download identical"]
    {
        assert!(stdout.contains(want), "{want:?} missing:\n{stdout}");
    }
}
