//! End-to-end: each route of `TargetServer` against a plain std `TcpStream` client.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use jetmon_testkit::http::{
    refused_addr, Options, TargetServer, GARBAGE_BANNER, HUGE_HEADERS_BYTES, MAX_HEAD_BYTES,
    RELATIVE_REDIRECT_LOCATION, RESET_MID_PREFIX,
};

/// The read timeout a quick test client gives up after.
const CLIENT_READ_TIMEOUT: Duration = Duration::from_millis(300);
/// For routes that take a while to finish on purpose.
const SLOW_CLIENT_READ_TIMEOUT: Duration = Duration::from_secs(5);

fn start(ip: &str) -> TargetServer {
    TargetServer::start(SocketAddr::new(ip.parse().unwrap(), 0), None).unwrap()
}

fn send_request(addr: SocketAddr, method: &str, target: &str, timeout: Duration) -> TcpStream {
    let mut client = TcpStream::connect(addr).unwrap();
    client.set_read_timeout(Some(timeout)).unwrap();
    let head = format!("{method} {target} HTTP/1.1\r\nHost: target.test\r\nUser-Agent: jetmon-test\r\n\r\n");
    client.write_all(head.as_bytes()).unwrap();
    client
}

/// Sends `method target` and reads until the server closes.
fn exchange(server: &TargetServer, method: &str, target: &str) -> String {
    let mut client = send_request(server.addr(), method, target, SLOW_CLIENT_READ_TIMEOUT);
    let mut response = Vec::new();
    client.read_to_end(&mut response).unwrap();
    String::from_utf8(response).unwrap()
}

fn get(server: &TargetServer, target: &str) -> String {
    exchange(server, "GET", target)
}

fn location(response: &str) -> Option<&str> {
    response.split("\r\n").find_map(|line| line.strip_prefix("Location: "))
}

/// Reads until EOF or an error, returning what arrived and how it ended.
fn read_until_error(client: &mut TcpStream) -> (Vec<u8>, Option<ErrorKind>) {
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match client.read(&mut chunk) {
            Ok(0) => return (received, None),
            Ok(read) => received.extend_from_slice(&chunk[..read]),
            Err(err) => return (received, Some(err.kind())),
        }
    }
}

#[test]
fn status_route_answers_with_the_requested_code() {
    let server = start("127.0.0.1");
    for (code, status_line) in [
        (200, "HTTP/1.1 200 OK\r\n"),
        (404, "HTTP/1.1 404 Not Found\r\n"),
        (500, "HTTP/1.1 500 Internal Server Error\r\n"),
        (999, "HTTP/1.1 999 Unknown\r\n"),
    ] {
        let response = get(&server, &format!("/status/{code}"));
        assert!(response.starts_with(status_line), "{response}");
        assert!(response.contains("\r\nConnection: close\r\n"), "{response}");
    }
    let ok = get(&server, "/status/200");
    assert!(
        ok.ends_with("\r\nContent-Length: 7\r\nConnection: close\r\n\r\n200 OK\n"),
        "{ok}"
    );
}

#[test]
fn status_204_has_neither_body_nor_content_length() {
    let server = start("127.0.0.1");
    let response = get(&server, "/status/204");
    assert_eq!(response, "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
}

#[test]
fn head_gets_the_get_content_length_without_a_body() {
    let server = start("127.0.0.1");
    let response = exchange(&server, "HEAD", "/status/500");
    assert!(response.starts_with("HTTP/1.1 500 Internal Server Error\r\n"));
    assert!(response.contains("\r\nContent-Length: 26\r\n"), "{response}");
    assert!(response.ends_with("\r\n\r\n"), "{response}");
}

#[test]
fn redirect_chain_counts_down_to_200() {
    let server = start("127.0.0.1");
    let mut target = "/redirect/3".to_owned();
    let mut hops = 0;
    loop {
        let response = get(&server, &target);
        if response.starts_with("HTTP/1.1 200 OK\r\n") {
            break;
        }
        assert!(response.starts_with("HTTP/1.1 302 Found\r\n"), "{response}");
        target = location(&response).unwrap().to_owned();
        hops += 1;
    }
    assert_eq!(hops, 3);
    assert_eq!(target, "/redirect/0");
}

#[test]
fn redirect_to_sends_the_decoded_url_with_the_given_code() {
    let server = start("127.0.0.1");
    let response = get(
        &server,
        "/redirect-to?url=https%3A%2F%2Fother.test%2Fx%3Fa%3D1&code=301",
    );
    assert!(response.starts_with("HTTP/1.1 301 Moved Permanently\r\n"), "{response}");
    assert_eq!(location(&response), Some("https://other.test/x?a=1"));

    let relative = get(&server, "/redirect-to?url=/status/404");
    assert!(relative.starts_with("HTTP/1.1 302 Found\r\n"), "{relative}");
    assert_eq!(location(&relative), Some("/status/404"));
}

#[test]
fn relative_redirect_points_to_status_200_by_a_dot_segment_path() {
    let server = start("127.0.0.1");
    let response = get(&server, "/relative-redirect");
    assert!(response.starts_with("HTTP/1.1 301 Moved Permanently\r\n"), "{response}");
    assert_eq!(location(&response), Some(RELATIVE_REDIRECT_LOCATION));
    assert_eq!(RELATIVE_REDIRECT_LOCATION, "../status/200");
    // A client that does not resolve per RFC 3986 lands here instead.
    assert!(get(&server, "/../status/200").starts_with("HTTP/1.1 404 "));
}

#[test]
fn loop_redirects_to_itself() {
    let server = start("127.0.0.1");
    let response = get(&server, "/loop");
    assert!(response.starts_with("HTTP/1.1 302 Found\r\n"));
    assert_eq!(location(&response), Some("/loop"));
}

#[test]
fn broken_redirects_lack_or_garble_the_location() {
    let server = start("127.0.0.1");
    let missing = get(&server, "/no-location");
    assert!(missing.starts_with("HTTP/1.1 302 Found\r\n"));
    assert_eq!(location(&missing), None);

    let garbled = get(&server, "/bad-location");
    assert!(garbled.starts_with("HTTP/1.1 302 Found\r\n"));
    assert_eq!(location(&garbled), Some("http://[::1"));
}

#[test]
fn hang_never_answers_before_the_client_times_out() {
    let server = start("127.0.0.2");
    let mut client = send_request(server.addr(), "GET", "/hang", CLIENT_READ_TIMEOUT);
    let started = Instant::now();
    let err = client.read(&mut [0u8; 64]).unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{err}"
    );
    assert!(started.elapsed() >= CLIENT_READ_TIMEOUT - Duration::from_millis(20));
}

#[test]
fn hang_closes_silently_at_the_hang_limit() {
    let options = Options {
        hang_limit: Duration::from_millis(200),
        ..Options::default()
    };
    let server = TargetServer::start_with("127.0.0.2:0".parse().unwrap(), None, options).unwrap();
    let mut client = send_request(server.addr(), "GET", "/hang", SLOW_CLIENT_READ_TIMEOUT);
    let started = Instant::now();
    let (received, error) = read_until_error(&mut client);
    assert!(received.is_empty());
    assert_eq!(error, None);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn close_ends_the_connection_without_a_byte() {
    let server = start("127.0.0.1");
    let mut client = send_request(server.addr(), "GET", "/close", SLOW_CLIENT_READ_TIMEOUT);
    assert_eq!(read_until_error(&mut client), (Vec::new(), None));
}

#[test]
fn reset_aborts_with_connection_reset() {
    let server = start("127.0.0.1");
    let mut client = send_request(server.addr(), "GET", "/reset", SLOW_CLIENT_READ_TIMEOUT);
    let (received, error) = read_until_error(&mut client);
    assert!(received.is_empty());
    assert_eq!(error, Some(ErrorKind::ConnectionReset));
}

#[test]
fn reset_mid_truncates_the_status_head_then_resets() {
    let server = start("127.0.0.1");
    let mut client = send_request(server.addr(), "GET", "/reset-mid", SLOW_CLIENT_READ_TIMEOUT);
    let (received, error) = read_until_error(&mut client);
    // The kernel may drop received-but-unread bytes when the RST lands first; what does arrive
    // is always a prefix of the truncated head.
    assert!(RESET_MID_PREFIX.starts_with(&received), "{received:?}");
    assert_eq!(error, Some(ErrorKind::ConnectionReset));
}

#[test]
fn garbage_answers_with_an_ssh_banner() {
    let server = start("127.0.0.1");
    assert_eq!(get(&server, "/garbage").as_bytes(), GARBAGE_BANNER);
}

#[test]
fn huge_headers_sends_more_than_a_mebibyte_of_header_lines() {
    let server = start("127.0.0.1");
    let response = get(&server, "/huge-headers");
    assert!(response.starts_with("HTTP/1.1 200 OK\r\nX-Pad-0: aaa"));
    assert!(response.len() >= HUGE_HEADERS_BYTES);
    assert!(!response[..HUGE_HEADERS_BYTES].contains("\r\n\r\n"));
}

#[test]
fn huge_headers_survives_a_client_that_stops_reading() {
    let server = start("127.0.0.1");
    let mut client = send_request(server.addr(), "GET", "/huge-headers", CLIENT_READ_TIMEOUT);
    client.read_exact(&mut [0u8; 1024]).unwrap();
    drop(client);
    assert!(get(&server, "/status/200").starts_with("HTTP/1.1 200 OK\r\n"));
}

#[test]
fn endless_headers_keep_arriving_without_ending_the_head() {
    let server = start("127.0.0.1");
    let mut client = send_request(server.addr(), "GET", "/endless-headers", CLIENT_READ_TIMEOUT);
    let started = Instant::now();
    let mut received = Vec::new();
    let mut chunk = [0u8; 256];
    while started.elapsed() < Duration::from_millis(550) {
        let read = client.read(&mut chunk).unwrap();
        assert_ne!(read, 0, "server closed early");
        received.extend_from_slice(&chunk[..read]);
    }
    let received = String::from_utf8(received).unwrap();
    assert!(
        received.starts_with("HTTP/1.1 200 OK\r\nX-Endless-0: 0\r\n"),
        "{received}"
    );
    assert!(received.contains("X-Endless-3: 3\r\n"), "{received}");
    assert!(!received.contains("\r\n\r\n"));
}

#[test]
fn trickle_sends_a_valid_head_one_byte_per_interval() {
    let server = start("127.0.0.1");
    let interval = Duration::from_millis(20);
    let mut client = send_request(server.addr(), "GET", "/trickle?ms=20", SLOW_CLIENT_READ_TIMEOUT);
    let started = Instant::now();
    let mut first = [0u8; 64];
    let first_read = client.read(&mut first).unwrap();
    assert!(first_read < 4, "head arrived in one piece: {first_read} bytes");
    let (rest, error) = read_until_error(&mut client);
    assert_eq!(error, None);
    let mut head = first[..first_read].to_vec();
    head.extend_from_slice(&rest);
    assert_eq!(
        head,
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    assert!(started.elapsed() >= interval * (head.len() as u32 - 2));
}

#[test]
fn delay_answers_200_after_the_wait() {
    let server = start("127.0.0.1");
    let started = Instant::now();
    let response = get(&server, "/delay?ms=200");
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"));
}

#[test]
fn echo_head_returns_the_request_head_as_body() {
    let server = start("127.0.0.1");
    let response = get(&server, "/echo-head");
    let sent = "GET /echo-head HTTP/1.1\r\nHost: target.test\r\nUser-Agent: jetmon-test\r\n\r\n";
    assert!(response.ends_with(&format!("\r\n\r\n{sent}")), "{response}");
}

#[test]
fn unknown_path_is_404() {
    let server = start("127.0.0.1");
    assert!(get(&server, "/no/such/route").starts_with("HTTP/1.1 404 Not Found\r\n"));
}

#[test]
fn malformed_and_oversized_heads_are_refused() {
    let server = start("127.0.0.1");
    let mut client = TcpStream::connect(server.addr()).unwrap();
    client.write_all(b"NONSENSE\r\n\r\n").unwrap();
    let (received, _) = read_until_error(&mut client);
    assert!(received.starts_with(b"HTTP/1.1 400 Bad Request\r\n"));

    let mut client = TcpStream::connect(server.addr()).unwrap();
    let padding = "a".repeat(MAX_HEAD_BYTES);
    let head = format!("GET / HTTP/1.1\r\nX-Pad: {padding}\r\n\r\n");
    client.write_all(head.as_bytes()).unwrap();
    let (received, _) = read_until_error(&mut client);
    assert!(
        received.starts_with(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"),
        "{:?}",
        String::from_utf8_lossy(&received)
    );
}

#[test]
fn requests_records_method_path_and_headers() {
    let server = start("127.0.0.1");
    let mut client = TcpStream::connect(server.addr()).unwrap();
    let head = "HEAD /status/204?probe=1 HTTP/1.1\r\nHost: site.test\r\nX-Jetmon-Probe: eu-1\r\n\r\n";
    client.write_all(head.as_bytes()).unwrap();
    read_until_error(&mut client);

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "HEAD");
    assert_eq!(request.path, "/status/204?probe=1");
    assert_eq!(request.header("host"), Some("site.test"));
    assert_eq!(request.header("X-JETMON-PROBE"), Some("eu-1"));
    assert_eq!(request.headers.len(), 2);
    assert_eq!(request.raw_head, head);
    assert_eq!(request.server_name, None);
}

#[test]
fn connections_counts_sockets_that_never_send_a_request() {
    let server = start("127.0.0.1");
    let idle: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(server.addr()).unwrap()).collect();
    let started = Instant::now();
    while server.connections() < 3 && started.elapsed() < Duration::from_secs(2) {
        thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(server.connections(), 3);
    assert!(server.requests().is_empty());
    drop(idle);
}

#[test]
fn default_route_serves_every_path() {
    let options = Options {
        default_route: Some("/status/503".into()),
        ..Options::default()
    };
    let server = TargetServer::start_with("127.0.0.1:0".parse().unwrap(), None, options).unwrap();
    assert!(get(&server, "/anything").starts_with("HTTP/1.1 503 Service Unavailable\r\n"));
    assert_eq!(server.requests()[0].path, "/anything");
}

#[test]
fn url_names_the_scheme_and_bound_port() {
    let server = start("127.0.0.1");
    assert_eq!(
        server.url("/status/200"),
        format!("http://127.0.0.1:{}/status/200", server.addr().port())
    );
}

#[test]
fn refused_addr_refuses_connections() {
    let addr = refused_addr("127.0.0.4".parse().unwrap());
    assert_eq!(addr.ip().to_string(), "127.0.0.4");
    let err = TcpStream::connect(addr).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
}

#[test]
fn dropped_server_refuses_new_connections() {
    let server = start("127.0.0.5");
    let addr = server.addr();
    drop(server);
    let err = TcpStream::connect(addr).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
}

#[test]
fn holds_five_thousand_concurrent_delayed_requests() {
    const CLIENTS: usize = 5000;
    let server = start("127.0.0.3");
    let started = Instant::now();
    let clients: Vec<TcpStream> = (0..CLIENTS)
        .map(|_| send_request(server.addr(), "GET", "/delay?ms=1500", Duration::from_secs(20)))
        .collect();
    while (server.connections() as usize) < CLIENTS && started.elapsed() < Duration::from_secs(10) {
        thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(server.connections() as usize, CLIENTS);
    for mut client in clients {
        let (response, error) = read_until_error(&mut client);
        assert_eq!(error, None);
        assert!(response.starts_with(b"HTTP/1.1 200 OK\r\n"));
    }
    assert_eq!(server.requests().len(), 1000);
}
