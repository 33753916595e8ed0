//! One client connection: read a bounded request head, route it, answer, repeat while kept alive.

use std::net::SocketAddr;

use bytes::{Buf, BytesMut};
use floodgate_engine::http::{parse_request, HttpError, Method, RequestHead, MAX_HEAD_BYTES};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{data, pages, Server};

/// A response without a streamed body.
pub(super) struct Simple<'a> {
    pub status: u16,
    pub content_type: &'a str,
    pub body: &'a [u8],
    pub extra: String,
}

pub(super) fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        304 => "Not Modified",
        400 => "Bad Request",
        408 => "Request Timeout",
        404 => "Not Found",
        405 => "Method Not Allowed",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// Writes a whole small response; HEAD gets the head only.
pub(super) async fn write_simple(
    sock: &mut TcpStream,
    server: &Server,
    r: Simple<'_>,
    head_only: bool,
    keep_alive: bool,
) -> std::io::Result<()> {
    let conn = if keep_alive { "keep-alive" } else { "close" };
    let date = httpdate::HttpDate::from(std::time::SystemTime::now());
    let head = format!(
        "HTTP/1.1 {} {}\r\ndate: {date}\r\ncontent-type: {}\r\ncontent-length: {}\r\nconnection: {conn}\r\n{}\r\n",
        r.status,
        reason(r.status),
        r.content_type,
        r.body.len(),
        r.extra
    );
    let t = server.config.write_timeout;
    let write = async {
        sock.write_all(head.as_bytes()).await?;
        if !head_only && r.status != 304 {
            sock.write_all(r.body).await?;
        }
        Ok::<_, std::io::Error>(())
    };
    tokio::time::timeout(t, write).await.map_err(|_| std::io::ErrorKind::TimedOut)?
}

/// Answers a request the server will not serve and closes the connection gracefully: write
/// side first, then what the client still sends is read and dropped (at most 1 s and 64 KiB)
/// so the kernel does not reset the connection before the client has read the answer.
async fn refuse(sock: &mut TcpStream, server: &Server, r: Simple<'_>) -> std::io::Result<()> {
    write_simple(sock, server, r, false, false).await?;
    sock.shutdown().await?;
    let mut sink = [0u8; 4096];
    let drain = async {
        let mut left: usize = 64 * 1024;
        while left > 0 {
            match sock.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), drain).await;
    Ok(())
}

/// Serves one connection until it closes, errs, or idles out.
///
/// Each request head must arrive whole within the head timeout, counted from when the server
/// starts waiting for it (so a client trickling bytes is cut off like an idle one); a client
/// cut off mid-head gets 408.
pub(super) async fn handle(mut sock: TcpStream, peer: SocketAddr, server: &Server) -> std::io::Result<()> {
    let mut buf = BytesMut::with_capacity(2048);
    let mut out = String::with_capacity(512);
    loop {
        let deadline = tokio::time::Instant::now() + server.config.head_timeout;
        let head = loop {
            let error = match parse_request(&buf) {
                Ok(Some((head, used))) => {
                    buf.advance(used);
                    break head;
                }
                Ok(None) if buf.len() <= MAX_HEAD_BYTES => None,
                Ok(None) => Some((431, "request head too large")),
                Err(HttpError::HeadTooLarge { .. }) | Err(HttpError::TooManyHeaders) => {
                    Some((431, "request head too large"))
                }
                Err(HttpError::UnsupportedMethod) => Some((405, "only GET and HEAD")),
                Err(_) => Some((400, "malformed request")),
            };
            if let Some((status, text)) = error {
                tracing::debug!(%peer, status, "bad request head");
                let extra = if status == 405 { "allow: GET, HEAD\r\n".into() } else { String::new() };
                let r = Simple { status, content_type: "text/plain", body: text.as_bytes(), extra };
                return refuse(&mut sock, server, r).await;
            }
            match tokio::time::timeout_at(deadline, sock.read_buf(&mut buf)).await {
                Ok(Ok(0)) => return Ok(()),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(e),
                Err(_) if buf.is_empty() => return Ok(()),
                Err(_) => {
                    tracing::debug!(%peer, "request head timeout");
                    let r = Simple {
                        status: 408,
                        content_type: "text/plain",
                        body: b"request head too slow",
                        extra: String::new(),
                    };
                    return refuse(&mut sock, server, r).await;
                }
            }
        };
        if !server.allow_request(peer.ip()) {
            let r =
                Simple { status: 429, content_type: "text/plain", body: b"slow down", extra: String::new() };
            return refuse(&mut sock, server, r).await;
        }
        let keep = route(&mut sock, server, &head, peer, &mut out).await?;
        if !keep || !head.keep_alive {
            let _ = sock.shutdown().await;
            return Ok(());
        }
    }
}

/// Answers one request; returns whether the connection may carry another.
async fn route(
    sock: &mut TcpStream,
    server: &Server,
    head: &RequestHead,
    peer: SocketAddr,
    out: &mut String,
) -> std::io::Result<bool> {
    let path = head.target.split('?').next().unwrap_or("");
    let head_only = head.method == Method::Head;
    let keep = head.keep_alive;
    if path == "/tasks" {
        let body = pages::tasks_json(server);
        let r = Simple {
            status: 200,
            content_type: "application/json",
            body: body.as_bytes(),
            extra: String::new(),
        };
        return write_simple(sock, server, r, head_only, keep).await.map(|_| keep);
    }
    if path == "/announce" || path == "/scrape" {
        let (status, body) = server.tracker.handle(&head.target, peer.ip());
        let r = Simple { status, content_type: "text/plain", body: &body, extra: String::new() };
        return write_simple(sock, server, r, head_only, keep).await.map(|_| keep);
    }
    if path == "/metrics" {
        let body = pages::metrics(server);
        let ct = "text/plain; version=0.0.4";
        let r = Simple { status: 200, content_type: ct, body: body.as_bytes(), extra: String::new() };
        return write_simple(sock, server, r, head_only, keep).await.map(|_| keep);
    }
    if let Some(rest) = path.strip_prefix("/tasks/") {
        if let Some(id) = rest.strip_suffix(".torrent") {
            let task = server.task(id);
            if let Some(body) = task.as_ref().and_then(|t| t.torrent_file()) {
                let r = Simple {
                    status: 200,
                    content_type: "application/x-bittorrent",
                    body,
                    extra: String::new(),
                };
                return write_simple(sock, server, r, head_only, keep).await.map(|_| keep);
            }
        } else if let Some(id) = rest.strip_suffix("/hashes") {
            if let Some(task) = server.task(id) {
                let body = pages::hash_list(&task);
                let ct = "application/json";
                let r = Simple { status: 200, content_type: ct, body: body.as_bytes(), extra: String::new() };
                return write_simple(sock, server, r, head_only, keep).await.map(|_| keep);
            }
        } else if let Some(id) = rest.strip_suffix("/data") {
            if let Some(served) = server.served(id) {
                return data::respond(sock, server, &served, head, out).await;
            }
        }
    }
    let r = Simple { status: 404, content_type: "text/plain", body: b"not found", extra: String::new() };
    write_simple(sock, server, r, head_only, keep).await.map(|_| keep)
}
