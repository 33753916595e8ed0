//! Admin subcommands: gRPC calls to a running ctl.

use super::output;
use anyhow::Context;
use clap::{Args, Subcommand};
use floodgate_proto::v1 as pb;
use floodgate_proto::v1::admin_service_client::AdminServiceClient;
use floodgate_proto::CtlTarget;
use std::path::PathBuf;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// Where and how to reach ctl.
#[derive(Args, Debug)]
pub(super) struct Conn {
    /// ctl URL (http:// or https://).
    #[arg(long, env = "FLOODGATE_CTL", default_value = "http://127.0.0.1:7400", global = true)]
    ctl: String,
    /// Admin bearer token.
    #[arg(long, env = "FLOODGATE_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    /// CA certificate (PEM) to verify an https:// ctl, besides the system roots.
    #[arg(long, global = true)]
    ca: Option<PathBuf>,
    /// Client certificate (PEM) for a ctl that requires one (`serve --tls-client-ca`).
    #[arg(long, global = true, requires = "client_key")]
    client_cert: Option<PathBuf>,
    /// Private key (PEM) of --client-cert.
    #[arg(long, global = true, requires = "client_cert")]
    client_key: Option<PathBuf>,
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    json: bool,
}

/// `dist` subcommands.
#[derive(Subcommand, Debug)]
pub(super) enum DistCmd {
    /// Creates a distribution of URL to the selected clients.
    Create {
        /// Origin URL (http:// or https://).
        url: String,
        /// A mirror: another URL of the same file (repeatable, at most 7). Relays spread their
        /// Range requests over the origin and its mirrors by measured speed.
        #[arg(long = "mirror", value_name = "URL")]
        mirrors: Vec<String>,
        /// Optional .torrent file with the piece hashes.
        #[arg(long)]
        torrent: Option<PathBuf>,
        /// SHA-256 of the whole file (64 hex digits), for a URL-only distribution: nothing is
        /// reported done or published as the final .torrent unless the pulled file matches.
        #[arg(long, value_name = "HEX", conflicts_with = "torrent")]
        sha256: Option<floodgate_proto::Sha256Digest>,
        /// Targets: comma-separated client ids, `label:NAME` terms, or `all`.
        #[arg(long)]
        targets: String,
        /// File size in bytes, if known.
        #[arg(long, default_value_t = 0)]
        size: u64,
        /// Priority 0..=9.
        #[arg(long, default_value_t = 5)]
        priority: u32,
        /// Per-client speed cap, bytes/s (0 = none).
        #[arg(long, default_value_t = 0)]
        max_speed: u64,
        /// BitTorrent slow threshold, bytes/s.
        #[arg(long, default_value_t = 500_000)]
        bt_slow: u64,
        /// HTTP share when switched, percent.
        #[arg(long, default_value_t = 30)]
        http_share: u32,
        /// Retries per piece.
        #[arg(long, default_value_t = 5)]
        retries: u32,
        /// Deadline in seconds from now (0 = none).
        #[arg(long, default_value_t = 0)]
        deadline_secs: u64,
        /// Follow progress live until the distribution finishes.
        #[arg(long)]
        watch: bool,
    },
    /// Lists distributions.
    List,
    /// Shows one distribution with statistics.
    Get {
        /// Distribution id.
        id: String,
    },
    /// Cancels a distribution (pushed to relays and clients).
    Cancel {
        /// Distribution id.
        id: String,
    },
}

/// `limits` subcommands.
#[derive(Subcommand, Debug)]
pub(super) enum LimitsCmd {
    /// Sets global limits (or one origin's with --origin). Omitted limits become unlimited.
    Set {
        /// Max concurrent origin connections.
        #[arg(long, allow_negative_numbers = true)]
        conns: Option<i64>,
        /// Max origin bytes/s.
        #[arg(long, allow_negative_numbers = true)]
        rate: Option<i64>,
        /// Max origin bytes per window.
        #[arg(long, allow_negative_numbers = true)]
        bytes: Option<i64>,
        /// Window length in seconds for --bytes.
        #[arg(long, default_value_t = 3600, allow_negative_numbers = true)]
        window: i64,
        /// Origin host these limits apply to (default: global).
        #[arg(long)]
        origin: Option<String>,
    },
    /// Shows limits and current lease usage.
    Get,
}

type AuthFn = Box<dyn FnMut(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> + Send + Sync>;
type Admin = AdminServiceClient<InterceptedService<Channel, AuthFn>>;

async fn connect(c: &Conn) -> anyhow::Result<Admin> {
    let token = c.token.clone().context("no token: pass --token or set FLOODGATE_TOKEN")?;
    let target = CtlTarget {
        ca: c.ca.clone(),
        client_cert: c.client_cert.clone(),
        client_key: c.client_key.clone(),
        ..CtlTarget::new(c.ctl.clone(), "")
    };
    let ch = target.connect().await?;
    let auth = floodgate_proto::bearer(&token).context("token is not valid header text")?;
    let f: AuthFn = Box::new(auth);
    Ok(AdminServiceClient::with_interceptor(ch, f).max_decoding_message_size(64 << 20))
}

fn status(e: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{:?}: {}", e.code(), e.message())
}

/// Runs a `dist` subcommand.
pub(super) async fn dist(c: Conn, cmd: DistCmd) -> anyhow::Result<()> {
    let mut a = connect(&c).await?;
    match cmd {
        DistCmd::Create {
            url,
            mirrors,
            torrent,
            sha256,
            targets,
            size,
            priority,
            max_speed,
            bt_slow,
            http_share,
            retries,
            deadline_secs,
            watch,
        } => {
            let torrent = match torrent {
                Some(p) => std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?,
                None => Vec::new(),
            };
            let deadline =
                if deadline_secs > 0 { crate::error::now_ms() + deadline_secs as i64 * 1000 } else { 0 };
            let req = pb::CreateDistributionRequest {
                origin_url: url,
                mirror_urls: mirrors,
                torrent,
                sha256: sha256.map(|d| d.to_string()).unwrap_or_default(),
                size,
                targets: Some(crate::convert::parse_selector(&targets)?),
                config: Some(pb::DistConfig {
                    max_speed_bps: max_speed,
                    bt_slow_threshold_bps: bt_slow,
                    http_share_percent: http_share,
                    retries,
                    priority,
                    deadline_unix_ms: deadline,
                    ..Default::default()
                }),
                ..Default::default()
            };
            let r = a.create_distribution(req).await.map_err(status)?.into_inner();
            if c.json {
                println!(
                    "{}",
                    serde_json::json!({"id": r.id, "target_count": r.target_count, "relay_ids": r.relay_ids})
                );
            } else {
                println!("created {} ({} targets, relays: {})", r.id, r.target_count, r.relay_ids.join(", "));
            }
            if watch {
                let mut s = a
                    .watch_distribution(pb::GetDistributionRequest { id: r.id.clone() })
                    .await
                    .map_err(status)?
                    .into_inner();
                while let Some(d) = s.message().await.map_err(status)? {
                    output::progress_line(&d, c.json);
                }
                if !c.json {
                    println!();
                }
            }
        }
        DistCmd::List => {
            let r = a.list_distributions(pb::ListDistributionsRequest {}).await.map_err(status)?.into_inner();
            output::dists(&r.distributions, c.json);
        }
        DistCmd::Get { id } => {
            let d = a.get_distribution(pb::GetDistributionRequest { id }).await.map_err(status)?.into_inner();
            output::dist(&d, c.json);
        }
        DistCmd::Cancel { id } => {
            let d = a
                .cancel_distribution(pb::CancelDistributionRequest { id })
                .await
                .map_err(status)?
                .into_inner();
            output::dist(&d, c.json);
        }
    }
    Ok(())
}

/// Runs a `limits` subcommand.
pub(super) async fn limits(c: Conn, cmd: LimitsCmd) -> anyhow::Result<()> {
    let mut a = connect(&c).await?;
    match cmd {
        LimitsCmd::Set { conns, rate, bytes, window, origin } => {
            let l = pb::OriginLimits {
                origin: origin.unwrap_or_default(),
                max_conns: conns,
                max_rate_bps: rate,
                max_bytes: bytes,
                window_secs: window,
                ..Default::default()
            };
            let r = a
                .set_origin_limits(pb::SetOriginLimitsRequest { limits: Some(l) })
                .await
                .map_err(status)?
                .into_inner();
            output::limits(&[r], c.json);
        }
        LimitsCmd::Get => {
            let r = a.get_origin_limits(pb::GetOriginLimitsRequest {}).await.map_err(status)?.into_inner();
            output::limits(&r.limits, c.json);
        }
    }
    Ok(())
}

/// `relays`.
pub(super) async fn relays(c: Conn) -> anyhow::Result<()> {
    let mut a = connect(&c).await?;
    let r = a.list_relays(pb::ListRelaysRequest {}).await.map_err(status)?.into_inner();
    output::relays(&r.relays, c.json);
    Ok(())
}

/// `clients`.
pub(super) async fn clients(c: Conn) -> anyhow::Result<()> {
    let mut a = connect(&c).await?;
    let r = a.list_clients(pb::ListClientsRequest {}).await.map_err(status)?.into_inner();
    output::clients(&r.clients, c.json);
    Ok(())
}

/// `audit`.
pub(super) async fn audit(c: Conn, limit: u32) -> anyhow::Result<()> {
    let mut a = connect(&c).await?;
    let r = a.list_audit_log(pb::ListAuditLogRequest { limit }).await.map_err(status)?.into_inner();
    output::audit(&r.entries, c.json);
    Ok(())
}
