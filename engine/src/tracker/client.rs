//! A small blocking HTTP/1.1 client for `http://` tracker URLs, and `announce` on top of it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use super::response::parse_announce_response;
use super::{AnnounceError, AnnounceRequest, AnnounceResponse, ClientError, MAX_RESPONSE_BYTES};
use crate::http::{parse_response, HttpUrl};

/// Parses a tracker URL with the project's one URL parser: `http://` only (no TLS client for
/// trackers), no user info.
pub fn tracker_url(url: &str) -> Result<HttpUrl, ClientError> {
    let bad = |why| ClientError::Url { url: crate::http::redact(url), why };
    let parsed = HttpUrl::parse(url).map_err(|e| bad(e.why))?;
    if parsed.https {
        return Err(bad("HTTPS trackers are not supported"));
    }
    if parsed.userinfo.is_some() {
        return Err(bad("user info in URL"));
    }
    Ok(parsed)
}

/// GETs `url` and returns the status and body (at most `max_body` bytes). The whole exchange
/// (resolve, connect, request, response) is bounded by `timeout`. Handles `Content-Length`,
/// chunked bodies and bodies ended by closing the connection.
pub fn http_get(url: &str, timeout: Duration, max_body: usize) -> Result<(u16, Vec<u8>), ClientError> {
    let deadline = Instant::now() + timeout;
    let url = tracker_url(url)?;
    let addrs: Vec<SocketAddr> = (url.host.as_str(), url.port).to_socket_addrs()?.collect();
    let mut last = None;
    let mut stream = None;
    for addr in addrs {
        let left = remaining(deadline)?;
        match TcpStream::connect_timeout(&addr, left) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let mut stream = match (stream, last) {
        (Some(s), _) => s,
        (None, Some(e)) => return Err(e.into()),
        (None, None) => return Err(std::io::Error::other("host has no addresses").into()),
    };
    stream.set_write_timeout(Some(remaining(deadline)?))?;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: floodgate/{}\r\nAccept-Encoding: identity\r\nConnection: close\r\n\r\n",
        url.target,
        url.authority,
        env!("CARGO_PKG_VERSION"),
    );
    stream.write_all(request.as_bytes())?;
    let mut buf = Vec::with_capacity(4096);
    let (head, used) = loop {
        if let Some(parsed) = parse_response(&buf)? {
            break parsed;
        }
        if read_some(&mut stream, &mut buf, deadline)? == 0 {
            return Err(ClientError::Body("connection closed before the response head"));
        }
    };
    let mut raw = buf.split_off(used);
    let body = if head.chunked {
        loop {
            if let Some(body) = dechunk(&raw, max_body)? {
                break body;
            }
            if raw.len() > max_body.saturating_mul(2).saturating_add(4096) {
                return Err(ClientError::TooLarge { limit: max_body });
            }
            if read_some(&mut stream, &mut raw, deadline)? == 0 {
                return Err(ClientError::Body("connection closed inside a chunked body"));
            }
        }
    } else if let Some(len) = head.content_length {
        let len = usize::try_from(len).ok().filter(|l| *l <= max_body);
        let len = len.ok_or(ClientError::TooLarge { limit: max_body })?;
        while raw.len() < len {
            if read_some(&mut stream, &mut raw, deadline)? == 0 {
                return Err(ClientError::Body("connection closed before Content-Length bytes"));
            }
        }
        raw.truncate(len);
        raw
    } else {
        loop {
            if raw.len() > max_body {
                return Err(ClientError::TooLarge { limit: max_body });
            }
            if read_some(&mut stream, &mut raw, deadline)? == 0 {
                break raw;
            }
        }
    };
    Ok((head.status, body))
}

fn remaining(deadline: Instant) -> Result<Duration, ClientError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(ClientError::TimedOut)
    } else {
        Ok(left)
    }
}

/// Reads what is available (up to 16 KiB) into `buf` before the deadline; 0 at end of stream.
fn read_some(stream: &mut TcpStream, buf: &mut Vec<u8>, deadline: Instant) -> Result<usize, ClientError> {
    stream.set_read_timeout(Some(remaining(deadline)?))?;
    let mut chunk = [0u8; 16 * 1024];
    let n = match stream.read(&mut chunk) {
        Ok(n) => n,
        Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
            return Err(ClientError::TimedOut)
        }
        Err(e) => return Err(e.into()),
    };
    buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
    Ok(n)
}

/// Decodes a complete chunked body: `Ok(None)` if more bytes are needed. Trailers are skipped.
fn dechunk(raw: &[u8], max_body: usize) -> Result<Option<Vec<u8>>, ClientError> {
    let mut body = Vec::new();
    let mut pos = 0;
    loop {
        let Some(line_end) = find_crlf(raw.get(pos..).unwrap_or_default()) else { return Ok(None) };
        let line = raw.get(pos..pos + line_end).unwrap_or_default();
        let size_text = line.split(|b| *b == b';').next().unwrap_or_default();
        let size_text = std::str::from_utf8(size_text).map_err(|_| ClientError::Body("chunk size"))?;
        let size =
            usize::from_str_radix(size_text.trim(), 16).map_err(|_| ClientError::Body("chunk size"))?;
        pos += line_end + 2;
        if size == 0 {
            // Trailer section: lines until an empty one.
            loop {
                let Some(end) = find_crlf(raw.get(pos..).unwrap_or_default()) else { return Ok(None) };
                pos += end + 2;
                if end == 0 {
                    return Ok(Some(body));
                }
            }
        }
        if size > max_body.saturating_sub(body.len()) {
            return Err(ClientError::TooLarge { limit: max_body });
        }
        let Some(data) = raw.get(pos..pos + size) else { return Ok(None) };
        body.extend_from_slice(data);
        pos += size;
        match raw.get(pos..pos + 2) {
            None => return Ok(None),
            Some(b"\r\n") => pos += 2,
            Some(_) => return Err(ClientError::Body("chunk not followed by CRLF")),
        }
    }
}

fn find_crlf(b: &[u8]) -> Option<usize> {
    b.windows(2).position(|w| w == b"\r\n")
}

/// Announces `req` to the tracker at `announce_url` (an `http://` URL) within `timeout`.
pub fn announce(
    announce_url: &str,
    req: &AnnounceRequest,
    timeout: Duration,
) -> Result<AnnounceResponse, AnnounceError> {
    let (status, body) = http_get(&req.url(announce_url), timeout, MAX_RESPONSE_BYTES)?;
    match parse_announce_response(&body) {
        Ok(resp) if status == 200 => Ok(resp),
        Err(e @ super::ResponseError::Failure { .. }) => Err(e.into()),
        Err(e) if status == 200 => Err(e.into()),
        _ => Err(AnnounceError::Status { status }),
    }
}

#[cfg(test)]
pub(super) fn dechunk_for_test(raw: &[u8], max: usize) -> Result<Option<Vec<u8>>, ClientError> {
    dechunk(raw, max)
}
