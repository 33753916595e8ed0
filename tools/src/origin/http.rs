//! The HTTP/1.1 side of the origin: request heads, byte ranges, validators, bodies.

use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::faults::{Faults, Plan};
use crate::throttle::Throttle;

/// Largest request head we accept.
const MAX_HEAD: usize = 16 * 1024;
/// Body bytes per write.
const CHUNK: usize = 64 * 1024;
/// The XOR mask that makes the "changed" file differ from the original.
const CHANGE_MASK: u8 = 0x5a;

/// What the origin serves and counts.
pub(crate) struct Origin {
    /// The file.
    pub file: std::fs::File,
    /// Its length.
    pub len: u64,
    /// Its modification time, for Last-Modified.
    pub mtime: Option<SystemTime>,
    /// Global bandwidth limit.
    pub throttle: Throttle,
    /// Fault injection.
    pub faults: Faults,
    /// Counters for `/__stats`.
    pub stats: Stats,
}

/// Data requests remembered for `/__log`.
const MAX_LOG: usize = 100_000;

/// Counters of what was served.
#[derive(Default)]
pub(crate) struct Stats {
    requests: AtomicU64,
    body_bytes: AtomicU64,
    /// Byte ranges (`start..end`) of data requests in arrival order, the first [`MAX_LOG`].
    log: std::sync::Mutex<Vec<(u64, u64)>>,
}

impl Stats {
    fn record(&self, start: u64, end: u64) {
        let mut log = self.log.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if log.len() < MAX_LOG {
            log.push((start, end));
        }
    }

    fn log_json(&self) -> String {
        let log = self.log.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let items: Vec<String> = log.iter().map(|(s, e)| format!("[{s},{e}]")).collect();
        format!("[{}]", items.join(","))
    }
}

/// A parsed request head: just what the origin looks at.
struct Request {
    head_only: bool,
    path: String,
    range: Option<String>,
    if_range: Option<String>,
    close: bool,
}

/// Serves requests on one connection until the peer closes or an error ends it.
pub(crate) async fn serve_connection(mut sock: TcpStream, origin: Arc<Origin>) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(4096);
    loop {
        let (req, used) = match read_head(&mut sock, &mut buf).await? {
            Some(r) => r,
            None => return Ok(()),
        };
        buf.drain(..used);
        let Some(req) = req else {
            sock.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                .await?;
            return Ok(());
        };
        if !respond(&mut sock, &origin, &req).await? || req.close {
            return Ok(());
        }
    }
}

/// Reads until a full request head is buffered. `Ok(None)` on a clean close; the inner `None` is
/// a malformed head.
async fn read_head(
    sock: &mut TcpStream,
    buf: &mut Vec<u8>,
) -> std::io::Result<Option<(Option<Request>, usize)>> {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut parsed = httparse::Request::new(&mut headers);
        match parsed.parse(buf) {
            Ok(httparse::Status::Complete(used)) => return Ok(Some((to_request(&parsed), used))),
            Ok(httparse::Status::Partial) => {}
            Err(_) => return Ok(Some((None, buf.len()))),
        }
        if buf.len() >= MAX_HEAD {
            return Ok(Some((None, buf.len())));
        }
        let mut chunk = [0u8; 4096];
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn to_request(p: &httparse::Request<'_, '_>) -> Option<Request> {
    let method = p.method?;
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return None,
    };
    let header = |name: &str| {
        p.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
            .map(|s| s.trim().to_string())
    };
    Some(Request {
        head_only,
        path: p.path?.to_string(),
        range: header("range"),
        if_range: header("if-range"),
        close: header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close")) || p.version == Some(0),
    })
}

/// Parses a single `bytes=` range against `len`: `Some(Ok((start, end_inclusive)))`, `Some(Err(()))`
/// when unsatisfiable, `None` when absent or not a single range we honour (serve the whole file).
fn parse_range(value: &str, len: u64) -> Option<Result<(u64, u64), ()>> {
    let spec = value.strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    let range = if a.is_empty() {
        let n: u64 = b.parse().ok()?;
        if n == 0 || len == 0 {
            return Some(Err(()));
        }
        (len.saturating_sub(n), len - 1)
    } else {
        let start: u64 = a.parse().ok()?;
        let end: u64 = if b.is_empty() { u64::MAX } else { b.parse().ok()? };
        if end < start {
            return None;
        }
        if start >= len {
            return Some(Err(()));
        }
        (start, end.min(len - 1))
    };
    Some(Ok(range))
}

fn etag(origin: &Origin, changed: bool) -> String {
    let secs = origin.mtime.and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_secs());
    if changed {
        format!("\"{}-{secs}-changed\"", origin.len)
    } else {
        format!("\"{}-{secs}\"", origin.len)
    }
}

/// Writes one response. Returns whether the connection may be reused.
async fn respond(sock: &mut TcpStream, origin: &Origin, req: &Request) -> std::io::Result<bool> {
    if req.path == "/__stats" || req.path == "/__log" {
        let body = if req.path == "/__log" {
            origin.stats.log_json()
        } else {
            format!(
                "{{\"requests\":{},\"body_bytes\":{}}}",
                origin.stats.requests.load(Ordering::Relaxed),
                origin.stats.body_bytes.load(Ordering::Relaxed)
            )
        };
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        sock.write_all(head.as_bytes()).await?;
        sock.write_all(body.as_bytes()).await?;
        return Ok(true);
    }
    let plan = if req.head_only {
        Plan { changed: origin.faults.changed_now(), ..Plan::default() }
    } else {
        origin.stats.requests.fetch_add(1, Ordering::Relaxed);
        origin.faults.next()
    };
    if plan.fail {
        sock.write_all(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n").await?;
        return Ok(true);
    }
    let tag = etag(origin, plan.changed);
    let len = origin.len;
    let honour_range = req.if_range.as_deref().is_none_or(|v| v == tag);
    let range = req.range.as_deref().filter(|_| honour_range).and_then(|r| parse_range(r, len));
    let (status, start, end) = match range {
        None => ("200 OK", 0, len),
        Some(Ok((s, e))) => ("206 Partial Content", s, e + 1),
        Some(Err(())) => {
            let head = format!("HTTP/1.1 416 Range Not Satisfiable\r\ncontent-range: bytes */{len}\r\ncontent-length: 0\r\n\r\n");
            sock.write_all(head.as_bytes()).await?;
            return Ok(true);
        }
    };
    let mut head = format!(
        "HTTP/1.1 {status}\r\ncontent-length: {}\r\naccept-ranges: bytes\r\netag: {tag}\r\ncontent-type: application/octet-stream\r\n",
        end - start
    );
    if status.starts_with("206") {
        head.push_str(&format!("content-range: bytes {start}-{}/{len}\r\n", end - 1));
    }
    head.push_str("\r\n");
    sock.write_all(head.as_bytes()).await?;
    if req.head_only {
        return Ok(true);
    }
    origin.stats.record(start, end);
    let vary = origin.faults.vary_for(start, end);
    send_body(sock, origin, start, end, plan, vary).await
}

async fn send_body(
    sock: &mut TcpStream,
    origin: &Origin,
    start: u64,
    end: u64,
    plan: Plan,
    vary: Option<(u64, u64)>,
) -> std::io::Result<bool> {
    let mut buf = vec![0u8; CHUNK];
    let mut pos = start;
    while pos < end {
        let sent = pos - start;
        if plan.truncate_after.is_some_and(|t| sent >= t) {
            return Ok(false);
        }
        if plan.stall_after.is_some_and(|t| sent >= t) {
            stall(sock).await;
            return Ok(false);
        }
        let limit = [plan.truncate_after, plan.stall_after].into_iter().flatten().map(|t| t - sent).min();
        let n = (end - pos).min(CHUNK as u64).min(limit.unwrap_or(u64::MAX)) as usize;
        origin.file.read_exact_at(&mut buf[..n], pos)?;
        if plan.changed {
            buf[..n].iter_mut().for_each(|b| *b ^= CHANGE_MASK);
        }
        if let Some((a, b)) = vary {
            let (from, to) = (a.max(pos), b.min(pos + n as u64));
            if from < to {
                let at = (from - pos) as usize..(to - pos) as usize;
                buf[at].iter_mut().for_each(|b| *b ^= CHANGE_MASK);
            }
        }
        origin.throttle.take(n).await;
        sock.write_all(&buf[..n]).await?;
        origin.stats.body_bytes.fetch_add(n as u64, Ordering::Relaxed);
        pos += n as u64;
    }
    Ok(true)
}

/// Sends nothing more and holds the connection until the client closes it (at most an hour).
async fn stall(sock: &mut TcpStream) {
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_secs(3600), async {
        while matches!(sock.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Some(Ok((0, 9))));
        assert_eq!(parse_range("bytes=90-", 100), Some(Ok((90, 99))));
        assert_eq!(parse_range("bytes=-10", 100), Some(Ok((90, 99))));
        assert_eq!(parse_range("bytes=95-200", 100), Some(Ok((95, 99))));
        assert_eq!(parse_range("bytes=100-", 100), Some(Err(())));
        assert_eq!(parse_range("bytes=5-1", 100), None);
        assert_eq!(parse_range("bytes=0-1,3-4", 100), None);
        assert_eq!(parse_range("items=0-1", 100), None);
    }
}
