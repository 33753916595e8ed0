//! A hostile peer in a URL-only distribution's provisional swarm: one that knows the
//! distribution (so it can name the swarm and prove fleet membership) but sends pieces that do
//! not match the relay's published hashes. The agent must never announce such a piece as
//! verified, ban the peer after repeated hash failures (connection closed, reconnection
//! refused), and still end byte-identical. A peer that does not know the distribution is
//! refused outright, and one that learned the swarm's info-hash but cannot prove membership
//! is closed without being asked for or given anything.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use floodgate_engine::metainfo::provisional_info_hash;
use floodgate_engine::peer::FleetKey;
use floodgate_engine::types::{InfoHash, PeerId};
use floodgate_tests::{bin, free_addr, wait_for, ChildGuard};

use crate::ctl::{Ctl, CLIENT};
use crate::faststart::{handshake_answered, UrlOnlySetup};
use crate::relay::{json, path};

/// File size: 12 MiB, pulled at 1 MB/s (about 12 s: the checks run during the pull).
const SIZE: usize = 12 * 1024 * 1024;

/// Starts `floodgate agent` listening for peers on `listen`.
fn spawn_agent_at(ctl: &Ctl, out: &Path, listen: SocketAddr, metrics: SocketAddr) -> ChildGuard {
    ChildGuard::spawn(
        Command::new(bin("floodgate"))
            .args(["agent", "--ctl", &ctl.url(), "--token", CLIENT, "--id", "agent-1"])
            .args(["--labels", "fs", "--zone", "z1", "-o", path(out), "--listen", &listen.to_string()])
            // Pieces come over BitTorrent only (the relay and the hostile peer), so the
            // hostile peer is asked for some.
            .args(["--metrics-listen", &metrics.to_string(), "--no-http"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null()),
    )
    .expect("spawn floodgate agent")
}

/// Writes one length-prefixed peer-wire message.
fn send(s: &mut TcpStream, id: u8, payload: &[u8]) -> std::io::Result<()> {
    let mut m = ((payload.len() + 1) as u32).to_be_bytes().to_vec();
    m.push(id);
    m.extend_from_slice(payload);
    s.write_all(&m)
}

/// What the hostile session saw.
#[derive(Debug, Default)]
struct Session {
    /// Blocks requested of us and answered with wrong bytes.
    poisoned_blocks: usize,
    /// Pieces the agent announced (bitfield or HAVE), with whether the agent's file held the
    /// right bytes for it when the announcement arrived.
    announced: Vec<(u32, bool)>,
    /// Whether the agent unchoked us.
    unchoked: bool,
    /// Whether the agent closed the connection (rather than the session timing out).
    closed: bool,
}

/// Our peer id on the wire.
const HOSTILE_ID: &[u8; 20] = b"-FT0001-hostile-peer";

/// Joins the provisional swarm at `agent` as a peer with every piece (proving fleet
/// membership with `key`, when given, in its BEP 10 handshake), answers each request with
/// wrong bytes, and records what the agent announces, until it closes the connection.
fn hostile_session(
    agent: SocketAddr,
    info_hash: [u8; 20],
    key: Option<FleetKey>,
    pieces: u32,
    piece: usize,
    file: &Path,
    data: &[u8],
) -> Session {
    let mut s = TcpStream::connect_timeout(&agent, Duration::from_secs(5)).expect("connect to the agent");
    s.set_read_timeout(Some(Duration::from_secs(2))).expect("read timeout");
    let mut hs = vec![19u8];
    hs.extend_from_slice(b"BitTorrent protocol");
    hs.extend_from_slice(&[0, 0, 0, 0, 0, 0x10, 0, 0]); // BEP 10
    hs.extend_from_slice(&info_hash);
    hs.extend_from_slice(HOSTILE_ID);
    s.write_all(&hs).expect("send handshake");
    let mut answer = [0u8; 68];
    s.read_exact(&mut answer).expect("the agent answers a peer that knows the swarm's info-hash");
    assert_eq!(answer[28..48], info_hash);
    let mut agent_id = [0u8; 20];
    agent_id.copy_from_slice(&answer[48..68]);
    // BEP 10 handshake (extended message 0), with the fleet proof if we hold the key.
    let mut ext = vec![0u8];
    match key {
        Some(key) => {
            let proof = key.proof(InfoHash(info_hash), PeerId(*HOSTILE_ID), PeerId(agent_id));
            ext.extend_from_slice(b"d8:fg_fleet20:");
            ext.extend_from_slice(&proof);
            ext.extend_from_slice(b"e");
        }
        None => ext.extend_from_slice(b"de"),
    }
    let mut bits = vec![0u8; pieces.div_ceil(8) as usize];
    for i in 0..pieces as usize {
        bits[i / 8] |= 0x80 >> (i % 8);
    }
    // An outsider may already be closed by the agent when its bitfield goes out.
    let mut session = Session::default();
    let sent =
        send(&mut s, 20, &ext).and_then(|()| send(&mut s, 5, &bits)).and_then(|()| send(&mut s, 1, &[]));
    session.closed = sent.is_err();
    let right = |i: u32| {
        let (a, b) = (i as usize * piece, ((i as usize + 1) * piece).min(data.len()));
        std::fs::read(file).is_ok_and(|f| f.get(a..b) == Some(&data[a..b]))
    };
    let mut buf = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut chunk = [0u8; 65536];
    while !session.closed && Instant::now() < deadline {
        match s.read(&mut chunk) {
            Ok(0) => {
                session.closed = true;
                break;
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                continue
            }
            Err(_) => {
                session.closed = true;
                break;
            }
        }
        while buf.len() >= 4 {
            let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
            if buf.len() < 4 + len {
                break;
            }
            let msg: Vec<u8> = buf.drain(..4 + len).skip(4).collect();
            match msg.split_first() {
                Some((1, _)) => session.unchoked = true,
                Some((4, p)) if p.len() == 4 => {
                    let i = u32::from_be_bytes([p[0], p[1], p[2], p[3]]);
                    session.announced.push((i, right(i)));
                }
                Some((5, p)) => {
                    for i in (0..pieces)
                        .filter(|&i| p.get(i as usize / 8).is_some_and(|b| b & (0x80 >> (i % 8)) != 0))
                    {
                        session.announced.push((i, right(i)));
                    }
                }
                Some((6, p)) if p.len() == 12 => {
                    let want = u32::from_be_bytes([p[8], p[9], p[10], p[11]]) as usize;
                    let mut block = p[..8].to_vec();
                    block.extend((0..want).map(|k| (k as u8).wrapping_mul(31) ^ 0x5a));
                    if send(&mut s, 7, &block).is_err() {
                        session.closed = true;
                        break;
                    }
                    session.poisoned_blocks += 1;
                }
                _ => {}
            }
        }
        if session.closed {
            break;
        }
    }
    session
}

#[test]
fn provisional_swarm_bans_a_peer_sending_wrong_pieces_and_refuses_strangers() {
    let setup = UrlOnlySetup::start(SIZE, "1000000");
    let (ctl, fx, http) = (&setup.ctl, &setup.fx, setup.http);
    let out = fx.dir.path().join("agent");
    let file = out.join("blob.bin");
    let (listen, metrics) = (free_addr(), free_addr());
    let _agent = spawn_agent_at(ctl, &out, listen, metrics);
    let dist = setup.create_when_registered(&["agent-1".to_string()]);
    let swarm = provisional_info_hash(&dist).0;

    // The agent has joined the provisional swarm; a peer that cannot name it is refused.
    let joined = wait_for(Duration::from_secs(30), || handshake_answered(listen, swarm).then_some(()));
    assert!(joined.is_some(), "the agent did not join the provisional swarm within 30 s");
    assert!(!handshake_answered(listen, provisional_info_hash("another-dist").0), "a stranger is refused");
    let task = json(&format!("http://{http}/tasks")).and_then(|t| t[0].clone().as_object().cloned());
    let task = task.expect("the relay's task");
    assert_eq!(task["state"], "pulling", "the hostile peer must meet the agent during the pull");
    let piece = task["piece_length"].as_u64().expect("piece length") as usize;
    let pieces = SIZE.div_ceil(piece) as u32;

    // It learned the swarm's info-hash but cannot prove it belongs: closed, and neither
    // unchoked nor asked for a block (not a ban: the membership test comes first).
    let outsider = hostile_session(listen, swarm, None, pieces, piece, &file, &fx.data);
    eprintln!("outsider with the swarm's info-hash: {outsider:?}");
    assert!(outsider.closed, "a peer without the fleet proof must be closed: {outsider:?}");
    assert!(!outsider.unchoked && outsider.poisoned_blocks == 0, "an outsider got service: {outsider:?}");

    let key = Some(FleetKey::for_distribution(&dist));
    let session = hostile_session(listen, swarm, key, pieces, piece, &file, &fx.data);
    eprintln!(
        "hostile peer: {} wrong blocks sent, {} pieces announced to it, closed: {}",
        session.poisoned_blocks,
        session.announced.len(),
        session.closed
    );
    assert!(session.closed, "the agent must close the hostile peer's connection: {session:?}");
    // Three pieces failed with its blocks in them (a piece may also hold blocks from the relay).
    assert!(session.poisoned_blocks >= 3, "the agent asked the hostile peer for pieces: {session:?}");
    let wrong: Vec<_> = session.announced.iter().filter(|(_, ok)| !ok).collect();
    assert!(wrong.is_empty(), "pieces announced as verified with wrong bytes on disk: {wrong:?}");
    let failures = wait_for(Duration::from_secs(10), || {
        let text = crate::relay::curl(&format!("http://{metrics}/metrics"), &[]).1;
        let text = String::from_utf8(text).ok()?;
        let line = text
            .lines()
            .find(|l| l.starts_with("floodgate_agent_hash_failures_total") && l.contains("source=\"bt\""))?;
        line.rsplit(' ').next()?.parse::<u64>().ok().filter(|&n| n >= 3)
    });
    assert!(failures.is_some(), "the agent counted at least 3 BitTorrent hash failures");
    // Banned: the same peer (same address) is not answered again.
    assert!(!handshake_answered(listen, swarm), "a banned peer must not be accepted again");
    // Still during the pull, so the provisional swarm is still there (the agent leaves it
    // only once the relay has published the .torrent): the refusal is the ban.
    let state = json(&format!("http://{http}/tasks")).map(|t| t[0]["state"].clone());
    assert_eq!(state, Some("pulling".into()), "ban and refusal are checked during the pull");

    let done =
        wait_for(Duration::from_secs(90), || std::fs::read(&file).is_ok_and(|d| d == fx.data).then_some(()));
    assert!(done.is_some(), "the agent must end byte-identical within 90 s");
}
