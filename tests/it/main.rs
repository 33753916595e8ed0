//! One integration-test binary; one module per area. Tests start real processes on 127.0.0.1
//! and bound every wait in time.

mod bt;
mod ctl;
mod ctl_tls;
mod e2e;
mod faststart;
mod faststart_conflict;
mod faststart_digest;
mod faststart_hostile;
mod faststart_resume;
mod hybrid;
mod interop;
mod magnet;
mod mirrors_ctl;
mod ops;
mod origin_lease;
mod relay;
mod relay_http;
mod relay_pull;
mod tracker;
mod webseed;
