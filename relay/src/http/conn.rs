//! One client connection: read a bounded request head, route it, answer, repeat while kept alive.

use std::net::SocketAddr;

use bytes::{Buf, BytesMut};
use floodgate_engine::http::{parse_request, HttpError, Method, RequestHead, MAX_HEAD_BYTES};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::response::{refuse, write_simple, Simple};
use super::{data, pages, Server};

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
