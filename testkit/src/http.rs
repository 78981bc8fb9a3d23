//! [`TargetServer`]: an HTTP(S) server whose every path is a scripted behaviour of a monitored
//! site, healthy or broken (httpbin style). The engine's tests point checks at these paths and
//! assert the outcome.
//!
//! | Path | Behaviour | The real failure it models |
//! |---|---|---|
//! | `/status/{code}` | `HTTP/1.1 {code} {reason}` | a site that is up, or answers 4xx/5xx |
//! | `/redirect/{n}` | 302 to `/redirect/{n-1}`; `/redirect/0` is 200 | redirect chains (`http`→`https`→`www`…) and the redirect limit |
//! | `/redirect-to?url=U&code=C` | `C` (default 302) with `Location: U` (percent-decoded, as given) | redirects to another host, scheme or a relative path |
//! | `/relative-redirect` | 301, `Location: ../status/200` ([`RELATIVE_REDIRECT_LOCATION`]), which resolves to `/status/200` | relative `Location`s that must be resolved per RFC 3986 |
//! | `/loop` | 302 to `/loop` | misconfigured rewrite rules that redirect forever |
//! | `/no-location` | 302 without `Location` | broken redirect responses |
//! | `/bad-location` | 302, `Location: http://[::1` | a `Location` no URL parser accepts |
//! | `/hang` | reads the request, never answers, holds the socket up to the hang limit | a backend stuck behind an accepting load balancer |
//! | `/close` | closes without a byte | a crashing worker; under TLS, a truncation without close_notify |
//! | `/reset` | RST (SO_LINGER 0) without a byte | a firewall or crashing process resetting connections |
//! | `/reset-mid` | `HTTP/1.1 200 OK\r\nContent-Le`, then RST | a server dying mid-response |
//! | `/garbage` | `SSH-2.0-OpenSSH_9.0\r\n\r\n` | another service on the HTTP port |
//! | `/huge-headers` | 200, then 1 MiB of `X-Pad-N` header lines | a response that must hit the client's head size limit |
//! | `/endless-headers` | 200, then a header line every 100 ms until the hang limit | a slowloris-style server defeating per-read timeouts |
//! | `/trickle?ms=200` | a valid 200 head, one byte per `ms` | an overloaded server; only a whole-check deadline catches it |
//! | `/delay?ms=500` | 200 after `ms` (capped at the hang limit) | slow but healthy sites; thousands in flight for capacity tests |
//! | `/echo-head` | 200 whose body is the request head | asserting exactly what the prober sent |
//! | anything else | 404 | |
//!
//! A malformed request head gets 400, one over [`MAX_HEAD_BYTES`] gets 431. Every response has
//! `Connection: close` and the connection is closed after it; a response to HEAD carries the
//! `Content-Length` a GET would get, but no body.
//!
//! Each connection runs on its own thread with a small stack, so one server holds thousands of
//! idle or slow connections cheaply; threads are detached and end by themselves within the hang
//! limit (or soon after the server is dropped).

mod behaviour;
mod conn;
mod route;

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rustls::ServerConfig;
use socket2::{Domain, Protocol, Socket, Type};

pub use behaviour::{ENDLESS_HEADER_INTERVAL, HEAD_READ_TIMEOUT, HUGE_HEADERS_BYTES, WRITE_TIMEOUT};
pub use conn::MAX_HEAD_BYTES;
pub use route::{
    BAD_LOCATION, DEFAULT_DELAY, DEFAULT_TRICKLE_INTERVAL, GARBAGE_BANNER, RELATIVE_REDIRECT_LOCATION, RESET_MID_PREFIX,
};

/// Default for [`Options::hang_limit`].
pub const DEFAULT_HANG_LIMIT: Duration = Duration::from_secs(60);

/// How many requests [`TargetServer::requests`] keeps (the most recent ones).
pub const RECORDED_REQUESTS_LIMIT: usize = 1000;

/// Listen backlog: a burst of thousands of checks must not be refused by the kernel before the
/// acceptor catches up (the kernel still caps it at `net.core.somaxconn`).
pub const LISTEN_BACKLOG: i32 = 4096;

const CONNECTION_STACK_BYTES: usize = 64 * 1024;
/// rustls handshakes need more stack than plain HTTP, especially in debug builds.
const TLS_CONNECTION_STACK_BYTES: usize = 256 * 1024;
/// Back-off after a failed `accept` (e.g. out of file descriptors) so the acceptor cannot spin.
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(10);
const WAKE_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest a pause goes without checking for shutdown.
const SHUTDOWN_POLL_INTERVAL: Duration = Duration::from_millis(500);

/// Settings of a [`TargetServer`] beyond its address and TLS config.
#[derive(Debug, Clone)]
pub struct Options {
    /// Serve this target (path and query, e.g. `/delay?ms=100`) for every request, whatever
    /// path was asked for; [`RecordedRequest::path`] still shows what was sent. For benches that
    /// point many checks at one URL.
    pub default_route: Option<String>,
    /// Upper bound on how long any behaviour holds a connection (`/hang`, `/endless-headers`,
    /// `/trickle`, `/delay`).
    pub hang_limit: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            default_route: None,
            hang_limit: DEFAULT_HANG_LIMIT,
        }
    }
}

/// A request head as the server received it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecordedRequest {
    /// The method, e.g. `HEAD`.
    pub method: String,
    /// The request target exactly as sent, query included.
    pub path: String,
    /// Header fields in order, names as sent, values trimmed.
    pub headers: Vec<(String, String)>,
    /// The SNI of a TLS connection, if the client sent one.
    pub server_name: Option<String>,
    /// The whole head, request line to blank line, decoded lossily as UTF-8.
    pub raw_head: String,
}

impl RecordedRequest {
    /// The value of the first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| header.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// A running target server; stops accepting when dropped.
///
/// ```
/// use std::io::{Read, Write};
/// use std::net::TcpStream;
/// use jetmon_testkit::http::TargetServer;
///
/// let server = TargetServer::start("127.0.0.1:0".parse().unwrap(), None).unwrap();
/// let mut client = TcpStream::connect(server.addr()).unwrap();
/// client.write_all(b"GET /status/503 HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
/// let mut response = String::new();
/// client.read_to_string(&mut response).unwrap();
/// assert!(response.starts_with("HTTP/1.1 503 Service Unavailable\r\n"));
/// assert_eq!(server.requests()[0].path, "/status/503");
/// ```
#[derive(Debug)]
pub struct TargetServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl TargetServer {
    /// Binds `bind` (port 0 picks a free port) and serves plain HTTP, or HTTPS with `tls`.
    pub fn start(bind: SocketAddr, tls: Option<Arc<ServerConfig>>) -> io::Result<TargetServer> {
        TargetServer::start_with(bind, tls, Options::default())
    }

    /// [`TargetServer::start`] with non-default [`Options`].
    pub fn start_with(bind: SocketAddr, tls: Option<Arc<ServerConfig>>, options: Options) -> io::Result<TargetServer> {
        let listener = bind_listener(bind)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            options,
            tls,
            shutdown: AtomicBool::new(false),
            connections: AtomicU64::new(0),
            requests: Mutex::new(VecDeque::new()),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name(format!("testkit-accept-{addr}"))
                .spawn(move || accept_loop(listener, &shared))?
        };
        Ok(TargetServer {
            addr,
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// The bound address (with the real port when started on port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://addr/path` or `https://addr/path`; `path` must start with `/`.
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.shared.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}{path}", self.addr)
    }

    /// Connections accepted so far, including those that never sent a request.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::Relaxed)
    }

    /// The last [`RECORDED_REQUESTS_LIMIT`] request heads, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock_requests().iter().cloned().collect()
    }
}

impl Drop for TargetServer {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        // The acceptor is blocked in accept(); a connection of our own wakes it to see the flag.
        let woken = TcpStream::connect_timeout(&wake_addr(self.addr), WAKE_CONNECT_TIMEOUT).is_ok();
        if let (true, Some(acceptor)) = (woken, self.acceptor.take()) {
            let _ = acceptor.join();
        }
    }
}

/// An address on `ip` where nothing listens, for "connection refused" tests.
///
/// It binds an ephemeral port and releases it, so another process could in theory take the port
/// before the test connects; on a test machine that is vanishingly rare.
///
/// # Panics
/// If `ip` cannot be bound (not a local address).
pub fn refused_addr(ip: IpAddr) -> SocketAddr {
    let listener = match TcpListener::bind((ip, 0)) {
        Ok(listener) => listener,
        Err(err) => panic!("bind {ip}:0 to find a free port: {err}"),
    };
    match listener.local_addr() {
        Ok(addr) => addr,
        Err(err) => panic!("local_addr of {ip}:0: {err}"),
    }
}

#[derive(Debug)]
struct Shared {
    options: Options,
    tls: Option<Arc<ServerConfig>>,
    shutdown: AtomicBool,
    connections: AtomicU64,
    requests: Mutex<VecDeque<RecordedRequest>>,
}

impl Shared {
    fn is_shut_down(&self) -> bool {
        self.shutdown.load(Ordering::Relaxed)
    }

    fn lock_requests(&self) -> std::sync::MutexGuard<'_, VecDeque<RecordedRequest>> {
        // A panicking connection thread leaves the log intact; keep using it.
        self.requests.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn record(&self, request: RecordedRequest) {
        let mut requests = self.lock_requests();
        if requests.len() == RECORDED_REQUESTS_LIMIT {
            requests.pop_front();
        }
        requests.push_back(request);
    }

    /// Sleeps for `duration`; false if the server shut down meanwhile.
    fn pause(&self, duration: Duration) -> bool {
        let deadline = Instant::now() + duration;
        loop {
            if self.is_shut_down() {
                return false;
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return true;
            }
            thread::sleep(remaining.min(SHUTDOWN_POLL_INTERVAL));
        }
    }
}

fn bind_listener(bind: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(bind), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&bind.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}

fn accept_loop(listener: TcpListener, shared: &Arc<Shared>) {
    loop {
        let accepted = listener.accept();
        if shared.is_shut_down() {
            return;
        }
        match accepted {
            Ok((tcp, _peer)) => {
                shared.connections.fetch_add(1, Ordering::Relaxed);
                spawn_connection(tcp, shared);
            }
            Err(_) => thread::sleep(ACCEPT_RETRY_DELAY),
        }
    }
}

fn spawn_connection(tcp: TcpStream, shared: &Arc<Shared>) {
    let stack_bytes = if shared.tls.is_some() {
        TLS_CONNECTION_STACK_BYTES
    } else {
        CONNECTION_STACK_BYTES
    };
    let shared = Arc::clone(shared);
    // If the OS refuses another thread the stream is dropped and the client sees a close, as
    // with a real server at its connection limit.
    let _ = thread::Builder::new()
        .stack_size(stack_bytes)
        .spawn(move || behaviour::serve(tcp, &shared));
}

fn wake_addr(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => (Ipv4Addr::LOCALHOST, addr.port()).into(),
        IpAddr::V6(ip) if ip.is_unspecified() => (Ipv6Addr::LOCALHOST, addr.port()).into(),
        _ => addr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(path: &str) -> RecordedRequest {
        RecordedRequest {
            method: "GET".into(),
            path: path.into(),
            headers: vec![("Host".into(), "a".into())],
            server_name: None,
            raw_head: String::new(),
        }
    }

    #[test]
    fn request_log_keeps_only_the_most_recent() {
        let shared = Shared {
            options: Options::default(),
            tls: None,
            shutdown: AtomicBool::new(false),
            connections: AtomicU64::new(0),
            requests: Mutex::new(VecDeque::new()),
        };
        for n in 0..RECORDED_REQUESTS_LIMIT + 5 {
            shared.record(request(&format!("/{n}")));
        }
        let requests = shared.lock_requests();
        assert_eq!(requests.len(), RECORDED_REQUESTS_LIMIT);
        assert_eq!(requests[0].path, "/5");
    }

    #[test]
    fn header_lookup_ignores_case() {
        assert_eq!(request("/").header("host"), Some("a"));
        assert_eq!(request("/").header("accept"), None);
    }

    #[test]
    fn wake_addr_maps_unspecified_to_loopback() {
        let any: SocketAddr = "0.0.0.0:80".parse().unwrap();
        assert_eq!(wake_addr(any), "127.0.0.1:80".parse().unwrap());
        let any6: SocketAddr = "[::]:80".parse().unwrap();
        assert_eq!(wake_addr(any6), "[::1]:80".parse().unwrap());
    }
}
