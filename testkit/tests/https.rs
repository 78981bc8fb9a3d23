//! End-to-end: `TargetServer` over TLS with certificates from `TestCa`, against a rustls client.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use jetmon_testkit::http::TargetServer;
use jetmon_testkit::tls::{self_signed_server_config, TestCa};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};

const CLIENT_READ_TIMEOUT: Duration = Duration::from_secs(5);

type TlsClient = StreamOwned<ClientConnection, TcpStream>;

fn tls_request(addr: SocketAddr, config: Arc<ClientConfig>, name: &str, target: &str) -> TlsClient {
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(CLIENT_READ_TIMEOUT)).unwrap();
    let server_name = ServerName::try_from(name.to_owned()).unwrap();
    let session = ClientConnection::new(config, server_name).unwrap();
    let mut client = StreamOwned::new(session, tcp);
    let head = format!("GET {target} HTTP/1.1\r\nHost: {name}\r\n\r\n");
    client.write_all(head.as_bytes()).unwrap();
    client
}

/// Reads until the stream ends; `Ok` only for a close_notify-terminated stream.
fn read_all(client: &mut TlsClient) -> std::io::Result<String> {
    let mut response = Vec::new();
    client.read_to_end(&mut response)?;
    Ok(String::from_utf8(response).unwrap())
}

#[test]
fn status_route_works_over_tls_with_the_ca_client_config() {
    let ca = TestCa::new("jetmon test CA");
    let server = TargetServer::start("127.0.0.1:0".parse().unwrap(), Some(ca.server_config(&["localhost"]))).unwrap();
    let mut client = tls_request(server.addr(), ca.client_config(), "localhost", "/status/200");
    let response = read_all(&mut client).unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert_eq!(server.requests()[0].server_name.as_deref(), Some("localhost"));
    assert!(server.url("/").starts_with("https://127.0.0.1:"));
}

#[test]
fn ip_names_become_ip_sans() {
    let ca = TestCa::new("jetmon test CA");
    let server = TargetServer::start("127.0.0.1:0".parse().unwrap(), Some(ca.server_config(&["127.0.0.1"]))).unwrap();
    let mut client = tls_request(server.addr(), ca.client_config(), "127.0.0.1", "/status/204");
    let response = read_all(&mut client).unwrap();
    assert!(response.starts_with("HTTP/1.1 204 No Content\r\n"), "{response}");
    // Clients send no SNI for IP addresses.
    assert_eq!(server.requests()[0].server_name, None);
}

#[test]
fn client_config_rejects_a_self_signed_server() {
    let ca = TestCa::new("jetmon test CA");
    let server = TargetServer::start(
        "127.0.0.1:0".parse().unwrap(),
        Some(self_signed_server_config(&["localhost"])),
    )
    .unwrap();
    let tcp = TcpStream::connect(server.addr()).unwrap();
    tcp.set_read_timeout(Some(CLIENT_READ_TIMEOUT)).unwrap();
    let session = ClientConnection::new(ca.client_config(), ServerName::try_from("localhost").unwrap()).unwrap();
    let mut client = StreamOwned::new(session, tcp);
    let err = client.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
}

#[test]
fn client_config_rejects_a_server_of_another_ca() {
    let ours = TestCa::new("ours");
    let theirs = TestCa::new("theirs");
    let server = TargetServer::start(
        "127.0.0.1:0".parse().unwrap(),
        Some(theirs.server_config(&["localhost"])),
    )
    .unwrap();
    let tcp = TcpStream::connect(server.addr()).unwrap();
    let session = ClientConnection::new(ours.client_config(), ServerName::try_from("localhost").unwrap()).unwrap();
    let mut client = StreamOwned::new(session, tcp);
    let err = client.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");
}

#[test]
fn close_over_tls_is_a_truncation_without_close_notify() {
    let ca = TestCa::new("jetmon test CA");
    let server = TargetServer::start("127.0.0.1:0".parse().unwrap(), Some(ca.server_config(&["localhost"]))).unwrap();
    let mut client = tls_request(server.addr(), ca.client_config(), "localhost", "/close");
    let err = read_all(&mut client).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnexpectedEof, "{err}");
}

#[test]
fn reset_over_tls_resets_the_tcp_connection() {
    let ca = TestCa::new("jetmon test CA");
    let server = TargetServer::start("127.0.0.1:0".parse().unwrap(), Some(ca.server_config(&["localhost"]))).unwrap();
    let mut client = tls_request(server.addr(), ca.client_config(), "localhost", "/reset");
    let err = read_all(&mut client).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
}

#[test]
fn redirect_over_tls_keeps_the_location() {
    let ca = TestCa::new("jetmon test CA");
    let server = TargetServer::start("127.0.0.1:0".parse().unwrap(), Some(ca.server_config(&["localhost"]))).unwrap();
    let mut client = tls_request(server.addr(), ca.client_config(), "localhost", "/redirect/1");
    let response = read_all(&mut client).unwrap();
    assert!(response.contains("\r\nLocation: /redirect/0\r\n"), "{response}");
}
