//! Thread-per-core: one tokio-uring runtime per thread, each with its own SO_REUSEPORT listener
//! (the kernel spreads inbound connections) and a command queue for outbound connections.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::sync::mpsc;
use tokio_uring::buf::BoundedBuf;
use tokio_uring::net::{TcpListener, TcpStream};

use super::torrent::Torrent;
use super::SwarmInner;
use crate::wire::Handshake;

/// Work handed to a runtime thread.
pub(crate) enum Command {
    /// Dial a peer for a torrent.
    Connect(Arc<Torrent>, SocketAddr),
}

/// How long a dial or an inbound handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Binds a listening socket with SO_REUSEPORT (so every runtime thread can bind the same port).
pub(crate) fn bind_reuseport(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let domain = if addr.is_ipv4() { socket2::Domain::IPV4 } else { socket2::Domain::IPV6 };
    let socket = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

/// The body of one runtime thread.
pub(crate) fn run_thread(
    swarm: Arc<SwarmInner>,
    listener: Option<std::net::TcpListener>,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    tokio_uring::start(async move {
        if let Some(l) = listener {
            tokio_uring::spawn(accept_loop(swarm.clone(), TcpListener::from_std(l)));
        }
        while let Some(cmd) = commands.recv().await {
            match cmd {
                Command::Connect(torrent, addr) => {
                    let peer_id = swarm.peer_id;
                    tokio_uring::spawn(async move {
                        match tokio::time::timeout(HANDSHAKE_TIMEOUT, TcpStream::connect(addr)).await {
                            Ok(Ok(stream)) => {
                                if let Err(e) =
                                    super::connection::run(torrent, stream, addr, peer_id, Default::default())
                                        .await
                                {
                                    tracing::debug!(%addr, "peer session ended: {e}");
                                }
                            }
                            Ok(Err(e)) => tracing::debug!(%addr, "connect failed: {e}"),
                            Err(_) => tracing::debug!(%addr, "connect timed out"),
                        }
                    });
                }
            }
        }
    });
}

async fn accept_loop(swarm: Arc<SwarmInner>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, addr)) => {
                tokio_uring::spawn(inbound(swarm.clone(), stream, addr));
            }
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Reads an inbound handshake, finds its torrent, and runs the connection.
async fn inbound(swarm: Arc<SwarmInner>, stream: TcpStream, addr: SocketAddr) {
    let read_handshake = async {
        let mut buf = BytesMut::with_capacity(4096);
        while buf.len() < Handshake::LEN {
            let filled = buf.len();
            let (res, slice) = stream.read(buf.slice(filled..)).await;
            buf = slice.into_inner();
            match res {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
        Some(buf)
    };
    let Ok(Some(buf)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, read_handshake).await else {
        tracing::debug!(%addr, "no handshake");
        return;
    };
    let hs = match Handshake::decode(&buf[..Handshake::LEN]) {
        Ok(hs) => hs,
        Err(e) => {
            tracing::debug!(%addr, "bad handshake: {e}");
            return;
        }
    };
    let Some(torrent) = swarm.torrent(&hs.info_hash) else {
        tracing::debug!(%addr, info_hash = %hs.info_hash, "handshake for an unknown torrent");
        return;
    };
    if let Err(e) = super::connection::run(torrent, stream, addr, swarm.peer_id, buf.freeze()).await {
        tracing::debug!(%addr, "peer session ended: {e}");
    }
}
