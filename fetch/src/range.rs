//! Range requests for runs of pieces: the probe that learns a source's validators, the checks
//! every response must pass, and the body loop that hands out whole pieces.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use floodgate_engine::http::{HttpUrl, ResponseHead};
use tokio_rustls::rustls::ClientConfig;

use crate::{Conn, FetchError, Quota};

/// What a probe learnt about a source: the validators every later response must match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validators {
    /// The file's length.
    pub length: u64,
    /// The file's ETag, when the source sends one.
    pub etag: Option<String>,
}

/// Counters a fetch adds to (requests made, body bytes read); either may be shared.
#[derive(Clone, Copy, Debug)]
pub struct Tally<'a> {
    /// Requests sent.
    pub requests: &'a AtomicU64,
    /// Body bytes received.
    pub bytes: &'a AtomicU64,
}

/// One Range request: bytes `start..start + Σ piece_sizes`, split into pieces of these sizes.
#[derive(Clone, Debug)]
pub struct RunSpec<'a> {
    /// First byte of the run in the file.
    pub start: u64,
    /// Size of each piece of the run, in order.
    pub piece_sizes: &'a [u32],
}

/// What the caller wants after a piece: go on, or drop the rest of the run (e.g. BitTorrent
/// already brought the remaining pieces). Stopping closes the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Read the next piece.
    Continue,
    /// Stop reading this response.
    Stop,
}

/// Whether a status is success (2xx), worth retrying (5xx, 408, 429) or final.
pub fn check_status(status: u16) -> Result<(), FetchError> {
    match status {
        200..=299 => Ok(()),
        408 | 429 | 500..=599 => Err(FetchError::Status(status)),
        s => Err(FetchError::Refused(s)),
    }
}

/// The retry schedule: 100 ms, 200 ms, 400 ms ... capped at 5 s.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100u64.saturating_mul(1 << attempt.min(6))).min(Duration::from_secs(5))
}

/// HEADs `url` (retrying up to `max_attempts` times with [`backoff`]) to learn its length and
/// ETag. `on_retry` is told of each failed attempt.
pub async fn probe(
    url: &HttpUrl,
    io_timeout: Duration,
    tls: Option<&Arc<ClientConfig>>,
    max_attempts: u32,
    tally: Tally<'_>,
    mut on_retry: impl FnMut(&FetchError, u32),
) -> Result<Validators, FetchError> {
    let mut attempt = 0;
    loop {
        let r = async {
            let mut conn = Conn::connect(url, io_timeout, tls).await?;
            tally.requests.fetch_add(1, Ordering::Relaxed);
            let head = conn.request(url, true, None).await?;
            check_status(head.status)?;
            let length = head
                .content_length
                .ok_or_else(|| FetchError::Unusable("HEAD without Content-Length".into()))?;
            Ok::<_, FetchError>(Validators { length, etag: head.etag })
        }
        .await;
        match r {
            Ok(v) => return Ok(v),
            Err(e) if e.is_fatal() || attempt + 1 >= max_attempts => return Err(e),
            Err(e) => {
                on_retry(&e, attempt);
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
            }
        }
    }
}

/// Checks a Range response head against the validators and the bytes asked for.
fn validate(head: &ResponseHead, v: &Validators, start: u64, end: u64) -> Result<(), FetchError> {
    let whole = start == 0 && end == v.length;
    if let (Some(want), Some(got)) = (&v.etag, &head.etag) {
        if want != got {
            return Err(FetchError::Changed(format!("ETag was {want}, now {got}")));
        }
    }
    match (head.status, head.content_range) {
        (206, Some(cr)) => {
            if cr.complete_length.is_some_and(|l| l != v.length) {
                return Err(FetchError::Changed(format!(
                    "length was {}, Content-Range says {:?}",
                    v.length, cr.complete_length
                )));
            }
            let r = cr.range.ok_or_else(|| FetchError::Unusable("206 without a range".into()))?;
            if r.start != start || r.end != end {
                return Err(FetchError::Unusable(format!(
                    "asked bytes {start}-{}, got {}-{}",
                    end - 1,
                    r.start,
                    r.end - 1
                )));
            }
        }
        (206, None) => return Err(FetchError::Unusable("206 without Content-Range".into())),
        (200, _) if whole => {}
        (200, _) => return Err(FetchError::Unusable("source ignores Range requests".into())),
        (s, _) => return Err(FetchError::Refused(s)),
    }
    if head.content_length != Some(end - start) {
        return Err(FetchError::Unusable(format!(
            "Content-Length {:?} for a range of {} bytes",
            head.content_length,
            end - start
        )));
    }
    Ok(())
}

/// One Range request of a run: `len` bytes at `start` of the file at `url`, checked against
/// `validators`. A run of a multi-file torrent's pieces on a BEP 19 web seed is one part per
/// file segment (a Range request cannot span two files); every other run is one part.
#[derive(Clone, Debug)]
pub struct RunPart<'a> {
    /// The file's URL.
    pub url: &'a HttpUrl,
    /// First byte of the part in that file.
    pub start: u64,
    /// Bytes of the part (a part of 0 bytes sends no request).
    pub len: u64,
    /// What the file's responses must match. An ETag the caller did not know is learnt from
    /// the first response (read it back after the call) and holds for the rest of the run.
    pub validators: Validators,
}

/// Fetches one run with a Range request on `slot`'s connection (connecting when it has none
/// or cannot be reused), reading the body within `quota`, and calls `on_piece(i, bytes)` for
/// each whole piece `i` of the run as soon as it is in. A [`Flow::Stop`] drops the connection.
/// A failed request leaves `slot` empty, so the next call reconnects.
#[allow(clippy::too_many_arguments)]
pub async fn fetch_run(
    slot: &mut Option<Conn>,
    url: &HttpUrl,
    io_timeout: Duration,
    tls: Option<&Arc<ClientConfig>>,
    validators: &Validators,
    quota: &Quota,
    run: RunSpec<'_>,
    tally: Tally<'_>,
    on_piece: impl FnMut(usize, &[u8]) -> Result<Flow, FetchError>,
) -> Result<(), FetchError> {
    let len: u64 = run.piece_sizes.iter().map(|&s| u64::from(s)).sum();
    let mut parts = [RunPart { url, start: run.start, len, validators: validators.clone() }];
    fetch_parts(slot, io_timeout, tls, quota, &mut parts, run.piece_sizes, tally, on_piece).await
}

/// [`fetch_run`] for a run made of several Range requests, one per part, sent one after the
/// other on the same connection (all parts must be on one server): the parts' bytes, joined in
/// order, are the pieces of `piece_sizes`, so a piece that spans two parts is handed out once
/// both are in. The parts' lengths must add up to the pieces' sizes.
#[allow(clippy::too_many_arguments)]
pub async fn fetch_parts(
    slot: &mut Option<Conn>,
    io_timeout: Duration,
    tls: Option<&Arc<ClientConfig>>,
    quota: &Quota,
    parts: &mut [RunPart<'_>],
    piece_sizes: &[u32],
    tally: Tally<'_>,
    mut on_piece: impl FnMut(usize, &[u8]) -> Result<Flow, FetchError>,
) -> Result<(), FetchError> {
    let total: u64 = piece_sizes.iter().map(|&s| u64::from(s)).sum();
    if parts.iter().map(|p| p.len).sum::<u64>() != total {
        return Err(FetchError::Unusable("the parts of a run do not add up to its pieces".into()));
    }
    let result = async {
        let max_piece = piece_sizes.iter().copied().max().unwrap_or(0) as usize;
        let mut buf = Vec::with_capacity(max_piece);
        let mut piece = 0;
        for part in parts.iter_mut().filter(|p| p.len > 0) {
            let conn = match slot {
                Some(c) if c.reusable => c,
                _ => slot.insert(Conn::connect(part.url, io_timeout, tls).await?),
            };
            let (start, end) = (part.start, part.start + part.len);
            tally.requests.fetch_add(1, Ordering::Relaxed);
            let asked = Instant::now();
            let head = conn.request(part.url, false, Some((start, end))).await?;
            quota.record_latency(asked.elapsed());
            if let Err(e) = check_status(head.status) {
                conn.discard_body().await?;
                return Err(e);
            }
            validate(&head, &part.validators, start, end)?;
            if part.validators.etag.is_none() {
                part.validators.etag = head.etag.clone();
            }
            let mut left = part.len;
            while left > 0 {
                let size = piece_sizes.get(piece).copied().unwrap_or(0) as usize;
                if size == 0 {
                    return Err(FetchError::Unusable("a run with an empty piece".into()));
                }
                let want = ((size - buf.len()).min(64 * 1024) as u64).min(left) as usize;
                let allowed = quota.take(want as u64).await as usize;
                let got = conn.read_body(&mut buf, allowed).await.map_err(|e| match e {
                    FetchError::Io(_) => FetchError::Truncated { got: buf.len() as u64, want: size as u64 },
                    e => e,
                })?;
                if got < allowed {
                    quota.refund((allowed - got) as u64);
                }
                if got == 0 && allowed > 0 {
                    return Err(FetchError::Truncated { got: buf.len() as u64, want: size as u64 });
                }
                tally.bytes.fetch_add(got as u64, Ordering::Relaxed);
                left -= got as u64;
                if buf.len() == size {
                    if on_piece(piece, &buf)? == Flow::Stop {
                        conn.reusable = false;
                        return Ok(());
                    }
                    buf.clear();
                    piece += 1;
                }
            }
        }
        Ok(())
    }
    .await;
    if result.is_err() || slot.as_ref().is_some_and(|c| !c.reusable) {
        *slot = None;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(backoff(0), Duration::from_millis(100));
        assert_eq!(backoff(3), Duration::from_millis(800));
        assert_eq!(backoff(30), Duration::from_secs(5));
        assert!(check_status(503).is_err_and(|e| !e.is_fatal()));
        assert!(check_status(404).is_err_and(|e| e.is_fatal()));
        assert!(check_status(206).is_ok());
    }
}

#[cfg(test)]
mod server_tests {
    //! `fetch_run` against a one-shot server on 127.0.0.1 that answers with a canned head.

    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Serves one connection: reads a request head, answers `head` + `body`.
    async fn serve_once(head: String, body: Vec<u8>) -> HttpUrl {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let mut got = Vec::new();
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = s.read(&mut buf).await.unwrap();
                if n == 0 {
                    return;
                }
                got.extend_from_slice(&buf[..n]);
            }
            s.write_all(head.as_bytes()).await.unwrap();
            s.write_all(&body).await.unwrap();
        });
        HttpUrl::parse(&format!("http://{addr}/f")).unwrap()
    }

    async fn run(
        head: String,
        body: Vec<u8>,
        start: u64,
        sizes: &[u32],
    ) -> (Result<(), FetchError>, Vec<Vec<u8>>) {
        let url = serve_once(head, body).await;
        let (requests, bytes) = (AtomicU64::new(0), AtomicU64::new(0));
        let tally = Tally { requests: &requests, bytes: &bytes };
        let v = Validators { length: 1000, etag: Some("\"e\"".into()) };
        let quota = Quota::fixed(0, 1);
        let mut pieces = Vec::new();
        let mut slot = None;
        let spec = RunSpec { start, piece_sizes: sizes };
        let r =
            fetch_run(&mut slot, &url, Duration::from_secs(5), None, &v, &quota, spec, tally, |_, data| {
                pieces.push(data.to_vec());
                Ok(Flow::Continue)
            })
            .await;
        (r, pieces)
    }

    fn head206(start: u64, end: u64, etag: &str) -> String {
        format!(
            "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {start}-{}/1000\r\nContent-Length: {}\r\nETag: {etag}\r\n\r\n",
            end - 1,
            end - start
        )
    }

    #[tokio::test]
    async fn a_good_range_is_handed_out_piece_by_piece() {
        let body: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
        let (r, pieces) = run(head206(100, 400, "\"e\""), body.clone(), 100, &[100, 200]).await;
        r.unwrap();
        assert_eq!(pieces, vec![body[..100].to_vec(), body[100..].to_vec()]);
    }

    #[tokio::test]
    async fn wrong_ranges_changed_files_and_ignored_ranges_are_refused() {
        let (r, p) = run(head206(0, 300, "\"e\""), vec![0; 300], 100, &[300]).await;
        assert!(matches!(r, Err(FetchError::Unusable(_))) && p.is_empty(), "{r:?}");
        let (r, _) = run(head206(100, 400, "\"other\""), vec![0; 300], 100, &[300]).await;
        assert!(matches!(r, Err(FetchError::Changed(_))), "{r:?}");
        let ignored = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n".to_string();
        let (r, _) = run(ignored, vec![0; 1000], 100, &[300]).await;
        assert!(matches!(r, Err(FetchError::Unusable(_))), "{r:?}");
        let (r, _) = run("HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n".into(), vec![], 0, &[10]).await;
        assert!(matches!(r, Err(FetchError::Status(503))) && !r.as_ref().unwrap_err().is_fatal(), "{r:?}");
    }

    #[tokio::test]
    async fn a_truncated_body_is_an_error_after_the_whole_pieces() {
        let mut head = head206(0, 300, "\"e\"");
        head = head.replace("Content-Length: 300", "Content-Length: 300\r\nConnection: close");
        let (r, pieces) = run(head, vec![7; 150], 0, &[100, 200]).await;
        assert!(matches!(r, Err(FetchError::Truncated { got: 50, want: 200 })), "{r:?}");
        assert_eq!(pieces.len(), 1, "the whole first piece was handed out");
    }

    /// Serves keep-alive Range requests for `files` (path, bytes) on one connection, each
    /// answered 206 with an ETag per file; returns the server's base URL and a request counter.
    async fn serve_files(files: Vec<(&'static str, Vec<u8>)>) -> (String, Arc<AtomicU64>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let count = Arc::new(AtomicU64::new(0));
        let counter = count.clone();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut got = Vec::new();
            let mut buf = vec![0u8; 4096];
            loop {
                let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") else {
                    let n = s.read(&mut buf).await.unwrap();
                    if n == 0 {
                        return;
                    }
                    got.extend_from_slice(&buf[..n]);
                    continue;
                };
                let head = String::from_utf8(got[..end].to_vec()).unwrap();
                got.drain(..end + 4);
                counter.fetch_add(1, Ordering::Relaxed);
                let target = head.split(' ').nth(1).unwrap();
                let (i, (_, data)) = files.iter().enumerate().find(|(_, f)| f.0 == target).unwrap();
                let range = head.lines().find_map(|l| l.strip_prefix("Range: bytes=")).unwrap();
                let (a, b) = range.split_once('-').unwrap();
                let (a, b): (usize, usize) = (a.parse().unwrap(), b.parse().unwrap());
                let answer = format!(
                    "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {a}-{b}/{}\r\nContent-Length: {}\r\nETag: \"{i}\"\r\n\r\n",
                    data.len(),
                    b + 1 - a
                );
                s.write_all(answer.as_bytes()).await.unwrap();
                s.write_all(&data[a..=b]).await.unwrap();
            }
        });
        (format!("http://{addr}"), count)
    }

    #[tokio::test]
    async fn a_run_over_two_files_joins_their_bytes_into_pieces() {
        let a: Vec<u8> = (0..250u32).map(|i| i as u8).collect();
        let b: Vec<u8> = (0..90u32).map(|i| (i * 7) as u8).collect();
        let (base, count) = serve_files(vec![("/d/a", a.clone()), ("/d/b", b.clone())]).await;
        let (ua, ub) = (
            HttpUrl::parse(&format!("{base}/d/a")).unwrap(),
            HttpUrl::parse(&format!("{base}/d/b")).unwrap(),
        );
        let v = |length| Validators { length, etag: None };
        // Pieces of 100 bytes from stream offset 100: a[100..250] + b[0..90] = 240 bytes,
        // cut 100 | 100 (50 of a, 50 of b) | 40.
        let mut parts = [
            RunPart { url: &ua, start: 100, len: 150, validators: v(250) },
            RunPart { url: &ub, start: 0, len: 0, validators: v(0) },
            RunPart { url: &ub, start: 0, len: 90, validators: v(90) },
        ];
        let (requests, bytes) = (AtomicU64::new(0), AtomicU64::new(0));
        let tally = Tally { requests: &requests, bytes: &bytes };
        let quota = Quota::fixed(0, 1);
        let mut pieces = Vec::new();
        let mut slot = None;
        let t = Duration::from_secs(5);
        fetch_parts(&mut slot, t, None, &quota, &mut parts, &[100, 100, 40], tally, |i, data| {
            pieces.push((i, data.to_vec()));
            Ok(Flow::Continue)
        })
        .await
        .unwrap();
        let stream: Vec<u8> = a[100..].iter().chain(&b).copied().collect();
        let want: Vec<_> = stream.chunks(100).enumerate().map(|(i, c)| (i, c.to_vec())).collect();
        assert_eq!(pieces, want);
        assert_eq!(count.load(Ordering::Relaxed), 2, "one request per non-empty part, one connection");
        assert_eq!(requests.load(Ordering::Relaxed), 2);
        assert_eq!(bytes.load(Ordering::Relaxed), 240);
        assert_eq!(parts[0].validators.etag.as_deref(), Some("\"0\""), "the ETag is learnt");
        assert_eq!(parts[2].validators.etag.as_deref(), Some("\"1\""));
        assert!(slot.is_some(), "the connection stays open for the next run");
        let mut short = [RunPart { url: &ua, start: 0, len: 10, validators: v(250) }];
        let r = fetch_parts(&mut slot, t, None, &quota, &mut short, &[20], tally, |_, _| Ok(Flow::Continue))
            .await;
        assert!(matches!(r, Err(FetchError::Unusable(_))), "parts must cover the pieces: {r:?}");
    }
}
