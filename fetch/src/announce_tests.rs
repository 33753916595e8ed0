//! Announces against the engine's tracker on 127.0.0.1, canned servers (chunked, closing,
//! oversized, stalled answers) and an HTTPS tracker with a certificate made by `openssl`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use floodgate_engine::tracker::{AnnounceResponse, Event, TrackerConfig, TrackerRunner};
use floodgate_engine::types::{InfoHash, PeerId};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use super::*;

fn request(event: Option<Event>) -> AnnounceRequest {
    AnnounceRequest {
        info_hash: InfoHash([0xab; 20]),
        peer_id: PeerId(*b"-FG0100-abcdefghijkl"),
        port: 6881,
        uploaded: 1,
        downloaded: 2,
        left: 3,
        event,
        numwant: Some(50),
        key: Some(0xdead_beef),
    }
}

/// An address nothing listens on.
fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

const T: Duration = Duration::from_secs(10);

#[tokio::test]
async fn announce_over_loopback() {
    let runner = TrackerRunner::start("127.0.0.1:0".parse().unwrap(), TrackerConfig::default()).unwrap();
    let url = format!("http://{}/announce", runner.local_addr());
    let first = announce(&url, &request(Some(Event::Started)), T, None).await.unwrap();
    assert!(first.peers.is_empty());
    let second = AnnounceRequest { peer_id: PeerId([7; 20]), port: 7000, ..request(Some(Event::Started)) };
    let r = announce(&url, &second, T, None).await.unwrap();
    assert_eq!(r.peers, vec!["127.0.0.1:6881".parse().unwrap()]);
    assert_eq!(r.interval, 120);
    let nope = HttpUrl::parse(&format!("http://{}/nope", runner.local_addr())).unwrap();
    let (status, _) = get_response(&mut None, &nope, T, None, 1024).await.unwrap();
    assert_eq!(status, 404);
    let err = announce(&nope.to_string(), &second, T, None).await.unwrap_err();
    assert!(matches!(err, AnnounceError::Response(ResponseError::Failure { .. })), "{err}");
    let err = announce(&format!("http://{}/", free_addr()), &second, T, None).await.unwrap_err();
    assert!(matches!(err, AnnounceError::Fetch(FetchError::Io(_))), "{err}");
    assert_eq!(runner.server().lock().peer_count(&InfoHash([0xab; 20])), 2);
}

#[tokio::test]
async fn unusable_urls_are_refused_before_any_io() {
    for bad in
        ["udp://t:80/announce", "t/announce", "http://:80/", "http://h:0/", "http://[::1/", "http://h/a b"]
    {
        let err = announce(bad, &request(None), T, None).await.unwrap_err();
        assert!(matches!(err, AnnounceError::Fetch(FetchError::BadUrl(_))), "{bad}: {err}");
    }
    // An https tracker without a TLS setup is refused, not sent in the clear.
    let err = announce(&format!("https://{}/a", free_addr()), &request(None), T, None).await.unwrap_err();
    assert!(matches!(err, AnnounceError::Fetch(FetchError::Unusable(_))), "{err}");
}

/// A bencoded answer naming one peer, 10.0.0.1:80.
fn body() -> Vec<u8> {
    let resp =
        AnnounceResponse { interval: 60, peers: vec!["10.0.0.1:80".parse().unwrap()], ..Default::default() };
    let mut out = Vec::new();
    resp.encode(true, &mut out);
    out
}

/// Reads one request head from `s`; returns its target.
async fn read_head<S: AsyncRead + Unpin>(s: &mut S) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got).into_owned();
    text.split(' ').nth(1).unwrap_or_default().to_string()
}

/// Serves one connection: reads a request head, writes `answer` and closes (or, with
/// `stall`, keeps the connection open without answering).
async fn serve_once(answer: Vec<u8>, stall: bool) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        read_head(&mut s).await;
        if stall {
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
        s.write_all(&answer).await.unwrap();
    });
    format!("http://{addr}/announce")
}

fn with_head(head: &str, body: &[u8]) -> Vec<u8> {
    let mut out = head.as_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

fn chunked(body: &[u8], chunk: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for c in body.chunks(chunk) {
        out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        out.extend_from_slice(c);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\nX-Trailer: 1\r\n\r\n");
    out
}

#[tokio::test]
async fn chunked_and_closing_bodies_are_read() {
    let want: Vec<SocketAddr> = vec!["10.0.0.1:80".parse().unwrap()];
    let answer = with_head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", &chunked(&body(), 7));
    let r = announce(&serve_once(answer, false).await, &request(None), T, None).await.unwrap();
    assert_eq!(r.peers, want);
    let answer = with_head("HTTP/1.0 200 OK\r\n\r\n", &body());
    let r = announce(&serve_once(answer, false).await, &request(None), T, None).await.unwrap();
    assert_eq!(r.peers, want);
    let answer = with_head(&format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body().len()), &body());
    let r = announce(&serve_once(answer, false).await, &request(None), T, None).await.unwrap();
    assert_eq!(r.peers, want);
}

#[tokio::test]
async fn oversized_broken_and_refused_answers_are_typed_errors() {
    let too_large = |e: &AnnounceError| matches!(e, AnnounceError::Fetch(FetchError::TooLarge { .. }));
    let big = MAX_RESPONSE_BYTES + 1;
    let answer = format!("HTTP/1.1 200 OK\r\nContent-Length: {big}\r\n\r\n").into_bytes();
    let err = announce(&serve_once(answer, false).await, &request(None), T, None).await.unwrap_err();
    assert!(too_large(&err), "{err}");
    let answer = with_head(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        &chunked(&vec![b'x'; big], 1 << 16),
    );
    let err = announce(&serve_once(answer, false).await, &request(None), T, None).await.unwrap_err();
    assert!(too_large(&err), "{err}");
    let answer = with_head("HTTP/1.0 200 OK\r\n\r\n", &vec![b'x'; big]);
    let err = announce(&serve_once(answer, false).await, &request(None), T, None).await.unwrap_err();
    assert!(too_large(&err), "{err}");
    let answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec();
    let err = announce(&serve_once(answer, false).await, &request(None), T, None).await.unwrap_err();
    assert!(matches!(err, AnnounceError::Fetch(FetchError::Unusable(_))), "{err}");
    let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nd8:interval".to_vec();
    let err = announce(&serve_once(answer, false).await, &request(None), T, None).await.unwrap_err();
    assert!(matches!(err, AnnounceError::Fetch(FetchError::Truncated { got: 11, want: 100 })), "{err}");
    let answer = b"HTTP/1.1 503 Busy\r\nContent-Length: 4\r\n\r\nbusy".to_vec();
    let err = announce(&serve_once(answer, false).await, &request(None), T, None).await.unwrap_err();
    assert!(matches!(err, AnnounceError::Status { status: 503 }), "{err}");
    let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nde".to_vec();
    let err = announce(&serve_once(answer, false).await, &request(None), T, None).await.unwrap_err();
    assert!(matches!(err, AnnounceError::Response(ResponseError::Missing { key: "interval" })), "{err}");
}

#[tokio::test]
async fn a_stalled_tracker_is_given_up_on_at_the_timeout() {
    let url = serve_once(Vec::new(), true).await;
    let started = Instant::now();
    let err = announce(&url, &request(None), Duration::from_millis(300), None).await.unwrap_err();
    assert!(matches!(err, AnnounceError::Fetch(FetchError::Timeout(_))), "{err}");
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
}

/// Makes a self-signed certificate for `localhost` and 127.0.0.1 with the `openssl` tool
/// (required: the test fails without it); returns the PEM certificate and key paths.
fn self_signed(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let status = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
        .args(["-days", "1", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("the openssl tool is needed to make a test certificate");
    assert!(status.success(), "openssl req failed");
    (cert, key)
}

#[tokio::test]
async fn https_trackers_are_announced_to_over_tls() {
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use tokio_rustls::rustls::ServerConfig;

    let dir = std::env::temp_dir().join(format!("fg-announce-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = self_signed(&dir);
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(&cert).unwrap().map(|c| c.unwrap()).collect();
    let key = PrivateKeyDer::from_pem_file(&key).unwrap();
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let server = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let served = tokio::spawn(async move {
        let mut targets = Vec::new();
        // The first connection is refused by a client that does not trust the certificate.
        for _ in 0..2 {
            let (tcp, _) = listener.accept().await.unwrap();
            let Ok(mut s) = acceptor.accept(tcp).await else { continue };
            targets.push(read_head(&mut s).await);
            let answer =
                with_head(&format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body().len()), &body());
            s.write_all(&answer).await.unwrap();
            s.shutdown().await.unwrap();
        }
        targets
    });
    let url = format!("https://localhost:{port}/announce?passkey=k");
    let untrusting = crate::client_config(None).ok();
    if let Some(tls) = &untrusting {
        let err = announce(&url, &request(None), T, Some(tls)).await.unwrap_err();
        assert!(matches!(err, AnnounceError::Fetch(FetchError::Tls(_))), "{err}");
    } else {
        // No system roots on this machine: make the first connection all the same.
        let _ = tokio::net::TcpStream::connect(("127.0.0.1", port)).await;
    }
    let tls = crate::client_config(Some(&cert)).unwrap();
    let r = announce(&url, &request(Some(Event::Started)), T, Some(&tls)).await.unwrap();
    assert_eq!(r.peers, vec!["10.0.0.1:80".parse::<SocketAddr>().unwrap()]);
    let targets = tokio::time::timeout(T, served).await.unwrap().unwrap();
    assert_eq!(targets.len(), 1, "{targets:?}");
    assert!(targets[0].starts_with("/announce?passkey=k&info_hash=%AB"), "{}", targets[0]);
    assert!(targets[0].contains("&event=started"), "{}", targets[0]);
    let _ = std::fs::remove_dir_all(&dir);
}
