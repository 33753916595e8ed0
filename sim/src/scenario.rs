//! Everything one simulated distribution depends on.

use std::time::Duration;

use floodgate_engine::gapfill::SwitchConfig;

use crate::leasebook::LeasePolicy;
use crate::mix::Mix;

/// One distribution to simulate. [`Scenario::default`] is a small healthy fleet.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Clients that must finish.
    pub clients: usize,
    /// Their mix of machine classes.
    pub mix: Mix,
    /// Relays (`None`: ctl's `relay_count`, 2 % of the clients).
    pub relays: Option<usize>,
    /// Relay upload and download, bytes/s.
    pub relay_up: f64,
    /// Relay download, bytes/s.
    pub relay_down: f64,
    /// Nodes that hold the whole file at start and only upload over BitTorrent (the netns
    /// harness' seed); 0 in a Floodgate rollout, where relays pull from the origin.
    pub seeds: usize,
    /// Upload of each seed, bytes/s.
    pub seed_up: f64,
    /// File size, bytes.
    pub file_size: u64,
    /// Pieces the file is cut into (the simulated piece is `file_size / pieces` bytes).
    pub pieces: u32,
    /// Origin upload cap, bytes/s (ctl's global rate limit is set to it too).
    pub origin_cap: f64,
    /// Global origin byte quota for the distribution (`None`: unlimited).
    pub origin_quota: Option<u64>,
    /// Global origin connection limit (`None`: unlimited).
    pub origin_conns: Option<i64>,
    /// Origin connections a relay asks for (its parallel Range pulls).
    pub relay_pull_conns: i64,
    /// Origin rate a relay asks ctl for, bytes/s (the relay's `--origin-rate`; 0: as much as
    /// fair, ctl's share of the limit).
    pub relay_origin_rate: f64,
    /// Bytes one Range request carries (relay pulls and client gap-filling).
    pub run_bytes: u64,
    /// ctl's lease TTL; relays renew at a third of it.
    pub lease_ttl: Duration,
    /// How ctl finds a new lease's rate when the holders have the whole origin rate.
    pub lease_policy: LeasePolicy,
    /// Neighbours each node dials (a tracker's numwant); edges are two-way, so degree ≈ 2×.
    pub dial: usize,
    /// Most concurrent BitTorrent downloads of one node (one per neighbour).
    pub max_sources: usize,
    /// Relays each client knows (as BitTorrent peers and HTTP sources).
    pub relays_per_client: usize,
    /// The clients' gap-fill switch settings (threshold, window, cooldown, …).
    pub switch: SwitchConfig,
    /// Whether clients fill gaps over HTTP at all (`floodgate get --no-http` when false).
    pub http: bool,
    /// Share of a link's rate that carries payload: 1448 of every 1514 bytes on Ethernet with
    /// TCP timestamps (0.956); the links' rates (and the bound) are the raw ones, as `tc` sets.
    pub link_efficiency: f64,
    /// Time step, seconds (`None`: a third of the time one piece takes at the clients' mean
    /// upload, within 5 ms–0.5 s). Pieces land at their exact times whatever the step; the
    /// step is how often rates are recomputed and new requests start.
    pub dt: Option<f64>,
    /// Stop after this much virtual time, seconds.
    pub horizon: f64,
    /// Seed of the simulator's RNG (topology, relay pool). The engine's picker breaks ties with
    /// its own thread RNG, so runs with one seed agree closely but not bit for bit.
    pub seed: u64,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            clients: 1000,
            mix: Mix::parse("dc:10,office:40,home:50").unwrap_or_else(|_| Mix::uniform(1e7, 1e7, 0.01)),
            relays: None,
            relay_up: 1e9 / 8.0,
            relay_down: 1e9 / 8.0,
            seeds: 0,
            seed_up: 200e6 / 8.0,
            file_size: 1 << 30,
            pieces: 256,
            origin_cap: 1e9 / 8.0,
            origin_quota: None,
            origin_conns: None,
            relay_pull_conns: 3,
            relay_origin_rate: 0.0,
            run_bytes: 4 << 20,
            lease_ttl: Duration::from_secs(30),
            lease_policy: LeasePolicy::Holders,
            dial: 20,
            max_sources: 8,
            relays_per_client: 1,
            switch: SwitchConfig::default(),
            http: true,
            link_efficiency: 1448.0 / 1514.0,
            dt: None,
            horizon: 86_400.0,
            seed: 1,
        }
    }
}

impl Scenario {
    /// The relay count used: the given one, or ctl's `relay_count(clients)`.
    pub fn relay_count(&self) -> usize {
        self.relays.unwrap_or_else(|| crate::ctl::selection::relay_count(self.clients) as usize)
    }

    /// Bytes of one simulated piece (the last may be shorter).
    pub fn piece_bytes(&self) -> f64 {
        self.file_size as f64 / f64::from(self.pieces.max(1))
    }
}
