//! The systemd units in `deploy/systemd/` pass `systemd-analyze verify` (any complaint fails)
//! and stay within an exposure score of 4.0 (`systemd-analyze security`), through
//! `deploy/systemd/verify.sh` pointed at the built binaries.

use std::process::{Command, Stdio};

use floodgate_tests::bin;

use super::workspace;

#[test]
fn systemd_units_verify_and_are_hardened() {
    let ok = Command::new("systemd-analyze").arg("--version").stdout(Stdio::null()).status();
    assert!(ok.is_ok_and(|s| s.success()), "systemd-analyze is not installed: run tools/ci-setup.sh");
    let bin_dir = bin("floodgate-ctl").parent().expect("bin dir").to_path_buf();
    let out = Command::new("bash")
        .arg(workspace().join("deploy/systemd/verify.sh"))
        .env("BIN_DIR", &bin_dir)
        .output()
        .expect("run verify.sh");
    assert!(
        out.status.success(),
        "deploy/systemd/verify.sh: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for unit in ["floodgate-ctl", "floodgate-relay", "floodgate-agent"] {
        let path = workspace().join(format!("deploy/systemd/{unit}.service"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for must in [
            "DynamicUser=yes",
            "ProtectSystem=strict",
            "StateDirectory=",
            "Restart=on-failure",
            "NoNewPrivileges=yes",
        ] {
            assert!(text.contains(must), "{unit}.service lacks {must}");
        }
    }
}
