//! Certificate files for nginx's HTTPS listener: a fresh CA and a server leaf it signs, written as PEM.
//!
//! `jetmon_testkit::tls::TestCa` hands out rustls configs (and client identities) but not a server leaf as
//! PEM files, which nginx needs; this does the same with rcgen for that one case.

use std::fs;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

use crate::nginx::TlsFiles;
use crate::BenchError;

/// The files written by [`write_server_pki`].
#[derive(Debug, Clone)]
pub struct ServerPki {
    /// The CA certificate the engine trusts (`extra_ca_file` with `only_extra_ca`).
    pub ca_file: PathBuf,
    /// The server's certificate and key.
    pub server: TlsFiles,
}

/// Generates a CA and a server leaf for `names` (IP addresses become IP SANs) into `dir`.
pub fn write_server_pki(dir: &Path, names: &[&str]) -> Result<ServerPki, BenchError> {
    let mut ca_params = CertificateParams::default();
    ca_params.distinguished_name.push(DnType::CommonName, "jetmon bench CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;

    let mut leaf_params = CertificateParams::new(names.iter().map(|name| name.to_string()).collect::<Vec<_>>())?;
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf_params.use_authority_key_identifier_extension = true;
    let leaf_key = KeyPair::generate()?;
    let leaf = leaf_params.signed_by(&leaf_key, &ca)?;

    let pki = ServerPki {
        ca_file: dir.join("ca.pem"),
        server: TlsFiles {
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
        },
    };
    for (path, pem) in [
        (&pki.ca_file, ca.pem()),
        (&pki.server.cert, leaf.pem()),
        (&pki.server.key, leaf_key.serialize_pem()),
    ] {
        fs::write(path, pem).map_err(BenchError::io(format!("write {}", path.display())))?;
    }
    Ok(pki)
}
