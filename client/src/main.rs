//! `floodgate`: the download CLI.

#![forbid(unsafe_code)]

mod cmd;
mod gapfill;

use clap::{CommandFactory, Parser, Subcommand};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Download one big file fast over BitTorrent with HTTP Range gap-filling, then seed it.
#[derive(Parser, Debug)]
#[command(name = "floodgate", version, about)]
struct Cli {
    /// Log lines as human-readable text or one JSON object per line.
    #[arg(long, global = true, value_enum, default_value_t = floodgate_proto::LogFormat::Text)]
    log_format: floodgate_proto::LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a .torrent from a file or directory, hashing on all cores.
    MakeTorrent(cmd::make_torrent::Args),
    /// Show what a .torrent holds.
    Info(cmd::info::Args),
    /// Check data on disk against a .torrent's piece hashes.
    Verify(cmd::verify::Args),
    /// Seed a complete torrent to BitTorrent peers.
    Seed(cmd::seed::Args),
    /// Download a torrent over BitTorrent, verify every piece, then seed.
    Get(cmd::get::Args),
    /// Take download tasks from floodgate-ctl, download them from relays and peers, then seed.
    Agent(cmd::agent::Args),
}

fn main() -> anyhow::Result<()> {
    let argv = floodgate_proto::with_config_file(Cli::command(), std::env::args_os().collect())?;
    let cli = Cli::parse_from(argv);
    floodgate_proto::init_logging(cli.log_format, "info");
    let config = match &cli.command {
        Command::Get(a) => a.http.config.as_ref(),
        Command::Agent(a) => a.http.config.as_ref(),
        _ => None,
    };
    if let Some(path) = config {
        tracing::info!(config = %path.display(), "config file read");
    }
    match cli.command {
        Command::MakeTorrent(args) => cmd::make_torrent::run(args),
        Command::Info(args) => cmd::info::run(args),
        Command::Verify(args) => cmd::verify::run(args),
        Command::Seed(args) => cmd::seed::run(args),
        Command::Get(args) => cmd::get::run(args),
        Command::Agent(args) => cmd::agent::run(args),
    }
}
