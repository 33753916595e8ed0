//! Writing responses that have no streamed body: small whole answers and refusals that close the
//! connection gracefully.

use floodgate_engine::http::status::reason;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::Server;

/// A response without a streamed body.
pub(super) struct Simple<'a> {
    pub status: u16,
    pub content_type: &'a str,
    pub body: &'a [u8],
    pub extra: String,
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
pub(super) async fn refuse(sock: &mut TcpStream, server: &Server, r: Simple<'_>) -> std::io::Result<()> {
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
