//! Who the nodes are and who is connected to whom.
//!
//! Node ids: clients `0..clients`, then relays, then seeds. Every BitTorrent-capable node dials
//! `dial` random others (a tracker answer); an edge needs one side that accepts inbound, so two
//! NAT'd clients never connect, and P2P-blocked clients have no edge at all. Each client also
//! knows `relays_per_client` relays (BitTorrent peers unless blocked, and its HTTP sources).
//! Relays come from ctl's real selection: a pool twice the wanted count with random load, zone
//! and origin latency is ranked by `selection::rank`, and the best are used, in rank order.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::ctl::relay_row::RelayRow;
use crate::ctl::selection;
use crate::scenario::Scenario;

/// What a node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Must finish; counted in the outcome.
    Client,
    /// Pulls from the origin under a lease, serves BitTorrent and HTTP Range.
    Relay,
    /// Holds the whole file from the start; uploads over BitTorrent only.
    Seed,
}

/// The nodes and their links.
#[derive(Debug)]
pub struct Topology {
    /// Client count.
    pub clients: usize,
    /// Relay count.
    pub relays: usize,
    /// Seed count.
    pub seeds: usize,
    /// Upload per node, bytes/s.
    pub up: Vec<f64>,
    /// Download per node, bytes/s.
    pub down: Vec<f64>,
    /// Request round trip per node, seconds.
    pub rtt: Vec<f32>,
    /// Behind a NAT (no inbound).
    pub nat: Vec<bool>,
    /// BitTorrent blocked.
    pub blocked: Vec<bool>,
    /// CSR adjacency: node `i`'s neighbours are `adj[offsets[i]..offsets[i + 1]]`, sorted.
    pub offsets: Vec<u32>,
    /// See `offsets`.
    pub adj: Vec<u32>,
    /// Each client's HTTP sources (relay node ids), `relays_per_client` per client.
    pub http_sources: Vec<u32>,
    /// The chosen relays' rows, in ctl's rank order (node id `clients + i` is row `i`).
    pub relay_rows: Vec<RelayRow>,
}

impl Topology {
    /// Total nodes.
    pub fn len(&self) -> usize {
        self.clients + self.relays + self.seeds
    }

    /// Whether there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What node `i` is.
    pub fn kind(&self, i: usize) -> Kind {
        if i < self.clients {
            Kind::Client
        } else if i < self.clients + self.relays {
            Kind::Relay
        } else {
            Kind::Seed
        }
    }

    /// Node `i`'s neighbours.
    pub fn neighbours(&self, i: usize) -> &[u32] {
        &self.adj[self.offsets[i] as usize..self.offsets[i + 1] as usize]
    }

    /// Client `c`'s HTTP sources.
    pub fn http_sources_of(&self, c: usize, per_client: usize) -> &[u32] {
        if per_client == 0 || self.http_sources.is_empty() {
            return &[];
        }
        &self.http_sources[c * per_client..(c + 1) * per_client]
    }

    /// Builds the topology of `s`.
    pub fn build(s: &Scenario) -> Self {
        let mut rng = StdRng::seed_from_u64(s.seed);
        let n = s.clients;
        let r = s.relay_count();
        let total = n + r + s.seeds;
        let mut up = Vec::with_capacity(total);
        let mut down = Vec::with_capacity(total);
        let mut rtt = Vec::with_capacity(total);
        let mut nat = Vec::with_capacity(total);
        let mut blocked = Vec::with_capacity(total);
        for i in 0..n {
            let c = s.mix.class_of(i, n);
            up.push(c.up);
            down.push(c.down);
            rtt.push(c.rtt as f32);
            nat.push(c.nat);
            blocked.push(c.p2p_blocked);
        }
        for _ in 0..r {
            up.push(s.relay_up);
            down.push(s.relay_down);
            rtt.push(0.005);
            nat.push(false);
            blocked.push(false);
        }
        for _ in 0..s.seeds {
            up.push(s.seed_up);
            down.push(s.seed_up);
            rtt.push(0.001);
            nat.push(false);
            blocked.push(false);
        }
        let relay_rows = choose_relays(r, s.relay_up, &mut rng);

        // Clients are stored class by class; dial targets are drawn uniformly, so classes mix.
        let bt: Vec<u32> = (0..total as u32).filter(|&i| !blocked[i as usize]).collect();
        let mut edges: Vec<(u32, u32)> = Vec::new();
        let connectable = |a: u32, b: u32| a != b && !(nat[a as usize] && nat[b as usize]);
        if bt.len() <= 2 * s.dial + 1 {
            for (x, &a) in bt.iter().enumerate() {
                for &b in &bt[x + 1..] {
                    if connectable(a, b) {
                        edges.push((a, b));
                    }
                }
            }
        } else {
            edges.reserve(bt.len() * s.dial);
            for &a in &bt {
                let mut made = 0;
                let mut tries = 0;
                while made < s.dial && tries < s.dial * 8 {
                    tries += 1;
                    let b = bt[rng.random_range(0..bt.len())];
                    if connectable(a, b) {
                        edges.push((a.min(b), a.max(b)));
                        made += 1;
                    }
                }
            }
        }
        let mut http_sources = Vec::new();
        if r > 0 {
            let per = s.relays_per_client.min(r);
            http_sources.reserve(n * per);
            for c in 0..n as u32 {
                let first = rng.random_range(0..r);
                for k in 0..per {
                    let relay = (n + (first + k) % r) as u32;
                    http_sources.push(relay);
                    if !blocked[c as usize] {
                        edges.push((c, relay));
                    }
                }
            }
        }
        let (offsets, adj) = csr(total, &edges);
        Topology {
            clients: n,
            relays: r,
            seeds: s.seeds,
            up,
            down,
            rtt,
            nat,
            blocked,
            offsets,
            adj,
            http_sources,
            relay_rows,
        }
    }
}

/// Undirected edges to a sorted, de-duplicated CSR adjacency.
fn csr(nodes: usize, edges: &[(u32, u32)]) -> (Vec<u32>, Vec<u32>) {
    let mut deg = vec![0u32; nodes + 1];
    for &(a, b) in edges {
        deg[a as usize] += 1;
        deg[b as usize] += 1;
    }
    let mut offsets = vec![0u32; nodes + 1];
    for i in 0..nodes {
        offsets[i + 1] = offsets[i] + deg[i];
    }
    let mut fill = offsets.clone();
    let mut adj = vec![0u32; offsets[nodes] as usize];
    for &(a, b) in edges {
        adj[fill[a as usize] as usize] = b;
        fill[a as usize] += 1;
        adj[fill[b as usize] as usize] = a;
        fill[b as usize] += 1;
    }
    // Sort and de-duplicate each list, compacting in place.
    let mut out = 0usize;
    let mut new_offsets = vec![0u32; nodes + 1];
    for i in 0..nodes {
        let (s, e) = (offsets[i] as usize, offsets[i + 1] as usize);
        adj[s..e].sort_unstable();
        let mut last = u32::MAX;
        for k in s..e {
            let v = adj[k];
            if v != last {
                adj[out] = v;
                out += 1;
                last = v;
            }
        }
        new_offsets[i + 1] = out as u32;
    }
    adj.truncate(out);
    adj.shrink_to_fit();
    (new_offsets, adj)
}

/// ctl's relay choice over a random pool of `2 × wanted` relays (two zones; the targets are
/// all in the first).
fn choose_relays(wanted: usize, capacity: f64, rng: &mut StdRng) -> Vec<RelayRow> {
    if wanted == 0 {
        return Vec::new();
    }
    let pool: Vec<RelayRow> = (0..wanted * 2)
        .map(|i| RelayRow {
            id: format!("relay-{i:06}"),
            addresses: Vec::new(),
            zone: if i % 2 == 0 { "z0".into() } else { "z1".into() },
            capacity_bps: capacity as i64,
            load: rng.random_range(0.0..0.8),
            origin_rate_bps: 0,
            origin_latency_ms: rng.random_range(10.0..300.0),
            origin_errors: i64::from(rng.random_range(0..10) == 0),
            bytes_served: 0,
            last_seen_ms: 0,
            alive: true,
        })
        .collect();
    let zones = vec!["z0".to_string()];
    let ranked = selection::rank(&pool, &zones, &Default::default(), &[]);
    let by_id: std::collections::HashMap<&str, &RelayRow> = pool.iter().map(|r| (r.id.as_str(), r)).collect();
    ranked.iter().take(wanted).filter_map(|id| by_id.get(id.as_str()).map(|r| (*r).clone())).collect()
}
