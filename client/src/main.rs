//! `floodgate`: the download CLI.

#![forbid(unsafe_code)]

mod cmd;
mod gapfill;

use clap::{Parser, Subcommand};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Download one big file fast over BitTorrent with HTTP Range gap-filling, then seed it.
#[derive(Parser, Debug)]
#[command(name = "floodgate", version, about)]
struct Cli {
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
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::MakeTorrent(args) => cmd::make_torrent::run(args),
        Command::Info(args) => cmd::info::run(args),
        Command::Verify(args) => cmd::verify::run(args),
        Command::Seed(args) => cmd::seed::run(args),
        Command::Get(args) => cmd::get::run(args),
        Command::Agent(args) => cmd::agent::run(args),
    }
}
