//! The one rustls client configuration an engine shares between all its checks.
//!
//! Built once at start: root store parsing is far too slow to do per check, and a shared config also shares
//! rustls' session cache, so repeated checks of a site resume their TLS sessions.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

/// Why the TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsConfigError {
    /// The CA file could not be read.
    #[error("cannot read CA file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// The CA file holds no usable certificate.
    #[error("CA file {path} contains no usable PEM certificate{detail}")]
    NoCertificates {
        /// The file.
        path: PathBuf,
        /// What rustls said about rejected certificates, if anything.
        detail: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration rejected: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Builds the client configuration: web PKI roots (unless `only_extra`) plus the certificates in
/// `extra_ca_file`. Certificates and host names are always verified.
pub fn client_config(extra_ca_file: Option<&Path>, only_extra: bool) -> Result<Arc<ClientConfig>, TlsConfigError> {
    let mut roots = RootCertStore::empty();
    if !only_extra {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    if let Some(path) = extra_ca_file {
        let certs = read_pem_certificates(path)?;
        let (added, rejected) = roots.add_parsable_certificates(certs);
        if added == 0 {
            let detail = if rejected > 0 {
                format!(" ({rejected} rejected)")
            } else {
                String::new()
            };
            return Err(TlsConfigError::NoCertificates {
                path: path.to_path_buf(),
                detail,
            });
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Reads every certificate of a PEM file.
pub fn read_pem_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let read_err = |source| TlsConfigError::Read {
        path: path.to_path_buf(),
        source,
    };
    let pem = std::fs::read(path).map_err(read_err)?;
    // rustls' own PEM reader, as the rest of the project uses (rustls-pemfile is unmaintained).
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| read_err(std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string())))?;
    if certs.is_empty() {
        return Err(TlsConfigError::NoCertificates {
            path: path.to_path_buf(),
            detail: String::new(),
        });
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_builds_from_web_roots() {
        assert!(client_config(None, false).is_ok());
    }

    #[test]
    fn missing_or_empty_ca_file_is_a_named_error() {
        let err = client_config(Some(Path::new("/nonexistent/ca.pem")), false).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
        let dir = std::env::temp_dir().join(format!("jetmon-tls-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = client_config(Some(&empty), true).unwrap_err();
        assert!(matches!(err, TlsConfigError::NoCertificates { .. }), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
