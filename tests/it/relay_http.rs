//! The relay's HTTP server as a client sees it: per-IP connection limit, oversized and slow
//! request heads, Last-Modified with If-Modified-Since / If-Range, the bounded wait for bytes not
//! pulled yet, nginx as the relay's origin, and a range read back in after its pages were evicted.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use floodgate_engine::tracker::{parse_announce_response, AnnounceRequest, ResponseError};
use floodgate_engine::types::{InfoHash, PeerId};
use floodgate_tests::{free_addr, wait_for, wait_for_listen, ChildGuard};

use crate::interop::require;
use crate::relay::{curl, path, Fixture, Origin, Relay};

/// Sends `raw` on a fresh connection and reads until the server closes it (bounded).
fn exchange(addr: SocketAddr, raw: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).expect("connect to the relay");
    s.write_all(raw).expect("send the request");
    read_to_close(&mut s)
}

/// Everything the server sends until it closes the connection (10 s at most).
fn read_to_close(s: &mut TcpStream) -> String {
    String::from_utf8_lossy(&read_all(s)).into_owned()
}

/// The bytes the server sends until it closes the connection or 10 s pass without any.
fn read_all(s: &mut TcpStream) -> Vec<u8> {
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("set a read timeout");
    let mut out = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    out
}

/// One keep-alive `GET /tasks` on an open connection; returns the status line. Reads the whole
/// response (head and `content-length` body), however it is split into reads, so the next
/// request on the connection starts clean.
fn get_tasks(s: &mut TcpStream) -> String {
    s.write_all(b"GET /tasks HTTP/1.1\r\nHost: relay\r\n\r\n").expect("send a request");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("set a read timeout");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let head_end = got.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4);
        if let Some(end) = head_end {
            let body =
                header(&got[..end], "content-length").and_then(|v| v.parse::<usize>().ok()).unwrap_or(0);
            if got.len() >= end + body {
                break;
            }
        }
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&got).lines().next().unwrap_or("").to_string()
}

/// A header's value in a `curl -D -` dump.
fn header(dump: &[u8], name: &str) -> Option<String> {
    String::from_utf8_lossy(dump).lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
    })
}

/// A relay that has pulled all of a small fixture.
fn complete_relay(extra: &[&str]) -> (Fixture, Origin, Relay) {
    let fx = Fixture::new(1024 * 1024 + 333);
    let origin = Origin::start(&fx.file, &[]);
    let relay = Relay::start(&fx, &origin.url(), &fx.dir.path().join("relay"), extra);
    relay.wait_state("complete", Duration::from_secs(30));
    (fx, origin, relay)
}

#[test]
fn per_ip_connection_limit_is_enforced() {
    let (_fx, _origin, relay) = complete_relay(&["--http-conns-per-ip", "3"]);
    let mut held: Vec<TcpStream> = (0..3)
        .map(|_| {
            let mut s = TcpStream::connect(relay.http).expect("connect");
            assert_eq!(get_tasks(&mut s), "HTTP/1.1 200 OK", "connections under the limit are served");
            s
        })
        .collect();
    // The fourth connection from 127.0.0.1 is refused with 503 and closed.
    let mut fourth = TcpStream::connect(relay.http).expect("connect");
    let answer = read_to_close(&mut fourth);
    assert!(answer.starts_with("HTTP/1.1 503"), "over the limit: {answer:?}");
    assert!(answer.contains("too many connections"), "{answer:?}");
    // The held ones still work; once one closes, a new connection is admitted.
    assert_eq!(get_tasks(&mut held[0]), "HTTP/1.1 200 OK");
    drop(held.pop());
    let admitted = wait_for(Duration::from_secs(10), || {
        let mut s = TcpStream::connect(relay.http).ok()?;
        (get_tasks(&mut s) == "HTTP/1.1 200 OK").then_some(s)
    });
    assert!(admitted.is_some(), "a slot freed by a closed connection is given to a new one");
}

#[test]
fn oversized_request_head_gets_431() {
    let (_fx, _origin, relay) = complete_relay(&[]);
    let mut raw = format!("GET /tasks/{}/data HTTP/1.1\r\nHost: relay\r\n", relay.id).into_bytes();
    raw.extend_from_slice(format!("X-Filler: {}\r\n\r\n", "a".repeat(20 * 1024)).as_bytes());
    let answer = exchange(relay.http, &raw);
    assert!(answer.starts_with("HTTP/1.1 431"), "a 20 KiB head: {answer:?}");
    // Just under the limit is still served.
    let mut raw = format!("GET /tasks/{}/data HTTP/1.1\r\nHost: relay\r\n", relay.id).into_bytes();
    raw.extend_from_slice(
        format!("Range: bytes=0-9\r\nConnection: close\r\nX-Filler: {}\r\n\r\n", "a".repeat(15 * 1024))
            .as_bytes(),
    );
    let answer = exchange(relay.http, &raw);
    assert!(answer.starts_with("HTTP/1.1 206"), "a 15 KiB head: {:?}", &answer[..answer.len().min(200)]);
}

/// The status line of each response in everything a connection answered, read by each head's
/// `content-length` (no bodies after a HEAD); anything left that is not a response counts as
/// `"garbage"`.
fn status_lines(answer: &str, head_request: bool) -> Vec<String> {
    let mut lines = Vec::new();
    let mut rest = answer;
    while !rest.is_empty() {
        let Some(end) = rest.find("\r\n\r\n").filter(|_| rest.starts_with("HTTP/1.1 ")) else {
            lines.push("garbage".to_string());
            break;
        };
        let head = &rest[..end];
        lines.push(head.lines().next().unwrap_or_default().to_string());
        let len = if head_request {
            0
        } else {
            header(head.as_bytes(), "content-length").and_then(|v| v.parse().ok()).unwrap_or(0)
        };
        rest = rest.get(end + 4 + len..).unwrap_or_default();
    }
    lines
}

#[test]
fn request_bodies_are_never_read_as_the_next_request() {
    let (_fx, _origin, relay) = complete_relay(&[]);
    // A whole second request, 53 bytes, as the body of the first.
    let inner = "GET /metrics HTTP/1.1\r\nHost: relay\r\nX-Pad: 123456\r\n\r\n";
    assert_eq!(inner.len(), 53);

    let raw = format!("GET /tasks HTTP/1.1\r\nHost: relay\r\nContent-Length: 53\r\n\r\n{inner}");
    let answer = exchange(relay.http, raw.as_bytes());
    assert_eq!(status_lines(&answer, false), ["HTTP/1.1 200 OK"], "one answer for one request: {answer:?}");
    assert!(!answer.contains("floodgate_relay_"), "the body was not served as /metrics: {answer:?}");
    assert!(answer.contains("connection: close"), "the connection closes after a request with a body");

    let raw = format!("HEAD /tasks HTTP/1.1\r\nHost: relay\r\nContent-Length: 53\r\n\r\n{inner}");
    let answer = exchange(relay.http, raw.as_bytes());
    assert_eq!(status_lines(&answer, true), ["HTTP/1.1 200 OK"], "HEAD with a body: {answer:?}");

    let chunked = format!(
        "GET /tasks HTTP/1.1\r\nHost: relay\r\nTransfer-Encoding: chunked\r\n\r\n35\r\n{inner}\r\n0\r\n\r\n"
    );
    let answer = exchange(relay.http, chunked.as_bytes());
    assert_eq!(
        status_lines(&answer, false),
        ["HTTP/1.1 400 Bad Request"],
        "a chunked request body: {answer:?}"
    );
    assert!(!answer.contains("floodgate_relay_"), "the chunk was not served as /metrics: {answer:?}");

    let both = format!(
        "GET /tasks HTTP/1.1\r\nHost: relay\r\nContent-Length: 53\r\nTransfer-Encoding: chunked\r\n\r\n{inner}"
    );
    let answer = exchange(relay.http, both.as_bytes());
    assert_eq!(
        status_lines(&answer, false),
        ["HTTP/1.1 400 Bad Request"],
        "both framing headers: {answer:?}"
    );

    let conflicting =
        format!("GET /tasks HTTP/1.1\r\nContent-Length: 53\r\nContent-Length: 0\r\n\r\n{inner}");
    let answer = exchange(relay.http, conflicting.as_bytes());
    assert_eq!(status_lines(&answer, false), ["HTTP/1.1 400 Bad Request"], "two lengths: {answer:?}");

    let huge = "GET /tasks HTTP/1.1\r\nHost: relay\r\nContent-Length: 1048576\r\n\r\nxyz";
    let answer = exchange(relay.http, huge.as_bytes());
    assert_eq!(status_lines(&answer, false), ["HTTP/1.1 413 Content Too Large"], "a 1 MiB body: {answer:?}");

    // Keep-alive without a body still carries the next request.
    let two = "GET /tasks HTTP/1.1\r\nHost: relay\r\n\r\nGET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n";
    let answer = exchange(relay.http, two.as_bytes());
    assert_eq!(
        status_lines(&answer, false),
        ["HTTP/1.1 200 OK", "HTTP/1.1 200 OK"],
        "two pipelined requests: {answer:?}"
    );
}

/// One announce for `info_hash` through the relay's HTTP server: the peers, or the tracker's
/// failure reason.
fn announce(relay: &Relay, info_hash: InfoHash, port: u16) -> Result<Vec<SocketAddr>, String> {
    let req = AnnounceRequest {
        info_hash,
        peer_id: PeerId::generate(),
        port,
        uploaded: 0,
        downloaded: 0,
        left: 1,
        event: None,
        numwant: None,
        key: None,
    };
    let raw = format!("GET {} HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\r\n", req.url("/announce"));
    let mut s = TcpStream::connect(relay.http).expect("connect to the relay");
    s.write_all(raw.as_bytes()).expect("send the announce");
    let answer = read_all(&mut s);
    let body_at = answer.windows(4).position(|w| w == b"\r\n\r\n").expect("a response head") + 4;
    match parse_announce_response(&answer[body_at..]) {
        Ok(r) => Ok(r.peers),
        Err(ResponseError::Failure { reason }) => Err(reason),
        Err(e) => panic!("the tracker's answer does not parse: {e}"),
    }
}

#[test]
fn the_built_in_tracker_tracks_only_the_relays_own_tasks() {
    let (_fx, _origin, relay) = complete_relay(&["--http-rate-per-ip", "0"]);
    let own = InfoHash::from_hex(&relay.id).expect("a hash-known task's id is its info-hash");
    // The relay registers itself as the task's seed shortly after start.
    let peers =
        wait_for(Duration::from_secs(10), || announce(&relay, own, 7001).ok().filter(|p| !p.is_empty()));
    assert!(
        peers.is_some_and(|p| p.iter().any(|a| a.port() == relay.bt.port())),
        "the relay seeds its own task"
    );
    // More foreign info-hashes than the relay's 64-swarm table: all refused, none take room.
    for i in 0..250u32 {
        let mut fake = [0x5a; 20];
        fake[..4].copy_from_slice(&i.to_be_bytes());
        let answer = announce(&relay, InfoHash(fake), 7002);
        assert_eq!(answer, Err("torrent not allowed here".to_string()), "fake info-hash {i}");
    }
    let peers = announce(&relay, own, 7003).expect("the relay's own task is still tracked");
    assert!(peers.iter().any(|a| a.port() == 7001), "earlier announces are remembered: {peers:?}");
}

#[test]
fn a_client_trickling_its_request_head_is_cut_off() {
    let (_fx, _origin, relay) = complete_relay(&["--http-head-timeout", "2"]);
    let mut s = TcpStream::connect(relay.http).expect("connect");
    let mut writer = s.try_clone().expect("clone the socket");
    let started = Instant::now();
    // One byte every 100 ms: each read gets something long before the head timeout, but the
    // whole head (about 80 bytes) would take 8 s.
    let trickle = std::thread::spawn(move || {
        let head = format!("GET /tasks HTTP/1.1\r\nHost: relay\r\nX-Slow: {}\r\n\r\n", "z".repeat(40));
        for b in head.bytes() {
            if writer.write_all(&[b]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let answer = read_to_close(&mut s);
    let secs = started.elapsed().as_secs_f64();
    assert!(answer.starts_with("HTTP/1.1 408"), "the slow client was answered {answer:?} after {secs:.1} s");
    assert!((1.5..5.0).contains(&secs), "cut off after {secs:.1} s with a 2 s head timeout");
    let _ = trickle.join();
}

#[test]
fn last_modified_if_modified_since_and_if_range() {
    let before = std::time::SystemTime::now();
    let (fx, _origin, relay) = complete_relay(&[]);
    let url = relay.data_url();
    let len = fx.data.len();
    let (code, dump) = curl(&url, &["-I"]);
    assert_eq!(code, 200);
    let lm = header(&dump, "last-modified").expect("a Last-Modified header");
    let etag = header(&dump, "etag").expect("an ETag header");
    assert!(header(&dump, "date").is_some(), "a Date header");
    assert!(lm.ends_with(" GMT") && lm.len() == 29, "an IMF-fixdate: {lm:?}");

    // Not modified since then (or since later): 304 without a body, for GET and HEAD.
    let (code, body) = curl(&url, &["-H", &format!("If-Modified-Since: {lm}")]);
    assert_eq!((code, body.len()), (304, 0));
    let (code, dump) = curl(&url, &["-I", "-H", "If-Modified-Since: Fri, 31 Dec 2100 23:59:59 GMT"]);
    assert_eq!(code, 304);
    assert_eq!(header(&dump, "etag").as_deref(), Some(etag.as_str()), "304 repeats the validators");
    // Modified since an older date, or an invalid date: the data.
    let (code, body) = curl(&url, &["-H", "If-Modified-Since: Sat, 01 Jan 2000 00:00:00 GMT"]);
    assert_eq!((code, body.len()), (200, len));
    let (code, _) = curl(&url, &["-r", "0-9", "-H", "If-Modified-Since: not a date"]);
    assert_eq!(code, 206);
    // If-None-Match wins over If-Modified-Since.
    let both = ["-H", "If-None-Match: \"other\"", "-H", &format!("If-Modified-Since: {lm}")];
    let (code, body) = curl(&url, &both);
    assert_eq!((code, body.len()), (200, len));

    // If-Range with the exact date: the range; with another date: the whole file.
    let (code, body) = curl(&url, &["-r", "100-199", "-H", &format!("If-Range: {lm}")]);
    assert_eq!(code, 206);
    assert!(body == fx.data[100..200], "range bytes differ");
    let (code, body) = curl(&url, &["-r", "100-199", "-H", "If-Range: Sat, 01 Jan 2000 00:00:00 GMT"]);
    assert_eq!((code, body.len()), (200, len));
    // Past the end: 416 with the length, unless If-Range sends the whole file instead.
    let (code, dump) = curl(&url, &["-r", &format!("{len}-"), "-D", "-", "-o", "/dev/null"]);
    assert_eq!(code, 416);
    assert_eq!(header(&dump, "content-range"), Some(format!("bytes */{len}")));
    let (code, body) = curl(&url, &["-r", &format!("{len}-"), "-H", "If-Range: \"other\""]);
    assert_eq!((code, body.len()), (200, len));

    // Last-Modified is the task's start, give or take the second it was cut to.
    let lm = httpdate_parse(&lm);
    let slack = Duration::from_secs(1);
    assert!(
        lm + slack >= before && lm <= std::time::SystemTime::now(),
        "Last-Modified {lm:?} is not the start"
    );
}

#[test]
fn a_range_not_pulled_in_time_gets_503_not_bytes() {
    let fx = Fixture::new(4 * 1024 * 1024);
    // 20 kB/s: the last piece cannot arrive within the 1 s wait.
    let origin = Origin::start(&fx.file, &["--rate", "20000"]);
    let relay = Relay::start(&fx, &origin.url(), &fx.dir.path().join("relay"), &["--http-data-wait", "1"]);
    let t0 = Instant::now();
    let (code, dump) = curl(&relay.data_url(), &["-r", "-100", "-D", "-"]);
    let secs = t0.elapsed().as_secs_f64();
    assert_eq!(code, 503, "{}", String::from_utf8_lossy(&dump));
    assert_eq!(header(&dump, "retry-after").as_deref(), Some("5"));
    assert!((0.9..10.0).contains(&secs), "the wait was bounded by --http-data-wait: {secs:.1} s");
}

#[test]
fn nginx_as_the_origin() {
    let nginx = nginx_binary();
    require(Command::new(&nginx).arg("-v"), "nginx");
    let fx = Fixture::new(3 * 1024 * 1024 + 17);
    let server = Nginx::start(&nginx, fx.dir.path());
    let url = format!("http://{}/blob.bin", server.addr);
    assert_eq!(curl(&url, &["-r", "0-9", "-o", "/dev/null"]).0, 206, "nginx serves ranges of the file");
    let relay = Relay::start(&fx, &url, &fx.dir.path().join("relay"), &[]);
    let task = relay.wait_state("complete", Duration::from_secs(60));
    assert_eq!(task["origin_bytes"].as_u64(), Some(fx.data.len() as u64), "pulled once from nginx: {task}");
    let (code, body) = curl(&relay.data_url(), &[]);
    assert_eq!(code, 200);
    assert!(body == fx.data, "the relay's copy of nginx's file differs");
    let (code, body) = curl(&relay.data_url(), &["-r", "1000000-2999999"]);
    assert_eq!(code, 206);
    assert!(body == fx.data[1_000_000..3_000_000], "range differs");
}

/// nginx on the PATH, else `/usr/sbin/nginx` (often not on a non-root PATH).
pub(crate) fn nginx_binary() -> PathBuf {
    let on_path =
        Command::new("nginx").arg("-v").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok();
    if on_path {
        PathBuf::from("nginx")
    } else {
        PathBuf::from("/usr/sbin/nginx")
    }
}

/// A single-process nginx (no daemon, no workers: killing it leaves nothing behind) serving
/// `root` on 127.0.0.1.
pub(crate) struct Nginx {
    /// Where it listens.
    pub(crate) addr: SocketAddr,
    _child: ChildGuard,
}

impl Nginx {
    /// Starts it (its config and logs go to `root/nginx`).
    pub(crate) fn start(nginx: &Path, root: &Path) -> Self {
        let addr = free_addr();
        let conf_dir = root.join("nginx");
        std::fs::create_dir_all(&conf_dir).expect("nginx dir");
        let p = |name: &str| conf_dir.join(name).display().to_string();
        let conf = format!(
            "daemon off;\nmaster_process off;\npid {pid};\nerror_log {log} warn;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n access_log off;\n sendfile on;\n client_body_temp_path {t}/body;\n \
             proxy_temp_path {t}/proxy;\n fastcgi_temp_path {t}/fastcgi;\n uwsgi_temp_path {t}/uwsgi;\n \
             scgi_temp_path {t}/scgi;\n server {{ listen {addr}; root {root}; }}\n}}\n",
            pid = p("nginx.pid"),
            log = p("error.log"),
            t = conf_dir.display(),
            root = root.display(),
        );
        std::fs::write(conf_dir.join("nginx.conf"), conf).expect("write nginx.conf");
        let child = ChildGuard::spawn(
            Command::new(nginx)
                .args(["-e", &p("error.log"), "-p", path(&conf_dir), "-c", &p("nginx.conf")])
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )
        .expect("spawn nginx");
        let up = wait_for_listen(addr, Duration::from_secs(10));
        let log = std::fs::read_to_string(conf_dir.join("error.log")).unwrap_or_default();
        assert!(up, "nginx did not listen on {addr}: {log}");
        Nginx { addr, _child: child }
    }
}

/// Parses an IMF-fixdate such as `Sun, 06 Nov 1994 08:49:37 GMT` (the tests need only that).
fn httpdate_parse(text: &str) -> std::time::SystemTime {
    let parts: Vec<&str> = text.split([' ', ':']).collect();
    let num = |i: usize| parts.get(i).and_then(|v| v.parse::<u64>().ok()).expect("a date field");
    let month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        .iter()
        .position(|m| parts.get(2) == Some(m))
        .expect("a month") as u64;
    let (year, day) = (num(3), num(1));
    // Days from 1970-01-01 to the first of the month (civil calendar).
    let (y, m) = if month < 2 { (year - 1, month + 10) } else { (year, month - 2) };
    let era_days = 365 * y + y / 4 - y / 100 + y / 400 + (153 * m + 2) / 5;
    let days = era_days + day - 1 - 719_468;
    let secs = days * 86_400 + num(4) * 3600 + num(5) * 60 + num(6);
    std::time::UNIX_EPOCH + Duration::from_secs(secs)
}

#[test]
fn request_rate_limit_holds_across_new_connections() {
    let (_fx, _origin, relay) = complete_relay(&["--http-rate-per-ip", "3"]);
    // Let the bucket refill after the polling above, then one connection per request.
    std::thread::sleep(Duration::from_millis(1500));
    // In-process sockets rather than curl processes: the 8 requests must come within well
    // under a second even on a loaded machine.
    let raw = b"GET /tasks HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\r\n";
    let codes: Vec<u16> = (0..8)
        .map(|_| {
            let answer = exchange(relay.http, raw);
            answer.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
        })
        .collect();
    assert_eq!(codes[0], 200, "{codes:?}");
    let refused = codes.iter().filter(|&&c| c == 429).count();
    assert!(refused >= 3, "8 requests at once against 3/s: {codes:?}");
    assert!(codes.iter().all(|&c| c == 200 || c == 429), "{codes:?}");
}

#[test]
fn a_client_that_stops_reading_the_body_is_cut_off() {
    let fx = Fixture::new(32 * 1024 * 1024);
    let origin = Origin::start(&fx.file, &[]);
    let relay =
        Relay::start(&fx, &origin.url(), &fx.dir.path().join("relay"), &["--http-write-timeout", "1"]);
    relay.wait_state("complete", Duration::from_secs(60));
    let mut s = TcpStream::connect(relay.http).expect("connect");
    s.write_all(format!("GET /tasks/{}/data HTTP/1.1\r\nHost: relay\r\n\r\n", relay.id).as_bytes())
        .expect("send the request");
    // Take nothing for 4 s: the socket buffers fill and the relay's 1 s budget runs out.
    std::thread::sleep(Duration::from_secs(4));
    let t0 = Instant::now();
    let got = read_all(&mut s);
    let secs = t0.elapsed().as_secs_f64();
    assert!(got.starts_with(b"HTTP/1.1 200"), "the response began");
    assert!(
        got.len() < fx.data.len(),
        "the relay sent all {} bytes to a client that did not read",
        got.len()
    );
    assert!(secs < 5.0, "the relay had closed the connection; reading what was buffered took {secs:.1} s");
}

/// The relay's `floodgate_relay_http_cold_<what>_total` for its task.
fn cold_metric(relay: &Relay, what: &str) -> u64 {
    let (code, body) = curl(&format!("http://{}/metrics", relay.http), &[]);
    assert_eq!(code, 200, "GET /metrics");
    let name = format!("floodgate_relay_http_cold_{what}_total{{task=\"{}\"}} ", relay.id);
    String::from_utf8_lossy(&body)
        .lines()
        .find_map(|l| l.strip_prefix(&name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
}

/// The one file under `dir` (recursively) that is `len` bytes long: the relay's stored copy.
fn stored_file(dir: &Path, len: u64) -> PathBuf {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).expect("read the data dir").flatten() {
            let p = e.path();
            match e.metadata() {
                Ok(m) if m.is_dir() => todo.push(p),
                Ok(m) if m.len() == len => found.push(p),
                _ => {}
            }
        }
    }
    assert_eq!(found.len(), 1, "one stored file of {len} bytes under {}: {found:?}", dir.display());
    found.remove(0)
}

#[test]
fn a_range_whose_pages_were_evicted_is_read_in_off_the_runtime_and_served_whole() {
    let (fx, _origin, relay) = complete_relay(&[]);
    let len = fx.data.len() as u64;
    let stored = stored_file(&fx.dir.path().join("relay"), len);
    // Hot first: a range already in the page cache is not a cold run.
    let (code, body) = curl(&relay.data_url(), &["-r", "0-999"]);
    assert_eq!(code, 206);
    assert!(body == fx.data[..1000], "hot range differs");
    assert_eq!(cold_metric(&relay, "runs"), 0, "the just-written file is all in the page cache");

    // Evict the relay's copy (clean pages only: flush it first).
    let file = std::fs::File::open(&stored).expect("open the stored file");
    file.sync_all().expect("fsync the stored file");
    rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed).expect("fadvise DONTNEED");
    let (start, end) = (100_000u64, 900_000u64);
    let res = floodgate_engine::uring::residency(&file, start, end - start).expect("cachestat");
    assert!(res.measured, "cachestat(2) exists here (Linux 6.5+)");
    assert!(res.cached * 2 < res.pages, "the range was evicted (not a tmpfs?): {res:?}");

    let (code, body) = curl(&relay.data_url(), &["-r", &format!("{start}-{}", end - 1)]);
    assert_eq!(code, 206);
    assert!(body == fx.data[start as usize..end as usize], "the cold range's bytes differ");
    let runs = cold_metric(&relay, "runs");
    let bytes = cold_metric(&relay, "bytes");
    assert!(runs >= 1, "the cold range was read in off the runtime: {runs} runs");
    assert!(bytes >= end - start && bytes <= 2 * len, "cold bytes cover the range: {bytes}");
    let res = floodgate_engine::uring::residency(&file, start, end - start).expect("cachestat");
    assert!(res.is_whole(), "the range is in the page cache after serving it: {res:?}");
}
