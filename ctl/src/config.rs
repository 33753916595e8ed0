//! `serve` configuration: TOML file, overridden by environment, overridden by flags. Every key
//! with its default: `deploy/config/ctl.toml`.
//!
//! ```toml
//! listen = "127.0.0.1:7400"
//! db = "sqlite://floodgate.db"        # or "postgres://user@host/db"
//! admin_token = "…"                    # or FLOODGATE_ADMIN_TOKEN
//! relay_token = "…"                    # or FLOODGATE_RELAY_TOKEN
//! client_token = "…"                   # or FLOODGATE_CLIENT_TOKEN
//! tls_cert = "cert.pem"                # optional, with tls_key
//! tls_key = "key.pem"
//! tls_client_ca = "clients-ca.pem"     # optional: require client certificates (mutual TLS)
//! http_listen = "127.0.0.1:7401"       # optional: /metrics and the dashboard
//! relay_timeout_secs = 15
//! lease_ttl_secs = 30
//! progress_batch = 512                 # progress reports per write transaction
//! max_message_bytes = 16777216
//! ```

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Default gRPC listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7400";

/// The config file's fields (all optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// gRPC listen address.
    pub listen: Option<String>,
    /// Database URL.
    pub db: Option<String>,
    /// Admin token.
    pub admin_token: Option<String>,
    /// Relay token.
    pub relay_token: Option<String>,
    /// Client token.
    pub client_token: Option<String>,
    /// PEM certificate chain for TLS.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for TLS.
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificate(s) client certificates must be signed by (mutual TLS).
    pub tls_client_ca: Option<PathBuf>,
    /// HTTP listen address for `/metrics` and the dashboard.
    pub http_listen: Option<String>,
    /// Relay heartbeat timeout.
    pub relay_timeout_secs: Option<f64>,
    /// Default lease TTL.
    pub lease_ttl_secs: Option<f64>,
    /// Most progress reports per write transaction.
    pub progress_batch: Option<usize>,
    /// Largest accepted gRPC message.
    pub max_message_bytes: Option<usize>,
}

/// Config file read errors.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// Path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("parsing {path}: {source}")]
    Parse {
        /// Path.
        path: PathBuf,
        /// Cause.
        source: toml::de::Error,
    },
}

impl FileConfig {
    /// Reads a TOML config file.
    pub fn load(path: &Path) -> Result<FileConfig, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.into(), source })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse { path: path.into(), source })
    }
}
