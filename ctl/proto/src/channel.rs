//! Connecting to ctl: the one way every binary (agent, relay, admin CLI) turns a ctl URL into a
//! gRPC channel.
//!
//! `http://` stays plaintext. `https://` uses rustls (ring) trusting the system's root
//! certificates plus an optional CA file (PEM), and presents an optional client certificate
//! (for a ctl started with `--tls-client-ca`). TLS trouble is named plainly, with the flag that
//! fixes it, instead of surfacing as an endless "transport error" retry.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tonic::transport::{Channel, ClientTlsConfig, Endpoint, Identity};

/// Time limit for opening one connection to ctl (TCP and TLS).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The gRPC method [`CtlTarget::connect`] calls to check a new connection: served by no one,
/// so ctl answers `Unimplemented` without running any handler.
const CHECK_PATH: &str = "/floodgate.v1.ConnectionCheck/Check";

/// Where ctl is and how to authenticate the connection to it.
#[derive(Clone, Debug, Default)]
pub struct CtlTarget {
    /// `http://HOST:PORT` or `https://HOST:PORT`.
    pub url: String,
    /// Extra CA certificates (PEM) trusted for an `https://` ctl, besides the system roots.
    pub ca: Option<PathBuf>,
    /// Client certificate chain (PEM) presented to ctl; needs `client_key`.
    pub client_cert: Option<PathBuf>,
    /// Private key (PEM) of `client_cert`.
    pub client_key: Option<PathBuf>,
    /// Prefix of this binary's flags for the above, named in error messages: `""` for
    /// `--ca`/`--client-cert`/`--client-key`, `"ctl-"` for `--ctl-ca`/`--ctl-client-cert`/….
    pub flag_prefix: &'static str,
}

/// Why a channel to ctl could not be built or opened.
#[derive(Debug, thiserror::Error)]
pub enum CtlConnectError {
    /// The URL is not an `http://` or `https://` URL.
    #[error("bad ctl URL {url:?}: {why}")]
    BadUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// TLS options were given for a plaintext URL (the token would travel in the clear).
    #[error("{flag} is set but the ctl URL {url} is not https://")]
    TlsOptionWithoutHttps {
        /// The URL given.
        url: String,
        /// The flag that was set.
        flag: String,
    },
    /// A client certificate without its key, or a key without its certificate.
    #[error("a client certificate needs both --{prefix}client-cert and --{prefix}client-key")]
    HalfIdentity {
        /// The binary's flag prefix.
        prefix: &'static str,
    },
    /// A certificate or key file could not be read or holds nothing usable.
    #[error("{what} {}: {why}", path.display())]
    File {
        /// Which file (`CA file`, `client certificate`, `client key`).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What went wrong.
        why: String,
    },
    /// No root certificate at all: the system store is empty and no CA file was given.
    #[error("no trusted root certificates for {url}: the system store is empty; pass --{prefix}ca FILE")]
    NoRoots {
        /// The URL.
        url: String,
        /// The binary's flag prefix.
        prefix: &'static str,
    },
    /// ctl's certificate does not verify against the trusted roots (or not for this host).
    #[error(
        "ctl at {url}: certificate not trusted ({detail}): pass --{prefix}ca FILE with the CA that signed ctl's certificate"
    )]
    NotTrusted {
        /// The URL.
        url: String,
        /// rustls's reason.
        detail: String,
        /// The binary's flag prefix.
        prefix: &'static str,
    },
    /// ctl ended the TLS handshake with an alert, typically because it requires a client
    /// certificate (`--tls-client-ca`) that was missing or not signed by its CA.
    #[error(
        "ctl at {url} refused the TLS handshake ({detail}): it may require a client certificate (--{prefix}client-cert and --{prefix}client-key)"
    )]
    Refused {
        /// The URL.
        url: String,
        /// The alert.
        detail: String,
        /// The binary's flag prefix.
        prefix: &'static str,
    },
    /// Any other TLS failure (e.g. `https://` to a plaintext port).
    #[error("TLS to ctl at {url} failed: {detail}")]
    Tls {
        /// The URL.
        url: String,
        /// rustls's reason.
        detail: String,
    },
    /// tonic refused the TLS configuration.
    #[error("TLS setup for {url}: {source}")]
    Setup {
        /// The URL.
        url: String,
        /// The cause.
        source: tonic::transport::Error,
    },
    /// ctl could not be reached (refused, timed out, not HTTP/2).
    #[error("cannot connect to ctl at {url}: {detail}")]
    Unreachable {
        /// The URL.
        url: String,
        /// The cause with its sources.
        detail: String,
    },
}

impl CtlConnectError {
    /// Whether retrying cannot help: everything but [`CtlConnectError::Unreachable`] is a
    /// configuration problem.
    pub fn is_permanent(&self) -> bool {
        !matches!(self, CtlConnectError::Unreachable { .. })
    }
}

impl CtlTarget {
    /// A plaintext-or-system-roots target: `url` with no CA file and no client certificate.
    pub fn new(url: impl Into<String>, flag_prefix: &'static str) -> CtlTarget {
        CtlTarget { url: url.into(), flag_prefix, ..CtlTarget::default() }
    }

    /// The endpoint (not connected yet), with TLS set up for `https://`; certificate and key
    /// files are read and checked here.
    pub fn endpoint(&self) -> Result<Endpoint, CtlConnectError> {
        let url = &self.url;
        let bad = |why: &str| CtlConnectError::BadUrl { url: url.clone(), why: why.into() };
        let https = if url.starts_with("https://") {
            true
        } else if url.starts_with("http://") {
            false
        } else {
            return Err(bad("it must start with http:// or https://"));
        };
        let ep = Endpoint::from_shared(url.clone()).map_err(|e| bad(&e.to_string()))?;
        let ep = ep.connect_timeout(CONNECT_TIMEOUT);
        if !https {
            let set = [
                ("ca", self.ca.is_some()),
                ("client-cert", self.client_cert.is_some()),
                ("client-key", self.client_key.is_some()),
            ];
            if let Some((flag, _)) = set.into_iter().find(|(_, set)| *set) {
                let flag = format!("--{}{flag}", self.flag_prefix);
                return Err(CtlConnectError::TlsOptionWithoutHttps { url: url.clone(), flag });
            }
            return Ok(ep);
        }
        let identity = self.identity()?;
        let mut tls = ClientTlsConfig::new().trust_anchors(self.roots()?.roots);
        if let Some(identity) = identity {
            tls = tls.identity(identity);
        }
        ep.tls_config(tls).map_err(|source| CtlConnectError::Setup { url: url.clone(), source })
    }

    /// Connects now and checks that ctl accepts the connection (one gRPC round trip, to a
    /// method no server has, answered `Unimplemented`: with TLS 1.3 a refused client
    /// certificate only shows on the first request). Bounded by twice [`CONNECT_TIMEOUT`];
    /// the channel reconnects by itself later. For one-shot tools such as the admin CLI.
    pub async fn connect(&self) -> Result<Channel, CtlConnectError> {
        let ep = self.endpoint()?;
        let open = async {
            let ch = ep.connect().await.map_err(|e| self.classify(&e))?;
            let mut grpc = tonic::client::Grpc::new(ch.clone());
            grpc.ready().await.map_err(|e| self.classify(&e))?;
            let codec = tonic_prost::ProstCodec::<(), ()>::default();
            let path = tonic::codegen::http::uri::PathAndQuery::from_static(CHECK_PATH);
            match grpc.unary(tonic::Request::new(()), path, codec).await {
                // Any answer ctl itself produced (no transport error under it) will do.
                Err(s) if s.source().is_some() => Err(self.classify(&s)),
                _ => Ok(ch),
            }
        };
        match tokio::time::timeout(CONNECT_TIMEOUT * 2, open).await {
            Ok(r) => r,
            Err(_) => Err(CtlConnectError::Unreachable { url: self.url.clone(), detail: "timed out".into() }),
        }
    }

    /// For services that stay connected (agent, relay): tries [`CtlTarget::connect`] once,
    /// failing on a permanent problem (a certificate ctl or we do not accept), and when ctl is
    /// merely not reachable yet logs that and returns a channel that connects on first use,
    /// so the caller's retry loop takes over (and logs each failure with its cause).
    pub async fn connect_or_lazy(&self) -> Result<Channel, CtlConnectError> {
        match self.connect().await {
            Ok(ch) => Ok(ch),
            Err(e) if e.is_permanent() => Err(e),
            Err(e) => {
                tracing::warn!(error = %e, "ctl not reachable yet; will keep trying");
                Ok(self.endpoint()?.connect_lazy())
            }
        }
    }

    /// Names a connection failure: TLS problems get their own variants.
    pub fn classify(&self, err: &(dyn Error + 'static)) -> CtlConnectError {
        let (url, prefix) = (self.url.clone(), self.flag_prefix);
        match find_rustls_error(err) {
            Some(e @ rustls::Error::InvalidCertificate(_)) => {
                CtlConnectError::NotTrusted { url, detail: e.to_string(), prefix }
            }
            Some(e @ rustls::Error::AlertReceived(_)) => {
                CtlConnectError::Refused { url, detail: e.to_string(), prefix }
            }
            Some(e) => CtlConnectError::Tls { url, detail: e.to_string() },
            None => match find_alert(err) {
                Some(detail) => CtlConnectError::Refused { url, detail, prefix },
                None => CtlConnectError::Unreachable { url, detail: chain(err) },
            },
        }
    }

    /// The system roots plus the CA file's certificates.
    fn roots(&self) -> Result<rustls::RootCertStore, CtlConnectError> {
        let mut roots = rustls::RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        for e in &native.errors {
            tracing::debug!(error = %e, "skipping part of the system certificate store");
        }
        let (added, ignored) = roots.add_parsable_certificates(native.certs);
        tracing::debug!(added, ignored, "system root certificates");
        if let Some(path) = &self.ca {
            for cert in read_certs(path, "CA file")? {
                roots.add(cert).map_err(|e| file_error("CA file", path, e.to_string()))?;
            }
        }
        if roots.is_empty() {
            return Err(CtlConnectError::NoRoots { url: self.url.clone(), prefix: self.flag_prefix });
        }
        Ok(roots)
    }

    /// The client identity, checked, when both files are given.
    fn identity(&self) -> Result<Option<Identity>, CtlConnectError> {
        let (cert, key) = match (&self.client_cert, &self.client_key) {
            (None, None) => return Ok(None),
            (Some(c), Some(k)) => (c, k),
            _ => return Err(CtlConnectError::HalfIdentity { prefix: self.flag_prefix }),
        };
        read_certs(cert, "client certificate")?;
        let key_pem = read(key, "client key")?;
        PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| file_error("client key", key, e.to_string()))?;
        Ok(Some(Identity::from_pem(read(cert, "client certificate")?, key_pem)))
    }
}

fn file_error(what: &'static str, path: &Path, why: String) -> CtlConnectError {
    CtlConnectError::File { what, path: path.to_path_buf(), why }
}

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, CtlConnectError> {
    std::fs::read(path).map_err(|e| file_error(what, path, e.to_string()))
}

/// The certificates of a PEM file: at least one, all parseable.
fn read_certs(path: &Path, what: &'static str) -> Result<Vec<CertificateDer<'static>>, CtlConnectError> {
    let pem = read(path, what)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(what, path, e.to_string()))?;
    if certs.is_empty() {
        return Err(file_error(what, path, "no PEM certificate in the file".into()));
    }
    Ok(certs)
}

/// The rustls error somewhere in `err`'s source chain (tokio-rustls wraps it in an
/// `io::Error`, whose `source()` skips it, so those are opened explicitly).
fn find_rustls_error<'a>(err: &'a (dyn Error + 'static)) -> Option<&'a rustls::Error> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(r) = e.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if let Some(r) = io.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
                return Some(r);
            }
        }
        next = e.source();
    }
    None
}

/// An alert from ctl that reached us only as text: after the handshake (TLS 1.3 refuses a
/// client certificate there) the alert comes through h2 as an `io::Error` holding rustls's
/// message, not the rustls error itself.
fn find_alert(err: &(dyn Error + 'static)) -> Option<String> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            let text = io.to_string();
            if io.kind() == std::io::ErrorKind::InvalidData && text.starts_with("received fatal alert") {
                return Some(text);
            }
        }
        next = e.source();
    }
    None
}

/// `err` and its sources, `": "`-separated.
fn chain(err: &(dyn Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut next = err.source();
    while let Some(e) = next {
        let s = e.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        next = e.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str) -> CtlTarget {
        CtlTarget::new(url, "ctl-")
    }

    #[test]
    fn http_needs_no_tls_and_other_schemes_are_refused() {
        assert!(target("http://127.0.0.1:7400").endpoint().is_ok());
        let e = target("ftp://127.0.0.1:7400").endpoint().unwrap_err();
        assert!(matches!(e, CtlConnectError::BadUrl { .. }), "{e}");
    }

    #[test]
    fn tls_options_on_a_plaintext_url_are_refused() {
        let t = CtlTarget { ca: Some("/nonexistent/ca.pem".into()), ..target("http://127.0.0.1:7400") };
        let e = t.endpoint().unwrap_err();
        assert!(e.to_string().contains("--ctl-ca is set"), "{e}");
    }

    #[test]
    fn a_missing_ca_or_half_identity_is_a_clear_error() {
        let t = CtlTarget { ca: Some("/nonexistent/ca.pem".into()), ..target("https://127.0.0.1:7400") };
        let e = t.endpoint().unwrap_err();
        assert!(matches!(e, CtlConnectError::File { what: "CA file", .. }), "{e}");
        let t = CtlTarget { client_cert: Some("/x.pem".into()), ..target("https://127.0.0.1:7400") };
        let e = t.endpoint().unwrap_err();
        assert!(e.to_string().contains("--ctl-client-key"), "{e}");
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "not a certificate\n").expect("write");
        let t = CtlTarget { ca: Some(ca), ..target("https://127.0.0.1:7400") };
        let e = t.endpoint().unwrap_err();
        assert!(e.to_string().contains("no PEM certificate"), "{e}");
    }

    #[test]
    fn certificate_errors_are_named_with_the_flag() {
        let t = target("https://127.0.0.1:7400");
        let io = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        let e = t.classify(&io);
        assert!(matches!(e, CtlConnectError::NotTrusted { .. }), "{e}");
        assert!(
            e.to_string().contains("certificate not trusted") && e.to_string().contains("--ctl-ca"),
            "{e}"
        );
        assert!(e.is_permanent());
        let refused = std::io::Error::other(rustls::Error::AlertReceived(
            rustls::AlertDescription::CertificateRequired,
        ));
        assert!(matches!(t.classify(&refused), CtlConnectError::Refused { .. }));
        let as_text =
            std::io::Error::new(std::io::ErrorKind::InvalidData, "received fatal alert: CertificateRequired");
        assert!(matches!(t.classify(&as_text), CtlConnectError::Refused { .. }));
        let down = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let e = t.classify(&down);
        assert!(matches!(e, CtlConnectError::Unreachable { .. }) && !e.is_permanent(), "{e}");
    }
}
