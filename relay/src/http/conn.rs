//! One client connection: read a bounded request head, route it, answer, repeat while kept alive.

use std::net::SocketAddr;

use bytes::{Buf, BytesMut};
use floodgate_engine::http::{parse_request, HttpError, Method, RequestHead, MAX_HEAD_BYTES};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::framing::{request_framing, Framing};
use super::response::{refuse, write_simple, Simple};
use super::{data, hashes, metrics, pages, Server};

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
        let (mut head, framing) = loop {
            let error = match parse_request(&buf) {
                Ok(Some((head, used))) => {
                    let framing = request_framing(buf.get(..used).unwrap_or_default());
                    buf.advance(used);
                    break (head, framing);
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
        match framing {
            Framing::NoBody => {}
            Framing::Refuse(status, text) => {
                tracing::debug!(%peer, status, text, "request framing refused");
                let r = Simple {
                    status,
                    content_type: "text/plain",
                    body: text.as_bytes(),
                    extra: String::new(),
                };
                return refuse(&mut sock, server, r).await;
            }
            Framing::Body(len) => {
                // Read and drop the body, then answer and close: its bytes are never a request.
                if !drop_body(&mut sock, &mut buf, len, deadline).await? {
                    tracing::debug!(%peer, "request body incomplete");
                    let r = Simple {
                        status: 408,
                        content_type: "text/plain",
                        body: b"request body too slow",
                        extra: String::new(),
                    };
                    return refuse(&mut sock, server, r).await;
                }
                head.keep_alive = false;
            }
        }
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

/// Reads and drops a declared request body of `len` bytes (at most
/// [`super::framing::MAX_REQUEST_BODY`]), part of which may already be in `buf`. Returns false
/// when the client closes or the deadline passes first.
async fn drop_body(
    sock: &mut TcpStream,
    buf: &mut BytesMut,
    len: u64,
    deadline: tokio::time::Instant,
) -> std::io::Result<bool> {
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    while buf.len() < len {
        match tokio::time::timeout_at(deadline, sock.read_buf(buf)).await {
            Ok(Ok(0)) | Err(_) => return Ok(false),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e),
        }
    }
    buf.advance(len);
    Ok(true)
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
        let body = metrics::render(server);
        let ct = metrics::CONTENT_TYPE;
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
                let query = head.target.split_once('?').map_or("", |(_, q)| q);
                let body = hashes::hash_list(&task, query).await;
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
