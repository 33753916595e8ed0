//! TLS between ctl and its relays and agents: `floodgate-ctl serve --tls-cert/--tls-key` on
//! 127.0.0.1 with a test CA made by `openssl`, a `floodgate-relay --ctl https://… --ctl-ca` and
//! `floodgate agent --ctl https://… --ca` running a small distribution to byte-identical files;
//! an agent that does not trust ctl's certificate stops with a clear error; with
//! `--tls-client-ca` ctl refuses an agent without a client certificate and serves one with.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use floodgate_tests::{bin, free_addr, wait_for, wait_for_listen, ChildGuard};

use crate::ctl::{sqlite_db, Ctl, ADMIN, CLIENT, RELAY};
use crate::relay::{path, Fixture, Origin};

/// File size of the distributions (small: these tests are about the connection).
const SIZE: usize = 2 * 1024 * 1024;

/// A test CA, ctl's certificate for 127.0.0.1 and a client certificate, all signed by the CA.
pub(crate) struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    /// Makes the CA (`ca.pem`), ctl's certificate (`ctl.pem`, `ctl.key`) and a client
    /// certificate (`client.pem`, `client.key`) in a temporary directory.
    pub(crate) fn new() -> Pki {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
        let ca = ["-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=fg-tls-test-ca"];
        openssl(d, &[&["req", "-x509"][..], &ec, &ca].concat());
        let server_ext = "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n";
        let client_ext = "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n";
        for (name, cn, ext) in [("ctl", "localhost", server_ext), ("client", "agent-mtls", client_ext)] {
            let (key, csr, crt, cnf) =
                (format!("{name}.key"), format!("{name}.csr"), format!("{name}.pem"), format!("{name}.cnf"));
            let subj = format!("/CN={cn}");
            openssl(d, &[&["req"][..], &ec, &["-keyout", &key, "-out", &csr, "-subj", &subj]].concat());
            std::fs::write(d.join(&cnf), ext).expect("write extensions");
            openssl(
                d,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &csr,
                    "-CA",
                    "ca.pem",
                    "-CAkey",
                    "ca.key",
                    "-CAcreateserial",
                    "-out",
                    &crt,
                    "-days",
                    "1",
                    "-extfile",
                    &cnf,
                ],
            );
        }
        Pki { dir }
    }

    /// The path of one of the files.
    pub(crate) fn file(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl is not installed (needed to make the test certificates)");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// ctl serving TLS (and, with `client_ca`, asking for client certificates).
struct TlsCtl {
    ctl: Ctl,
    _db: tempfile::TempDir,
    /// `https://127.0.0.1:PORT`.
    url: String,
    /// Flags the admin CLI needs besides `--ctl` and `--token`.
    admin_tls: Vec<String>,
}

impl TlsCtl {
    fn start(pki: &Pki, client_ca: bool) -> TlsCtl {
        let (db_dir, db) = sqlite_db();
        let (cert, key, ca) = (pki.file("ctl.pem"), pki.file("ctl.key"), pki.file("ca.pem"));
        let mut args = vec!["--tls-cert", &cert, "--tls-key", &key];
        if client_ca {
            args.extend(["--tls-client-ca", &ca]);
        }
        let ctl = Ctl::start(&db, &args);
        let url = format!("https://{}", ctl.addr);
        let mut admin_tls = vec!["--ca".to_string(), ca];
        if client_ca {
            admin_tls.extend(["--client-cert".into(), pki.file("client.pem")]);
            admin_tls.extend(["--client-key".into(), pki.file("client.key")]);
        }
        TlsCtl { ctl, _db: db_dir, url, admin_tls }
    }

    /// `floodgate-ctl ARGS --ctl https://… --token ADMIN --json` with the CA (and client
    /// certificate); its parsed stdout.
    fn admin(&self, args: &[&str]) -> Option<serde_json::Value> {
        let out = Command::new(bin("floodgate-ctl"))
            .args(args)
            .args(["--ctl", &self.url, "--token", ADMIN, "--json"])
            .args(&self.admin_tls)
            .stderr(Stdio::null())
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    /// Whether `id` is among ctl's registered clients.
    fn has_client(&self, id: &str) -> bool {
        self.admin(&["clients"]).is_some_and(|c| c.to_string().contains(&format!("\"{id}\"")))
    }
}

/// `floodgate-relay --ctl https://…` with `tls` flags; returns it once it listens.
fn spawn_relay(ctl: &TlsCtl, dir: &Path, tls: &[&str]) -> ChildGuard {
    let (bt, http) = (free_addr(), free_addr());
    let relay = ChildGuard::spawn(
        Command::new(bin("floodgate-relay"))
            .args(["--ctl", &ctl.url, "--token", RELAY, "--id", "relay-tls", "--zone", "z1"])
            .args(["--data-dir", path(&dir.join("relay"))])
            .args(["--listen-bt", &bt.to_string(), "--listen-http", &http.to_string()])
            .args(tls)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null()),
    )
    .expect("spawn floodgate-relay --ctl");
    assert!(wait_for_listen(http, Duration::from_secs(30)), "relay did not listen on {http}");
    relay
}

/// `floodgate agent --ctl https://…` as `id` with `tls` flags, downloading into `DIR/id`, its
/// stderr (default log level) in `DIR/id.log`.
fn spawn_agent(ctl: &TlsCtl, dir: &Path, id: &str, tls: &[&str]) -> (ChildGuard, PathBuf) {
    let log = dir.join(format!("{id}.log"));
    let stderr = std::fs::File::create(&log).expect("agent log file");
    let agent = ChildGuard::spawn(
        Command::new(bin("floodgate"))
            .args(["agent", "--ctl", &ctl.url, "--token", CLIENT, "--id", id, "--zone", "z1"])
            .args(["-o", path(&dir.join(id)), "--listen", "127.0.0.1:0"])
            .args(tls)
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(stderr),
    )
    .expect("spawn floodgate agent");
    (agent, log)
}

fn read_log(log: &Path) -> String {
    std::fs::read_to_string(log).unwrap_or_default()
}

/// Distributes the fixture (with its .torrent) to `agent` through `ctl` and waits until the
/// agent's file is byte-identical.
fn distribute_to(ctl: &TlsCtl, fx: &Fixture, origin: &Origin, agent: &str, log: &Path) {
    let registered = wait_for(Duration::from_secs(30), || {
        let relays = ctl.admin(&["relays"])?.to_string();
        (relays.contains("relay-tls") && ctl.has_client(agent)).then_some(())
    });
    assert!(
        registered.is_some(),
        "relay and {agent} did not register over TLS within 30 s:\n{}",
        read_log(log)
    );
    let url = origin.url();
    let created = ctl
        .admin(&["dist", "create", &url, "--torrent", path(&fx.torrent), "--targets", agent])
        .expect("dist create over TLS");
    assert_eq!(created["target_count"].as_u64(), Some(1), "{created}");
    let file = fx.dir.path().join(agent).join("blob.bin");
    let done = wait_for(Duration::from_secs(60), || {
        std::fs::read(&file).is_ok_and(|got| got == fx.data).then_some(())
    });
    assert!(done.is_some(), "{agent} did not get a byte-identical file within 60 s:\n{}", read_log(log));
}

/// Waits (bounded) for `agent` to exit; its exit status, or `None` when it kept running.
fn exit_within(agent: &mut ChildGuard, timeout: Duration) -> Option<std::process::ExitStatus> {
    wait_for(timeout, || agent.0.try_wait().ok().flatten())
}

#[test]
fn relay_and_agent_distribute_over_tls_and_an_untrusted_ctl_is_a_clear_error() {
    let pki = Pki::new();
    let fx = Fixture::new(SIZE);
    let origin = Origin::start(&fx.file, &[]);
    let ctl = TlsCtl::start(&pki, false);
    let ca = pki.file("ca.pem");
    let _relay = spawn_relay(&ctl, fx.dir.path(), &["--ctl-ca", &ca]);

    // (b) Without --ca the agent cannot verify ctl's certificate: it stops at once with the
    // URL, the reason and the flag to pass, instead of retrying forever.
    let (mut untrusting, log) = spawn_agent(&ctl, fx.dir.path(), "agent-no-ca", &[]);
    let status = exit_within(&mut untrusting, Duration::from_secs(20));
    let stderr = read_log(&log);
    assert!(
        status.is_some_and(|s| !s.success()),
        "an agent without --ca must exit with an error: {status:?}\n{stderr}"
    );
    assert!(
        stderr.contains(&ctl.url)
            && stderr.contains("certificate not trusted")
            && stderr.contains("--ca FILE"),
        "the error names ctl, the certificate problem and --ca:\n{stderr}"
    );

    // (a) With --ca: the distribution completes over TLS.
    let (_agent, log) = spawn_agent(&ctl, fx.dir.path(), "agent-tls", &["--ca", &ca]);
    distribute_to(&ctl, &fx, &origin, "agent-tls", &log);
    assert!(
        read_log(&log).contains("registered with ctl"),
        "the agent logs at info by default:\n{}",
        read_log(&log)
    );
    // Plain http:// to the TLS listener does not work.
    let plain = Command::new(bin("floodgate-ctl"))
        .args(["clients", "--ctl", &ctl.ctl.url(), "--token", ADMIN])
        .output()
        .expect("run floodgate-ctl");
    assert!(!plain.status.success(), "plaintext must not work on the TLS port");
}

#[test]
fn with_tls_client_ca_ctl_refuses_agents_without_a_client_certificate() {
    let pki = Pki::new();
    let fx = Fixture::new(SIZE);
    let origin = Origin::start(&fx.file, &[]);
    let ctl = TlsCtl::start(&pki, true);
    let (ca, cert, key) = (pki.file("ca.pem"), pki.file("client.pem"), pki.file("client.key"));
    let _relay = spawn_relay(
        &ctl,
        fx.dir.path(),
        &["--ctl-ca", &ca, "--ctl-client-cert", &cert, "--ctl-client-key", &key],
    );

    // (c) Trusting ctl but without a client certificate: ctl refuses the handshake.
    let (mut refused, log) = spawn_agent(&ctl, fx.dir.path(), "agent-no-cert", &["--ca", &ca]);
    let status = exit_within(&mut refused, Duration::from_secs(20));
    let stderr = read_log(&log);
    assert!(
        status.is_some_and(|s| !s.success()),
        "an agent without a client certificate must stop: {status:?}\n{stderr}"
    );
    assert!(
        stderr.contains("refused the TLS handshake") && stderr.contains("--client-cert"),
        "the error says ctl refused us and names --client-cert:\n{stderr}"
    );
    assert!(!ctl.has_client("agent-no-cert"), "ctl must not have registered the agent without a certificate");

    // With the client certificate the distribution completes.
    let (_agent, log) = spawn_agent(
        &ctl,
        fx.dir.path(),
        "agent-mtls",
        &["--ca", &ca, "--client-cert", &cert, "--client-key", &key],
    );
    distribute_to(&ctl, &fx, &origin, "agent-mtls", &log);
}
