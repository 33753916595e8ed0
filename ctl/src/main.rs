//! `floodgate-ctl`: the gRPC control plane (`serve`) and its admin CLI.

#![forbid(unsafe_code)]

mod audit;
mod auth;
mod cli;
mod config;
mod convert;
mod db;
mod error;
mod events;
mod history;
mod http;
mod ids;
mod json;
// Compiled by the simulator too (`sim/src/ctl.rs`), whose public API they are: `pub` there.
#[allow(unreachable_pub)]
mod leases;
mod metrics;
mod monitor;
mod progress;
mod push;
// Compiled by the simulator too (`sim/src/ctl.rs`), whose public API they are: `pub` there.
#[allow(unreachable_pub)]
mod relay_row;
// Compiled by the simulator too (`sim/src/ctl.rs`), whose public API they are: `pub` there.
#[allow(unreachable_pub)]
mod selection;
mod server;
mod service;
mod state;
mod stats;

use clap::Parser;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let cli = cli::Cli::parse();
    floodgate_proto::init_logging(cli.log_format, "info,sqlx=warn");
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    if let Err(e) = rt.block_on(cli::run(cli)) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
    Ok(())
}
