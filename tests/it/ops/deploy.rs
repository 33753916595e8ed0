//! The systemd units in `deploy/systemd/` pass `systemd-analyze verify` (any complaint fails)
//! and stay within an exposure score of 4.0 (`systemd-analyze security`), through
//! `deploy/systemd/verify.sh` pointed at the built binaries. Each unit runs its binary with
//! `--config /etc/floodgate/<name>.toml` and flags its `--help` lists, and takes nothing but
//! secrets from the environment (no `${VAR}` on the command line, no `FLOODGATE_*` set in the
//! unit).

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
    for (unit, name, exe, sub) in [
        ("floodgate-ctl", "ctl", "floodgate-ctl", Some("serve")),
        ("floodgate-relay", "relay", "floodgate-relay", None),
        ("floodgate-agent", "agent", "floodgate", Some("agent")),
    ] {
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
        let exec = exec_start(&text).unwrap_or_else(|| panic!("{unit}.service has no ExecStart"));
        let mut words = exec.split_whitespace();
        assert_eq!(words.next(), Some(format!("/usr/local/bin/{exe}").as_str()), "{exec}");
        let mut args: Vec<&str> = words.collect();
        if let Some(sub) = sub {
            assert_eq!(args.first(), Some(&sub), "{exec}");
            args.remove(0);
        }
        let config = format!("/etc/floodgate/{name}.toml");
        assert!(args.windows(2).any(|w| w == ["--config", config.as_str()]), "{unit}: {exec}");
        assert!(!exec.contains('$'), "{unit}: settings belong in {config}, not the environment: {exec}");
        assert!(
            !text.lines().any(|l| l.starts_with("Environment=FLOODGATE_")),
            "{unit}.service sets FLOODGATE_* itself: settings belong in {config}"
        );
        let help = Command::new(bin(exe)).args(sub).arg("--help").output().expect("run --help");
        let help = String::from_utf8_lossy(&help.stdout);
        for flag in args.iter().filter(|a| a.starts_with("--")) {
            assert!(help.contains(&format!("{flag} ")), "{unit}: `{exe}` has no {flag}");
        }
    }
}

/// A unit's `ExecStart=` value, continuation lines joined.
fn exec_start(unit: &str) -> Option<String> {
    let mut lines = unit.lines().skip_while(|l| !l.starts_with("ExecStart="));
    let mut exec = lines.next()?.strip_prefix("ExecStart=")?.to_string();
    while exec.ends_with('\\') {
        exec.pop();
        exec.push(' ');
        exec.push_str(lines.next()?.trim());
    }
    Some(exec)
}
