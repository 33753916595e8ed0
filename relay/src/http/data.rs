//! `GET|HEAD /tasks/<id>/data`: single byte ranges of a task's file, served from verified
//! pieces only. Bytes not pulled yet are asked for first (the task's demand queue) and waited
//! for, bounded; if the task fails or the wait times out, nothing unverified is ever sent.
//! Answers 200, 206, 304 (`If-None-Match`, `If-Modified-Since`), 416 and, when the bytes do not
//! come in time, 503.

use std::fmt::Write;

use floodgate_engine::http::status::reason;
use floodgate_engine::http::{ByteRange, ContentRange, Method, RequestHead};
use tokio::net::TcpStream;

use super::response::{write_simple, Simple};
use super::{body, Served, Server};

/// Answers a data request; returns whether the connection may carry another. `out` is the
/// connection's scratch buffer for the response head (kept to avoid an allocation per request).
pub(super) async fn respond(
    sock: &mut TcpStream,
    server: &Server,
    served: &Served,
    head: &RequestHead,
    out: &mut String,
) -> std::io::Result<bool> {
    let (task, v) = (&served.task, &served.validators);
    let keep = head.keep_alive;
    let head_only = head.method == Method::Head;
    let total = task.layout.total_length();
    let deadline = tokio::time::Instant::now() + server.config.write_timeout;
    out.clear();
    if let Some(reason) = task.rejected() {
        // The file is not the one its distribution names: not a byte of it, not even a 304.
        let text = format!("task failed: {reason}");
        let r =
            Simple { status: 503, content_type: "text/plain", body: text.as_bytes(), extra: String::new() };
        return write_simple(sock, server, r, false, keep).await.map(|_| keep);
    }
    if v.not_modified(head) {
        start_head(out, 304, keep);
        write_validators(out, served);
        out.push_str("\r\n");
        body::write_head(sock, out.as_bytes(), false, deadline).await?;
        return Ok(keep);
    }
    // If-Range naming another version (or a date we cannot vouch for): the whole file.
    let range = head.range.filter(|_| v.range_allowed(head.if_range.as_deref()));
    let (status, r) = match range {
        None => (200, ByteRange { start: 0, end: total }),
        Some(spec) => match spec.resolve(total) {
            Some(r) => (206, r),
            None => {
                start_head(out, 416, keep);
                write_validators(out, served);
                let _ = write!(out, "content-length: 0\r\ncontent-range: bytes */{total}\r\n\r\n");
                body::write_head(sock, out.as_bytes(), false, deadline).await?;
                return Ok(keep);
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
    start_head(out, status, keep);
    write_validators(out, served);
    let _ = write!(out, "content-type: application/octet-stream\r\ncontent-length: {}\r\n", r.len());
    if status == 206 {
        let cr = ContentRange { range: Some(r), complete_length: Some(total) };
        let _ = write!(out, "content-range: {cr}\r\n");
    }
    out.push_str("\r\n");
    let with_body = !head_only && !r.is_empty();
    body::write_head(sock, out.as_bytes(), with_body, deadline).await?;
    if with_body {
        body::send_range(sock, task, r, server).await?;
    }
    Ok(keep)
}

/// Status line, `date` and `connection`.
fn start_head(out: &mut String, status: u16, keep: bool) {
    let date = httpdate::HttpDate::from(std::time::SystemTime::now());
    let conn = if keep { "keep-alive" } else { "close" };
    let _ = write!(out, "HTTP/1.1 {status} {}\r\ndate: {date}\r\nconnection: {conn}\r\n", reason(status));
}

/// `etag`, `last-modified` and `accept-ranges`.
fn write_validators(out: &mut String, served: &Served) {
    let v = &served.validators;
    let _ = write!(
        out,
        "etag: {}\r\nlast-modified: {}\r\naccept-ranges: bytes\r\n",
        v.etag, v.last_modified_text
    );
}
