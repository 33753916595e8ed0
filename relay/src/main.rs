//! `floodgate-relay`: pulls a file from an HTTP origin and serves it while pulling.

use clap::Parser;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Pull a file from an HTTP(S) origin under quota, verify and seed it while writing, serve HTTP Range.
#[derive(Parser, Debug)]
#[command(name = "floodgate-relay", version, about)]
struct Cli {
    /// Origin URL to pull (standalone mode).
    #[arg(long)]
    origin: Option<String>,
    /// Directory holding task data and state.
    #[arg(long, default_value = "relay-data")]
    data_dir: std::path::PathBuf,
    /// Address for BitTorrent peers.
    #[arg(long, default_value = "127.0.0.1:6881")]
    listen_bt: String,
    /// Address for the HTTP Range server and tracker.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen_http: String,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    anyhow::bail!("relay serving is not built yet (issue 4); parsed {cli:?}")
}
