//! ctl's pure policies, compiled from ctl's own source files (ctl is a binary crate whose
//! dependencies — sqlx, tonic, axum — the simulator does not need). These three files import
//! nothing but each other, so what runs here is byte for byte what `floodgate-ctl` runs.

#[path = "../../ctl/src/relay_row.rs"]
pub mod relay_row;

#[path = "../../ctl/src/leases.rs"]
pub mod leases;

#[path = "../../ctl/src/selection.rs"]
pub mod selection;
