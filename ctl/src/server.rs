//! `floodgate-ctl serve`: wires the database, event bus, push hub, background loops and the
//! gRPC services (with auth, reflection and optional TLS) together.

use crate::auth::{interceptor, Role, Tokens};
use crate::db::Db;
use crate::events::EventBus;
use crate::push::{self, Hub};
use crate::service::{admin::Admin, client::Client, lease::Lease, relay::Relay};
use crate::state::{Runtime, State};
use floodgate_proto::v1::{
    admin_service_server::AdminServiceServer, client_service_server::ClientServiceServer,
    lease_service_server::LeaseServiceServer, relay_service_server::RelayServiceServer,
};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};

/// Everything `serve` needs, resolved from flags, env and config file.
#[derive(Debug)]
pub(crate) struct ServeOptions {
    /// gRPC address.
    pub listen: SocketAddr,
    /// Database URL.
    pub db_url: String,
    /// Tokens.
    pub tokens: Tokens,
    /// TLS certificate and key (PEM).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// CA (PEM) that client certificates must be signed by; none: no client certificate asked.
    pub tls_client_ca: Option<PathBuf>,
    /// `/metrics` + dashboard address.
    pub http_listen: Option<SocketAddr>,
    /// Tunables.
    pub runtime: Runtime,
    /// Largest accepted message.
    pub max_message_bytes: usize,
}

/// Errors starting the server.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ServeError {
    /// Database open or migration failed.
    #[error("database: {0}")]
    Db(#[from] crate::error::CtlError),
    /// A TLS file (certificate, key, client CA) is unreadable.
    #[error("TLS file {}: {source}", path.display())]
    Tls {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Reflection service could not be built.
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The gRPC server failed.
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The HTTP listener failed.
    #[error("http listener: {0}")]
    Io(#[from] std::io::Error),
}

/// Runs until SIGINT/SIGTERM.
pub(crate) async fn serve(opts: ServeOptions) -> Result<(), ServeError> {
    let db = Db::open(&opts.db_url).await?;
    let bus = EventBus::new(db.clone());
    bus.start().await?;
    let hub = Arc::new(Hub::default());
    let st = Arc::new(State {
        db: db.clone(),
        hub: hub.clone(),
        bus: bus.clone(),
        rt: opts.runtime.clone(),
        progress: crate::progress::ProgressWriter::start(db.clone(), opts.runtime.progress_batch),
        reconcile: Arc::new(tokio::sync::Notify::new()),
        metrics: crate::metrics::Metrics::default(),
        history: crate::history::History::default(),
    });
    tokio::spawn(crate::history::run(st.clone()));
    tokio::spawn(push::dispatch(db.clone(), hub.clone(), bus.clone()));
    tokio::spawn(crate::monitor::run(st.clone()));
    let tokens = Arc::new(opts.tokens.clone());
    if let Some(addr) = opts.http_listen {
        let l = tokio::net::TcpListener::bind(addr).await?;
        let open_reads = addr.ip().is_loopback();
        tracing::info!(%addr, open_reads, "dashboard, JSON API and /metrics listening");
        tokio::spawn(crate::http::serve(
            l,
            crate::http::HttpState { st: st.clone(), tokens: tokens.clone(), open_reads },
        ));
    }

    let max = opts.max_message_bytes;
    let admin = InterceptedService::new(
        AdminServiceServer::new(Admin(st.clone()))
            .max_decoding_message_size(max)
            .max_encoding_message_size(max),
        interceptor(tokens.clone(), Role::Admin),
    );
    let relay = InterceptedService::new(
        RelayServiceServer::new(Relay(st.clone()))
            .max_decoding_message_size(max)
            .max_encoding_message_size(max),
        interceptor(tokens.clone(), Role::Relay),
    );
    let lease = InterceptedService::new(
        LeaseServiceServer::new(Lease(st.clone())).max_decoding_message_size(max),
        interceptor(tokens.clone(), Role::Relay),
    );
    let client = InterceptedService::new(
        ClientServiceServer::new(Client(st.clone()))
            .max_decoding_message_size(max)
            .max_encoding_message_size(max),
        interceptor(tokens.clone(), Role::Client),
    );
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(floodgate_proto::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    // Older grpcurl versions only speak v1alpha.
    let reflection_alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(floodgate_proto::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;

    let mut builder = Server::builder()
        .max_concurrent_streams(Some(1 << 20))
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .tcp_nodelay(true);
    if let Some((cert, key)) = &opts.tls {
        let read =
            |p: &PathBuf| std::fs::read(p).map_err(|source| ServeError::Tls { path: p.clone(), source });
        let mut tls = ServerTlsConfig::new().identity(Identity::from_pem(read(cert)?, read(key)?));
        if let Some(ca) = &opts.tls_client_ca {
            tls = tls.client_ca_root(Certificate::from_pem(read(ca)?));
        }
        builder = builder.tls_config(tls)?;
    }
    tracing::info!(
        addr = %opts.listen,
        db = %redact(&opts.db_url),
        tls = opts.tls.is_some(),
        client_certs = opts.tls_client_ca.is_some(),
        "floodgate-ctl serving"
    );
    builder
        .add_service(admin)
        .add_service(relay)
        .add_service(lease)
        .add_service(client)
        .add_service(reflection)
        .add_service(reflection_alpha)
        .serve_with_shutdown(opts.listen, shutdown())
        .await?;
    Ok(())
}

fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(a)) if a > s => format!("{}://…@{}", &url[..s], &url[a + 1..]),
        _ => url.to_string(),
    }
}

async fn shutdown() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
    tracing::info!("shutting down");
}
