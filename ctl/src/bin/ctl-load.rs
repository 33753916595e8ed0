//! `ctl-load`: load generator for the ctl benchmark (see `tools/ctl-bench.sh`).
//!
//! Registers N clients, opens N `WatchTasks` streams over M HTTP/2 connections, creates one
//! distribution targeting all N, and measures the time until every stream has its task.
//! Then measures origin lease acquire+release pairs per second, and `ReportProgress` calls per
//! second from many clients at once. Prints one JSON line.

#![forbid(unsafe_code)]

use anyhow::Context;
use clap::Parser;
use floodgate_proto::v1 as pb;
use floodgate_proto::v1::admin_service_client::AdminServiceClient;
use floodgate_proto::v1::client_service_client::ClientServiceClient;
use floodgate_proto::v1::lease_service_client::LeaseServiceClient;
use floodgate_proto::v1::relay_service_client::RelayServiceClient;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::transport::Channel;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// ctl load generator.
#[derive(Parser, Debug)]
struct Args {
    /// ctl URL.
    #[arg(long, default_value = "http://127.0.0.1:7400")]
    ctl: String,
    /// Admin token (accepted by every service).
    #[arg(long, env = "FLOODGATE_TOKEN")]
    token: String,
    /// Number of clients / streams.
    #[arg(long, default_value_t = 10_000)]
    clients: usize,
    /// HTTP/2 connections the streams are spread over.
    #[arg(long, default_value_t = 100)]
    conns: usize,
    /// Seconds of lease acquire/release load.
    #[arg(long, default_value_t = 5)]
    lease_secs: u64,
    /// Concurrent lease requests.
    #[arg(long, default_value_t = 32)]
    lease_concurrency: usize,
    /// Seconds of progress-report load.
    #[arg(long, default_value_t = 5)]
    progress_secs: u64,
    /// Concurrent progress reports (each from another client).
    #[arg(long, default_value_t = 256)]
    progress_concurrency: usize,
    /// ctl process id, to report its memory.
    #[arg(long)]
    pid: Option<u32>,
}

fn rss(pid: Option<u32>) -> serde_json::Value {
    let Some(pid) = pid else { return serde_json::Value::Null };
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let get = |k: &str| {
        status
            .lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    serde_json::json!({"rss_kib": get("VmRSS:"), "hwm_kib": get("VmHWM:")})
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let auth = floodgate_proto::bearer(&a.token)?;
    let mut chans = Vec::new();
    for _ in 0..a.conns.max(1) {
        chans.push(Channel::from_shared(a.ctl.clone())?.connect().await.context("connect")?);
    }
    let ids: Vec<String> = (0..a.clients).map(|i| format!("bench-{i:06}")).collect();

    let t = Instant::now();
    let sem = Arc::new(tokio::sync::Semaphore::new(64));
    let mut regs = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let mut c = ClientServiceClient::with_interceptor(chans[i % chans.len()].clone(), auth.clone());
        let id = id.clone();
        let permit = sem.clone().acquire_owned().await?;
        regs.push(tokio::spawn(async move {
            let r =
                c.register_client(pb::RegisterClientRequest { id, labels: vec![], zone: "z".into() }).await;
            drop(permit);
            r.map(|_| ())
        }));
    }
    for r in regs {
        r.await??;
    }
    let register_secs = t.elapsed().as_secs_f64();

    let got = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(tokio::sync::Notify::new());
    let t = Instant::now();
    for (i, id) in ids.iter().enumerate() {
        let mut c = ClientServiceClient::with_interceptor(chans[i % chans.len()].clone(), auth.clone());
        let mut s = c.watch_tasks(pb::WatchTasksRequest { client_id: id.clone() }).await?.into_inner();
        let (got, done, n) = (got.clone(), done.clone(), a.clients);
        tokio::spawn(async move {
            if let Ok(Some(_)) = s.message().await {
                if got.fetch_add(1, Ordering::AcqRel) + 1 == n {
                    done.notify_one();
                }
            }
            // Keep the stream open until the process ends.
            while let Ok(Some(_)) = s.message().await {}
        });
    }
    let open_secs = t.elapsed().as_secs_f64();
    let mem_idle = rss(a.pid);

    let mut admin = AdminServiceClient::with_interceptor(chans[0].clone(), auth.clone())
        .max_decoding_message_size(64 << 20);
    let t = Instant::now();
    let created = admin
        .create_distribution(pb::CreateDistributionRequest {
            origin_url: "http://origin.bench/file.iso".into(),
            targets: Some(pb::TargetSelector { client_ids: ids.clone(), ..Default::default() }),
            ..Default::default()
        })
        .await?
        .into_inner();
    let create_secs = t.elapsed().as_secs_f64();
    let all = tokio::time::timeout(Duration::from_secs(120), done.notified()).await.is_ok();
    let push_secs = t.elapsed().as_secs_f64();
    let mem_after = rss(a.pid);

    let mut relay = RelayServiceClient::with_interceptor(chans[0].clone(), auth.clone());
    relay.register_relay(pb::RegisterRelayRequest { id: "bench-relay".into(), ..Default::default() }).await?;
    let ops = Arc::new(AtomicUsize::new(0));
    let end = Instant::now() + Duration::from_secs(a.lease_secs);
    let mut workers = Vec::new();
    for i in 0..a.lease_concurrency {
        let mut l = LeaseServiceClient::with_interceptor(chans[i % chans.len()].clone(), auth.clone());
        let ops = ops.clone();
        workers.push(tokio::spawn(async move {
            while Instant::now() < end {
                let r = l
                    .acquire_origin_lease(pb::AcquireLeaseRequest {
                        relay_id: "bench-relay".into(),
                        origin: "origin.bench".into(),
                        want_conns: 1,
                        ttl_ms: 5000,
                        ..Default::default()
                    })
                    .await;
                if let Ok(r) = r {
                    let id = r.into_inner().lease_id;
                    let _ = l
                        .release_origin_lease(pb::ReleaseLeaseRequest {
                            lease_id: id,
                            relay_id: "bench-relay".into(),
                            used_bytes: 0,
                        })
                        .await;
                    ops.fetch_add(2, Ordering::Relaxed);
                }
            }
        }));
    }
    for w in workers {
        w.await?;
    }
    let lease_rps = ops.load(Ordering::Relaxed) as f64 / a.lease_secs.max(1) as f64;

    // Progress: clients report RUNNING with growing byte counts, as agents do.
    let reports = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicUsize::new(0));
    let end = Instant::now() + Duration::from_secs(a.progress_secs);
    let mut workers = Vec::new();
    for i in 0..a.progress_concurrency.min(a.clients) {
        let mut c = ClientServiceClient::with_interceptor(chans[i % chans.len()].clone(), auth.clone());
        let (reports, errors, dist) = (reports.clone(), errors.clone(), created.id.clone());
        let per_worker = a.clients / a.progress_concurrency.min(a.clients).max(1);
        workers.push(tokio::spawn(async move {
            let mut n: u64 = 0;
            while Instant::now() < end {
                let client = i * per_worker + (n as usize % per_worker.max(1));
                let r = c
                    .report_progress(pb::ProgressReport {
                        client_id: format!("bench-{client:06}"),
                        dist_id: dist.clone(),
                        bytes_bt: n * 1_000_000,
                        speed_bps: 1_000_000,
                        state: pb::TaskState::Running as i32,
                        ..Default::default()
                    })
                    .await;
                match r {
                    Ok(_) => reports.fetch_add(1, Ordering::Relaxed),
                    Err(_) => errors.fetch_add(1, Ordering::Relaxed),
                };
                n += 1;
            }
        }));
    }
    for w in workers {
        w.await?;
    }
    let progress_rps = reports.load(Ordering::Relaxed) as f64 / a.progress_secs.max(1) as f64;
    println!(
        "{}",
        serde_json::json!({
            "clients": a.clients, "conns": a.conns, "dist": created.id,
            "register_secs": register_secs, "open_streams_secs": open_secs,
            "create_rpc_secs": create_secs, "all_tasks_received": all, "received": got.load(Ordering::Acquire),
            "create_to_all_received_secs": push_secs,
            "ctl_mem_streams_open": mem_idle, "ctl_mem_after_push": mem_after,
            "lease_requests_per_sec": lease_rps,
            "progress_reports_per_sec": progress_rps, "progress_errors": errors.load(Ordering::Relaxed),
        })
    );
    Ok(())
}
