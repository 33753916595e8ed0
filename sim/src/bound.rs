//! The Kumar–Ross lower bound on the time to give every client the whole file.

/// `T ≥ max(F / u_s, F / d_min, N·F / (u_s + Σ u_i))`, in seconds: `file` bytes, `server_up`
/// the sources' upload (origin cap plus seeds), `peer_ups` every client's and relay's upload
/// (relays are helpers: they add upload and need not finish), `d_min` the slowest client
/// download, `clients` the clients that must finish.
pub fn kumar_ross(file: f64, server_up: f64, peer_up_sum: f64, d_min: f64, clients: usize) -> f64 {
    let a = file / server_up;
    let b = file / d_min;
    let c = clients as f64 * file / (server_up + peer_up_sum);
    a.max(b).max(c)
}
