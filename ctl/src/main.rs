//! `floodgate-ctl`: the gRPC control plane.

use clap::Parser;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Floodgate's control plane: distributions, relays, clients and origin quota over gRPC.
#[derive(Parser, Debug)]
#[command(name = "floodgate-ctl", version, about)]
struct Cli {}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let _cli = Cli::parse();
    Ok(())
}
