//! A throwaway certificate authority for TLS tests.
//!
//! Every test run generates fresh keys with rcgen, so no key material is checked in and nothing
//! expires under us. The CA signs server leaves (for [`crate::http::TargetServer`]) and client
//! leaves (for mTLS tests); [`TestCa::client_config`] trusts this CA only, so a test that passes
//! proves the chain was really verified rather than skipped.
//!
//! All rustls configs are built with the ring provider passed explicitly: tests must not depend on
//! (or race to install) a process-global default provider.

use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// File name written by [`TestCa::write_pem`].
pub const CA_PEM_FILE_NAME: &str = "ca.pem";

/// A CA generated at runtime; signs server and client leaves for tests.
///
/// ```
/// use jetmon_testkit::tls::TestCa;
///
/// let ca = TestCa::new("jetmon test CA");
/// let server = ca.server_config(&["localhost", "127.0.0.1"]);
/// let client = ca.client_config();
/// assert!(ca.cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
/// # drop((server, client));
/// ```
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

impl TestCa {
    /// Generates a new CA key and self-signed CA certificate with the given common name.
    ///
    /// # Panics
    /// If rcgen fails to generate a key or certificate (a bug, not an input error).
    pub fn new(common_name: &str) -> TestCa {
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("rcgen: generate CA key");
        let issuer = CertifiedIssuer::self_signed(params, key).expect("rcgen: self-sign CA");
        TestCa { issuer }
    }

    /// The CA certificate in PEM form.
    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// The CA certificate in DER form.
    pub fn cert_der(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    /// Writes the CA certificate to `dir/ca.pem` and returns that path (for configs that take a
    /// CA bundle file).
    ///
    /// # Panics
    /// If the file cannot be written.
    pub fn write_pem(&self, dir: &Path) -> PathBuf {
        let path = dir.join(CA_PEM_FILE_NAME);
        if let Err(err) = fs::write(&path, self.cert_pem()) {
            panic!("write {}: {err}", path.display());
        }
        path
    }

    /// A server config presenting a fresh leaf for `names`, signed by this CA.
    ///
    /// A name that parses as an IP address becomes an IP SAN, anything else a DNS SAN.
    ///
    /// # Panics
    /// If `names` is empty or holds a name rcgen rejects.
    pub fn server_config(&self, names: &[&str]) -> Arc<ServerConfig> {
        let leaf = self.sign_leaf(names, ExtendedKeyUsagePurpose::ServerAuth);
        server_config_for(leaf.cert, leaf.key)
    }

    /// As [`TestCa::server_config`], but the server demands a client certificate signed by this CA (mTLS).
    ///
    /// # Panics
    /// If `names` is empty or holds a name rcgen rejects.
    pub fn server_config_requiring_client_cert(&self, names: &[&str]) -> Arc<ServerConfig> {
        let leaf = self.sign_leaf(names, ExtendedKeyUsagePurpose::ServerAuth);
        let mut roots = RootCertStore::empty();
        roots.add(self.cert_der()).expect("rustls: add test CA to root store");
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), ring_provider())
            .build()
            .expect("rustls: client verifier over the test CA");
        let config = ServerConfig::builder_with_provider(ring_provider())
            .with_safe_default_protocol_versions()
            .expect("rustls: ring supports the default protocol versions")
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![leaf.cert], leaf.key)
            .expect("rustls: leaf key matches its certificate");
        Arc::new(config)
    }

    /// A client config that trusts only this CA.
    pub fn client_config(&self) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.cert_der()).expect("rustls: add test CA to root store");
        let config = ClientConfig::builder_with_provider(ring_provider())
            .with_safe_default_protocol_versions()
            .expect("rustls: ring supports the default protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Arc::new(config)
    }

    /// A server certificate for `names` signed by this CA, as `(cert_pem, key_pem)` (PKCS#8), for servers
    /// that read their certificate from files.
    ///
    /// # Panics
    /// If `names` is empty or holds a name rcgen rejects.
    pub fn server_identity(&self, names: &[&str]) -> (String, String) {
        let leaf = self.sign_leaf(names, ExtendedKeyUsagePurpose::ServerAuth);
        (leaf.cert_pem, leaf.key_pem)
    }

    /// A client certificate for `name` signed by this CA, as `(cert_pem, key_pem)` (PKCS#8).
    ///
    /// # Panics
    /// If rcgen rejects `name`.
    pub fn client_identity(&self, name: &str) -> (String, String) {
        let leaf = self.sign_leaf(&[name], ExtendedKeyUsagePurpose::ClientAuth);
        (leaf.cert_pem, leaf.key_pem)
    }

    fn sign_leaf(&self, names: &[&str], usage: ExtendedKeyUsagePurpose) -> Leaf {
        let mut params = leaf_params(names);
        params.extended_key_usages = vec![usage];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().expect("rcgen: generate leaf key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("rcgen: sign leaf with test CA");
        Leaf::new(cert, key)
    }
}

/// A server config presenting a self-signed (CA-less) leaf for `names`; clients that verify
/// certificates must reject it, which models a misconfigured monitored site.
///
/// # Panics
/// If `names` is empty or holds a name rcgen rejects.
pub fn self_signed_server_config(names: &[&str]) -> Arc<ServerConfig> {
    let params = leaf_params(names);
    let key = KeyPair::generate().expect("rcgen: generate self-signed key");
    let cert = params.self_signed(&key).expect("rcgen: self-sign leaf");
    let leaf = Leaf::new(cert, key);
    server_config_for(leaf.cert, leaf.key)
}

struct Leaf {
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
    cert_pem: String,
    key_pem: String,
}

impl Leaf {
    fn new(cert: rcgen::Certificate, key: KeyPair) -> Leaf {
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert: cert.der().clone(),
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        }
    }
}

fn leaf_params(names: &[&str]) -> CertificateParams {
    let first = names.first().expect("a leaf certificate needs at least one name");
    let sans: Vec<String> = names.iter().map(|name| name.to_string()).collect();
    let mut params = match CertificateParams::new(sans) {
        Ok(params) => params,
        Err(err) => panic!("rcgen rejected names {names:?}: {err}"),
    };
    // The CN is informational only (clients match SANs), but it makes `openssl s_client` output
    // readable when a test fails.
    if first.parse::<IpAddr>().is_err() {
        params.distinguished_name.push(DnType::CommonName, *first);
    }
    params
}

fn server_config_for(cert: CertificateDer<'static>, key: PrivateKeyDer<'static>) -> Arc<ServerConfig> {
    let config = ServerConfig::builder_with_provider(ring_provider())
        .with_safe_default_protocol_versions()
        .expect("rustls: ring supports the default protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .expect("rustls: leaf key matches its certificate");
    Arc::new(config)
}

fn ring_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_pem_writes_ca_pem_into_dir() {
        let dir = std::env::temp_dir().join(format!("jetmon-testkit-ca-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let ca = TestCa::new("write test");
        let path = ca.write_pem(&dir);
        assert_eq!(path, dir.join("ca.pem"));
        assert_eq!(fs::read_to_string(&path).unwrap(), ca.cert_pem());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn client_identity_returns_cert_and_pkcs8_key_pems() {
        let ca = TestCa::new("identity test");
        let (cert, key) = ca.client_identity("probe-1.example");
        assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"));
    }

    #[test]
    fn server_config_accepts_dns_and_ip_names() {
        let ca = TestCa::new("names test");
        let _ = ca.server_config(&["localhost", "127.0.0.1", "::1"]);
        let _ = self_signed_server_config(&["self.example"]);
    }
}
