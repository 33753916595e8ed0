//! Command line: `serve` and the admin subcommands.

mod admin;
mod output;

use crate::auth::Tokens;
use crate::config::{FileConfig, DEFAULT_LISTEN};
use crate::server::{serve, ServeOptions};
use crate::state::Runtime;
use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Floodgate's control plane: distributions, relays, clients and origin quota over gRPC.
#[derive(Parser, Debug)]
#[command(name = "floodgate-ctl", version, about)]
pub(crate) struct Cli {
    /// Log lines as human-readable text or one JSON object per line.
    #[arg(long, global = true, value_enum, default_value_t = floodgate_proto::LogFormat::Text)]
    pub log_format: floodgate_proto::LogFormat,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Runs the control plane server.
    Serve(ServeArgs),
    /// Distributions: create, list, get, cancel.
    Dist {
        #[command(flatten)]
        conn: admin::Conn,
        #[command(subcommand)]
        cmd: admin::DistCmd,
    },
    /// Origin limits: set, get.
    Limits {
        #[command(flatten)]
        conn: admin::Conn,
        #[command(subcommand)]
        cmd: admin::LimitsCmd,
    },
    /// Lists registered relays.
    Relays {
        #[command(flatten)]
        conn: admin::Conn,
    },
    /// Lists registered clients.
    Clients {
        #[command(flatten)]
        conn: admin::Conn,
    },
    /// Lists the audit log of admin actions (create, cancel, limits), newest first.
    Audit {
        #[command(flatten)]
        conn: admin::Conn,
        /// Most entries to show.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// TOML config file (see the `config` module docs / README).
    #[arg(long)]
    config: Option<PathBuf>,
    /// gRPC listen address [default: 127.0.0.1:7400].
    #[arg(long)]
    listen: Option<String>,
    /// Database URL: `sqlite://PATH` (default `sqlite://floodgate.db`, created in the working
    /// directory) or `postgres://user@host/db`.
    #[arg(long)]
    db: Option<String>,
    /// TLS certificate chain (PEM); enables TLS with --tls-key.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// CA certificate(s) (PEM): require every gRPC client (relays, agents, admin CLI) to present
    /// a certificate signed by them (mutual TLS; tokens are still required). Needs TLS.
    #[arg(long)]
    tls_client_ca: Option<PathBuf>,
    /// Address for Prometheus `/metrics` and the dashboard (off by default).
    #[arg(long)]
    http_listen: Option<String>,
    /// Seconds without heartbeat after which a relay is replaced [default: 15].
    #[arg(long)]
    relay_timeout_secs: Option<f64>,
    /// Default origin lease TTL in seconds [default: 30].
    #[arg(long)]
    lease_ttl_secs: Option<f64>,
    /// Most progress reports written in one transaction (1 = one transaction each) [default: 512].
    #[arg(long)]
    progress_batch: Option<usize>,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn serve_options(a: ServeArgs) -> anyhow::Result<ServeOptions> {
    let file = match &a.config {
        Some(p) => FileConfig::load(p)?,
        None => FileConfig::default(),
    };
    for key in &file.old_keys {
        let new = key.replace('_', "-");
        tracing::warn!(key = %key, "config file key `{key}` is the old spelling: use `{new}` (the old one goes in the next release)");
    }
    let token = |flag_env: &str, file: Option<String>, role: &str| -> anyhow::Result<String> {
        match env(flag_env).or(file) {
            Some(t) if t.len() >= 8 => Ok(t),
            Some(_) => bail!("the {role} token must be at least 8 characters"),
            None => bail!("no {role} token: set {flag_env} or {role}-token in the config file"),
        }
    };
    let tokens = Tokens {
        admin: token("FLOODGATE_ADMIN_TOKEN", file.admin_token, "admin")?,
        relay: token("FLOODGATE_RELAY_TOKEN", file.relay_token, "relay")?,
        client: token("FLOODGATE_CLIENT_TOKEN", file.client_token, "client")?,
    };
    let listen = a.listen.or(file.listen).unwrap_or_else(|| DEFAULT_LISTEN.to_string());
    let listen = listen.parse().with_context(|| format!("--listen {listen:?} is not HOST:PORT"))?;
    let http_listen = match a.http_listen.or(file.http_listen) {
        Some(h) => Some(h.parse().with_context(|| format!("--http-listen {h:?} is not HOST:PORT"))?),
        None => None,
    };
    let tls = match (a.tls_cert.or(file.tls_cert), a.tls_key.or(file.tls_key)) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        _ => bail!("TLS needs both a certificate and a key"),
    };
    let tls_client_ca = a.tls_client_ca.or(file.tls_client_ca);
    if tls_client_ca.is_some() && tls.is_none() {
        bail!("--tls-client-ca needs TLS (--tls-cert and --tls-key)");
    }
    let secs = |v: Option<f64>, d: f64, name: &str| -> anyhow::Result<i64> {
        let v = v.unwrap_or(d);
        if !(0.1..=86_400.0).contains(&v) {
            bail!("{name} must be between 0.1 and 86400 seconds");
        }
        Ok((v * 1000.0) as i64)
    };
    let lease_ttl_ms = secs(a.lease_ttl_secs.or(file.lease_ttl_secs), 30.0, "lease TTL")?;
    Ok(ServeOptions {
        listen,
        db_url: a.db.or(file.db).unwrap_or_else(|| crate::db::sqlite::DEFAULT_URL.to_string()),
        tokens,
        tls,
        tls_client_ca,
        http_listen,
        runtime: Runtime {
            relay_timeout_ms: secs(a.relay_timeout_secs.or(file.relay_timeout_secs), 15.0, "relay timeout")?,
            lease_ttl_ms,
            lease_ttl_max_ms: (lease_ttl_ms * 10).max(300_000),
            progress_batch: a.progress_batch.or(file.progress_batch).unwrap_or(512).clamp(1, 4096),
        },
        max_message_bytes: file.max_message_bytes.unwrap_or(16 << 20).max(1 << 20),
    })
}

/// Runs the parsed command.
pub(crate) async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.cmd {
        Cmd::Serve(a) => Ok(serve(serve_options(a)?).await?),
        Cmd::Dist { conn, cmd } => admin::dist(conn, cmd).await,
        Cmd::Limits { conn, cmd } => admin::limits(conn, cmd).await,
        Cmd::Relays { conn } => admin::relays(conn).await,
        Cmd::Clients { conn } => admin::clients(conn).await,
        Cmd::Audit { conn, limit } => admin::audit(conn, limit).await,
    }
}
