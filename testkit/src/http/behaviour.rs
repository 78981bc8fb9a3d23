//! What a connection does once its head is read: one function per scripted behaviour.
//!
//! Every loop here is bounded by the server's hang limit and checks the shutdown flag, so
//! detached connection threads always end by themselves.

use std::io::{ErrorKind, Read};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::conn::{Conn, HeadError};
use super::route::{Route, BAD_LOCATION, GARBAGE_BANNER, RELATIVE_REDIRECT_LOCATION, RESET_MID_PREFIX};
use super::{RecordedRequest, Shared, SHUTDOWN_POLL_INTERVAL};

/// How long a client may take to send its request head.
pub const HEAD_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long one write may block on a client that stopped reading.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Size of the header block sent by `/huge-headers`.
pub const HUGE_HEADERS_BYTES: usize = 1024 * 1024;

/// Gap between header lines sent by `/endless-headers`.
pub const ENDLESS_HEADER_INTERVAL: Duration = Duration::from_millis(100);

const HUGE_HEADER_PAD_BYTES: usize = 1000;

/// The complete, valid head that `/trickle` sends one byte at a time.
const TRICKLE_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

pub(super) fn serve(tcp: TcpStream, shared: &Shared) {
    // Trickled bytes must leave one by one, not be coalesced by Nagle.
    let _ = tcp.set_nodelay(true);
    let _ = tcp.set_read_timeout(Some(HEAD_READ_TIMEOUT));
    let _ = tcp.set_write_timeout(Some(WRITE_TIMEOUT));
    let Ok(mut conn) = Conn::new(tcp, shared.tls.as_ref()) else {
        return;
    };
    let raw = match conn.read_head() {
        Ok(raw) => raw,
        Err(HeadError::TooLarge) => {
            respond(&mut conn, 431, None, b"request head too large\n", false);
            return conn.close();
        }
        Err(HeadError::Unreadable) => return,
    };
    let Some(request) = parse_request(&raw, conn.server_name()) else {
        respond(&mut conn, 400, None, b"malformed request head\n", false);
        return conn.close();
    };
    let is_head = request.method == "HEAD";
    let route = Route::parse(shared.options.default_route.as_deref().unwrap_or(&request.path));
    shared.record(request);
    act(conn, route, is_head, &raw, shared);
}

fn act(mut conn: Conn, route: Route, is_head: bool, raw_head: &[u8], shared: &Shared) {
    match route {
        Route::Status(code) => respond(&mut conn, code, None, &[], is_head),
        Route::Redirect(0) => respond(&mut conn, 200, None, &[], is_head),
        Route::Redirect(left) => {
            let location = format!("/redirect/{}", left - 1);
            respond(&mut conn, 302, Some(&location), &[], is_head);
        }
        Route::RedirectTo { location, code } => {
            respond(&mut conn, code, Some(&location), &[], is_head);
        }
        Route::RelativeRedirect => {
            respond(&mut conn, 301, Some(RELATIVE_REDIRECT_LOCATION), &[], is_head);
        }
        Route::Loop => respond(&mut conn, 302, Some("/loop"), &[], is_head),
        Route::NoLocation => respond(&mut conn, 302, None, &[], is_head),
        Route::BadLocation => respond(&mut conn, 302, Some(BAD_LOCATION), &[], is_head),
        Route::Hang => return hold_silently(conn, shared),
        // Dropping without close_notify or response: the client sees a bare FIN.
        Route::Close => return,
        Route::Reset => return conn.reset(),
        Route::ResetMid => {
            let _ = conn.send(RESET_MID_PREFIX);
            return conn.reset();
        }
        Route::Garbage => {
            let _ = conn.send(GARBAGE_BANNER);
        }
        Route::HugeHeaders => {
            let _ = conn.send(&huge_headers());
        }
        Route::EndlessHeaders => return endless_headers(conn, shared),
        Route::Trickle(interval) => {
            if !trickle(&mut conn, interval, shared) {
                return;
            }
        }
        Route::Delay(wait) => {
            if !shared.pause(wait.min(shared.options.hang_limit)) {
                return;
            }
            respond(&mut conn, 200, None, &[], is_head);
        }
        Route::EchoHead => respond(&mut conn, 200, None, raw_head, is_head),
        Route::NotFound => respond(&mut conn, 404, None, &[], is_head),
        Route::BadRequest(why) => respond(&mut conn, 400, None, why.as_bytes(), is_head),
    }
    conn.close();
}

/// Writes a complete response. An empty `body` becomes `"{code} {reason}\n"`, except for
/// statuses that forbid a body (1xx, 204, 304). HEAD gets the GET headers without the body.
fn respond(conn: &mut Conn, code: u16, location: Option<&str>, body: &[u8], is_head: bool) {
    let reason = reason_phrase(code);
    let mut head = format!("HTTP/1.1 {code} {reason}\r\n");
    if let Some(location) = location {
        head.push_str(&format!("Location: {location}\r\n"));
    }
    let default_body = format!("{code} {reason}\n");
    let body = match body {
        _ if forbids_body(code) => &[][..],
        [] => default_body.as_bytes(),
        body => body,
    };
    if !forbids_body(code) {
        head.push_str(&format!(
            "Content-Type: text/plain\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    head.push_str("Connection: close\r\n\r\n");
    let mut response = head.into_bytes();
    if !is_head {
        response.extend_from_slice(body);
    }
    let _ = conn.send(&response);
}

fn forbids_body(code: u16) -> bool {
    (100..200).contains(&code) || code == 204 || code == 304
}

/// A site whose backend stalled after accepting: reads go on, no byte is ever answered.
fn hold_silently(conn: Conn, shared: &Shared) {
    let deadline = Instant::now() + shared.options.hang_limit;
    let mut tcp = conn.tcp();
    let mut sink = [0u8; 512];
    while !shared.is_shut_down() {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            break;
        }
        // Blocking in read (not sleeping) notices a client close at once and costs no wakeups.
        let _ = tcp.set_read_timeout(Some(remaining.min(SHUTDOWN_POLL_INTERVAL)));
        match tcp.read(&mut sink) {
            Ok(0) => break,
            Ok(_) => {}
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
}

fn huge_headers() -> Vec<u8> {
    let pad = "a".repeat(HUGE_HEADER_PAD_BYTES);
    let mut response = b"HTTP/1.1 200 OK\r\n".to_vec();
    let mut line = 0;
    while response.len() < HUGE_HEADERS_BYTES {
        response.extend_from_slice(format!("X-Pad-{line}: {pad}\r\n").as_bytes());
        line += 1;
    }
    response.extend_from_slice(b"Content-Length: 0\r\nConnection: close\r\n\r\n");
    response
}

fn endless_headers(mut conn: Conn, shared: &Shared) {
    let deadline = Instant::now() + shared.options.hang_limit;
    if conn.send(b"HTTP/1.1 200 OK\r\n").is_err() {
        return;
    }
    for line in 0u64.. {
        if Instant::now() >= deadline || !shared.pause(ENDLESS_HEADER_INTERVAL) {
            return;
        }
        if conn.send(format!("X-Endless-{line}: {line}\r\n").as_bytes()).is_err() {
            return;
        }
    }
}

/// Sends [`TRICKLE_HEAD`] a byte per `interval`; false if cut short (client gone, limit, shutdown).
fn trickle(conn: &mut Conn, interval: Duration, shared: &Shared) -> bool {
    let deadline = Instant::now() + shared.options.hang_limit;
    for (sent, byte) in TRICKLE_HEAD.iter().enumerate() {
        if sent > 0 && (Instant::now() >= deadline || !shared.pause(interval)) {
            return false;
        }
        if conn.send(&[*byte]).is_err() {
            return false;
        }
    }
    true
}

/// Splits a head ending in a blank line; `None` if the request line or a header is malformed.
fn parse_request(raw: &[u8], server_name: Option<String>) -> Option<RecordedRequest> {
    let raw_head = String::from_utf8_lossy(raw).into_owned();
    let mut lines = raw_head.strip_suffix("\r\n\r\n")?.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let (method, path, version) = (request_line.next()?, request_line.next()?, request_line.next()?);
    if request_line.next().is_some() || method.is_empty() || !version.starts_with("HTTP/") {
        return None;
    }
    let headers = lines
        .map(|line| {
            let (name, value) = line.split_once(':')?;
            Some((name.trim().to_owned(), value.trim().to_owned()))
        })
        .collect::<Option<Vec<_>>>()?;
    Some(RecordedRequest {
        method: method.to_owned(),
        path: path.to_owned(),
        headers,
        server_name,
        raw_head,
    })
}

fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        410 => "Gone",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_request_splits_method_path_and_headers() {
        let raw = b"GET /status/200?x=1 HTTP/1.1\r\nHost: a.example\r\nX-Empty:\r\n\r\n";
        let request = parse_request(raw, None).unwrap();
        assert_eq!(request.method, "GET");
        assert_eq!(request.path, "/status/200?x=1");
        assert_eq!(
            request.headers,
            vec![
                ("Host".to_owned(), "a.example".to_owned()),
                ("X-Empty".to_owned(), String::new())
            ]
        );
        assert_eq!(request.raw_head.as_bytes(), raw);
    }

    #[test]
    fn parse_request_rejects_malformed_heads() {
        assert!(parse_request(b"GET /\r\n\r\n", None).is_none());
        assert!(parse_request(b"GET / FTP/1\r\n\r\n", None).is_none());
        assert!(parse_request(b"GET / HTTP/1.1\r\nno colon\r\n\r\n", None).is_none());
    }

    #[test]
    fn huge_headers_block_is_at_least_a_mebibyte_and_terminated() {
        let block = huge_headers();
        assert!(block.len() >= HUGE_HEADERS_BYTES);
        assert!(block.ends_with(b"\r\n\r\n"));
    }
}
