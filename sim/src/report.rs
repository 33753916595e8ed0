//! What a run produced: per-client results, totals, the bound, per-second curves; and how they
//! are printed and written (summary text, CSV).

use std::io::Write;

use crate::units::{show_rate, show_size};

/// One second of the run (sums over that second).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Second {
    /// End of the second, virtual seconds since start.
    pub t: f64,
    /// Clients finished by then.
    pub done: u64,
    /// Bytes clients got over BitTorrent in it.
    pub bt: f64,
    /// Bytes clients got over HTTP from relays in it.
    pub http: f64,
    /// Bytes clients got from the origin directly in it.
    pub origin_clients: f64,
    /// Bytes relays pulled from the origin in it.
    pub origin_relays: f64,
    /// Bytes relays uploaded (BitTorrent and HTTP) in it.
    pub relay_up: f64,
    /// Clients whose gap-fill switch was above off at the last sample.
    pub switched: u64,
}

/// The result of one run.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// File size, bytes.
    pub file: f64,
    /// Clients simulated.
    pub clients: usize,
    /// Relays used.
    pub relays: usize,
    /// Each client's completion time, seconds (`None`: not done by the horizon).
    pub completion: Vec<Option<f64>>,
    /// Each client's class name.
    pub class: Vec<&'static str>,
    /// Each client's bytes over BitTorrent.
    pub bt_bytes: Vec<f64>,
    /// Each client's bytes over HTTP from relays.
    pub http_bytes: Vec<f64>,
    /// Each client's bytes from the origin directly.
    pub origin_bytes: Vec<f64>,
    /// Bytes relays pulled from the origin.
    pub relay_origin_bytes: f64,
    /// Bytes relays uploaded over BitTorrent.
    pub relay_bt_up: f64,
    /// Bytes relays uploaded over HTTP.
    pub relay_http_up: f64,
    /// Bytes ctl granted from the origin quota.
    pub quota_granted: f64,
    /// Lease requests ctl refused.
    pub lease_refusals: u64,
    /// Duplicate (endgame) BitTorrent bytes, received and dropped.
    pub duplicate_bytes: f64,
    /// The Kumar–Ross bound, seconds.
    pub bound: f64,
    /// Virtual seconds simulated.
    pub simulated: f64,
    /// Time step used, seconds.
    pub dt: f64,
    /// Per-second curves.
    pub seconds: Vec<Second>,
}

impl Outcome {
    /// Completion times of finished clients, sorted.
    pub fn sorted_times(&self) -> Vec<f64> {
        let mut t: Vec<f64> = self.completion.iter().flatten().copied().collect();
        t.sort_by(f64::total_cmp);
        t
    }

    /// The last client's completion (`None` if some client did not finish).
    pub fn last(&self) -> Option<f64> {
        if self.completion.iter().all(Option::is_some) {
            self.sorted_times().last().copied()
        } else {
            None
        }
    }

    /// Bytes the origin served (relay pulls and clients' direct fetches).
    pub fn origin_total(&self) -> f64 {
        self.relay_origin_bytes + self.origin_bytes.iter().sum::<f64>()
    }

    /// The slowest client's average rate (file / completion time), bytes/s.
    pub fn min_rate(&self) -> f64 {
        self.completion
            .iter()
            .map(|c| c.map_or(0.0, |t| self.file / t.max(1e-9)))
            .fold(f64::INFINITY, f64::min)
    }

    /// Clients whose average rate was below `threshold` bytes/s (unfinished ones included).
    pub fn below(&self, threshold: f64) -> usize {
        self.completion.iter().filter(|c| c.is_none_or(|t| self.file / t.max(1e-9) < threshold)).count()
    }

    /// A multi-line human summary.
    pub fn summary(&self, threshold: f64) -> String {
        let t = self.sorted_times();
        let pick = |q: f64| t.get(((t.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(f64::NAN);
        let bt: f64 = self.bt_bytes.iter().sum();
        let http: f64 = self.http_bytes.iter().sum();
        let orig: f64 = self.origin_bytes.iter().sum();
        let got = (bt + http + orig).max(1.0);
        let mut s = String::new();
        let done = t.len();
        s += &format!(
            "clients {} (done {}), relays {}, file {}, step {:.3} s, simulated {:.1} s\n",
            self.clients,
            done,
            self.relays,
            show_size(self.file),
            self.dt,
            self.simulated
        );
        s += &format!(
            "completion: first {:.2} s, median {:.2} s, p99 {:.2} s, last {}\n",
            pick(0.0),
            pick(0.5),
            pick(0.99),
            self.last().map_or("not all done".into(), |l| format!("{l:.2} s"))
        );
        s += &format!(
            "Kumar-Ross bound {:.2} s; last / bound {}\n",
            self.bound,
            self.last().map_or("-".into(), |l| format!("{:.3}", l / self.bound))
        );
        s += &format!(
            "client bytes: BitTorrent {:.1} %, HTTP from relays {:.1} %, origin {:.1} %  (duplicates {})\n",
            100.0 * bt / got,
            100.0 * http / got,
            100.0 * orig / got,
            show_size(self.duplicate_bytes)
        );
        let per_relay = self.file * self.relays.max(1) as f64;
        s += &format!(
            "origin bytes {} = {:.3} x file x relays (quota granted {}, lease refusals {})\n",
            show_size(self.origin_total()),
            self.origin_total() / per_relay,
            show_size(self.quota_granted),
            self.lease_refusals
        );
        s += &format!(
            "relay upload: BitTorrent {}, HTTP {}\n",
            show_size(self.relay_bt_up),
            show_size(self.relay_http_up)
        );
        s += &format!(
            "slowest client average {}; below threshold {}: {} clients\n",
            show_rate(self.min_rate()),
            show_rate(threshold),
            self.below(threshold)
        );
        s
    }

    /// Writes the per-second curves as CSV.
    pub fn write_curves(&self, w: &mut impl Write) -> std::io::Result<()> {
        writeln!(
            w,
            "t,clients_done,bt_Bps,http_Bps,origin_clients_Bps,origin_relays_Bps,relay_up_Bps,switched"
        )?;
        for s in &self.seconds {
            writeln!(
                w,
                "{:.0},{},{:.0},{:.0},{:.0},{:.0},{:.0},{}",
                s.t, s.done, s.bt, s.http, s.origin_clients, s.origin_relays, s.relay_up, s.switched
            )?;
        }
        Ok(())
    }

    /// Writes one CSV line per client: id, class, completion, bytes by path.
    pub fn write_clients(&self, w: &mut impl Write) -> std::io::Result<()> {
        writeln!(w, "client,class,seconds,bt_bytes,http_bytes,origin_bytes")?;
        for i in 0..self.clients {
            writeln!(
                w,
                "{},{},{},{:.0},{:.0},{:.0}",
                i,
                self.class[i],
                self.completion[i].map_or(String::new(), |t| format!("{t:.3}")),
                self.bt_bytes[i],
                self.http_bytes[i],
                self.origin_bytes[i]
            )?;
        }
        Ok(())
    }
}
