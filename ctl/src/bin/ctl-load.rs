//! `ctl-load`: load generator for the ctl benchmark (see `tools/ctl-bench.sh`).
//!
//! Registers N clients, opens N `WatchTasks` streams over M HTTP/2 connections (each bound to
//! one of the `--source-addrs`, so loopback's ~28k source ports per address pair are no limit),
//! creates one distribution targeting all N, and measures the time until every stream has its
//! task. Then origin lease acquire+release pairs per second, and a burst of `ReportProgress`
//! calls from many clients at once. With `--steady-secs`, every client then reports every
//! `--report-interval-secs` (spread over the interval, as a fleet of agents does) while leases
//! keep being acquired and released: achieved reports/s against the target, latency, failures.
//! With several `--ctl` replicas the clients are spread over them; `--failover` then kills the
//! last replica (`kill -9` of its `--pid`) and measures how long its clients take to hold their
//! stream (and their task, replayed) on the others. Prints one JSON line.

#![forbid(unsafe_code)]

use anyhow::{bail, Context};
use clap::Parser;
use floodgate_proto::v1 as pb;
use floodgate_proto::v1::admin_service_client::AdminServiceClient;
use floodgate_proto::v1::client_service_client::ClientServiceClient;
use floodgate_proto::v1::lease_service_client::LeaseServiceClient;
use floodgate_proto::v1::relay_service_client::RelayServiceClient;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tonic::transport::{Channel, Endpoint, Uri};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// ctl load generator.
#[derive(Parser, Debug)]
struct Args {
    /// ctl URL; repeat for replicas (clients are spread over them in turn).
    #[arg(long, default_value = "http://127.0.0.1:7400")]
    ctl: Vec<String>,
    /// Admin token (accepted by every service).
    #[arg(long, env = "FLOODGATE_TOKEN")]
    token: String,
    /// Number of clients / streams.
    #[arg(long, default_value_t = 10_000)]
    clients: usize,
    /// HTTP/2 connections the streams are spread over (in total, over all replicas).
    #[arg(long, default_value_t = 100)]
    conns: usize,
    /// Local addresses the connections are bound to, in turn: `A-B` (an IPv4 range, e.g.
    /// `127.0.0.2-127.0.0.9`) or a comma-separated list. Default: the kernel's choice.
    #[arg(long)]
    source_addrs: Option<String>,
    /// Calls (register, stream opens, connects) in flight during setup.
    #[arg(long, default_value_t = 256)]
    setup_concurrency: usize,
    /// Seconds of lease acquire/release load (0: skip).
    #[arg(long, default_value_t = 5)]
    lease_secs: u64,
    /// Concurrent lease requests.
    #[arg(long, default_value_t = 32)]
    lease_concurrency: usize,
    /// Seconds of the progress-report burst (0: skip).
    #[arg(long, default_value_t = 5)]
    progress_secs: u64,
    /// Concurrent progress reports in the burst (each from another client).
    #[arg(long, default_value_t = 256)]
    progress_concurrency: usize,
    /// Seconds of the steady phase: every client reports every `--report-interval-secs`,
    /// leases continue (0: skip).
    #[arg(long, default_value_t = 0)]
    steady_secs: u64,
    /// Report interval of each client in the steady phase.
    #[arg(long, default_value_t = 5.0)]
    report_interval_secs: f64,
    /// ctl process ids (one per `--ctl`, same order), to report their memory and CPU.
    #[arg(long)]
    pid: Vec<u32>,
    /// After the other phases, kill -9 the last replica and time its clients' move to the others.
    #[arg(long)]
    failover: bool,
}

/// `/proc` figures of one process: memory now and at peak, CPU seconds so far.
fn proc_stats(pid: u32) -> serde_json::Value {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let get = |k: &str| {
        status
            .lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    serde_json::json!({"rss_kib": get("VmRSS:"), "hwm_kib": get("VmHWM:"), "cpu_secs": cpu_secs(pid)})
}

/// User + system CPU seconds of `pid` (`/proc/PID/stat`, at the usual 100 ticks per second).
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name may hold spaces; fields after it are plain.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the line; `rest` starts at field 3.
    (tick(11) + tick(12)) / 100.0
}

/// Every watched process, and this one.
fn mem(pids: &[u32]) -> serde_json::Value {
    let ctl: Vec<_> = pids.iter().map(|&p| proc_stats(p)).collect();
    serde_json::json!({"ctl": ctl, "load": proc_stats(std::process::id())})
}

/// Parses `A-B` or `A,B,C` into addresses.
fn parse_addrs(s: &str) -> anyhow::Result<Vec<Ipv4Addr>> {
    if let Some((a, b)) = s.split_once('-') {
        let (a, b): (Ipv4Addr, Ipv4Addr) = (a.trim().parse()?, b.trim().parse()?);
        let (a, b) = (u32::from(a), u32::from(b));
        if b < a || b - a > 4096 {
            bail!("bad address range {s:?}");
        }
        return Ok((a..=b).map(Ipv4Addr::from).collect());
    }
    s.split(',').map(|a| a.trim().parse().with_context(|| format!("bad address {a:?}"))).collect()
}

/// One HTTP/2 connection to `url`, its TCP socket bound to `source` (port chosen by the kernel).
async fn connect(url: &str, source: Option<Ipv4Addr>) -> anyhow::Result<Channel> {
    let ep = Endpoint::from_shared(url.to_string())?.connect_timeout(Duration::from_secs(10));
    let Some(source) = source else { return Ok(ep.connect().await?) };
    let connector = tower::service_fn(move |uri: Uri| async move {
        let host = uri.host().unwrap_or("127.0.0.1").trim_matches(['[', ']']).to_string();
        let port = uri.port_u16().unwrap_or(80);
        let addr = tokio::net::lookup_host((host.as_str(), port))
            .await?
            .find(SocketAddr::is_ipv4)
            .ok_or_else(|| std::io::Error::other("no IPv4 address for ctl"))?;
        let sock = tokio::net::TcpSocket::new_v4()?;
        sock.bind(SocketAddr::new(source.into(), 0))?;
        let stream = sock.connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
    });
    Ok(ep.connect_with_connector(connector).await?)
}

/// p-th percentile (0–100) of sorted microseconds, in milliseconds.
fn pct(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p / 100.0).round() as usize;
    f64::from(sorted[i.min(sorted.len() - 1)]) / 1000.0
}

/// Lease acquire+release pairs until `end`, from `n` workers; returns requests per second.
async fn lease_load(chans: &[Channel], auth: &floodgate_proto::Bearer, n: usize, secs: u64) -> f64 {
    let ops = Arc::new(AtomicUsize::new(0));
    let end = Instant::now() + Duration::from_secs(secs);
    let mut workers = JoinSet::new();
    for i in 0..n {
        let mut l = LeaseServiceClient::with_interceptor(chans[i % chans.len()].clone(), auth.clone());
        let ops = ops.clone();
        workers.spawn(async move {
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
                } else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        });
    }
    while workers.join_next().await.is_some() {}
    ops.load(Ordering::Relaxed) as f64 / secs.max(1) as f64
}

/// What the client tasks count.
#[derive(Default)]
struct Counts {
    /// Streams opened (first time).
    opened: AtomicUsize,
    /// Clients that received the distribution's task (first time).
    got: AtomicUsize,
    /// Assign events for the distribution at a revision the stream already delivered.
    dup: AtomicUsize,
    /// Clients whose stream ended and that hold a new one with the task again.
    moved: AtomicUsize,
    /// Microseconds since `t0` at which the last move completed.
    last_move_us: AtomicU64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let auth = floodgate_proto::Bearer::new(&a.token).context("the token is not ASCII")?;
    let sources = match &a.source_addrs {
        Some(s) => parse_addrs(s)?.into_iter().map(Some).collect(),
        None => vec![None],
    };
    let nctl = a.ctl.len().max(1);
    let per_ctl = (a.conns / nctl).max(1);
    let sem = Arc::new(Semaphore::new(a.setup_concurrency.max(1)));

    // chans[c][k]: connection k to replica c.
    let t = Instant::now();
    let mut chans: Vec<Vec<Channel>> = Vec::new();
    for url in &a.ctl {
        let mut set = JoinSet::new();
        for k in 0..per_ctl {
            let (url, src, sem) =
                (url.clone(), sources[(chans.len() * per_ctl + k) % sources.len()], sem.clone());
            set.spawn(async move {
                let _p = sem.acquire_owned().await?;
                connect(&url, src).await.with_context(|| format!("connect to {url} from {src:?}"))
            });
        }
        let mut v = Vec::with_capacity(per_ctl);
        while let Some(r) = set.join_next().await {
            v.push(r??);
        }
        chans.push(v);
    }
    let connect_secs = t.elapsed().as_secs_f64();
    let chan_of = |i: usize, replica: usize| chans[replica][(i / nctl) % per_ctl].clone();
    let ids: Arc<Vec<String>> = Arc::new((0..a.clients).map(|i| format!("bench-{i:06}")).collect());

    let t = Instant::now();
    let mut regs = JoinSet::new();
    for (i, id) in ids.iter().enumerate() {
        let mut c = ClientServiceClient::with_interceptor(chan_of(i, i % nctl), auth.clone());
        let (id, sem) = (id.clone(), sem.clone());
        regs.spawn(async move {
            let _p = sem.acquire_owned().await?;
            c.register_client(pb::RegisterClientRequest { id, labels: vec![], zone: "z".into() }).await?;
            anyhow::Ok(())
        });
    }
    while let Some(r) = regs.join_next().await {
        r??;
    }
    let register_secs = t.elapsed().as_secs_f64();

    // One task per client: holds its stream; when the stream ends, opens it on the next replica.
    let counts = Arc::new(Counts::default());
    let dist_id = Arc::new(tokio::sync::OnceCell::<String>::new());
    let all_got = Arc::new(tokio::sync::Notify::new());
    let all_opened = Arc::new(tokio::sync::Notify::new());
    let t0 = Instant::now();
    for i in 0..a.clients {
        let replicas: Vec<Channel> = (0..nctl).map(|r| chan_of(i, (i + r) % nctl)).collect();
        let (id, counts, dist_id, auth, sem) =
            (ids[i].clone(), counts.clone(), dist_id.clone(), auth.clone(), sem.clone());
        let (all_got, all_opened, n) = (all_got.clone(), all_opened.clone(), a.clients);
        tokio::spawn(async move {
            let mut life = 0usize;
            let mut had_task = false;
            // As the agent retries (floodgate_proto::reconnect), so a failover is no tighter herd.
            let mut backoff =
                floodgate_proto::Backoff::new(floodgate_proto::FIRST_BACKOFF, Duration::from_secs(15));
            loop {
                let mut c = ClientServiceClient::with_interceptor(
                    replicas[life % replicas.len()].clone(),
                    auth.clone(),
                );
                let permit = if life == 0 { sem.clone().acquire_owned().await.ok() } else { None };
                let s = c.watch_tasks(pb::WatchTasksRequest { client_id: id.clone() }).await;
                drop(permit);
                let mut s = match s {
                    Ok(s) => s.into_inner(),
                    Err(_) => {
                        life += 1;
                        backoff.wait().await;
                        continue;
                    }
                };
                backoff.reset();
                if life == 0 && counts.opened.fetch_add(1, Ordering::AcqRel) + 1 == n {
                    all_opened.notify_one();
                }
                let mut revision_this_life = None;
                while let Ok(Some(ev)) = s.message().await {
                    let Some(pb::task_event::Event::Assign(task)) = ev.event else { continue };
                    if dist_id.get().is_some_and(|d| *d != task.dist_id) {
                        continue;
                    }
                    // A higher revision (new relay set) is an update, not a duplicate.
                    let seen = revision_this_life.replace(task.revision);
                    if seen.is_some_and(|r| r >= task.revision) {
                        counts.dup.fetch_add(1, Ordering::Relaxed);
                    } else if seen.is_some() {
                    } else if !had_task {
                        had_task = true;
                        if counts.got.fetch_add(1, Ordering::AcqRel) + 1 == n {
                            all_got.notify_one();
                        }
                    } else {
                        counts.moved.fetch_add(1, Ordering::AcqRel);
                        counts.last_move_us.fetch_max(t0.elapsed().as_micros() as u64, Ordering::AcqRel);
                    }
                }
                life += 1;
            }
        });
    }
    let opened = tokio::time::timeout(Duration::from_secs(600), all_opened.notified()).await.is_ok();
    let open_secs = t0.elapsed().as_secs_f64();
    if !opened {
        bail!("only {} of {} streams opened", counts.opened.load(Ordering::Acquire), a.clients);
    }
    // Give the last stream's replay a moment to arrive (nothing is open yet, so it is empty).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mem_idle = mem(&a.pid);

    // One relay, registered before the distribution (so it is the task's relay from revision 1)
    // and kept alive by heartbeats (so ctl does not reap it and push the task again mid-run).
    let mut relay = RelayServiceClient::with_interceptor(chans[0][0].clone(), auth.clone());
    relay.register_relay(pb::RegisterRelayRequest { id: "bench-relay".into(), ..Default::default() }).await?;
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(3)).await;
            let _ = relay
                .relay_heartbeat(pb::RelayHeartbeatRequest { id: "bench-relay".into(), ..Default::default() })
                .await;
        }
    });
    let mut admin = AdminServiceClient::with_interceptor(chans[0][0].clone(), auth.clone())
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20);
    let t = Instant::now();
    let created = admin
        .create_distribution(pb::CreateDistributionRequest {
            origin_url: "http://origin.bench/file.iso".into(),
            targets: Some(pb::TargetSelector { client_ids: ids.to_vec(), ..Default::default() }),
            ..Default::default()
        })
        .await?
        .into_inner();
    let create_secs = t.elapsed().as_secs_f64();
    let _ = dist_id.set(created.id.clone());
    let all = tokio::time::timeout(Duration::from_secs(120), all_got.notified()).await.is_ok();
    let push_secs = t.elapsed().as_secs_f64();
    let mem_after = mem(&a.pid);

    let flat: Vec<Channel> = chans.iter().flatten().cloned().collect();
    let lease_rps = if a.lease_secs > 0 {
        lease_load(&flat, &auth, a.lease_concurrency, a.lease_secs).await
    } else {
        0.0
    };

    // Burst: clients report RUNNING with growing byte counts as fast as ctl answers.
    let reports = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicUsize::new(0));
    let end = Instant::now() + Duration::from_secs(a.progress_secs);
    let mut workers = JoinSet::new();
    let burst = if a.progress_secs > 0 { a.progress_concurrency.min(a.clients) } else { 0 };
    for i in 0..burst {
        let mut c = ClientServiceClient::with_interceptor(flat[i % flat.len()].clone(), auth.clone());
        let (reports, errors, dist) = (reports.clone(), errors.clone(), created.id.clone());
        let per_worker = a.clients / burst.max(1);
        workers.spawn(async move {
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
        });
    }
    while workers.join_next().await.is_some() {}
    let progress_rps = reports.load(Ordering::Relaxed) as f64 / a.progress_secs.max(1) as f64;

    let steady =
        if a.steady_secs > 0 { Some(steady(&a, &chans, &auth, &ids, &created.id).await) } else { None };
    let mem_steady = mem(&a.pid);

    let failover = if a.failover && nctl > 1 && a.pid.len() == nctl {
        let victim = a.pid[nctl - 1];
        let victims = (0..a.clients).filter(|i| i % nctl == nctl - 1).count();
        let t = t0.elapsed();
        let status = std::process::Command::new("kill").args(["-9", &victim.to_string()]).status()?;
        if !status.success() {
            bail!("kill -9 {victim} failed");
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        while counts.moved.load(Ordering::Acquire) < victims && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let last = Duration::from_micros(counts.last_move_us.load(Ordering::Acquire));
        Some(serde_json::json!({
            "killed_pid": victim, "clients_of_killed": victims,
            "moved": counts.moved.load(Ordering::Acquire),
            "kill_to_last_moved_secs": last.saturating_sub(t).as_secs_f64(),
            "mem_after": mem(&a.pid[..nctl - 1]),
        }))
    } else {
        None
    };

    println!(
        "{}",
        serde_json::json!({
            "clients": a.clients, "conns": a.conns, "replicas": nctl, "source_addrs": sources.len(),
            "dist": created.id, "connect_secs": connect_secs,
            "register_secs": register_secs, "open_streams_secs": open_secs,
            "create_rpc_secs": create_secs, "all_tasks_received": all, "received": counts.got.load(Ordering::Acquire),
            "duplicate_assigns": counts.dup.load(Ordering::Acquire),
            "create_to_all_received_secs": push_secs,
            "mem_streams_open": mem_idle, "mem_after_push": mem_after,
            "lease_requests_per_sec": lease_rps,
            "progress_burst_reports_per_sec": progress_rps, "progress_burst_errors": errors.load(Ordering::Relaxed),
            "steady": steady, "mem_after_steady": mem_steady, "failover": failover,
        })
    );
    Ok(())
}

/// The steady phase: every client reports every interval at its own offset in it, leases
/// continue; ctl's memory is sampled every second.
async fn steady(
    a: &Args,
    chans: &[Vec<Channel>],
    auth: &floodgate_proto::Bearer,
    ids: &Arc<Vec<String>>,
    dist: &str,
) -> serde_json::Value {
    let nctl = chans.len();
    let per_ctl = chans[0].len();
    let interval = Duration::from_secs_f64(a.report_interval_secs.max(0.01));
    let secs = a.steady_secs;
    let start = Instant::now() + Duration::from_millis(200);
    let end = start + Duration::from_secs(secs);
    let errors = Arc::new(AtomicUsize::new(0));
    let cpu0: Vec<f64> = a.pid.iter().map(|&p| cpu_secs(p)).collect();
    let load_cpu0 = cpu_secs(std::process::id());
    let mut reporters = JoinSet::new();
    for i in 0..a.clients {
        let mut c = ClientServiceClient::with_interceptor(
            chans[i % nctl][(i / nctl) % per_ctl].clone(),
            auth.clone(),
        );
        let (id, dist, errors) = (ids[i].clone(), dist.to_string(), errors.clone());
        let offset = interval.mul_f64(i as f64 / a.clients as f64);
        reporters.spawn(async move {
            let mut lat: Vec<u32> = Vec::new();
            let mut late = 0u32;
            let mut next = start + offset;
            let mut n: u64 = 1;
            while next < end {
                tokio::time::sleep_until(next.into()).await;
                let t = Instant::now();
                let r = c
                    .report_progress(pb::ProgressReport {
                        client_id: id.clone(),
                        dist_id: dist.clone(),
                        bytes_bt: n * 1_000_000,
                        speed_bps: 1_000_000,
                        state: pb::TaskState::Running as i32,
                        ..Default::default()
                    })
                    .await;
                match r {
                    Ok(_) => lat.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32),
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                n += 1;
                next += interval;
                // A report slower than the interval: the next one goes at once (behind).
                if Instant::now() > next {
                    late += 1;
                }
            }
            (lat, late)
        });
    }
    let flat: Vec<Channel> = chans.iter().flatten().cloned().collect();
    let (lease_chans, lease_auth, lease_n) = (flat.clone(), auth.clone(), a.lease_concurrency);
    let lease = tokio::spawn(async move {
        tokio::time::sleep_until(start.into()).await;
        lease_load(&lease_chans, &lease_auth, lease_n, secs).await
    });
    let pids = a.pid.clone();
    let sampler = tokio::spawn(async move {
        let mut max_rss = vec![0u64; pids.len()];
        while Instant::now() < end {
            for (m, &p) in max_rss.iter_mut().zip(&pids) {
                let rss = proc_stats(p)["rss_kib"].as_u64().unwrap_or(0);
                *m = (*m).max(rss);
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        max_rss
    });
    let mut lat: Vec<u32> = Vec::new();
    let mut late = 0u64;
    while let Some(r) = reporters.join_next().await {
        if let Ok((l, n)) = r {
            lat.extend(l);
            late += u64::from(n);
        }
    }
    // Reports are due until `end`; the last ones may finish after it.
    let wall = start.elapsed().as_secs_f64();
    let lease_rps = lease.await.unwrap_or(0.0);
    let max_rss = sampler.await.unwrap_or_default();
    lat.sort_unstable();
    let ok = lat.len();
    let target = a.clients as f64 / a.report_interval_secs;
    let cpu: Vec<f64> = a.pid.iter().zip(&cpu0).map(|(&p, c0)| cpu_secs(p) - c0).collect();
    serde_json::json!({
        "secs": secs, "interval_secs": a.report_interval_secs,
        "target_reports_per_sec": target,
        "achieved_reports_per_sec": ok as f64 / wall,
        "reports_ok": ok, "reports_failed": errors.load(Ordering::Relaxed),
        "reports_behind_schedule": late, "wall_secs": wall,
        "latency_ms": {"p50": pct(&lat, 50.0), "p90": pct(&lat, 90.0), "p99": pct(&lat, 99.0), "max": pct(&lat, 100.0)},
        "lease_requests_per_sec": lease_rps,
        "ctl_max_rss_kib": max_rss, "ctl_cpu_secs": cpu,
        "load_cpu_secs": cpu_secs(std::process::id()) - load_cpu0,
    })
}
