//! A veriflier started from a `veriflier.json` in the original's shape, with certificate files on disk, and
//! client certificates required through `client_ca_file`.

mod common;

use std::sync::Arc;

use common::*;
use jetmon_engine::EngineConfig;
use jetmon_testkit::tls::TestCa;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};
use veriflierd::client::{ClientError, VeriflierClient};
use veriflierd::config::VeriflierConfig;
use veriflierd::protocol::CheckItem;
use veriflierd::server::{start, StartOptions};
use veriflierd::tls::ClientTls;

/// A self-signed server certificate for 127.0.0.50 written as PEM files; returns that certificate's PEM.
fn write_server_cert(dir: &std::path::Path) -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec![VERIFLIER_IP.to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    std::fs::write(dir.join("veriflier.crt"), cert.pem()).unwrap();
    std::fs::write(dir.join("veriflier.key"), key.serialize_pem()).unwrap();
    cert.pem()
}

/// A rustls client config trusting the certificate in `pem`, for raw requests.
fn raw_trust(pem: &str) -> Arc<ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(pem.as_bytes()).unwrap())
        .unwrap();
    Arc::new(
        ClientConfig::builder_with_provider(veriflierd::tls::ring_provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

fn original_json(extra: &str) -> String {
    format!(
        r#"{{
            "veriflier_name": "Veriflier 1", "auth_token": "{VERIFLIER_TOKEN}",
            "thread_pool_max": 4, "max_pending_conns": 256, "max_redirects": 2, "max_checkers": 10,
            "max_checks": 1000, "net_comms_timeout": 30000, "debug": true,
            "listen_port": 0, "jetmon_server_port": 7800,
            "privatekey_file": "./veriflier.key", "privatecert_file": "./veriflier.crt",
            "monitors": [{{"name": "m1", "host": "{MONITOR_IP}", "auth_token": "{MONITOR_TOKEN}"}}],
            "listen_address": "{VERIFLIER_IP}", "allow_networks": ["127.0.0.0/8"]{extra}
        }}"#
    )
}

fn single_thread() -> StartOptions {
    let mut engine = EngineConfig::default();
    engine.threads = 1;
    StartOptions {
        base_engine: engine,
        ..StartOptions::default()
    }
}

#[test]
fn original_veriflier_json_with_cert_files_serves() {
    let dir = temp_dir("files");
    let trust = raw_trust(&write_server_cert(&dir));
    let path = dir.join("veriflier.json");
    std::fs::write(&path, original_json("")).unwrap();
    let loaded = VeriflierConfig::load_with_env(&path, Vec::new()).unwrap();
    assert_eq!(loaded.warnings.len(), 5, "{:?}", loaded.warnings);
    let server = start(loaded.config, single_thread()).unwrap();
    let (status, body) = raw_request(trust, server.local_addr(), "GET /get/status HTTP/1.1", b"");
    assert_eq!((status, body.as_str()), (200, "OK"));
}

#[test]
fn unknown_key_is_rejected_naming_it() {
    let dir = temp_dir("unknown");
    let path = dir.join("veriflier.json");
    std::fs::write(&path, original_json(r#", "listen_adress": "127.0.0.1""#)).unwrap();
    let err = VeriflierConfig::load_with_env(&path, Vec::new()).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("`listen_adress`") && message.contains("veriflier.json"),
        "{message}"
    );
}

#[test]
fn client_ca_file_requires_a_client_certificate() {
    let dir = temp_dir("mtls");
    let server_pem = write_server_cert(&dir);
    let monitors_ca = TestCa::new("monitors");
    let ca_path = monitors_ca.write_pem(&dir);
    let path = dir.join("veriflier.json");
    let extra = format!(r#", "client_ca_file": "{}""#, ca_path.display());
    std::fs::write(&path, original_json(&extra)).unwrap();
    let server = start(
        VeriflierConfig::load_with_env(&path, Vec::new()).unwrap().config,
        single_thread(),
    )
    .unwrap();
    let url = format!("https://{}", server.local_addr());
    let checks = [CheckItem {
        blog_id: 1,
        monitor_url: "http://127.0.0.1:9/".into(),
    }];

    let server_trust = ClientTls::from_pem(Some(server_pem.as_bytes()), None).unwrap();
    let anonymous = VeriflierClient::new("v", &url, MONITOR_TOKEN, server_trust, CLIENT_TIMEOUT).unwrap();
    let err = anonymous.check(&checks).unwrap_err();
    assert!(
        matches!(err, ClientError::Tls(_) | ClientError::Protocol(_)),
        "no client certificate must fail the handshake: {err:?}"
    );

    let (cert_pem, key_pem) = monitors_ca.client_identity("m1");
    let with_cert = ClientTls::from_pem(
        Some(server_pem.as_bytes()),
        Some((cert_pem.as_bytes(), key_pem.as_bytes())),
    )
    .unwrap();
    let client = VeriflierClient::new("v", &url, MONITOR_TOKEN, with_cert, CLIENT_TIMEOUT).unwrap();
    let results = client.check(&checks).unwrap();
    assert_eq!(results[0].error.as_deref(), Some("refused"));
}
