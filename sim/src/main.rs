//! `floodgate-sim`: simulate a distribution (`run`) or plan a rollout's relays (`plan`).

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use floodgate_sim::leasebook::LeasePolicy;
use floodgate_sim::mix::Mix;
use floodgate_sim::units::{parse_rate, parse_size, show_rate, show_size};
use floodgate_sim::{planner, plot, run, Scenario};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "floodgate-sim",
    about = "Simulate a Floodgate distribution on the project's real policy code"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Simulate one distribution; prints a summary, writes CSV curves and a PNG plot.
    Run {
        #[command(flatten)]
        fleet: Fleet,
        /// Relays (default: ctl's relay_count, 2 % of the clients).
        #[arg(long)]
        relays: Option<usize>,
        /// Write per-second curves (CSV) here.
        #[arg(long)]
        curves: Option<PathBuf>,
        /// Write one line per client (CSV) here.
        #[arg(long)]
        per_client: Option<PathBuf>,
        /// Draw the curves (PNG) here.
        #[arg(long)]
        plot: Option<PathBuf>,
    },
    /// How many relays to use: simulates 1–5 % relays and picks the fewest meeting the goals.
    Plan {
        #[command(flatten)]
        fleet: Fleet,
        /// Clients simulated per candidate (the fleet itself if smaller).
        #[arg(long, default_value_t = 20_000)]
        sample: usize,
        /// Goal: last completion within this many times the Kumar–Ross bound.
        #[arg(long, default_value_t = 1.3)]
        target: f64,
    },
}

#[derive(Args)]
struct Fleet {
    /// Clients (fleet size).
    #[arg(long, default_value_t = 1000)]
    clients: usize,
    /// File size (e.g. 1GiB, 256MiB).
    #[arg(long, default_value = "1GiB", value_parser = parse_size)]
    file_size: u64,
    /// Client mix: weights of dc, office, home (NAT, no inbound), blocked (no P2P), e.g.
    /// dc:10,office:40,home:40,blocked:10; or "uniform" (every client --client-up/--client-down).
    #[arg(long, default_value = "dc:10,office:40,home:50")]
    mix: String,
    /// Upload of every client with --mix uniform (e.g. 80mbit).
    #[arg(long, default_value = "80mbit", value_parser = parse_rate)]
    client_up: f64,
    /// Download of every client with --mix uniform.
    #[arg(long, default_value = "400mbit", value_parser = parse_rate)]
    client_down: f64,
    /// Round trip of every client with --mix uniform, ms.
    #[arg(long, default_value_t = 1.0)]
    client_rtt_ms: f64,
    /// Origin upload cap (ctl's global rate limit).
    #[arg(long, default_value = "1gbit", value_parser = parse_rate)]
    origin_cap: f64,
    /// Global origin byte quota for the distribution (default: none).
    #[arg(long, value_parser = parse_size)]
    origin_quota: Option<u64>,
    /// Relay uplink (and downlink).
    #[arg(long, default_value = "1gbit", value_parser = parse_rate)]
    relay_up: f64,
    /// BitTorrent seeds holding the file at start (the netns harness' seed; 0 in a rollout).
    #[arg(long, default_value_t = 0)]
    seeds: usize,
    /// Upload of each seed.
    #[arg(long, default_value = "200mbit", value_parser = parse_rate)]
    seed_up: f64,
    /// Pieces the file is cut into.
    #[arg(long, default_value_t = 256)]
    pieces: u32,
    /// Neighbours each node dials (edges are two-way).
    #[arg(long, default_value_t = 20)]
    dial: usize,
    /// Most concurrent BitTorrent downloads per node.
    #[arg(long, default_value_t = 8)]
    max_sources: usize,
    /// Gap-fill threshold (the switch's BitTorrent slow threshold).
    #[arg(long, default_value = "500KB/s", value_parser = parse_rate)]
    threshold: f64,
    /// No HTTP gap-filling (floodgate get --no-http).
    #[arg(long)]
    no_http: bool,
    /// Share of link rates that carries payload (TCP/IP headers; 1448/1514 by default).
    #[arg(long, default_value_t = 1448.0 / 1514.0)]
    link_efficiency: f64,
    /// Time step, seconds (default: automatic).
    #[arg(long)]
    dt: Option<f64>,
    /// Stop after this much virtual time, seconds.
    #[arg(long, default_value_t = 86_400.0)]
    horizon: f64,
    /// Origin rate each relay asks ctl for (the relay's --origin-rate; default: as much as fair).
    #[arg(long, value_parser = parse_rate)]
    relay_origin_rate: Option<f64>,
    /// ctl's rate for a new lease when holders have the whole origin rate: holders (ctl's
    /// compute_grant: the share counts only relays holding leases, so the first relay gets
    /// everything and later ones are refused until it lets go) or make-room (a what-if ctl does
    /// not have: each new relay takes its weighted share and the holders are cut).
    #[arg(long, default_value = "holders", value_parser = ["holders", "make-room"])]
    lease_policy: String,
    /// RNG seed (topology, relay pool).
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

impl Fleet {
    fn scenario(&self) -> anyhow::Result<Scenario> {
        let mix = if self.mix == "uniform" {
            Mix::uniform(self.client_up, self.client_down, self.client_rtt_ms / 1000.0)
        } else {
            Mix::parse(&self.mix)?
        };
        let mut s = Scenario {
            clients: self.clients,
            mix,
            relay_up: self.relay_up,
            relay_down: self.relay_up,
            seeds: self.seeds,
            seed_up: self.seed_up,
            file_size: self.file_size,
            pieces: self.pieces,
            origin_cap: self.origin_cap,
            origin_quota: self.origin_quota,
            dial: self.dial,
            max_sources: self.max_sources,
            http: !self.no_http,
            dt: self.dt,
            link_efficiency: self.link_efficiency,
            horizon: self.horizon,
            seed: self.seed,
            relay_origin_rate: self.relay_origin_rate.unwrap_or(0.0),
            lease_policy: if self.lease_policy == "holders" {
                LeasePolicy::Holders
            } else {
                LeasePolicy::MakeRoom
            },
            ..Scenario::default()
        };
        s.switch.threshold = self.threshold as u64;
        Ok(s)
    }
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().cmd {
        Cmd::Run { fleet, relays, curves, per_client, plot: png } => {
            let mut s = fleet.scenario()?;
            s.relays = relays;
            let started = Instant::now();
            let out = run(&s)?;
            let wall = started.elapsed();
            print!("{}", out.summary(s.switch.threshold as f64));
            println!("wall time {:.2} s", wall.as_secs_f64());
            if let Some(p) = curves {
                let mut w =
                    BufWriter::new(File::create(&p).with_context(|| format!("create {}", p.display()))?);
                out.write_curves(&mut w)?;
            }
            if let Some(p) = per_client {
                let mut w =
                    BufWriter::new(File::create(&p).with_context(|| format!("create {}", p.display()))?);
                out.write_clients(&mut w)?;
            }
            if let Some(p) = png {
                let title =
                    format!("{} clients, {} relays, {}", out.clients, out.relays, show_size(out.file));
                plot::plot(&out, &p, &title)?;
            }
        }
        Cmd::Plan { fleet, sample, target } => {
            let s = fleet.scenario()?;
            let started = Instant::now();
            let plan = planner::plan(&s, sample, target)?;
            println!(
                "fleet {} clients ({}), file {}, origin cap {}, relay uplink {}; simulated {} clients per candidate",
                plan.fleet,
                fleet.mix,
                show_size(s.file_size as f64),
                show_rate(s.origin_cap),
                show_rate(s.relay_up),
                plan.sample
            );
            println!("relays  share  last (s)  bound (s)  last/bound  origin bytes  x file x relays  slowest client  ok");
            for c in &plan.candidates {
                let o = &c.outcome;
                let origin_fleet = o.origin_total() * c.relays as f64 / c.sample_relays as f64;
                println!(
                    "{:>6}  {:>4.1}%  {:>8}  {:>9.1}  {:>10}  {:>12}  {:>15.3}  {:>14}  {}",
                    c.relays,
                    100.0 * c.relays as f64 / plan.fleet as f64,
                    o.last().map_or("-".into(), |l| format!("{l:.1}")),
                    o.bound,
                    o.last().map_or("-".into(), |l| format!("{:.2}", l / o.bound)),
                    show_size(origin_fleet),
                    o.origin_total() / (o.file * c.sample_relays as f64),
                    show_rate(o.min_rate()),
                    if c.ok { "yes" } else { "no" }
                );
            }
            match plan.chosen {
                Some(i) => {
                    let c = &plan.candidates[i];
                    let o = &c.outcome;
                    println!(
                        "plan: {} relays; expected completion {:.1} s (bound {:.1} s), origin bytes {}",
                        c.relays,
                        o.last().unwrap_or(f64::NAN),
                        o.bound,
                        show_size(o.origin_total() * c.relays as f64 / c.sample_relays as f64)
                    );
                }
                None => println!(
                    "plan: no candidate met the goals (see the table); raise the origin cap or relay uplinks"
                ),
            }
            let _ = Duration::ZERO;
            println!("wall time {:.1} s", started.elapsed().as_secs_f64());
        }
    }
    Ok(())
}
