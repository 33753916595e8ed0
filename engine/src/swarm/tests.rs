//! Swarms over real loopback sockets (127.0.0.1), in one process.

use std::time::{Duration, Instant};

use rand::RngCore;

use super::*;
use crate::hash::sha1;
use crate::layout::FileSpan;
use crate::types::PieceIndex;

fn torrent(len: usize, piece_length: u32) -> (Vec<u8>, Layout, Vec<[u8; 20]>) {
    let mut data = vec![0u8; len];
    rand::rng().fill_bytes(&mut data);
    let layout =
        Layout::new(vec![FileSpan { path: "blob".into(), length: len as u64 }], piece_length).unwrap();
    let hashes = data.chunks(piece_length as usize).map(sha1).collect();
    (data, layout, hashes)
}

fn spec(layout: &Layout, hashes: &[[u8; 20]], verified: Option<Bitfield>) -> AddTorrent {
    AddTorrent {
        info_hash: InfoHash([9; 20]),
        layout: layout.clone(),
        piece_hashes: crate::hash::PieceHashes::known(hashes),
        store: Store::memory(layout.clone()),
        verified,
        session: SessionConfig::default(),
        max_peers: 50,
        upload_slots: 8,
        hash_threads: 1,
        upload_limit: 0,
        download_limit: 0,
        info_bytes: None,
    }
}

fn swarm() -> Swarm {
    let listen = Some("127.0.0.1:0".parse().unwrap());
    Swarm::start(SwarmConfig { threads: 2, listen, ..SwarmConfig::default() }).unwrap()
}

fn wait(mut done: impl FnMut() -> bool, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    done()
}

#[test]
fn downloader_completes_while_the_seed_is_still_importing() {
    let pl = 64 * 1024;
    let (data, layout, hashes) = torrent(40 * pl as usize - 1000, pl);
    let relay_swarm = swarm();
    let relay = relay_swarm.add_torrent(spec(&layout, &hashes, None)).unwrap();
    let client_swarm = swarm();
    let client = client_swarm.add_torrent(spec(&layout, &hashes, None)).unwrap();
    client.connect(relay_swarm.listen_addr().unwrap());

    let piece = |i: u32| &data[(i * pl) as usize..((i + 1) * pl).min(data.len() as u32) as usize];
    let mut corrupt = piece(3).to_vec();
    corrupt[10] ^= 1;
    assert_eq!(relay.import_piece(PieceIndex(3), &corrupt).unwrap(), ImportOutcome::HashMismatch);
    for i in 0..layout.piece_count() {
        assert_eq!(relay.import_piece(PieceIndex(i), piece(i)).unwrap(), ImportOutcome::Verified);
        if i == 5 {
            // The client gets the first pieces before the rest exist at the relay.
            assert!(wait(|| client.stats().pieces_verified >= 6, Duration::from_secs(20)), "no early pieces");
            assert!(!relay.is_complete());
        }
    }
    assert_eq!(relay.import_piece(PieceIndex(0), piece(0)).unwrap(), ImportOutcome::AlreadyHad);
    assert!(wait(|| client.is_complete(), Duration::from_secs(30)), "client stuck at {:?}", client.stats());
    assert_eq!(client.read(0, data.len()).unwrap(), &data[..]);
    assert_eq!(client.stats().hash_failures, 0);
}

#[test]
fn two_downloaders_trade_with_each_other() {
    let pl = 32 * 1024;
    let (data, layout, hashes) = torrent(3 * 1024 * 1024, pl);
    let seed_swarm = swarm();
    let full = Bitfield::full(layout.piece_count());
    // A seed at 2 MB/s needs ~3 s for two copies: the downloaders must trade to be done sooner
    // (at loopback speed they could each take everything from the seed before they meet).
    let mut seed_spec = spec(&layout, &hashes, Some(full));
    seed_spec.upload_limit = 2_000_000;
    let seed = seed_swarm.add_torrent(seed_spec).unwrap();
    // The seed's memory store starts empty: fill it.
    for i in 0..layout.piece_count() {
        let s = (i * pl) as usize;
        seed.torrent.store.write_at(s as u64, &data[s..(s + pl as usize).min(data.len())]).unwrap();
    }
    let a_swarm = swarm();
    let b_swarm = swarm();
    let a = a_swarm.add_torrent(spec(&layout, &hashes, None)).unwrap();
    let b = b_swarm.add_torrent(spec(&layout, &hashes, None)).unwrap();
    a.connect(seed_swarm.listen_addr().unwrap());
    b.connect(seed_swarm.listen_addr().unwrap());
    a.connect(b_swarm.listen_addr().unwrap());
    assert!(wait(|| a.is_complete() && b.is_complete(), Duration::from_secs(30)));
    assert_eq!(a.read(0, data.len()).unwrap(), &data[..]);
    assert_eq!(b.read(0, data.len()).unwrap(), &data[..]);
    let traded = a.stats().uploaded + b.stats().uploaded;
    assert!(traded > 0, "the downloaders exchanged pieces");
}

#[test]
fn a_torrent_serves_its_metadata_and_a_magnet_fetch_gets_it() {
    use crate::metainfo::MetainfoBuilder;
    let pl = 16 * 1024;
    // 1200 pieces: an info dictionary of ~24 KiB, two metadata pieces.
    let (_, layout, hashes) = torrent(1200 * pl as usize - 5, pl);
    let (_, meta) =
        MetainfoBuilder::single_file("blob", layout.total_length(), pl).piece_hashes(hashes).build().unwrap();
    let seed_swarm = swarm();
    let full = Bitfield::full(layout.piece_count());
    let _seed = seed_swarm
        .add_torrent(AddTorrent::new(&meta, Store::memory(meta.layout())).with_verified(full))
        .unwrap();
    let config = magnet::FetchConfig { timeout: Duration::from_secs(20), ..Default::default() };
    let got =
        magnet::fetch_metadata(meta.info_hash(), &[seed_swarm.listen_addr().unwrap()], &config).unwrap();
    assert_eq!(got.info_bytes(), meta.info_bytes());
    assert!(got.info_bytes().len() > 16384);

    // A torrent added without its info bytes does not offer metadata: the fetch gives up.
    let other_swarm = swarm();
    let mut spec = AddTorrent::new(&meta, Store::memory(meta.layout()));
    spec.info_bytes = None;
    let _other = other_swarm.add_torrent(spec).unwrap();
    let config = magnet::FetchConfig { timeout: Duration::from_secs(5), ..Default::default() };
    let err = magnet::fetch_metadata(meta.info_hash(), &[other_swarm.listen_addr().unwrap()], &config);
    assert!(err.is_err());
}

#[test]
fn download_limit_holds_the_average_rate() {
    let pl = 64 * 1024;
    let (data, layout, hashes) = torrent(3 * 1024 * 1024, pl);
    let seed_swarm = swarm();
    let full = Bitfield::full(layout.piece_count());
    let seed = seed_swarm.add_torrent(spec(&layout, &hashes, Some(full))).unwrap();
    seed.torrent.store.write_at(0, &data).unwrap();
    let client_swarm = swarm();
    let rate = 2 * 1024 * 1024;
    let client = client_swarm
        .add_torrent(AddTorrent { download_limit: rate, ..spec(&layout, &hashes, None) })
        .unwrap();
    let started = Instant::now();
    client.connect(seed_swarm.listen_addr().unwrap());
    assert!(wait(|| client.is_complete(), Duration::from_secs(30)), "stuck at {:?}", client.stats());
    // 3 MiB at 2 MiB/s with a 205 KiB burst cannot finish in much under 1.3 s: a connection waits
    // on the limit after each read, so one read (up to the 256 KiB receive buffer) may run ahead.
    let floor = (data.len() as f64 - (rate / 10) as f64 - 256.0 * 1024.0) / rate as f64;
    let took = started.elapsed().as_secs_f64();
    assert!(took >= floor * 0.95, "took {took:.2} s, the limit allows no less than {floor:.2} s");
    assert_eq!(client.read(0, data.len()).unwrap(), &data[..]);
}

/// A seed whose file is not in the page cache reads the pieces asked of it on blocking threads
/// (`cold.rs`), not on its runtime thread, and the download is still byte-identical.
#[test]
fn a_seed_reads_pieces_that_are_not_cached_off_its_runtime() {
    let pl = 64 * 1024;
    let (data, layout, hashes) = torrent(24 * pl as usize + 321, pl);
    // On the disk (not tmpfs, whose pages cannot be dropped).
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    std::fs::write(dir.path().join("blob"), &data).unwrap();
    crate::uring::evict(&std::fs::File::open(dir.path().join("blob")).unwrap());
    let store = Store::open(layout.clone(), dir.path(), crate::store::StoreConfig::default()).unwrap();
    assert!(!store.is_cached(PieceIndex(0)), "the dropped file still looks cached");
    let seed_swarm = swarm();
    let all = Bitfield::full(layout.piece_count());
    let seed = seed_swarm.add_torrent(AddTorrent { store, ..spec(&layout, &hashes, Some(all)) }).unwrap();
    let client_swarm = swarm();
    let client = client_swarm.add_torrent(spec(&layout, &hashes, None)).unwrap();
    client.connect(seed_swarm.listen_addr().unwrap());
    assert!(wait(|| client.is_complete(), Duration::from_secs(30)), "client stuck at {:?}", client.stats());
    assert_eq!(client.read(0, data.len()).unwrap(), &data[..]);
    let stats = seed.stats();
    assert!(stats.cold_reads > 0, "no piece was read off the runtime: {stats:?}");
    assert!(stats.cold_read_bytes <= data.len() as u64 * 2, "cold pieces read over and over: {stats:?}");
}

#[test]
fn a_banned_address_is_dropped_and_refused() {
    let pl = 32 * 1024;
    let (data, layout, hashes) = torrent(2 * 1024 * 1024, pl);
    // The seed on its own loopback address, slow enough to be mid-transfer when banned.
    let seed_swarm = Swarm::start(SwarmConfig {
        threads: 1,
        listen: Some("127.0.0.2:0".parse().unwrap()),
        ..SwarmConfig::default()
    })
    .unwrap();
    let mut seed_spec = spec(&layout, &hashes, Some(Bitfield::full(layout.piece_count())));
    seed_spec.upload_limit = 200_000;
    let seed = seed_swarm.add_torrent(seed_spec).unwrap();
    for i in 0..layout.piece_count() {
        let s = (i * pl) as usize;
        seed.torrent.store.write_at(s as u64, &data[s..(s + pl as usize).min(data.len())]).unwrap();
    }
    let client_swarm = swarm();
    let client = client_swarm.add_torrent(spec(&layout, &hashes, None)).unwrap();
    let seed_addr = seed_swarm.listen_addr().unwrap();
    client.connect(seed_addr);
    assert!(wait(|| client.stats().pieces_verified > 0, Duration::from_secs(20)), "no piece before the ban");
    client.ban_ip(seed_addr.ip());
    assert!(
        wait(|| client.stats().peers == 0, Duration::from_secs(10)),
        "the banned peer's connection closes"
    );
    client.connect(seed_addr);
    std::thread::sleep(Duration::from_millis(500));
    let got = client.stats().pieces_verified;
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(client.stats().peers, 0, "a banned address is not dialed again");
    assert_eq!(client.stats().pieces_verified, got, "nothing more from it");
    assert!(!client.is_complete());
}
