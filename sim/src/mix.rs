//! The kinds of client machine and a fleet's mix of them.
//!
//! `--mix dc:20,office:30,home:40,blocked:10` (weights, any scale) or `--mix uniform` (every
//! client gets `--client-up` / `--client-down`, as in the netns harness).

/// One kind of client machine.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Class {
    /// Name on the command line.
    pub name: &'static str,
    /// Upload, bytes/s.
    pub up: f64,
    /// Download, bytes/s.
    pub down: f64,
    /// Round trip to anyone, seconds.
    pub rtt: f64,
    /// Behind a NAT that accepts no inbound connection (may dial out only).
    pub nat: bool,
    /// BitTorrent blocked altogether (HTTP only).
    pub p2p_blocked: bool,
}

const MBIT: f64 = 1e6 / 8.0;

/// The built-in classes: data-center, office, home behind NAT, P2P-blocked office.
pub const CLASSES: [Class; 4] = [
    Class { name: "dc", up: 1000.0 * MBIT, down: 1000.0 * MBIT, rtt: 0.002, nat: false, p2p_blocked: false },
    Class {
        name: "office",
        up: 100.0 * MBIT,
        down: 200.0 * MBIT,
        rtt: 0.010,
        nat: false,
        p2p_blocked: false,
    },
    Class { name: "home", up: 20.0 * MBIT, down: 200.0 * MBIT, rtt: 0.030, nat: true, p2p_blocked: false },
    Class {
        name: "blocked",
        up: 100.0 * MBIT,
        down: 200.0 * MBIT,
        rtt: 0.010,
        nat: false,
        p2p_blocked: true,
    },
];

/// Why a mix did not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MixError {
    /// A class name not among dc, office, home, blocked.
    #[error("unknown client class {0:?} (dc, office, home, blocked, or the mix \"uniform\")")]
    UnknownClass(String),
    /// A weight that is not a non-negative number, or all weights zero.
    #[error("bad weight in {0:?} (want name:weight, e.g. dc:20,home:80)")]
    BadWeight(String),
}

/// A fleet's mix: classes with weights summing to 1.
#[derive(Clone, Debug, PartialEq)]
pub struct Mix {
    /// (class, share); shares sum to 1.
    pub parts: Vec<(Class, f64)>,
}

impl Mix {
    /// Every client alike (the netns harness' setting).
    pub fn uniform(up: f64, down: f64, rtt: f64) -> Self {
        Mix { parts: vec![(Class { name: "uniform", up, down, rtt, nat: false, p2p_blocked: false }, 1.0)] }
    }

    /// Parses `dc:20,office:30,home:40,blocked:10`.
    pub fn parse(s: &str) -> Result<Self, MixError> {
        let mut parts = Vec::new();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (name, w) = item.split_once(':').ok_or_else(|| MixError::BadWeight(item.to_string()))?;
            let class = CLASSES
                .iter()
                .find(|c| c.name == name.trim())
                .ok_or_else(|| MixError::UnknownClass(name.to_string()))?;
            let w: f64 = w.trim().parse().map_err(|_| MixError::BadWeight(item.to_string()))?;
            if !(w.is_finite() && w >= 0.0) {
                return Err(MixError::BadWeight(item.to_string()));
            }
            parts.push((*class, w));
        }
        let total: f64 = parts.iter().map(|p| p.1).sum();
        if parts.is_empty() || total <= 0.0 {
            return Err(MixError::BadWeight(s.to_string()));
        }
        for p in &mut parts {
            p.1 /= total;
        }
        Ok(Mix { parts })
    }

    /// The class of client `i` of `n`: classes take consecutive blocks of ids in proportion
    /// to their shares (so counts are exact, not sampled); the topology shuffles neighbours.
    pub fn class_of(&self, i: usize, n: usize) -> &Class {
        let x = (i as f64 + 0.5) / n.max(1) as f64;
        let mut acc = 0.0;
        for (c, share) in &self.parts {
            acc += share;
            if x < acc {
                return c;
            }
        }
        &self.parts[self.parts.len() - 1].0
    }
}
