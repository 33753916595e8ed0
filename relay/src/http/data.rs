//! `GET|HEAD /tasks/<id>/data`: single byte ranges of a task's file, served from verified
//! pieces only. Bytes not pulled yet are asked for first (the task's demand queue) and waited
//! for, bounded; if the task fails or the wait times out, nothing unverified is ever sent.

use std::sync::atomic::Ordering;

use floodgate_engine::http::{ByteRange, ContentRange, Method, RequestHead};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::conn::{reason, write_simple, Simple};
use super::Server;
use crate::task::Task;

/// Largest body chunk read from the store and written at once.
const CHUNK: u64 = 256 * 1024;

/// Whether an `If-None-Match` / `If-Range` value names `etag` (weak comparison for the former).
fn matches(list: &str, etag: &str) -> bool {
    list.split(',').map(str::trim).any(|t| t == "*" || t == etag || t.strip_prefix("W/") == Some(etag))
}

/// Answers a data request; returns whether the connection may carry another.
pub(super) async fn respond(
    sock: &mut TcpStream,
    server: &Server,
    task: &Task,
    head: &RequestHead,
) -> std::io::Result<bool> {
    let keep = head.keep_alive;
    let head_only = head.method == Method::Head;
    let total = task.layout.total_length();
    let etag = task.etag();
    let common = format!("etag: {etag}\r\naccept-ranges: bytes\r\n");
    if head.if_none_match.as_deref().is_some_and(|v| matches(v, &etag)) {
        let r = Simple { status: 304, content_type: "application/octet-stream", body: b"", extra: common };
        return write_simple(sock, server, r, true, keep).await.map(|_| keep);
    }
    // If-Range with another validator (or a date, which we cannot vouch for): the whole file.
    let range = head.range.filter(|_| head.if_range.as_deref().is_none_or(|v| v.trim() == etag));
    let (status, r) = match range {
        None => (200, ByteRange { start: 0, end: total }),
        Some(spec) => match spec.resolve(total) {
            Some(r) => (206, r),
            None => {
                let extra = format!("{common}content-range: bytes */{total}\r\n");
                let r = Simple { status: 416, content_type: "text/plain", body: b"", extra };
                return write_simple(sock, server, r, head_only, keep).await.map(|_| keep);
            }
        },
    };
    if !head_only && !r.is_empty() {
        // Before the head: the first bytes must exist (a plain GET waits for the threshold).
        let wait = if range.is_none() { task.wait_threshold(server.config.data_wait).await } else { Ok(()) };
        let wait = match wait {
            Ok(()) => task.wait_piece(task.piece_of(r.start), server.config.data_wait).await,
            e => e,
        };
        if let Err(e) = wait {
            let text = e.to_string();
            let r = Simple {
                status: 503,
                content_type: "text/plain",
                body: text.as_bytes(),
                extra: "retry-after: 5\r\n".into(),
            };
            return write_simple(sock, server, r, false, keep).await.map(|_| keep);
        }
    }
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\ncontent-type: application/octet-stream\r\ncontent-length: {}\r\n{common}connection: {}\r\n",
        reason(status),
        r.len(),
        if keep { "keep-alive" } else { "close" }
    );
    if status == 206 {
        let cr = ContentRange { range: Some(r), complete_length: Some(total) };
        out.push_str(&format!("content-range: {cr}\r\n"));
    }
    out.push_str("\r\n");
    let t = server.config.write_timeout;
    tokio::time::timeout(t, sock.write_all(out.as_bytes()))
        .await
        .map_err(|_| std::io::ErrorKind::TimedOut)??;
    if head_only {
        return Ok(keep);
    }
    let mut pos = r.start;
    while pos < r.end {
        let piece = task.piece_of(pos);
        if let Err(e) = task.wait_piece(piece, server.config.data_wait).await {
            // Mid-body: the only honest signal left is closing the connection short.
            tracing::warn!(task = %task.id, error = %e, "closing a response short");
            return Err(std::io::Error::other(e));
        }
        let piece_end = (u64::from(piece) + 1) * u64::from(task.layout.piece_length());
        let n = (r.end - pos).min(CHUNK).min(piece_end - pos);
        let bytes =
            tokio::task::block_in_place(|| task.read(pos, n as usize)).map_err(std::io::Error::other)?;
        tokio::time::timeout(t, sock.write_all(&bytes)).await.map_err(|_| std::io::ErrorKind::TimedOut)??;
        task.counters.http_bytes.fetch_add(n, Ordering::Relaxed);
        pos += n;
    }
    Ok(keep)
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn etag_lists() {
        assert!(matches("\"a\"", "\"a\""));
        assert!(matches("\"x\", W/\"a\"", "\"a\""));
        assert!(matches("*", "\"a\""));
        assert!(!matches("\"b\"", "\"a\""));
    }
}
