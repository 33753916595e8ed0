//! `--config FILE` and `--log-format json` on the real binaries: the example files in
//! `deploy/config/` are accepted by `floodgate-relay`, `floodgate agent` and `floodgate-ctl
//! serve`; a flag overrides a file value, a file value is used when no flag is given, an
//! unknown key is refused by name, ctl still reads the snake_case keys of earlier releases
//! (warning about each), and JSON log lines are JSON.

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use floodgate_tests::{bin, free_addr, wait_for, wait_for_listen, ChildGuard};

use super::workspace;
use crate::ctl::{sqlite_db, ADMIN, CLIENT, RELAY};
use crate::relay::{curl, path, Fixture, Origin};

/// `deploy/config/<name>`.
fn example(name: &str) -> PathBuf {
    workspace().join("deploy/config").join(name)
}

/// Waits for `addr` to listen, showing the process's log if it does not.
fn listening(addr: SocketAddr, log: &Path, what: &str) {
    let ok = wait_for_listen(addr, Duration::from_secs(30));
    assert!(ok, "{what} did not listen on {addr}: {}", std::fs::read_to_string(log).unwrap_or_default());
}

/// The `/metrics` text at `addr`.
fn metrics(addr: SocketAddr) -> String {
    let (code, body) = curl(&format!("http://{addr}/metrics"), &[]);
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    String::from_utf8(body).expect("utf-8 metrics")
}

/// A log line containing `needle`, parsed as JSON (waits up to 30 s for it).
fn json_line(log: &Path, needle: &str) -> serde_json::Value {
    let line = wait_for(Duration::from_secs(30), || {
        std::fs::read_to_string(log).ok()?.lines().find(|l| l.contains(needle)).map(str::to_string)
    });
    let line = line.unwrap_or_else(|| panic!("no log line with {needle:?} in {}", log.display()));
    let v: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
    assert!(v["level"].is_string() && v["timestamp"].is_string() && v["fields"].is_object(), "{v}");
    v
}

#[test]
fn example_configs_are_accepted_and_flags_override_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = |name: &str| {
        let p = dir.path().join(name);
        (File::create(&p).expect("log file"), p)
    };

    // Relay, standalone: the example says listen-http 127.0.0.1:8080 and log-format text;
    // the flags say otherwise and win.
    let fx = Fixture::new(256 * 1024);
    let origin = Origin::start(&fx.file, &[]);
    let (relay_http, relay_bt) = (free_addr(), free_addr());
    let (file, relay_log) = log("relay.log");
    let _relay = ChildGuard::spawn(
        Command::new(bin("floodgate-relay"))
            .arg("--config")
            .arg(example("relay.toml"))
            .args(["--origin", &origin.url(), "--torrent", path(&fx.torrent)])
            .args(["--data-dir", path(&dir.path().join("relay"))])
            .args(["--listen-http", &relay_http.to_string(), "--listen-bt", &relay_bt.to_string()])
            .args(["--log-format", "json"])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(file),
    )
    .expect("spawn floodgate-relay");
    listening(relay_http, &relay_log, "floodgate-relay --config relay.toml");
    assert!(metrics(relay_http).contains("floodgate_relay_tasks 1"));
    let started = json_line(&relay_log, "task started");
    assert_eq!(started["fields"]["message"], "task started", "{started}");

    // ctl: the example's listen (127.0.0.1:7400) is overridden by --listen.
    let (_db_dir, db) = sqlite_db();
    let (ctl_addr, ctl_http) = (free_addr(), free_addr());
    let (file, ctl_log) = log("ctl.log");
    let _ctl = ChildGuard::spawn(
        Command::new(bin("floodgate-ctl"))
            .args(["--log-format", "json", "serve", "--config"])
            .arg(example("ctl.toml"))
            .args(["--listen", &ctl_addr.to_string(), "--db", &db, "--http-listen", &ctl_http.to_string()])
            .env("FLOODGATE_ADMIN_TOKEN", ADMIN)
            .env("FLOODGATE_RELAY_TOKEN", RELAY)
            .env("FLOODGATE_CLIENT_TOKEN", CLIENT)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(file),
    )
    .expect("spawn floodgate-ctl");
    listening(ctl_addr, &ctl_log, "floodgate-ctl serve --config ctl.toml");
    listening(ctl_http, &ctl_log, "floodgate-ctl's HTTP side");

    // Agent: the example leaves metrics off; the flag turns it on. It registers with ctl.
    let agent_metrics = free_addr();
    let (file, agent_log) = log("agent.log");
    let _agent = ChildGuard::spawn(
        Command::new(bin("floodgate"))
            .args(["agent", "--config"])
            .arg(example("agent.toml"))
            .args(["--ctl", &format!("http://{ctl_addr}"), "--token", CLIENT, "--id", "cfg-agent"])
            .args(["-o", path(&dir.path().join("agent")), "--listen", "127.0.0.1:0"])
            .args(["--metrics-listen", &agent_metrics.to_string(), "--log-format", "json"])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(file),
    )
    .expect("spawn floodgate agent");
    listening(agent_metrics, &agent_log, "floodgate agent --config agent.toml");
    assert!(metrics(agent_metrics).contains("floodgate_agent_tasks 0"));
    let registered = json_line(&agent_log, "registered with ctl");
    assert_eq!(registered["fields"]["id"], "cfg-agent", "{registered}");
    let serving = json_line(&ctl_log, "floodgate-ctl serving");
    assert_eq!(serving["fields"]["addr"], ctl_addr.to_string(), "{serving}");
}

#[test]
fn a_file_value_is_used_unless_a_flag_overrides_it_and_unknown_keys_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (from_file, from_flag) = (free_addr(), free_addr());
    let config = dir.path().join("agent.toml");
    // ctl is not running: the agent retries registering, its metrics are up meanwhile.
    let text = format!(
        "ctl = \"http://127.0.0.1:1\"\ntoken = \"{CLIENT}\"\nid = \"file-agent\"\nlisten = \"127.0.0.1:0\"\n\
         output = \"{}\"\nmetrics-listen = \"{from_file}\"\nhttp-source = [\"http://127.0.0.1:1/f\"]\n",
        dir.path().join("out").display()
    );
    std::fs::write(&config, text).expect("write config");
    let spawn = |extra: &[&str]| {
        ChildGuard::spawn(
            Command::new(bin("floodgate"))
                .args(["agent", "--config", path(&config)])
                .args(extra)
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )
        .expect("spawn floodgate agent")
    };
    {
        let _agent = spawn(&[]);
        assert!(wait_for_listen(from_file, Duration::from_secs(30)), "metrics-listen from the file unused");
    }
    {
        let _agent = spawn(&["--metrics-listen", &from_flag.to_string()]);
        assert!(wait_for_listen(from_flag, Duration::from_secs(30)), "--metrics-listen did not win");
        assert!(std::net::TcpStream::connect(from_file).is_err(), "the file's metrics-listen was used too");
    }

    // A misspelt key stops the relay at once, naming the key.
    let bad = dir.path().join("relay.toml");
    std::fs::write(&bad, "listen-htp = \"127.0.0.1:8080\"\n").expect("write config");
    let out = Command::new(bin("floodgate-relay")).arg("--config").arg(&bad).output().expect("run relay");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("listen-htp"), "{err}");
}

/// The long flags `--help` of `args` lists.
fn long_flags(exe: &str, args: &[&str]) -> Vec<String> {
    let out = Command::new(bin(exe)).args(args).arg("--help").output().expect("run --help");
    assert!(out.status.success(), "{exe} {args:?} --help failed");
    let help = String::from_utf8_lossy(&out.stdout).to_string();
    let mut flags: Vec<String> = help
        .lines()
        .filter_map(|l| {
            let l = l.trim_start();
            let l = l.strip_prefix("-").and_then(|r| r.split_once(", ")).map_or(l, |(_, rest)| rest);
            let name = l.strip_prefix("--")?;
            let end = name.find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
            Some(name[..end.unwrap_or(name.len())].to_string())
        })
        .filter(|f| !["help", "version", "config"].contains(&f.as_str()))
        .collect();
    flags.dedup();
    assert!(flags.len() >= 5, "{exe} {args:?}: {flags:?} from\n{help}");
    flags
}

#[test]
fn example_configs_list_every_flag() {
    for (exe, args, file) in [
        ("floodgate-relay", &[][..], "relay.toml"),
        ("floodgate", &["agent"][..], "agent.toml"),
        ("floodgate-ctl", &["serve"][..], "ctl.toml"),
    ] {
        let text = std::fs::read_to_string(example(file)).expect("example config");
        for key in long_flags(exe, args) {
            if exe == "floodgate-ctl" && key == "log-format" {
                continue; // ctl: a flag only (before `serve`), documented in the file
            }
            let listed = text.lines().any(|l| {
                let l = l.trim_start_matches(['#', ' ']);
                l.strip_prefix(key.as_str()).is_some_and(|r| r.trim_start().starts_with('='))
            });
            assert!(listed, "deploy/config/{file} does not list `{key}` ({exe} {args:?})");
        }
    }
}

#[test]
fn ctl_still_reads_an_old_snake_case_file_with_a_warning_and_refuses_unknown_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_db_dir, db) = sqlite_db();
    let (grpc, http) = (free_addr(), free_addr());
    // A ctl.toml as earlier releases wrote it: every multi-word key in snake_case.
    let old = dir.path().join("ctl-old.toml");
    let text = format!(
        "listen = \"{grpc}\"\ndb = \"{db}\"\nadmin_token = \"{ADMIN}\"\nrelay_token = \"{RELAY}\"\n\
         client_token = \"{CLIENT}\"\nhttp_listen = \"{http}\"\nrelay_timeout_secs = 15.0\n\
         lease_ttl_secs = 30.0\nprogress_batch = 512\nmax_message_bytes = 16777216\n"
    );
    std::fs::write(&old, text).expect("write config");
    let log = dir.path().join("ctl.log");
    let _ctl = ChildGuard::spawn(
        Command::new(bin("floodgate-ctl"))
            .args(["serve", "--config", path(&old)])
            .env_remove("FLOODGATE_ADMIN_TOKEN")
            .env_remove("FLOODGATE_RELAY_TOKEN")
            .env_remove("FLOODGATE_CLIENT_TOKEN")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(File::create(&log).expect("log file")),
    )
    .expect("spawn floodgate-ctl");
    listening(grpc, &log, "floodgate-ctl serve with an old-style config");
    // http_listen was read: the dashboard side is up where the old key said.
    listening(http, &log, "floodgate-ctl's HTTP side from `http_listen`");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    for key in ["http_listen", "relay_timeout_secs", "admin_token", "max_message_bytes"] {
        let new = key.replace('_', "-");
        assert!(
            text.lines().any(|l| l.contains(&format!("`{key}`")) && l.contains(&format!("`{new}`"))),
            "no warning naming `{key}` and `{new}`:\n{text}"
        );
    }

    // A misspelt key stops ctl at once, naming the key.
    let bad = dir.path().join("ctl-bad.toml");
    std::fs::write(&bad, "http-lisen = \"127.0.0.1:7401\"\n").expect("write config");
    let out = Command::new(bin("floodgate-ctl"))
        .args(["serve", "--config", path(&bad), "--db", &db])
        .env("FLOODGATE_ADMIN_TOKEN", ADMIN)
        .env("FLOODGATE_RELAY_TOKEN", RELAY)
        .env("FLOODGATE_CLIENT_TOKEN", CLIENT)
        .output()
        .expect("run floodgate-ctl");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("unknown field `http-lisen`"), "{err}");
}
