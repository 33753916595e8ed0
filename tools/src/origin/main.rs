//! `fg-origin`: an HTTP/1.1 origin simulator for tests and benchmarks.
//!
//! Serves one file at every path with GET/HEAD, single byte ranges, ETag and Last-Modified,
//! keep-alive, a global bandwidth limit, and fault injection (500s, stalls, truncated bodies, a
//! file that changes mid-pull). `GET /__stats` returns `{"requests":N,"body_bytes":N}` so a
//! benchmark can count what the origin really served; `GET /__log` lists the byte ranges of the
//! data requests in arrival order (`[[start, end], ...]`, end exclusive, first 100 000).
//! `--vary-range` serves one span differently to the first reader of it and to later ones.

#![forbid(unsafe_code)]

mod faults;
mod http;
mod throttle;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Parser;

use faults::Faults;
use throttle::Throttle;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// An HTTP/1.1 origin simulator: one file, Range requests, throttling and fault injection.
#[derive(Parser, Debug)]
#[command(name = "fg-origin", version, about)]
pub struct Args {
    /// File to serve (at every path except `/__stats`).
    #[arg(long)]
    pub file: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8000")]
    pub listen: SocketAddr,
    /// Total bandwidth limit over all connections, bytes per second (0 = unlimited).
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Answer the first N data requests with 500.
    #[arg(long, default_value_t = 0)]
    pub fail_first: u64,
    /// Answer every Nth data request with 500 (0 = never).
    #[arg(long, default_value_t = 0)]
    pub fail_every: u64,
    /// Stop sending (but keep the connection open) after this many body bytes of a response
    /// (of every response, or with --stall-every only of those).
    #[arg(long)]
    pub stall_after: Option<u64>,
    /// Every Nth data request stalls: its head is sent, then (after --stall-after body bytes,
    /// default none) nothing more until the client gives up and closes (0 = never).
    #[arg(long, default_value_t = 0)]
    pub stall_every: u64,
    /// Close the connection after this many body bytes of a response.
    #[arg(long)]
    pub truncate_after: Option<u64>,
    /// After N data requests, serve different content with a new ETag (the file "changed").
    #[arg(long)]
    pub change_after: Option<u64>,
    /// Serve the bytes `START-END` (end exclusive) as they are to the first data request that
    /// covers any of them, and changed (XOR 0x5a, same ETag) to every later one: two relays
    /// pulling the same URL get files that differ there (`tests/it/faststart_conflict.rs`).
    #[arg(long, value_name = "START-END", value_parser = faults::parse_span)]
    pub vary_range: Option<(u64, u64)>,
    /// Print the listening address on stdout once bound (for scripts).
    #[arg(long)]
    pub print_addr: bool,
    /// Cap each connection's send buffer at this many bytes, so that `body_bytes` stays within
    /// about that much of what has really left the socket. Without it the kernel's autotuning
    /// takes a whole 1 MiB range at once from a client reading slowly, and the counter runs
    /// ahead of the wire by a range per connection.
    #[arg(long)]
    pub send_buffer: Option<usize>,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    // Not `floodgate_proto::init_logging` (and so no `--log-format`): that crate brings tonic,
    // prost, rustls and ring with it (`cargo tree -p floodgate-tools` would go from 51 crates to
    // 148) into a test origin that needs none of them; text logs to stderr are enough here.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let file = std::fs::File::open(&args.file)
        .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", args.file.display()))?;
    let meta = file.metadata()?;
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    if args.print_addr {
        println!("{}", listener.local_addr()?);
    }
    let state = Arc::new(http::Origin {
        file,
        len: meta.len(),
        mtime: meta.modified().ok(),
        throttle: Throttle::new(args.rate),
        faults: Faults::new(&args),
        stats: Default::default(),
    });
    tracing::info!(addr = %listener.local_addr()?, len = meta.len(), "serving {}", args.file.display());
    loop {
        let (sock, peer) = listener.accept().await?;
        let _ = sock.set_nodelay(true);
        if let Some(bytes) = args.send_buffer {
            if let Err(e) = socket2::SockRef::from(&sock).set_send_buffer_size(bytes) {
                tracing::warn!(%peer, "cannot cap the send buffer: {e}");
            }
        }
        let state = state.clone();
        tokio::spawn(async move {
            if let Err(e) = http::serve_connection(sock, state).await {
                tracing::debug!(%peer, "connection ended: {e}");
            }
        });
    }
}
