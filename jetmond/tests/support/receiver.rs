//! A WPCOM stand-in for the outbox tests: an HTTPS server on a loopback address that records every
//! notification it is sent and answers as the test scripts it (accept, 500, hang, close early, slow).

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::{ServerConfig, ServerConnection, StreamOwned};
use serde_json::Value;

/// How the receiver answers one request.
#[derive(Debug, Clone)]
pub enum Answer {
    /// 200 with this JSON body.
    Accept(&'static str),
    /// This status with a short body.
    Status(u16),
    /// Never answer (until the receiver stops).
    Hang,
    /// Close the connection without answering.
    Close,
    /// Wait, then accept.
    Slow(Duration),
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    /// The payload: the `data` query parameter (GET) or the body (POST), parsed.
    pub payload: Value,
    pub content_type: Option<String>,
    pub client_certificate: bool,
    /// Whether it was answered with a 2xx.
    pub accepted: bool,
}

struct Shared {
    script: VecDeque<Answer>,
    default: Answer,
    received: Vec<Received>,
}

/// The running receiver; stops (and frees its address) on drop.
pub struct Receiver {
    pub addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    pub fn start(addr: SocketAddr, tls: Arc<ServerConfig>) -> Receiver {
        Self::start_with(addr, tls, Answer::Accept(r#"{"success":true}"#))
    }

    pub fn start_with(addr: SocketAddr, tls: Arc<ServerConfig>, default: Answer) -> Receiver {
        let listener = TcpListener::bind(addr).expect("receiver binds");
        listener.set_nonblocking(true).expect("nonblocking listener");
        let addr = listener.local_addr().expect("receiver address");
        let shared = Arc::new(Mutex::new(Shared {
            script: VecDeque::new(),
            default,
            received: Vec::new(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let shared = Arc::clone(&shared);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let (shared, stop, tls) = (Arc::clone(&shared), Arc::clone(&stop), Arc::clone(&tls));
                            std::thread::spawn(move || serve(stream, tls, &shared, &stop));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        Receiver {
            addr,
            shared,
            stop,
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The next requests get these answers, in order; then the default again.
    pub fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        self.shared.lock().unwrap().script.extend(answers);
    }

    pub fn set_default(&self, answer: Answer) {
        self.shared.lock().unwrap().default = answer;
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.lock().unwrap().received.clone()
    }

    pub fn accepted(&self) -> Vec<Value> {
        self.received()
            .into_iter()
            .filter(|r| r.accepted)
            .map(|r| r.payload)
            .collect()
    }

    /// Waits (bounded) until `cond` holds for the accepted payloads.
    pub fn wait_accepted(&self, what: &str, timeout: Duration, cond: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let accepted = self.accepted();
            if cond(&accepted) {
                return accepted;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; received: {:?}",
                self.received()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(stream: TcpStream, tls: Arc<ServerConfig>, shared: &Mutex<Shared>, stop: &AtomicBool) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let Ok(conn) = ServerConnection::new(tls) else { return };
    let mut tls = StreamOwned::new(conn, stream);
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        match tls.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buffer[..header_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let method = request_line.next().unwrap_or_default().to_string();
    let target = request_line.next().unwrap_or_default().to_string();
    let header = |name: &str| {
        head.split("\r\n").find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim().to_string())
        })
    };
    let length: usize = header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    while buffer.len() < header_end + length {
        match tls.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
    let body = &buffer[header_end..header_end + length];
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let payload = if method == "GET" {
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(key, _)| key == "data")
            .and_then(|(_, data)| serde_json::from_str(&data).ok())
            .unwrap_or(Value::Null)
    } else {
        serde_json::from_slice(body).unwrap_or(Value::Null)
    };
    let answer = {
        let mut shared = shared.lock().unwrap();
        let default = shared.default.clone();
        shared.script.pop_front().unwrap_or(default)
    };
    let mut received = Received {
        method,
        path: path.to_string(),
        payload,
        content_type: header("content-type"),
        client_certificate: tls.conn.peer_certificates().is_some_and(|c| !c.is_empty()),
        accepted: false,
    };
    let (status, body) = match answer {
        Answer::Accept(body) => (200, body.to_string()),
        Answer::Status(status) => (status, r#"{"error":"scripted"}"#.to_string()),
        Answer::Slow(delay) => {
            std::thread::sleep(delay);
            (200, r#"{"success":true}"#.to_string())
        }
        Answer::Hang => {
            shared.lock().unwrap().received.push(received);
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(20));
            }
            return;
        }
        Answer::Close => {
            shared.lock().unwrap().received.push(received);
            // Dropping the TCP stream without close_notify or an answer.
            return;
        }
    };
    let response = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    // Recorded as accepted only once the answer is on the wire; the client may still have given up.
    if tls.write_all(response.as_bytes()).and_then(|()| tls.flush()).is_ok() {
        received.accepted = (200..300).contains(&status);
    }
    tls.conn.send_close_notify();
    let _ = tls.flush();
    shared.lock().unwrap().received.push(received);
}
