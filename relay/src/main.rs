//! `floodgate-relay`: pulls a file from an HTTP origin and serves it while pulling.
//!
//! Standalone mode: one task from `--origin URL --torrent X.torrent` (more `--origin`s are
//! mirrors of the same file); pieces are pulled with parallel Range requests, SHA-1 checked and announced to BitTorrent peers as they land, and
//! served over HTTP Range from the same store.
//!
//! Ctl mode (`--ctl URL --token T`): tasks come from `floodgate-ctl` (see `ctl_mode`).

#![forbid(unsafe_code)]

mod cli;
mod ctl_mode;
mod digest;
mod http;
mod lease;
mod ledger;
mod origin;
mod setup;
mod task;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::{CommandFactory, Parser};
use floodgate_engine::swarm::{Swarm, SwarmConfig};

use cli::Cli;
use origin::PullConfig;
use setup::{announce_self, known_task, seed_url_only, url_only_task};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let argv = floodgate_proto::with_config_file(Cli::command(), std::env::args_os().collect())?;
    let cli = Cli::parse_from(argv);
    floodgate_proto::init_logging(cli.log_format, "info");
    if let Some(path) = &cli.config {
        tracing::info!(config = %path.display(), "config file read");
    }
    if let Some(ctl) = cli.ctl.clone() {
        return ctl_mode::run(cli, ctl);
    }
    let Some((origin, mirrors)) = cli.origin.split_first() else {
        bail!("give --origin URL (standalone) or --ctl URL --token T (ctl mode)");
    };
    if mirrors.len() > 7 {
        bail!("at most 8 --origin URLs (the origin and 7 mirrors)");
    }
    let (origin, mirrors) = (origin.clone(), mirrors.to_vec());
    let url = origin::HttpUrl::parse(&origin)?;
    for m in &mirrors {
        origin::HttpUrl::parse(m).context("a mirror given with --origin")?;
    }
    let https = url.https || mirrors.iter().any(|m| origin::HttpUrl::parse(m).is_ok_and(|u| u.https));
    let tls = if https { Some(origin::client_config(cli.origin_ca.as_deref())?) } else { None };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("fg-relay")
        .build()
        .context("cannot start the async runtime")?;
    let config = PullConfig {
        conns: usize::from(cli.origin_conns),
        rate: cli.origin_rate,
        io_timeout: std::time::Duration::from_secs(cli.origin_timeout.max(1)),
        tls,
        ..PullConfig::default()
    };
    let swarm = Arc::new(
        Swarm::start(SwarmConfig { listen: Some(cli.listen_bt), ..SwarmConfig::default() })
            .with_context(|| format!("cannot listen for BitTorrent on {}", cli.listen_bt))?,
    );
    let task = match &cli.torrent {
        Some(path) => Arc::new(known_task(&cli.task_options(), &swarm, origin, path)?.with_mirrors(&mirrors)),
        None => {
            let len = rt
                .block_on(origin::origin_length(&url, &config))
                .context("cannot learn the origin file's length")?;
            Arc::new(
                url_only_task(&cli.task_options(), &swarm, origin, &url, len, None)?.with_mirrors(&mirrors),
            )
        }
    };
    println!("{}", task.id);
    tracing::info!(task = %task.id, resumed = task.counters.resumed_pieces.load(Ordering::Relaxed), pieces = task.layout.piece_count(), bt = ?swarm.listen_addr(), http = %cli.listen_http, "task started");
    rt.block_on(async move {
        let listener = http::bind(cli.listen_http)
            .await
            .with_context(|| format!("cannot listen for HTTP on {}", cli.listen_http))?;
        let server = Arc::new(http::Server::new(vec![task.clone()], cli.http.config()));
        tokio::spawn(http::serve(listener, server.clone()));
        tokio::spawn(announce_self(server.clone(), swarm.peer_id(), swarm.listen_addr().unwrap_or(cli.listen_bt)));
        let (pull_task, pull_swarm, max_peers, super_seed) = (task.clone(), swarm.clone(), cli.max_peers, cli.task_options().super_seed);
        let web_seed = format!("http://{}/tasks/{}/data", cli.listen_http, task.id);
        let torrent_out = cli.data_dir.join(format!("{}.torrent", task.id));
        tokio::spawn(async move {
            origin::pull(pull_task.clone(), config).await;
            pull_task.sync();
            if pull_task.growing().is_some() && pull_task.is_complete() {
                match seed_url_only(&pull_task, &pull_swarm, &web_seed, &torrent_out, max_peers, super_seed) {
                    Ok(()) => server.task_seeding(&pull_task),
                    Err(e) => {
                        tracing::error!(task = %pull_task.id, error = %e, "cannot seed the finished URL-only task")
                    }
                }
            }
        });
        tokio::signal::ctrl_c().await.context("waiting for a signal")?;
        tracing::info!("shutting down");
        task.sync();
        drop(swarm);
        Ok(())
    })
}
