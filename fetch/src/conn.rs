//! One keep-alive HTTP/1.1 connection to an HTTP source (origin, relay, web seed, tracker): send
//! a request, read the head, stream the body in bounded chunks (Range requests) or read a small
//! document whole (any framing). Every read and write is bounded in time.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use floodgate_engine::http::{parse_response, HttpUrl, ResponseHead, MAX_HEAD_BYTES};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::TlsConnector;

use crate::chunked::{dechunk, ChunkedError};
use crate::FetchError;

/// A byte stream to a source (plain TCP, or TLS over it).
pub trait SourceIo: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> SourceIo for T {}

/// Largest chunk read from the socket at once.
const READ_CHUNK: usize = 64 * 1024;

/// A keep-alive connection to one source.
pub struct Conn {
    io: Box<dyn SourceIo>,
    buf: BytesMut,
    timeout: Duration,
    /// Body bytes of the current response not read yet.
    body_left: u64,
    /// Whether the origin allows another request on this connection.
    pub reusable: bool,
}

impl Conn {
    /// Connects to the server of `url` (TLS with `tls` for `https`).
    pub async fn connect(
        url: &HttpUrl,
        timeout: Duration,
        tls: Option<&Arc<ClientConfig>>,
    ) -> Result<Self, FetchError> {
        let tls = match (url.https, tls) {
            (true, None) => return Err(FetchError::Unusable("https URL without a TLS setup".into())),
            (_, tls) => tls,
        };
        let addr = (url.host.as_str(), url.port);
        let tcp = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| FetchError::Timeout(timeout))??;
        tcp.set_nodelay(true)?;
        let io: Box<dyn SourceIo> = if url.https {
            let config = tls.ok_or_else(|| FetchError::Unusable("https URL without a TLS setup".into()))?;
            let name = ServerName::try_from(url.host.clone()).map_err(|_| {
                FetchError::Unusable(format!("{:?} is not a valid TLS server name", url.host))
            })?;
            let connector = TlsConnector::from(config.clone());
            let stream = tokio::time::timeout(timeout, connector.connect(name, tcp))
                .await
                .map_err(|_| FetchError::Timeout(timeout))?
                .map_err(|e| {
                    match e.get_ref().and_then(|i| i.downcast_ref::<tokio_rustls::rustls::Error>()) {
                        Some(tls) => FetchError::Tls(tls.to_string()),
                        None => FetchError::Io(e),
                    }
                })?;
            Box::new(stream)
        } else {
            Box::new(tcp)
        };
        Ok(Conn { io, buf: BytesMut::with_capacity(READ_CHUNK), timeout, body_left: 0, reusable: true })
    }

    /// Sends a GET (or HEAD) for `range` (`start..end`, or the whole file) and reads the head.
    /// A chunked body, or a 2xx body without `Content-Length`, is refused (the Range fetcher
    /// needs lengths); [`Conn::get`] takes any framing.
    pub async fn request(
        &mut self,
        url: &HttpUrl,
        head_only: bool,
        range: Option<(u64, u64)>,
    ) -> Result<ResponseHead, FetchError> {
        let head = self.send(url, if head_only { "HEAD" } else { "GET" }, range).await?;
        if head.chunked {
            self.reusable = false;
            return Err(FetchError::Unusable("chunked body (no Content-Length)".into()));
        }
        self.body_left = if head_only || head.status == 304 { 0 } else { head.content_length.unwrap_or(0) };
        if !head_only && head.content_length.is_none() && (200..300).contains(&head.status) {
            self.reusable = false;
            return Err(FetchError::Unusable("response without Content-Length".into()));
        }
        Ok(head)
    }

    /// Sends a GET for the whole of `url` and reads the head, whatever the body's framing
    /// (`Content-Length`, chunked, or ended by closing the connection). Read the body with
    /// [`Conn::read_document`] next.
    pub async fn get(&mut self, url: &HttpUrl) -> Result<ResponseHead, FetchError> {
        self.body_left = 0;
        self.send(url, "GET", None).await
    }

    /// Reads the whole body of the response whose head [`Conn::get`] returned: at most `max`
    /// bytes ([`FetchError::TooLarge`] beyond), each read bounded by the timeout. A body ended
    /// by closing leaves the connection unusable.
    pub async fn read_document(&mut self, head: &ResponseHead, max: usize) -> Result<Vec<u8>, FetchError> {
        let too_large = |c: &mut Conn| {
            c.reusable = false;
            FetchError::TooLarge { limit: max }
        };
        if matches!(head.status, 100..=199 | 204 | 304) {
            return Ok(Vec::new());
        }
        if head.chunked {
            // Chunk framing may at most double a body (plus lines); more is refused unread.
            let bound = max.saturating_mul(2).saturating_add(4096);
            loop {
                match dechunk(&self.buf, max) {
                    Ok(Some((body, used))) => {
                        self.buf.advance(used);
                        return Ok(body);
                    }
                    Ok(None) if self.buf.len() > bound => return Err(too_large(self)),
                    Ok(None) => self.fill().await?,
                    Err(ChunkedError::TooLarge { .. }) => return Err(too_large(self)),
                    Err(e @ ChunkedError::Malformed(_)) => {
                        self.reusable = false;
                        return Err(FetchError::Unusable(e.to_string()));
                    }
                }
            }
        }
        match head.content_length {
            Some(len) if len > max as u64 => Err(too_large(self)),
            Some(len) => {
                self.body_left = len;
                let mut body = Vec::with_capacity(len as usize);
                while self.body_left > 0 {
                    self.read_body(&mut body, READ_CHUNK).await.map_err(|e| match e {
                        FetchError::Io(_) => FetchError::Truncated { got: body.len() as u64, want: len },
                        e => e,
                    })?;
                }
                Ok(body)
            }
            None => {
                self.reusable = false;
                while self.buf.len() <= max {
                    if !self.fill_or_eof().await? {
                        return Ok(self.buf.split().to_vec());
                    }
                }
                Err(too_large(self))
            }
        }
    }

    /// Writes a request head (`method` for `range` or the whole file) and reads the response
    /// head; the connection stays usable when the server keeps it alive.
    async fn send(
        &mut self,
        url: &HttpUrl,
        method: &str,
        range: Option<(u64, u64)>,
    ) -> Result<ResponseHead, FetchError> {
        let mut req = format!(
            "{method} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: floodgate/{}\r\nAccept-Encoding: identity\r\n",
            url.target,
            url.authority,
            env!("CARGO_PKG_VERSION")
        );
        if let Some(auth) = url.basic_auth() {
            req.push_str(&format!("Authorization: {auth}\r\n"));
        }
        if let Some((s, e)) = range {
            req.push_str(&format!("Range: bytes={s}-{}\r\n", e - 1));
        }
        req.push_str("\r\n");
        let t = self.timeout;
        tokio::time::timeout(t, self.io.write_all(req.as_bytes()))
            .await
            .map_err(|_| FetchError::Timeout(t))??;
        let head = loop {
            if let Some((head, used)) = parse_response(&self.buf)? {
                self.buf.advance(used);
                break head;
            }
            if self.buf.len() > MAX_HEAD_BYTES {
                return Err(FetchError::Unusable("response head too large".into()));
            }
            self.fill().await?;
        };
        self.reusable = head.keep_alive;
        Ok(head)
    }

    /// Reads up to `max` body bytes (at least one) into `out`.
    pub async fn read_body(&mut self, out: &mut Vec<u8>, max: usize) -> Result<usize, FetchError> {
        let want = (self.body_left.min(max as u64)) as usize;
        if want == 0 {
            return Ok(0);
        }
        if self.buf.is_empty() {
            self.fill().await?;
        }
        let n = want.min(self.buf.len());
        out.extend_from_slice(&self.buf[..n]);
        self.buf.advance(n);
        self.body_left -= n as u64;
        Ok(n)
    }

    /// Reads and drops the rest of the body (small error bodies), so the connection can be reused.
    pub async fn discard_body(&mut self) -> Result<(), FetchError> {
        if self.body_left > 64 * 1024 {
            self.reusable = false;
            return Ok(());
        }
        let mut sink = Vec::new();
        while self.body_left > 0 {
            sink.clear();
            self.read_body(&mut sink, READ_CHUNK).await?;
        }
        Ok(())
    }

    /// Reads more bytes into the buffer; the end of the stream is an error.
    async fn fill(&mut self) -> Result<(), FetchError> {
        if self.fill_or_eof().await? {
            Ok(())
        } else {
            Err(FetchError::Io(std::io::ErrorKind::UnexpectedEof.into()))
        }
    }

    /// Reads more bytes into the buffer: `false` at the end of the stream.
    async fn fill_or_eof(&mut self) -> Result<bool, FetchError> {
        self.buf.reserve(READ_CHUNK);
        let t = self.timeout;
        let n = tokio::time::timeout(t, self.io.read_buf(&mut self.buf))
            .await
            .map_err(|_| FetchError::Timeout(t))??;
        if n == 0 {
            self.reusable = false;
        }
        Ok(n > 0)
    }
}
