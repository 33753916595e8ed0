//! [`FleetKey`]: how Floodgate peers of one distribution recognise each other.
//!
//! A fleet is not the public BitTorrent network: every peer that holds the distribution's key
//! is ours and cooperative, so the choker serves it without tit-for-tat (see
//! [`choke_decision`](crate::swarm::choke_decision)). Each side proves it holds the key in its
//! BEP 10 handshake (`fg_fleet`) with a digest bound to the torrent and to both peer ids, so a
//! proof seen on one connection is worth nothing on another, and the key itself never travels.

use crate::hash::sha1;
use crate::types::{InfoHash, PeerId};

/// A distribution's shared fleet secret, as a 20-byte key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct FleetKey([u8; 20]);

impl std::fmt::Debug for FleetKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FleetKey(..)")
    }
}

impl FleetKey {
    const LABEL: &'static [u8] = b"floodgate fleet key v1\0";

    /// The key of a ctl distribution: its id, which ctl gives only to the relays and agents it
    /// assigned (as with the provisional swarm's info-hash).
    pub fn for_distribution(dist_id: &str) -> Self {
        Self::from_secret(dist_id.as_bytes())
    }

    /// The key for a secret (a distribution id that ctl gives only to its members, or an
    /// operator's `--fleet-key` string).
    pub fn from_secret(secret: &[u8]) -> Self {
        let mut buf = Vec::with_capacity(Self::LABEL.len() + secret.len());
        buf.extend_from_slice(Self::LABEL);
        buf.extend_from_slice(secret);
        FleetKey(sha1(&buf))
    }

    /// The proof `from` sends `to` on a connection of the torrent `info_hash`.
    pub fn proof(&self, info_hash: InfoHash, from: PeerId, to: PeerId) -> [u8; 20] {
        let mut buf = [0u8; 80];
        buf[..20].copy_from_slice(&self.0);
        buf[20..40].copy_from_slice(&info_hash.0);
        buf[40..60].copy_from_slice(&from.0);
        buf[60..].copy_from_slice(&to.0);
        sha1(&buf)
    }

    /// Whether `proof` is what a member `from` would send `to`.
    pub fn verify(&self, proof: &[u8; 20], info_hash: InfoHash, from: PeerId, to: PeerId) -> bool {
        // Not secret-dependent timing worth hiding: a wrong proof only loses fleet treatment.
        self.proof(info_hash, from, to) == *proof
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proofs_bind_the_key_the_torrent_and_both_peers() {
        let k = FleetKey::from_secret(b"dist-42");
        let (ih, a, b) = (InfoHash([1; 20]), PeerId([2; 20]), PeerId([3; 20]));
        let p = k.proof(ih, a, b);
        assert!(k.verify(&p, ih, a, b));
        assert!(!k.verify(&p, ih, b, a), "direction matters");
        assert!(!k.verify(&p, InfoHash([4; 20]), a, b), "another torrent");
        assert!(!k.verify(&p, ih, a, PeerId([5; 20])), "another receiver");
        assert!(!FleetKey::from_secret(b"dist-43").verify(&p, ih, a, b), "another key");
    }
}
