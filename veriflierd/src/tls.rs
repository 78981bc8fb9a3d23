//! PEM files to TLS client settings, for every HTTPS client of the project that is not the engine: the
//! monitor's veriflier client, the veriflier's legacy callback, and jetmond's WPCOM notifications.
//!
//! It lives here because veriflierd cannot depend on jetmond, while jetmond already depends on this crate;
//! one reader means one set of error messages for a bad CA or key file, whoever reads it.
//!
//! Certificates are always verified: against a CA file when one is configured, else the built-in Mozilla
//! roots (webpki-roots). The crypto is rustls on the ring provider, passed explicitly so nothing depends on
//! a process-wide default.
//!
//! ```
//! use veriflierd::tls::ClientTls;
//!
//! // The built-in roots and no client certificate: what a WPCOM client without `wpcom_ca_file` uses.
//! let tls = ClientTls::web_pki();
//! let agent_tls = tls.ureq_config();
//! # drop(agent_tls);
//! let err = ClientTls::from_pem(Some(b"not a certificate"), None).unwrap_err();
//! assert_eq!(err.what(), "CA file");
//! ```

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::RootCertStore;
use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig, TlsProvider};

/// Which file a [`TlsSetupError`] is about, as named in messages and in `OutboxError::Tls`.
const CA_FILE: &str = "CA file";
const CERT_FILE: &str = "client certificate file";
const KEY_FILE: &str = "client key file";

/// Why TLS client settings could not be built. Names the file at fault (when the PEM came from one).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsSetupError {
    /// A PEM file could not be read.
    #[error("cannot read {what} {}: {source}", path.display())]
    Read {
        /// Which file: `"CA file"`, `"client certificate file"` or `"client key file"`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The IO error.
        source: io::Error,
    },
    /// The PEM holds nothing usable, or rustls refused what it holds (a CA that does not parse, a key that
    /// does not match its certificate).
    #[error("{what}{}: {reason}", Origin(path.as_deref()))]
    Unusable {
        /// Which file, as in [`TlsSetupError::Read`].
        what: &'static str,
        /// The file, `None` when the PEM was handed in as bytes.
        path: Option<PathBuf>,
        /// What is wrong.
        reason: String,
    },
}

impl TlsSetupError {
    /// Which file the error is about: `"CA file"`, `"client certificate file"` or `"client key file"`.
    pub fn what(&self) -> &'static str {
        match self {
            TlsSetupError::Read { what, .. } | TlsSetupError::Unusable { what, .. } => what,
        }
    }

    /// The file at fault, when the PEM came from a file.
    pub fn path(&self) -> Option<&Path> {
        match self {
            TlsSetupError::Read { path, .. } => Some(path),
            TlsSetupError::Unusable { path, .. } => path.as_deref(),
        }
    }

    /// What is wrong, without the file's name (for errors that name the file themselves).
    pub fn reason(&self) -> String {
        match self {
            TlsSetupError::Read { source, .. } => source.to_string(),
            TlsSetupError::Unusable { reason, .. } => reason.clone(),
        }
    }
}

/// Formats " <path>" after the file kind, or nothing for in-memory PEM.
struct Origin<'a>(Option<&'a Path>);

impl fmt::Display for Origin<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(path) => write!(f, " {}", path.display()),
            None => Ok(()),
        }
    }
}

/// PEM bytes and where they came from, so every error can name the file.
struct Pem<'a> {
    bytes: &'a [u8],
    what: &'static str,
    path: Option<&'a Path>,
}

impl Pem<'_> {
    fn unusable(&self, reason: impl fmt::Display) -> TlsSetupError {
        TlsSetupError::Unusable {
            what: self.what,
            path: self.path.map(Path::to_path_buf),
            reason: reason.to_string(),
        }
    }

    fn certificates(&self) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
        let certificates = CertificateDer::pem_slice_iter(self.bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| self.unusable(error))?;
        if certificates.is_empty() {
            return Err(self.unusable("holds no PEM certificate"));
        }
        Ok(certificates)
    }

    /// The key in both crates' types: ureq's key-kind enum is not public, so only its own PEM parser can
    /// make one; rustls's type is derived from that DER for the up-front check.
    fn private_key(&self) -> Result<(PrivateKeyDer<'static>, PrivateKey<'static>), TlsSetupError> {
        let key = PrivateKey::from_pem(self.bytes).map_err(|error| self.unusable(error))?;
        let der = PrivateKeyDer::try_from(key.der().to_vec()).map_err(|error| self.unusable(error))?;
        Ok((der, key))
    }
}

fn read_file(path: &Path, what: &'static str) -> Result<Vec<u8>, TlsSetupError> {
    std::fs::read(path).map_err(|source| TlsSetupError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

/// Reads every certificate of a PEM file; an error when there is none. `what` names the file in errors.
pub fn read_certificates(path: &Path, what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let bytes = read_file(path, what)?;
    Pem {
        bytes: &bytes,
        what,
        path: Some(path),
    }
    .certificates()
}

/// Reads the first private key (PKCS#1, PKCS#8 or SEC1) of a PEM file. `what` names the file in errors.
pub fn read_private_key(path: &Path, what: &'static str) -> Result<PrivateKeyDer<'static>, TlsSetupError> {
    let bytes = read_file(path, what)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|error| {
        Pem {
            bytes: &bytes,
            what,
            path: Some(path),
        }
        .unusable(error)
    })
}

/// The ring provider, passed explicitly everywhere (no process-wide default is installed).
pub fn ring_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Verified TLS client settings for a [`ureq::Agent`]: the roots server certificates must chain to, and an
/// optional client certificate. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ClientTls {
    config: TlsConfig,
}

impl ClientTls {
    /// Trusts the built-in Mozilla roots and presents no client certificate.
    pub fn web_pki() -> ClientTls {
        ClientTls {
            config: base_config().root_certs(RootCerts::WebPki).build(),
        }
    }

    /// Trusts the certificates of `ca_file` (the built-in roots when `None`) and presents the
    /// `identity` (certificate chain file, private key file) when given. Every file problem is reported
    /// here, at start, rather than as a failed request later.
    pub fn from_files(ca_file: Option<&Path>, identity: Option<(&Path, &Path)>) -> Result<ClientTls, TlsSetupError> {
        let ca = ca_file
            .map(|path| read_file(path, CA_FILE).map(|bytes| (bytes, path)))
            .transpose()?;
        let identity = match identity {
            Some((cert, key)) => Some((read_file(cert, CERT_FILE)?, cert, read_file(key, KEY_FILE)?, key)),
            None => None,
        };
        build(
            ca.as_ref().map(|(bytes, path)| Pem {
                bytes,
                what: CA_FILE,
                path: Some(path),
            }),
            identity.as_ref().map(|(cert, cert_path, key, key_path)| {
                (
                    Pem {
                        bytes: cert,
                        what: CERT_FILE,
                        path: Some(cert_path),
                    },
                    Pem {
                        bytes: key,
                        what: KEY_FILE,
                        path: Some(key_path),
                    },
                )
            }),
        )
    }

    /// As [`ClientTls::from_files`], with the PEM handed in as bytes: `ca_pem` (the built-in roots when
    /// `None`) and `identity` (certificate chain, private key).
    pub fn from_pem(ca_pem: Option<&[u8]>, identity: Option<(&[u8], &[u8])>) -> Result<ClientTls, TlsSetupError> {
        build(
            ca_pem.map(|bytes| Pem {
                bytes,
                what: CA_FILE,
                path: None,
            }),
            identity.map(|(cert, key)| {
                (
                    Pem {
                        bytes: cert,
                        what: CERT_FILE,
                        path: None,
                    },
                    Pem {
                        bytes: key,
                        what: KEY_FILE,
                        path: None,
                    },
                )
            }),
        )
    }

    /// The settings in ureq's form, for `ureq::Agent::config_builder().tls_config(..)`.
    pub fn ureq_config(&self) -> TlsConfig {
        self.config.clone()
    }
}

fn base_config() -> ureq::tls::TlsConfigBuilder {
    TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .unversioned_rustls_crypto_provider(ring_provider())
}

fn build(ca: Option<Pem<'_>>, identity: Option<(Pem<'_>, Pem<'_>)>) -> Result<ClientTls, TlsSetupError> {
    // A rustls config is built once here only as a check: it finds CA certificates that do not parse and
    // a key that does not match its certificate, which ureq would only find out (by panicking) at the
    // first request.
    let mut store = RootCertStore::empty();
    let mut tls = base_config();
    match &ca {
        Some(pem) => {
            let roots = pem.certificates()?;
            for root in &roots {
                store.add(root.clone()).map_err(|error| pem.unusable(error))?;
            }
            let roots: Vec<Certificate<'static>> =
                roots.iter().map(|der| Certificate::from_der(der).to_owned()).collect();
            tls = tls.root_certs(RootCerts::new_with_certs(&roots));
        }
        None => tls = tls.root_certs(RootCerts::WebPki),
    }
    let check = rustls::ClientConfig::builder_with_provider(ring_provider())
        .with_safe_default_protocol_versions()
        .map_err(|error| TlsSetupError::Unusable {
            what: CA_FILE,
            path: ca.as_ref().and_then(|pem| pem.path).map(Path::to_path_buf),
            reason: error.to_string(),
        })?
        .with_root_certificates(store);
    if let Some((cert, key)) = identity {
        let chain = cert.certificates()?;
        let (key_der, ureq_key) = key.private_key()?;
        check
            .with_client_auth_cert(chain.clone(), key_der)
            .map_err(|error| cert.unusable(format_args!("unusable with its key: {error}")))?;
        let chain: Vec<Certificate<'static>> = chain.iter().map(|der| Certificate::from_der(der).to_owned()).collect();
        tls = tls.client_cert(Some(ClientCert::new_with_certs(&chain, ureq_key)));
    }
    Ok(ClientTls { config: tls.build() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("veriflierd-tls-{}-{name}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        dir
    }

    #[test]
    fn missing_and_junk_files_are_named() {
        let Err(err) = ClientTls::from_files(Some(Path::new("/nonexistent/ca.pem")), None) else {
            panic!("a missing CA file must fail");
        };
        assert_eq!(err.what(), "CA file");
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");

        let dir = temp_dir("junk");
        let junk = dir.join("junk.pem");
        assert!(std::fs::write(&junk, "nothing here").is_ok());
        let Err(err) = ClientTls::from_files(Some(&junk), None) else {
            panic!("a CA file without certificates must fail");
        };
        assert!(err.to_string().contains("junk.pem"), "{err}");
        let Err(err) = ClientTls::from_files(None, Some((&junk, &junk))) else {
            panic!("a client certificate file without certificates must fail");
        };
        assert_eq!(err.what(), "client certificate file");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn key_must_match_its_certificate() {
        let ca = jetmon_testkit::tls::TestCa::new("tls-unit");
        let (cert, key) = ca.client_identity("m1");
        let (_, other_key) = ca.client_identity("m2");
        assert!(ClientTls::from_pem(Some(ca.cert_pem().as_bytes()), Some((cert.as_bytes(), key.as_bytes()))).is_ok());
        let Err(err) = ClientTls::from_pem(None, Some((cert.as_bytes(), other_key.as_bytes()))) else {
            panic!("a mismatched key must fail");
        };
        assert_eq!(err.what(), "client certificate file");
        assert!(err.reason().contains("unusable with its key"), "{err}");
    }

    #[test]
    fn keys_read_from_files() {
        let ca = jetmon_testkit::tls::TestCa::new("tls-key");
        let (_, key) = ca.client_identity("m1");
        let dir = temp_dir("key");
        let path = dir.join("key.pem");
        assert!(std::fs::write(&path, key).is_ok());
        assert!(matches!(read_private_key(&path, KEY_FILE), Ok(PrivateKeyDer::Pkcs8(_))));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
