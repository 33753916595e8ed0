//! The relay's command line.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use floodgate_engine::peer::SuperSeeding;
use floodgate_proto::LogFormat;

use crate::http;
use crate::setup::TaskOptions;

/// Pull a file from an HTTP(S) origin under quota, verify and seed it while writing, serve HTTP Range.
#[derive(Parser, Debug)]
#[command(name = "floodgate-relay", version, about)]
pub(crate) struct Cli {
    /// A TOML file whose keys are these flags' long names (`listen-http = "0.0.0.0:8080"`);
    /// flags and environment variables override it. Example: `deploy/config/relay.toml`.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log lines as human-readable text or one JSON object per line.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Origin URL to pull (standalone mode). Repeat it for mirrors, other URLs of the same
    /// file: the first is the origin, the pull spreads its Range requests over all of them by
    /// measured speed (in `--config`: `origin = ["URL", "MIRROR"]`).
    #[arg(long, conflicts_with = "ctl", action = clap::ArgAction::Append)]
    pub origin: Vec<String>,
    /// Control plane URL (ctl mode): register there and run the tasks it assigns.
    #[arg(long)]
    pub ctl: Option<String>,
    /// Extra CA certificates (PEM) trusted for an https:// control plane, besides the system roots.
    #[arg(long, requires = "ctl")]
    pub ctl_ca: Option<PathBuf>,
    /// Client certificate (PEM) presented to the control plane (when it runs with
    /// `--tls-client-ca`).
    #[arg(long, requires_all = ["ctl", "ctl_client_key"])]
    pub ctl_client_cert: Option<PathBuf>,
    /// Private key (PEM) of --ctl-client-cert.
    #[arg(long, requires = "ctl_client_cert")]
    pub ctl_client_key: Option<PathBuf>,
    /// Relay token for the control plane.
    #[arg(long, env = "FLOODGATE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// This relay's id at the control plane (default: derived from --listen-http).
    #[arg(long)]
    pub id: Option<String>,
    /// Zone advertised to the control plane.
    #[arg(long)]
    pub zone: Option<String>,
    /// The task's .torrent (piece hashes known); its info-hash is the task id. Without it the
    /// task is URL-only: pieces are hashed as they land and a .torrent is built at the end.
    #[arg(long)]
    pub torrent: Option<PathBuf>,
    /// Directory holding task data and state.
    #[arg(long, default_value = "relay-data")]
    pub data_dir: PathBuf,
    /// Address for BitTorrent peers.
    #[arg(long, default_value = "127.0.0.1:6881")]
    pub listen_bt: SocketAddr,
    /// Address for the HTTP Range server and tracker.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen_http: SocketAddr,
    /// Origin bandwidth limit, bytes per second (0 = unlimited).
    #[arg(long, default_value_t = 0)]
    pub origin_rate: u64,
    /// Parallel connections to the origin (2–8).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(2..=8))]
    pub origin_conns: u8,
    /// Percent of the file verified before whole-file requests are served (1–10).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=10))]
    pub serve_threshold: u8,
    /// Extra CA certificates (PEM) trusted for an https origin, besides the system roots.
    #[arg(long)]
    pub origin_ca: Option<PathBuf>,
    /// Seconds without progress before an origin request counts as stalled.
    #[arg(long, default_value_t = 10)]
    pub origin_timeout: u64,
    /// BitTorrent connections at once.
    #[arg(long, default_value_t = 1000)]
    pub max_peers: usize,
    /// Super-seeding (BEP 16) always: reveal pieces to each peer one by one, the rarest first,
    /// so clients get different pieces from the relay and trade them among themselves. By
    /// default the relay does so until one copy of every piece is out (and while it pulls),
    /// then announces everything.
    #[arg(long, conflicts_with = "no_super_seed")]
    pub super_seed: bool,
    /// Never super-seed: announce every piece as it is verified.
    #[arg(long)]
    pub no_super_seed: bool,
    /// HTTP server limits.
    #[command(flatten)]
    pub http: http::HttpArgs,
}

impl Cli {
    /// What task setup needs from the command line.
    pub(crate) fn task_options(&self) -> TaskOptions {
        TaskOptions {
            data_dir: self.data_dir.clone(),
            max_peers: self.max_peers,
            super_seed: SuperSeeding::from_flags(self.super_seed, self.no_super_seed),
            serve_threshold: self.serve_threshold,
        }
    }
}
