//! HTTPS to sources: rustls (ring) with the system's root certificates plus an optional
//! custom CA bundle (e.g. the relay's `--origin-ca FILE`, PEM).

use std::path::Path;
use std::sync::Arc;

use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

/// Why a TLS client configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// The custom CA file could not be read or parsed.
    #[error("custom CA {path}: {why}")]
    CustomCa {
        /// The file given.
        path: String,
        /// What went wrong.
        why: String,
    },
    /// No root certificate at all: no HTTPS source could be verified.
    #[error("no trusted root certificates (system store empty and no custom CA)")]
    NoRoots,
    /// rustls refused the configuration.
    #[error("TLS setup: {0}")]
    Rustls(#[from] tokio_rustls::rustls::Error),
}

/// A client configuration trusting the system roots and `custom_ca`.
pub fn client_config(custom_ca: Option<&Path>) -> Result<Arc<ClientConfig>, TlsSetupError> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for e in &native.errors {
        tracing::debug!(error = %e, "skipping part of the system certificate store");
    }
    let (added, ignored) = roots.add_parsable_certificates(native.certs);
    tracing::debug!(added, ignored, "system root certificates");
    if let Some(path) = custom_ca {
        let bad = |why: String| TlsSetupError::CustomCa { path: path.display().to_string(), why };
        let certs = CertificateDer::pem_file_iter(path).map_err(|e| bad(e.to_string()))?;
        let mut n = 0;
        for cert in certs {
            roots.add(cert.map_err(|e| bad(e.to_string()))?).map_err(|e| bad(e.to_string()))?;
            n += 1;
        }
        if n == 0 {
            return Err(bad("no certificate in the file".into()));
        }
    }
    if roots.is_empty() {
        return Err(TlsSetupError::NoRoots);
    }
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_custom_ca_is_a_clear_error() {
        let e = client_config(Some(Path::new("/nonexistent/ca.pem"))).unwrap_err();
        assert!(matches!(e, TlsSetupError::CustomCa { .. }), "{e}");
    }
}
