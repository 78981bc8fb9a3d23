//! TLS client settings for the daemon's own connections (verifliers, WPCOM). Certificates are always
//! verified — the original turned verification off towards both; we do not.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

/// Why a TLS client configuration could not be built. Names the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// A PEM file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// A PEM file holds nothing usable.
    #[error("{path}: {what}")]
    Content {
        /// The file.
        path: PathBuf,
        /// What is missing or wrong.
        what: String,
    },
    /// rustls refused the combination.
    #[error("TLS settings rejected: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A client configuration trusting `ca_file` (or the web PKI roots when `None`) and presenting
/// `identity` (certificate chain file, private key file) when given.
pub fn client_config(
    ca_file: Option<&Path>,
    identity: Option<(&Path, &Path)>,
) -> Result<Arc<ClientConfig>, TlsSetupError> {
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let (added, _) = roots.add_parsable_certificates(read_certs(path)?);
            if added == 0 {
                return Err(TlsSetupError::Content {
                    path: path.to_path_buf(),
                    what: "no usable CA certificate".into(),
                });
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let builder = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let config = match identity {
        Some((cert, key)) => builder.with_client_auth_cert(read_certs(cert)?, read_key(key)?)?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

fn read(path: &Path) -> Result<Vec<u8>, TlsSetupError> {
    std::fs::read(path).map_err(|source| TlsSetupError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let pem = read(path)?;
    let certs: Result<Vec<_>, _> = rustls_pemfile::certs(&mut pem.as_slice()).collect();
    let certs = certs.map_err(|source| TlsSetupError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    if certs.is_empty() {
        return Err(TlsSetupError::Content {
            path: path.to_path_buf(),
            what: "no PEM certificate".into(),
        });
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsSetupError> {
    let pem = read(path)?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(|source| TlsSetupError::Read {
            path: path.to_path_buf(),
            source,
        })?
        .ok_or_else(|| TlsSetupError::Content {
            path: path.to_path_buf(),
            what: "no PEM private key".into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn web_roots_by_default_and_named_errors_for_bad_files() {
        assert!(client_config(None, None).is_ok());
        let err = client_config(Some(Path::new("/nonexistent/ca.pem")), None).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
        let dir = std::env::temp_dir().join(format!("jetmond-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let junk = dir.join("junk.pem");
        std::fs::write(&junk, "nothing here").unwrap();
        let err = client_config(Some(&junk), None).unwrap_err();
        assert!(err.to_string().contains("junk.pem"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
