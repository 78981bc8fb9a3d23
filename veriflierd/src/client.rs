//! The synchronous client jetmond uses to ask a veriflier, and the one-shot HTTPS POST that the veriflier
//! itself uses for legacy callbacks.
//!
//! Blocking on purpose: jetmond calls it from its control thread (one thread per veriflier), never from the
//! engine loop. Every request has a hard deadline covering connect, TLS, writing and reading; each socket
//! operation gets the time that is left, so a veriflier that accepts and never answers costs at most the
//! timeout. One request per connection (`Connection: close`): batches are rare and a few hundred checks
//! each, so connection reuse would buy nothing but state.
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//! use veriflierd::client::VeriflierClient;
//! use veriflierd::protocol::CheckItem;
//!
//! # fn tls() -> Arc<rustls::ClientConfig> { unimplemented!() }
//! let client = VeriflierClient::new("v1", "https://v1.example:7801", "token", tls(), Duration::from_secs(60))?;
//! let results = client.check(&[CheckItem { blog_id: 7, monitor_url: "https://example.com/".into() }])?;
//! for result in results {
//!     println!("{} is {} (HTTP {}, {} ms)", result.monitor_url, result.status, result.code, result.rtt);
//! }
//! # Ok::<(), veriflierd::client::ClientError>(())
//! ```

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use url::Url;

use crate::protocol::{CheckBatch, CheckItem, CheckResponse, ErrorBody, ResultItem, CHECK_PATH};

/// Largest response head accepted, in bytes.
const MAX_RESPONSE_HEAD_BYTES: usize = 64 * 1024;
/// Largest response body accepted: a full batch of results is well under 1 MiB.
const MAX_RESPONSE_BODY_BYTES: usize = 16 * 1024 * 1024;
/// Most headers parsed in a response.
const MAX_RESPONSE_HEADERS: usize = 64;
/// Sent as `User-Agent`, so veriflier logs tell monitors from scanners.
const USER_AGENT: &str = concat!("jetmon-veriflier-client/", env!("CARGO_PKG_VERSION"));

/// Why a request to a veriflier (or a legacy callback to a monitor) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The URL is not an `https://` URL with a host.
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The deadline passed before the whole answer arrived.
    #[error("no complete answer within {0:?}")]
    Timeout(Duration),
    /// The server could not be reached (name, refused, unreachable).
    #[error("cannot connect: {0}")]
    Connect(#[source] io::Error),
    /// The TLS handshake failed: untrusted or wrong certificate, client certificate refused, ...
    #[error("TLS failed: {0}")]
    Tls(#[source] rustls::Error),
    /// The server answered 401: our token (or client certificate identity) was refused.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// The server answered with another non-200 status.
    #[error("HTTP {status}: {body}")]
    Http {
        /// The status code.
        status: u16,
        /// The body (an error message), lossily decoded.
        body: String,
    },
    /// The connection broke, or the answer is not HTTP/1.1.
    #[error("bad answer: {0}")]
    Protocol(String),
    /// The answer is HTTP 200 but its body is not the expected JSON.
    #[error("cannot decode answer: {0}")]
    Decode(String),
}

/// A client for one veriflier's synchronous `/v1/check` endpoint. Cheap to share between threads.
#[derive(Debug, Clone)]
pub struct VeriflierClient {
    name: String,
    url: Url,
    token: String,
    tls: Arc<ClientConfig>,
    timeout: Duration,
    monitor: Option<String>,
}

impl VeriflierClient {
    /// A client for the veriflier `name` at `base_url` (`https://host:port`), sending `token`. `tls` decides
    /// which CA the veriflier's certificate must chain to, and may carry a client certificate. `timeout`
    /// bounds each whole request, checks included.
    pub fn new(
        name: impl Into<String>,
        base_url: &str,
        token: impl Into<String>,
        tls: Arc<ClientConfig>,
        timeout: Duration,
    ) -> Result<VeriflierClient, ClientError> {
        let invalid = |reason: &str| ClientError::InvalidUrl {
            url: base_url.to_string(),
            reason: reason.to_string(),
        };
        let base = Url::parse(base_url).map_err(|e| invalid(&e.to_string()))?;
        let url = base.join(CHECK_PATH).map_err(|e| invalid(&e.to_string()))?;
        target_of(&url)?;
        Ok(VeriflierClient {
            name: name.into(),
            url,
            token: token.into(),
            tls,
            timeout,
            monitor: None,
        })
    }

    /// Also sends this monitor's name (`monitors[].name` on the veriflier); the veriflier then refuses the
    /// request when the token belongs to another monitor, which catches swapped tokens early.
    pub fn with_monitor_name(mut self, monitor: impl Into<String>) -> VeriflierClient {
        self.monitor = Some(monitor.into());
        self
    }

    /// The veriflier's name, as configured on the monitor.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Asks the veriflier to check `checks` and waits for the results (at most the client's timeout).
    /// Results come in request order.
    pub fn check(&self, checks: &[CheckItem]) -> Result<Vec<ResultItem>, ClientError> {
        let batch = CheckBatch {
            monitor: self.monitor.clone(),
            checks: checks.to_vec(),
        };
        let body = serde_json::to_vec(&batch).map_err(|e| ClientError::Decode(e.to_string()))?;
        let authorization = format!("Bearer {}", self.token);
        let response = post_json(
            &self.url,
            &[("Authorization", authorization.as_str())],
            &body,
            &self.tls,
            self.timeout,
        )?;
        match response.status {
            200 => {
                let decoded: CheckResponse =
                    serde_json::from_slice(&response.body).map_err(|e| ClientError::Decode(e.to_string()))?;
                if decoded.results.len() != checks.len() {
                    return Err(ClientError::Decode(format!(
                        "{} results for {} checks",
                        decoded.results.len(),
                        checks.len()
                    )));
                }
                Ok(decoded.results)
            }
            401 => Err(ClientError::Unauthorized(error_message(&response.body))),
            status => Err(ClientError::Http {
                status,
                body: error_message(&response.body),
            }),
        }
    }
}

/// The error message of a JSON [`ErrorBody`], or the body as text.
fn error_message(body: &[u8]) -> String {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(error) => error.error,
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    }
}

/// A response: status and body.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
}

/// POSTs `body` as JSON to the `https://` `url` and reads the whole answer, all within `timeout`.
pub(crate) fn post_json(
    url: &Url,
    headers: &[(&str, &str)],
    body: &[u8],
    tls: &Arc<ClientConfig>,
    timeout: Duration,
) -> Result<Response, ClientError> {
    let deadline = Instant::now() + timeout;
    let (host, port) = target_of(url)?;
    let server_name =
        ServerName::try_from(host.trim_start_matches('[').trim_end_matches(']').to_string()).map_err(|e| {
            ClientError::InvalidUrl {
                url: url.to_string(),
                reason: e.to_string(),
            }
        })?;
    let socket = connect(&host, port, deadline, timeout)?;
    let connection = ClientConnection::new(Arc::clone(tls), server_name).map_err(ClientError::Tls)?;
    let mut stream = StreamOwned::new(connection, socket);

    let mut request = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: {USER_AGENT}\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        &url[url::Position::BeforePath..url::Position::AfterQuery],
        &url[url::Position::BeforeHost..url::Position::AfterPort],
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    let mut payload = request.into_bytes();
    payload.extend_from_slice(body);
    // The first write drives the TLS handshake, so handshake failures surface here.
    with_deadline(&mut stream, deadline, timeout, |s| s.write_all(&payload))?;
    with_deadline(&mut stream, deadline, timeout, |s| s.flush())?;
    read_response(&mut stream, deadline, timeout)
}

fn target_of(url: &Url) -> Result<(String, u16), ClientError> {
    let invalid = |reason: &str| ClientError::InvalidUrl {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    if url.scheme() != "https" {
        return Err(invalid("only https:// is spoken (certificates are always verified)"));
    }
    let host = url.host_str().ok_or_else(|| invalid("no host"))?.to_string();
    let port = url.port_or_known_default().ok_or_else(|| invalid("no port"))?;
    Ok((host, port))
}

fn remaining(deadline: Instant, timeout: Duration) -> Result<Duration, ClientError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(ClientError::Timeout(timeout))
    } else {
        Ok(left)
    }
}

fn connect(host: &str, port: u16, deadline: Instant, timeout: Duration) -> Result<TcpStream, ClientError> {
    // Name resolution is blocking and not bounded by the deadline; monitors name verifliers by address or
    // by names in /etc/hosts in practice, and the deadline is checked again right after.
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = (bare, port).to_socket_addrs().map_err(ClientError::Connect)?.collect();
    let mut last_error = io::Error::new(io::ErrorKind::NotFound, format!("{host} has no address"));
    for addr in addrs {
        let left = remaining(deadline, timeout)?;
        match TcpStream::connect_timeout(&addr, left) {
            Ok(socket) => {
                // Nagle would hold the request body back behind the head.
                let _ = socket.set_nodelay(true);
                return Ok(socket);
            }
            Err(error) if is_timeout(&error) => last_error = error,
            Err(error) => last_error = error,
        }
    }
    if is_timeout(&last_error) {
        return Err(ClientError::Timeout(timeout));
    }
    Err(ClientError::Connect(last_error))
}

fn is_timeout(error: &io::Error) -> bool {
    matches!(error.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

type TlsStream = StreamOwned<ClientConnection, TcpStream>;

/// Runs one blocking operation with the socket's timeouts set to what is left of the deadline, and sorts its
/// failure into a [`ClientError`].
fn with_deadline<T>(
    stream: &mut TlsStream,
    deadline: Instant,
    timeout: Duration,
    operation: impl FnOnce(&mut TlsStream) -> io::Result<T>,
) -> Result<T, ClientError> {
    let left = remaining(deadline, timeout)?;
    stream.sock.set_read_timeout(Some(left)).map_err(ClientError::Connect)?;
    stream
        .sock
        .set_write_timeout(Some(left))
        .map_err(ClientError::Connect)?;
    operation(stream).map_err(|error| classify(error, timeout))
}

fn classify(error: io::Error, timeout: Duration) -> ClientError {
    if is_timeout(&error) {
        return ClientError::Timeout(timeout);
    }
    // rustls reports handshake and record failures as io errors wrapping a rustls::Error.
    if let Some(tls) = error.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
        return ClientError::Tls(tls.clone());
    }
    ClientError::Protocol(error.to_string())
}

fn read_response(stream: &mut TlsStream, deadline: Instant, timeout: Duration) -> Result<Response, ClientError> {
    let mut buffer = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    let (status, head_len, framing) = loop {
        let n = with_deadline(stream, deadline, timeout, |s| s.read(&mut chunk))?;
        if n == 0 {
            return Err(ClientError::Protocol(
                "connection closed before the response head".into(),
            ));
        }
        buffer.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; MAX_RESPONSE_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(&buffer) {
            Ok(httparse::Status::Complete(head_len)) => {
                let status = response.code.unwrap_or(0);
                break (status, head_len, framing_of(response.headers)?);
            }
            Ok(httparse::Status::Partial) if buffer.len() > MAX_RESPONSE_HEAD_BYTES => {
                return Err(ClientError::Protocol("response head too large".into()));
            }
            Ok(httparse::Status::Partial) => {}
            Err(error) => return Err(ClientError::Protocol(format!("unparsable response head: {error}"))),
        }
    };
    let mut body = buffer.split_off(head_len);
    loop {
        let complete = match framing {
            Framing::Length(length) => body.len() >= length,
            Framing::Chunked => decode_chunked(&body)?.is_some(),
            Framing::UntilClose => false,
        };
        if complete {
            break;
        }
        if body.len() > MAX_RESPONSE_BODY_BYTES {
            return Err(ClientError::Protocol("response body too large".into()));
        }
        let n = match with_deadline(stream, deadline, timeout, |s| s.read(&mut chunk)) {
            Ok(n) => n,
            // A peer that closes without close_notify ends a read-until-close body all the same.
            Err(ClientError::Protocol(_)) if framing == Framing::UntilClose => 0,
            Err(error) => return Err(error),
        };
        if n == 0 {
            if framing == Framing::UntilClose {
                break;
            }
            return Err(ClientError::Protocol(
                "connection closed inside the response body".into(),
            ));
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let body = match framing {
        Framing::Length(length) => {
            body.truncate(length);
            body
        }
        Framing::Chunked => decode_chunked(&body)?.unwrap_or_default(),
        Framing::UntilClose => body,
    };
    Ok(Response { status, body })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

fn framing_of(headers: &[httparse::Header<'_>]) -> Result<Framing, ClientError> {
    for header in headers {
        if header.name.eq_ignore_ascii_case("transfer-encoding")
            && String::from_utf8_lossy(header.value)
                .to_ascii_lowercase()
                .contains("chunked")
        {
            return Ok(Framing::Chunked);
        }
    }
    for header in headers {
        if header.name.eq_ignore_ascii_case("content-length") {
            let length = std::str::from_utf8(header.value)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
                .ok_or_else(|| ClientError::Protocol("unparsable Content-Length".into()))?;
            if length > MAX_RESPONSE_BODY_BYTES {
                return Err(ClientError::Protocol("response body too large".into()));
            }
            return Ok(Framing::Length(length));
        }
    }
    Ok(Framing::UntilClose)
}

/// The decoded body once the whole chunked body is in `raw`, `None` while more is needed.
fn decode_chunked(raw: &[u8]) -> Result<Option<Vec<u8>>, ClientError> {
    let mut decoded = Vec::new();
    let mut rest = raw;
    loop {
        let Some(line_end) = rest.windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let size_text = String::from_utf8_lossy(&rest[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or_default().trim().to_string();
        let size = usize::from_str_radix(&size_text, 16)
            .map_err(|_| ClientError::Protocol(format!("bad chunk size {size_text:?}")))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            // Trailers are not used by our servers; the body is complete at the last chunk.
            return Ok(Some(decoded));
        }
        // A size beyond the body cap is refused before any arithmetic on it can overflow.
        if size > MAX_RESPONSE_BODY_BYTES {
            return Err(ClientError::Protocol("response chunk too large".into()));
        }
        let Some(chunk_and_crlf) = rest.get(..size + 2) else {
            return Ok(None);
        };
        decoded.extend_from_slice(&chunk_and_crlf[..size]);
        rest = &rest[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_decode_once_complete() {
        assert_eq!(decode_chunked(b"3\r\nabc\r\n").unwrap(), None);
        assert_eq!(
            decode_chunked(b"3\r\nabc\r\n2;x\r\nde\r\n0\r\n\r\n").unwrap(),
            Some(b"abcde".to_vec())
        );
        assert!(decode_chunked(b"zz\r\n").is_err());
        assert!(decode_chunked(b"ffffffffffffffff\r\n").is_err());
    }

    #[test]
    fn only_https_urls_are_accepted() {
        let tls = Arc::new(
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth(),
        );
        let err = VeriflierClient::new("v", "http://127.0.0.1:1", "t", tls, Duration::from_secs(1)).unwrap_err();
        assert!(matches!(err, ClientError::InvalidUrl { .. }));
    }
}
