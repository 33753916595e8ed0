//! Choking decisions as a pure function: who gets an upload slot this round.
//!
//! Tit-for-tat as in BEP 3 and libtorrent: while downloading, the peers that upload to us fastest
//! get the regular slots; once we are a seed, the peers we upload to fastest keep them (they take
//! data quickest and so spread it). One more slot rotates optimistically so newcomers get a
//! chance to show their rate.
//!
//! Fleet peers (members of our distribution, proven in the BEP 10 handshake with a
//! [`FleetKey`](crate::peer::FleetKey)) are cooperative, so tit-for-tat is a cost between them:
//! every interested fleet peer is unchoked, outside the slots, which standard peers keep.

/// What the choker knows of one connected peer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PeerStat {
    /// Whether the peer wants data from us (only interested peers are unchoked).
    pub interested: bool,
    /// Their upload to us, bytes per second.
    pub download_rate: f64,
    /// Our upload to them, bytes per second.
    pub upload_rate: f64,
    /// Whether the peer is currently unchoked.
    pub unchoked: bool,
    /// Whether the peer has every piece (seeds need nothing from us).
    pub is_seed: bool,
    /// Whether the peer is a member of our fleet.
    pub fleet: bool,
}

/// Choker settings.
#[derive(Clone, Copy, Debug)]
pub struct ChokerConfig {
    /// Regular upload slots.
    pub slots: usize,
    /// Extra optimistic slots.
    pub optimistic: usize,
}

impl Default for ChokerConfig {
    fn default() -> Self {
        ChokerConfig { slots: 8, optimistic: 1 }
    }
}

/// Decides who is unchoked: `true` at index `i` unchokes `peers[i]`.
///
/// `we_are_seed` switches the ranking from their upload to ours. `rotation` picks the optimistic
/// peer(s) among the rest (pass a counter that grows every optimistic period, e.g. every 30 s).
pub fn decide(peers: &[PeerStat], we_are_seed: bool, config: ChokerConfig, rotation: usize) -> Vec<bool> {
    let mut out = vec![false; peers.len()];
    for (o, p) in out.iter_mut().zip(peers) {
        *o = p.fleet && p.interested && !p.is_seed;
    }
    let mut candidates: Vec<usize> =
        (0..peers.len()).filter(|&i| peers[i].interested && !peers[i].is_seed && !peers[i].fleet).collect();
    let key = |i: usize| if we_are_seed { peers[i].upload_rate } else { peers[i].download_rate };
    // Highest rate first; on ties keep peers already unchoked (less churn), then by index.
    candidates.sort_by(|&a, &b| {
        key(b).total_cmp(&key(a)).then(peers[b].unchoked.cmp(&peers[a].unchoked)).then(a.cmp(&b))
    });
    let regular = candidates.len().min(config.slots);
    for &i in &candidates[..regular] {
        out[i] = true;
    }
    let rest = &candidates[regular..];
    if !rest.is_empty() {
        for k in 0..config.optimistic.min(rest.len()) {
            out[rest[(rotation + k) % rest.len()]] = true;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(interested: bool, down: f64, up: f64) -> PeerStat {
        PeerStat {
            interested,
            download_rate: down,
            upload_rate: up,
            unchoked: false,
            is_seed: false,
            fleet: false,
        }
    }

    #[test]
    fn every_interested_fleet_peer_is_unchoked_outside_the_slots() {
        let mut peers: Vec<_> = (0..6).map(|i| peer(true, i as f64, 0.0)).collect();
        for p in &mut peers[..4] {
            p.fleet = true;
        }
        peers[3].interested = false;
        let d = decide(&peers, false, ChokerConfig { slots: 1, optimistic: 0 }, 0);
        // Fleet 0-2 interested: unchoked whatever their rate; 3 is not interested; of the
        // standard peers 4 and 5 the one slot goes to the faster, 5.
        assert_eq!(d, vec![true, true, true, false, false, true]);
    }

    #[test]
    fn fastest_uploaders_win_while_leeching() {
        let peers =
            vec![peer(true, 10.0, 0.0), peer(true, 30.0, 0.0), peer(false, 99.0, 0.0), peer(true, 20.0, 0.0)];
        let d = decide(&peers, false, ChokerConfig { slots: 2, optimistic: 0 }, 0);
        assert_eq!(d, vec![false, true, false, true]);
    }

    #[test]
    fn seeds_rank_by_our_upload_and_rotate_the_optimistic_slot() {
        let peers: Vec<_> = (0..5).map(|i| peer(true, 0.0, i as f64)).collect();
        let cfg = ChokerConfig { slots: 2, optimistic: 1 };
        let a = decide(&peers, true, cfg, 0);
        assert!(a[4] && a[3], "top two by upload rate");
        assert_eq!(a.iter().filter(|&&u| u).count(), 3);
        let optimistic: std::collections::HashSet<usize> =
            (0..3).map(|r| decide(&peers, true, cfg, r).iter().take(3).position(|&u| u).unwrap()).collect();
        assert_eq!(optimistic.len(), 3, "the optimistic slot visits every other peer");
    }

    #[test]
    fn seeds_and_uninterested_peers_stay_choked() {
        let mut s = peer(true, 50.0, 50.0);
        s.is_seed = true;
        let d = decide(&[s, peer(false, 1.0, 1.0)], false, ChokerConfig::default(), 0);
        assert_eq!(d, vec![false, false]);
    }
}
