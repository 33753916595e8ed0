//! URL-only fast start: agents of a distribution created from a bare URL start while the relay
//! is still pulling, trade in the provisional swarm against the relay's growing hash list, and
//! move to the standard swarm when the relay publishes the `.torrent`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use floodgate_engine::metainfo::provisional_info_hash;
use floodgate_tests::{free_addr, wait_for, wait_for_listen};

use crate::ctl::{sqlite_db, Ctl};
use crate::e2e::{ctl_json, spawn_agent, spawn_relay};
use crate::relay::{json, Fixture, Origin, Relay};

/// File size: 8 MiB, pulled at 1.5 MB/s (about 5.6 s).
const SIZE: usize = 8 * 1024 * 1024;
const AGENTS: usize = 3;

/// Pieces of `file` equal to the same pieces of `want`.
fn pieces_matching(file: &Path, want: &[u8], piece: usize) -> usize {
    let Ok(got) = std::fs::read(file) else { return 0 };
    got.chunks(piece).zip(want.chunks(piece)).filter(|(a, b)| a == b).count()
}

/// What every URL-only fast-start test starts from: a `size`-byte file behind a throttled
/// origin, ctl on SQLite, and one ctl-mode relay (`relay-1`) listening. Fields drop (and the
/// processes stop) relay first, the origin and the files last.
pub(crate) struct UrlOnlySetup {
    _relay: floodgate_tests::ChildGuard,
    /// The control plane.
    pub ctl: Ctl,
    /// What keeps the database alive (a SQLite temp dir, or a PostgreSQL test database).
    _db: Box<dyn std::any::Any>,
    /// The origin serving `fx.file`.
    pub origin: Origin,
    /// The relay's BitTorrent address.
    pub bt: SocketAddr,
    /// The relay's HTTP address (Range, tracker, `/tasks`).
    pub http: SocketAddr,
    /// The test file and its directory.
    pub fx: Fixture,
}

impl UrlOnlySetup {
    /// Starts it all; the origin is throttled to `rate` bytes/s.
    pub(crate) fn start(size: usize, rate: &str) -> UrlOnlySetup {
        let (db_dir, db) = sqlite_db();
        UrlOnlySetup::start_on(size, rate, &db, Box::new(db_dir))
    }

    /// Like [`UrlOnlySetup::start`], with ctl on the database `db` (kept alive by `guard`).
    pub(crate) fn start_on(size: usize, rate: &str, db: &str, guard: Box<dyn std::any::Any>) -> UrlOnlySetup {
        let fx = Fixture::new(size);
        let origin = Origin::start(&fx.file, &["--rate", rate]);
        let ctl = Ctl::start(db, &[]);
        let (bt, http) = (free_addr(), free_addr());
        let relay = spawn_relay(&ctl, "relay-1", &fx.dir.path().join("relay"), bt, http);
        assert!(wait_for_listen(http, Duration::from_secs(30)), "relay did not listen on {http}");
        UrlOnlySetup { _relay: relay, ctl, _db: guard, origin, bt, http, fx }
    }

    /// Waits (30 s at most) until the relay and the agents `agents` are registered, then
    /// creates a URL-only distribution of the origin's file to all targets; its id.
    pub(crate) fn create_when_registered(&self, agents: &[String]) -> String {
        self.create_when_registered_with(agents, &[])
    }

    /// Like [`UrlOnlySetup::create_when_registered`], with `extra` flags to `dist create`.
    pub(crate) fn create_when_registered_with(&self, agents: &[String], extra: &[&str]) -> String {
        let ctl = &self.ctl;
        let registered = wait_for(Duration::from_secs(30), || {
            let clients = ctl_json(ctl, &["clients"])?.to_string();
            let relays = ctl_json(ctl, &["relays"])?.to_string();
            (agents.iter().all(|a| clients.contains(a.as_str())) && relays.contains("relay-1")).then_some(())
        });
        assert!(registered.is_some(), "relay and agents did not register within 30 s");
        let url = self.origin.url();
        let mut args = vec!["dist", "create", url.as_str(), "--targets", "all"];
        args.extend_from_slice(extra);
        let created = ctl_json(ctl, &args).expect("dist create");
        created["id"].as_str().unwrap_or_else(|| panic!("dist id: {created}")).to_string()
    }
}

/// A BitTorrent handshake for `info_hash` to `addr`, offering BEP 10 (as every Floodgate and
/// libtorrent peer does): whether the peer answers with its own.
pub(crate) fn handshake_answered(addr: SocketAddr, info_hash: [u8; 20]) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(5)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut hs = vec![19u8];
    hs.extend_from_slice(b"BitTorrent protocol");
    hs.extend_from_slice(&[0, 0, 0, 0, 0, 0x10, 0, 0]);
    hs.extend_from_slice(&info_hash);
    hs.extend_from_slice(b"-FT0001-provisional!");
    if s.write_all(&hs).is_err() {
        return false;
    }
    let mut answer = [0u8; 68];
    s.read_exact(&mut answer).is_ok() && answer[28..48] == info_hash
}

#[test]
fn url_only_agents_start_during_the_pull_and_end_in_the_standard_swarm() {
    let setup = UrlOnlySetup::start(SIZE, "1500000");
    let (ctl, origin, fx, bt, http) = (&setup.ctl, &setup.origin, &setup.fx, setup.bt, setup.http);
    let outs: Vec<_> = (1..=AGENTS).map(|i| fx.dir.path().join(format!("agent{i}"))).collect();
    let _agents: Vec<_> = outs
        .iter()
        .enumerate()
        .map(|(i, o)| spawn_agent(ctl, &format!("agent-{}", i + 1), "fs", o))
        .collect();
    let names: Vec<String> = (1..=AGENTS).map(|i| format!("agent-{i}")).collect();
    let dist = setup.create_when_registered(&names);
    let files: Vec<_> = outs.iter().map(|o| o.join("blob.bin")).collect();

    // While the relay still pulls, agents already hold verified pieces.
    let during_pull = wait_for(Duration::from_secs(60), || {
        let tasks = json(&format!("http://{http}/tasks"))?;
        let task = tasks.as_array()?.first()?.clone();
        let piece = task["piece_length"].as_u64()? as usize;
        let held: usize = files.iter().map(|f| pieces_matching(f, &fx.data, piece)).sum();
        if task["state"] != "pulling" {
            return Some(Err(format!("the pull ended before any agent held a piece: {task}")));
        }
        (held > 0).then_some(Ok((held, task["pieces_verified"].clone())))
    });
    match during_pull {
        Some(Ok((held, relay_has))) => eprintln!("agents held {held} pieces while the relay had {relay_has}"),
        Some(Err(e)) => panic!("{e}"),
        None => panic!("no agent held a verified piece within 60 s"),
    }
    // A peer that does not know the distribution cannot join its provisional swarm.
    assert!(handshake_answered(bt, provisional_info_hash(&dist).0), "the relay serves the provisional swarm");
    assert!(!handshake_answered(bt, provisional_info_hash("another-dist").0), "a stranger is refused");

    let done = wait_for(Duration::from_secs(90), || {
        files.iter().all(|f| std::fs::read(f).is_ok_and(|d| d == fx.data)).then_some(())
    });
    assert!(done.is_some(), "every agent must end byte-identical within 90 s");
    let stats = wait_for(Duration::from_secs(30), || {
        let d = ctl_json(ctl, &["dist", "get", &dist])?;
        (d["state"] == "done").then_some(d)
    })
    .unwrap_or_else(|| {
        panic!("ctl did not show the distribution done: {:?}", ctl_json(ctl, &["dist", "get", &dist]))
    });
    let (_, served) = origin.stats();
    assert!(served <= SIZE as u64 * 105 / 100, "the origin served {served} bytes for a {SIZE}-byte file");

    // The agents moved to the standard swarm: they announce the real info-hash as seeds.
    // (The relay's own entry is not counted in a scrape.)
    let info_hash =
        json(&format!("http://{http}/tasks")).and_then(|t| t[0]["info_hash"].as_str().map(String::from));
    let info_hash = info_hash.expect("the relay published the task's torrent");
    let seeds = wait_for(Duration::from_secs(40), || {
        let n = crate::relay::seeds_in_scrape(http, &info_hash)?;
        (n >= AGENTS as u64).then_some(n)
    });
    assert!(
        seeds.is_some(),
        "agents and relay seed the standard torrent (scrape: {:?}); {stats}",
        crate::relay::seeds_in_scrape(http, &info_hash)
    );
}

#[test]
fn two_relays_make_the_same_torrent_from_one_url() {
    let fx = Fixture::new(3 * 1024 * 1024 + 12_345);
    let origin = Origin::start(&fx.file, &[]);
    let a = Relay::start_url_only(&origin.url(), &fx.dir.path().join("a"));
    let b = Relay::start_url_only(&origin.url(), &fx.dir.path().join("b"));
    let ta = a.wait_state("complete", Duration::from_secs(60));
    let tb = b.wait_state("complete", Duration::from_secs(60));
    let hash = |r: &Relay| {
        wait_for(Duration::from_secs(20), || r.task()["info_hash"].as_str().map(String::from))
            .expect("the relay built the torrent")
    };
    assert_eq!(hash(&a), hash(&b), "{ta} vs {tb}");
    assert_eq!(ta["piece_length"], tb["piece_length"]);
}
