//! Writing responses to a client socket: the head (with `MSG_MORE` when a body follows, so head
//! and body leave in the same packets) and a task's verified byte range as the body, sent with
//! `sendfile` from the store's file (zero-copy: the kernel hands page-cache pages to the socket)
//! or, for an in-memory store, with reads of at most [`CHUNK`] bytes.
//!
//! A run whose pages are not all in the page cache is read in off the runtime first
//! ([`super::warm`]), so `sendfile` never waits for the disk on a worker thread.
//!
//! A piece's bytes are sent only once the piece is verified. Every [`CHUNK`] bytes of a body
//! must be taken by the client within the write timeout (the slow-client limit).

use std::fs::File;
use std::io;
use std::sync::atomic::Ordering;

use floodgate_engine::http::ByteRange;
use rustix::net::SendFlags;
use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::Server;
use crate::task::Task;

/// Body bytes a client must take per write timeout; also the read size without `sendfile`.
pub(super) const CHUNK: u64 = 256 * 1024;

/// Most bytes handed to one `sendfile` call (verified pieces joined up to this).
const MAX_RUN: u64 = 4 * 1024 * 1024;

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "client too slow")
}

/// Writes a response head; `more` tells the kernel a body follows at once.
pub(super) async fn write_head(
    sock: &TcpStream,
    head: &[u8],
    more: bool,
    deadline: Instant,
) -> io::Result<()> {
    let flags = if more { SendFlags::MORE | SendFlags::NOSIGNAL } else { SendFlags::NOSIGNAL };
    let mut done = 0;
    while done < head.len() {
        tokio::time::timeout_at(deadline, sock.writable()).await.map_err(|_| timed_out())??;
        let sent = sock.try_io(Interest::WRITABLE, || {
            rustix::net::send(sock, &head[done..], flags).map_err(io::Error::from)
        });
        match sent {
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Sends bytes `r` of `task`, waiting (bounded) for each piece to be verified first.
pub(super) async fn send_range(
    sock: &mut TcpStream,
    task: &Task,
    r: ByteRange,
    server: &Server,
) -> io::Result<()> {
    let config = &server.config;
    let piece_length = u64::from(task.layout.piece_length());
    let mut pos = r.start;
    let mut deadline = Instant::now() + config.write_timeout;
    let mut since_deadline = 0;
    while pos < r.end {
        let piece = task.piece_of(pos);
        if let Err(e) = task.wait_piece(piece, config.data_wait).await {
            // Mid-body: the only honest signal left is closing the connection short.
            tracing::warn!(task = %task.id, error = %e, "closing a response short");
            return Err(io::Error::other(e));
        }
        // This piece and the verified pieces right after it.
        let mut end = ((u64::from(piece) + 1) * piece_length).min(r.end);
        while end < r.end && end - pos < MAX_RUN && task.has(task.piece_of(end)) {
            end = (end + piece_length).min(r.end);
        }
        let sent = match file_at(task, pos, end - pos) {
            Some((file, offset, len)) => {
                if let Err(e) = server.warm.ensure(task, file, offset, len, deadline).await {
                    // The sendfile reads what is missing itself (on this thread).
                    tracing::debug!(task = %task.id, error = %e, "cold range not read in first");
                }
                sendfile(sock, file, offset, len, deadline).await?
            }
            None => copy(sock, task, pos, (end - pos).min(CHUNK), deadline).await?,
        };
        task.counters.http_bytes.fetch_add(sent, Ordering::Relaxed);
        pos += sent;
        since_deadline += sent;
        if since_deadline >= CHUNK {
            since_deadline = 0;
            deadline = Instant::now() + config.write_timeout;
        }
    }
    Ok(())
}

/// The store file holding stream offset `pos`: (file, offset in it, bytes of `len` inside it).
fn file_at(task: &Task, pos: u64, len: u64) -> Option<(&File, u64, u64)> {
    let seg = task.layout.segments(pos, len).next()?;
    let file = task.store()?.file(seg.file)?;
    Some((file, seg.file_offset, seg.len))
}

/// One `sendfile` of up to `len` bytes at `offset`, once the socket takes data; returns bytes sent.
async fn sendfile(
    sock: &TcpStream,
    file: &File,
    offset: u64,
    len: u64,
    deadline: Instant,
) -> io::Result<u64> {
    let count = usize::try_from(len).unwrap_or(usize::MAX);
    loop {
        tokio::time::timeout_at(deadline, sock.writable()).await.map_err(|_| timed_out())??;
        let mut at = offset;
        let sent = sock.try_io(Interest::WRITABLE, || {
            rustix::fs::sendfile(sock, file, Some(&mut at), count).map_err(io::Error::from)
        });
        match sent {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "store file is short")),
            Ok(n) => return Ok(n as u64),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
}

/// Reads `len` bytes at `pos` and writes them (stores without files); returns `len`.
async fn copy(sock: &mut TcpStream, task: &Task, pos: u64, len: u64, deadline: Instant) -> io::Result<u64> {
    let bytes = task.read(pos, len as usize).map_err(io::Error::other)?;
    tokio::time::timeout_at(deadline, sock.write_all(&bytes)).await.map_err(|_| timed_out())??;
    Ok(len)
}
