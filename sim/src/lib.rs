//! `floodgate-sim`: a piece-level simulator of one Floodgate distribution that drives the
//! project's real policy code as libraries over a modelled network.
//!
//! What is real (called, not re-implemented):
//! * every BitTorrent piece choice: the engine's [`Picker`](floodgate_engine::picker::Picker)
//!   over a [`PieceMap`](floodgate_engine::piece_map::PieceMap) per downloading node (the map's
//!   availability is fed by the neighbours' HAVEs, endgame duplicates and their cancels too);
//! * every HTTP decision of a client: the gap-fill [`Switch`](floodgate_engine::gapfill::Switch)
//!   fed one [`Sample`](floodgate_engine::gapfill::Sample) per interval in virtual time, and
//!   [`plan_run`](floodgate_engine::gapfill::plan_run) for which pieces a Range request takes
//!   (also used for the relays' origin pulls);
//! * ctl's origin lease policy ([`ctl::leases`]: `compute_grant`, `weight`) and relay selection
//!   ([`ctl::selection`]: `relay_count`, `rank`), compiled from ctl's own files.
//!
//! What is modelled: links as a fluid fair share (each flow gets
//! `min(up(src) / flows(src), down(dst) / flows(dst))`, one request round trip before its first
//! byte), a bounded random neighbour set per node (like a tracker's numwant), NAT (no inbound)
//! and P2P-blocked clients, and an origin with a rate cap and a byte quota. Rates are recomputed
//! once per time step ([`Scenario::dt`]); between steps a flow's bytes are settled lazily and
//! its piece lands at its exact time from a calendar ([`flows`]), so a step costs a few passes over
//! the flows and the rest of the work is per piece landed; a flow that
//! ends inside a step hands the rest of the step to the node's next flow.
//!
//! Entry points: [`run`] (one scenario to an [`Outcome`]), [`planner::plan`] (how many relays),
//! [`bound::kumar_ross`].

pub mod bound;
pub mod ctl;
pub mod flows;
pub mod leasebook;
pub mod mix;
pub mod planner;
pub mod plot;
pub mod report;
pub mod scenario;
mod sim;
pub mod topology;
pub mod units;

#[cfg(test)]
mod tests;

pub use report::{Outcome, Second};
pub use scenario::Scenario;
pub use sim::{run, SimError};
