//! `serve` configuration: TOML file, overridden by environment, overridden by flags. The keys
//! are `serve`'s long flag names (kebab-case, as in the relay's and the agent's files); the
//! tokens and `max-message-bytes` have no flag. Every key with its default:
//! `deploy/config/ctl.toml`.
//!
//! ```toml
//! listen = "127.0.0.1:7400"
//! db = "sqlite://floodgate.db"        # or "postgres://user@host/db"
//! admin-token = "…"                    # or FLOODGATE_ADMIN_TOKEN
//! relay-token = "…"                    # or FLOODGATE_RELAY_TOKEN
//! client-token = "…"                   # or FLOODGATE_CLIENT_TOKEN
//! tls-cert = "cert.pem"                # optional, with tls-key
//! tls-key = "key.pem"
//! tls-client-ca = "clients-ca.pem"     # optional: require client certificates (mutual TLS)
//! http-listen = "127.0.0.1:7401"       # optional: /metrics and the dashboard
//! relay-timeout-secs = 15
//! lease-ttl-secs = 30
//! progress-batch = 512                 # progress reports per write transaction
//! max-message-bytes = 16777216
//! ```
//!
//! The snake_case spellings of earlier releases (`http_listen`, `relay_timeout_secs`, …) are
//! still read, as serde aliases, for one release; [`FileConfig::old_keys`] lists the ones a
//! file used so `serve` can warn. An unknown key is refused with its name.

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Default gRPC listen address.
pub(crate) const DEFAULT_LISTEN: &str = "127.0.0.1:7400";

/// The config file's fields (all optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct FileConfig {
    /// gRPC listen address.
    pub listen: Option<String>,
    /// Database URL.
    pub db: Option<String>,
    /// Admin token.
    #[serde(alias = "admin_token")]
    pub admin_token: Option<String>,
    /// Relay token.
    #[serde(alias = "relay_token")]
    pub relay_token: Option<String>,
    /// Client token.
    #[serde(alias = "client_token")]
    pub client_token: Option<String>,
    /// PEM certificate chain for TLS.
    #[serde(alias = "tls_cert")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for TLS.
    #[serde(alias = "tls_key")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificate(s) client certificates must be signed by (mutual TLS).
    #[serde(alias = "tls_client_ca")]
    pub tls_client_ca: Option<PathBuf>,
    /// HTTP listen address for `/metrics` and the dashboard.
    #[serde(alias = "http_listen")]
    pub http_listen: Option<String>,
    /// Relay heartbeat timeout.
    #[serde(alias = "relay_timeout_secs")]
    pub relay_timeout_secs: Option<f64>,
    /// Default lease TTL.
    #[serde(alias = "lease_ttl_secs")]
    pub lease_ttl_secs: Option<f64>,
    /// Most progress reports per write transaction.
    #[serde(alias = "progress_batch")]
    pub progress_batch: Option<usize>,
    /// Largest accepted gRPC message.
    #[serde(alias = "max_message_bytes")]
    pub max_message_bytes: Option<usize>,
    /// Old snake_case keys the file used (deprecated spellings, still accepted).
    #[serde(skip)]
    pub old_keys: Vec<String>,
}

/// Config file read errors.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    /// The file could not be read.
    #[error("reading {}", path.display())]
    Read {
        /// Path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("parsing {}", path.display())]
    Parse {
        /// Path.
        path: PathBuf,
        /// Cause.
        source: toml::de::Error,
    },
}

impl FileConfig {
    /// Reads a TOML config file.
    pub(crate) fn load(path: &Path) -> Result<FileConfig, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.into(), source })?;
        Self::parse(&text).map_err(|source| ConfigError::Parse { path: path.into(), source })
    }

    /// Parses the TOML text of a config file.
    pub(crate) fn parse(text: &str) -> Result<FileConfig, toml::de::Error> {
        let mut config: FileConfig = toml::from_str(text)?;
        // The file parsed, so it is a table of known keys; the ones with `_` are old spellings.
        let table: toml::Table = toml::from_str(text)?;
        config.old_keys = table.keys().filter(|k| k.contains('_')).cloned().collect();
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kebab_case_keys_are_read() {
        let c = FileConfig::parse(
            "listen = \"127.0.0.1:1\"\nhttp-listen = \"127.0.0.1:2\"\nadmin-token = \"admin-token\"\n\
             tls-client-ca = \"ca.pem\"\nrelay-timeout-secs = 3.5\nlease-ttl-secs = 4\nprogress-batch = 7\n\
             max-message-bytes = 2000000\n",
        )
        .expect("parse");
        assert_eq!(c.listen.as_deref(), Some("127.0.0.1:1"));
        assert_eq!(c.http_listen.as_deref(), Some("127.0.0.1:2"));
        assert_eq!(c.admin_token.as_deref(), Some("admin-token"));
        assert_eq!(c.tls_client_ca, Some(PathBuf::from("ca.pem")));
        assert_eq!(c.relay_timeout_secs, Some(3.5));
        assert_eq!(c.lease_ttl_secs, Some(4.0));
        assert_eq!(c.progress_batch, Some(7));
        assert_eq!(c.max_message_bytes, Some(2_000_000));
        assert!(c.old_keys.is_empty(), "{:?}", c.old_keys);
    }

    #[test]
    fn old_snake_case_keys_still_work_and_are_listed() {
        let c = FileConfig::parse(
            "http_listen = \"127.0.0.1:2\"\nrelay_token = \"relay-token\"\ntls_cert = \"c.pem\"\n\
             tls_key = \"k.pem\"\nrelay_timeout_secs = 9\nprogress_batch = 3\nlisten = \"127.0.0.1:1\"\n",
        )
        .expect("parse");
        assert_eq!(c.http_listen.as_deref(), Some("127.0.0.1:2"));
        assert_eq!(c.relay_token.as_deref(), Some("relay-token"));
        assert_eq!((c.tls_cert, c.tls_key), (Some(PathBuf::from("c.pem")), Some(PathBuf::from("k.pem"))));
        assert_eq!(c.relay_timeout_secs, Some(9.0));
        assert_eq!(c.progress_batch, Some(3));
        let mut old = c.old_keys;
        old.sort();
        assert_eq!(
            old,
            ["http_listen", "progress_batch", "relay_timeout_secs", "relay_token", "tls_cert", "tls_key"]
        );
    }

    #[test]
    fn unknown_and_doubled_keys_are_refused_by_name() {
        let e = FileConfig::parse("http-lisen = \"127.0.0.1:2\"\n").expect_err("typo accepted").to_string();
        assert!(e.contains("http-lisen"), "{e}");
        let e = FileConfig::parse("http_listen = \"a\"\nhttp-listen = \"b\"\n")
            .expect_err("both spellings")
            .to_string();
        assert!(e.contains("http-listen") || e.contains("http_listen"), "{e}");
    }
}
