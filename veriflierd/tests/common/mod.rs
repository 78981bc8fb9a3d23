//! Fixtures for the end-to-end tests: a veriflier on 127.0.0.50, raw HTTPS requests, a callback server.
//! Everything binds 127.0.0.x with port 0.

#![allow(dead_code)] // Each test binary uses its own subset.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use jetmon_engine::EngineConfig;
use jetmon_testkit::tls::TestCa;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, ServerConnection, StreamOwned};
use veriflierd::client::VeriflierClient;
use veriflierd::config::{MonitorConfig, Token, VeriflierConfig};
use veriflierd::server::{start, RunningServer, StartOptions};
use veriflierd::tls::ClientTls;

pub const VERIFLIER_IP: &str = "127.0.0.50";
pub const MONITOR_IP: &str = "127.0.0.51";
pub const MONITOR_TOKEN: &str = "monitor-token";
pub const VERIFLIER_TOKEN: &str = "veriflier-token";
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(15);

pub fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// A config for a veriflier on 127.0.0.50:0 with one monitor `m1` on 127.0.0.51.
pub fn config(allow_loopback: bool) -> VeriflierConfig {
    VeriflierConfig {
        veriflier_name: "v-test".into(),
        auth_token: Token(VERIFLIER_TOKEN.into()),
        listen_address: ip(VERIFLIER_IP),
        listen_port: 0,
        // The files are not read: the tests hand a ready server config in.
        privatekey_file: "unused.key".into(),
        privatecert_file: "unused.crt".into(),
        monitors: vec![MonitorConfig {
            name: "m1".into(),
            host: MONITOR_IP.into(),
            auth_token: Token(MONITOR_TOKEN.into()),
        }],
        allow_networks: if allow_loopback {
            vec!["127.0.0.0/8".into()]
        } else {
            Vec::new()
        },
        check_timeout_sec: 5,
        ..VeriflierConfig::default()
    }
}

pub fn options(ca: &TestCa) -> StartOptions {
    let mut engine = EngineConfig::default();
    engine.threads = 1;
    StartOptions {
        base_engine: engine,
        server_tls: Some(ca.server_config(&[VERIFLIER_IP])),
        callback_tls: Some(client_tls(ca)),
        shutdown_grace: Duration::from_secs(2),
    }
}

pub fn start_veriflier(ca: &TestCa, config: VeriflierConfig) -> RunningServer {
    start(config, options(ca)).unwrap()
}

pub fn client(ca: &TestCa, server: &RunningServer, token: &str) -> VeriflierClient {
    let url = format!("https://{}", server.local_addr());
    VeriflierClient::new("v-test", &url, token, client_tls(ca), CLIENT_TIMEOUT).unwrap()
}

/// Client TLS settings trusting only `ca`.
pub fn client_tls(ca: &TestCa) -> ClientTls {
    ClientTls::from_pem(Some(ca.cert_pem().as_bytes()), None).unwrap()
}

pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("veriflierd-test-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Sends one raw HTTPS request (`head` without the final blank line) and returns status and body.
pub fn raw_request(tls: Arc<ClientConfig>, addr: SocketAddr, head: &str, body: &[u8]) -> (u16, String) {
    let socket = TcpStream::connect(addr).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let name = ServerName::from(addr.ip());
    let mut stream = StreamOwned::new(ClientConnection::new(tls, name).unwrap(), socket);
    let mut request = format!("{head}\r\nHost: {addr}\r\nConnection: close\r\n\r\n").into_bytes();
    request.extend_from_slice(body);
    stream.write_all(&request).unwrap();
    let mut response = Vec::new();
    match stream.read_to_end(&mut response) {
        Ok(_) => {}
        // A server may close without close_notify once the response is complete.
        Err(e) if e.kind() == ErrorKind::UnexpectedEof => {}
        Err(e) => panic!("reading response: {e}"),
    }
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// POSTs JSON with a content length to `path`.
pub fn raw_post(tls: Arc<ClientConfig>, addr: SocketAddr, path: &str, extra: &str, body: &str) -> (u16, String) {
    let head = format!(
        "POST {path} HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: {}{extra}",
        body.len()
    );
    raw_request(tls, addr, &head, body.as_bytes())
}

/// A one-request-at-a-time HTTPS server standing in for a monitor's `/put/host-status`; each request's
/// path and body arrive on the returned channel.
pub fn callback_server(ca: &TestCa) -> (SocketAddr, mpsc::Receiver<(String, String)>) {
    let listener = TcpListener::bind((ip(MONITOR_IP), 0)).unwrap();
    let addr = listener.local_addr().unwrap();
    let config = ca.server_config(&[MONITOR_IP]);
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for socket in listener.incoming() {
            let Ok(socket) = socket else { return };
            let _ = socket.set_read_timeout(Some(Duration::from_secs(10)));
            let Ok(connection) = ServerConnection::new(Arc::clone(&config)) else {
                return;
            };
            let mut stream = StreamOwned::new(connection, socket);
            let Some((path, body)) = read_request(&mut stream) else {
                continue;
            };
            let reply = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 14\r\nConnection: close\r\n\r\n{\"response\":1}";
            let _ = stream.write_all(reply);
            let _ = stream.flush();
            stream.conn.send_close_notify();
            let _ = stream.flush();
            if sender.send((path, body)).is_err() {
                return;
            }
        }
    });
    (addr, receiver)
}

fn read_request(stream: &mut impl Read) -> Option<(String, String)> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut request = httparse::Request::new(&mut headers);
        if let Ok(httparse::Status::Complete(head_len)) = request.parse(&buffer) {
            let length: usize = request
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok()?.parse().ok())
                .unwrap_or(0);
            let path = request.path.unwrap_or_default().to_string();
            while buffer.len() < head_len + length {
                let n = stream.read(&mut chunk).ok()?;
                if n == 0 {
                    return None;
                }
                buffer.extend_from_slice(&chunk[..n]);
            }
            let body = String::from_utf8_lossy(&buffer[head_len..head_len + length]).into_owned();
            return Some((path, body));
        }
    }
}
