//! HTTP gap-filling policy, sans-IO: when a client should take pieces over HTTP Range instead of
//! (or beside) BitTorrent, how much, and which pieces.
//!
//! * [`Switch`] decides the level (off, partial, full) from samples of the BitTorrent rate and
//!   the peers, with time passed in; it is tested on virtual time.
//! * [`plan_run`] picks the next run of pieces for one HTTP request from the piece map.
//!
//! The I/O (sources, connections, imports) is the client's; this module only decides.

mod plan;
mod switch;
#[cfg(test)]
mod tests;

pub use plan::{plan_run, PlannedRun};
pub use switch::{Allowance, Change, Level, Reason, Sample, Switch, SwitchConfig};
