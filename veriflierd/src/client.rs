//! The synchronous client jetmond uses to ask a veriflier, and the one-shot HTTPS POST that the veriflier
//! itself uses for legacy callbacks. HTTP is ureq's; this module decides the settings and sorts failures
//! into [`ClientError`].
//!
//! Blocking on purpose: jetmond calls it from its control thread (one thread per veriflier), never from the
//! engine loop. Every request has one global deadline covering name resolution, connect, TLS, writing and
//! reading, so a veriflier that accepts and never answers costs at most the timeout. One request per
//! connection (no idle pool): batches are rare and a few hundred checks each, so reuse would buy nothing but
//! the risk of writing to a connection the veriflier closed meanwhile.
//!
//! ```no_run
//! use std::time::Duration;
//! use veriflierd::client::VeriflierClient;
//! use veriflierd::protocol::CheckItem;
//! use veriflierd::tls::ClientTls;
//!
//! let tls = ClientTls::from_files(Some("/etc/jetmon/verifliers-ca.pem".as_ref()), None)?;
//! let client = VeriflierClient::new("v1", "https://v1.example:7801", "token", tls, Duration::from_secs(60))?;
//! let results = client.check(&[CheckItem { blog_id: 7, monitor_url: "https://example.com/".into() }])?;
//! for result in results {
//!     println!("{} is {} (HTTP {}, {} ms)", result.monitor_url, result.status, result.code, result.rtt);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io;
use std::time::Duration;

use url::Url;

use crate::protocol::{
    parse_check_response, parse_legacy_ack, CheckBatch, CheckItem, ErrorBody, LegacyRequest, ResultItem, CHECK_PATH,
    LEGACY_CHECK_PATH,
};
use crate::tls::ClientTls;

/// Largest response body accepted: a full batch of results is well under 1 MiB.
const MAX_RESPONSE_BODY_BYTES: u64 = 16 * 1024 * 1024;
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
    /// The connection broke, or the answer is not HTTP/1.1, or it is larger than the cap.
    #[error("bad answer: {0}")]
    Protocol(String),
    /// The answer is HTTP 200 but its body is not the expected JSON.
    #[error("cannot decode answer: {0}")]
    Decode(String),
    /// A jetmon.js-compatible veriflier answered HTTP 200 but did not accept the batch (`status` other than 1).
    #[error("batch not accepted (status {status}): {reason}")]
    Refused {
        /// The `status` it answered.
        status: i8,
        /// Its `error`, or a note that it gave none.
        reason: String,
    },
}

/// A client for one veriflier's synchronous `/v1/check` endpoint. Cheap to share between threads.
#[derive(Debug, Clone)]
pub struct VeriflierClient {
    name: String,
    url: Url,
    legacy_url: Url,
    token: String,
    poster: JsonPoster,
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
        tls: ClientTls,
        timeout: Duration,
    ) -> Result<VeriflierClient, ClientError> {
        let invalid = |reason: &str| ClientError::InvalidUrl {
            url: base_url.to_string(),
            reason: reason.to_string(),
        };
        let base = Url::parse(base_url).map_err(|e| invalid(&e.to_string()))?;
        let url = base.join(CHECK_PATH).map_err(|e| invalid(&e.to_string()))?;
        let legacy_url = base.join(LEGACY_CHECK_PATH).map_err(|e| invalid(&e.to_string()))?;
        check_https(&url)?;
        Ok(VeriflierClient {
            name: name.into(),
            url,
            legacy_url,
            token: token.into(),
            poster: JsonPoster::new(&tls, timeout),
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
        let response = self
            .poster
            .post(&self.url, &[("Authorization", authorization.as_str())], &body)?;
        match response.status {
            200 => {
                let decoded = parse_check_response(&response.body).map_err(|e| ClientError::Decode(e.to_string()))?;
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

impl VeriflierClient {
    /// Hands `checks` to a jetmon.js-compatible veriflier (`POST /get/host-status`, the token in the body as
    /// `auth_token`, as jetmon.js sent it) and returns once it has accepted them. The results do not come
    /// back here: the veriflier posts them later to the monitor's `/put/host-status`.
    pub fn send_legacy(&self, checks: &[CheckItem]) -> Result<(), ClientError> {
        let request = LegacyRequest {
            auth_token: self.token.clone(),
            checks: checks.to_vec(),
        };
        let body = serde_json::to_vec(&request).map_err(|e| ClientError::Decode(e.to_string()))?;
        let response = self.poster.post(&self.legacy_url, &[], &body)?;
        match response.status {
            200 => {
                let ack = parse_legacy_ack(&response.body).map_err(|e| ClientError::Decode(e.to_string()))?;
                if ack.status == 1 {
                    Ok(())
                } else {
                    Err(ClientError::Refused {
                        status: ack.status,
                        reason: ack.error.unwrap_or_else(|| "no reason given".to_string()),
                    })
                }
            }
            401 => Err(ClientError::Unauthorized(error_message(&response.body))),
            status => Err(ClientError::Http {
                status,
                body: error_message(&response.body),
            }),
        }
    }
}

/// The error message of a JSON [`ErrorBody`] (or a refused legacy ack, which carries `error` too), or the
/// body as text.
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

/// POSTs `body` as JSON to the `https://` `url` and reads the whole answer, all within `timeout`. For the
/// legacy callback, which is one request per batch, so the agent is not kept.
pub(crate) fn post_json(
    url: &Url,
    headers: &[(&str, &str)],
    body: &[u8],
    tls: &ClientTls,
    timeout: Duration,
) -> Result<Response, ClientError> {
    check_https(url)?;
    JsonPoster::new(tls, timeout).post(url, headers, body)
}

/// A ureq agent set up for our RPC: verified TLS, one global deadline, no redirects, statuses as data.
#[derive(Debug, Clone)]
struct JsonPoster {
    agent: ureq::Agent,
    timeout: Duration,
}

impl JsonPoster {
    fn new(tls: &ClientTls, timeout: Duration) -> JsonPoster {
        let agent = ureq::Agent::config_builder()
            .tls_config(tls.ureq_config())
            .timeout_global(Some(timeout))
            // Statuses are judged by the caller, with the body (an error message) that ureq would drop.
            .http_status_as_error(false)
            // The token must never follow a redirect to another host.
            .max_redirects(0)
            .https_only(true)
            .max_idle_connections(0)
            .max_idle_connections_per_host(0)
            .user_agent(USER_AGENT)
            .build()
            .new_agent();
        JsonPoster { agent, timeout }
    }

    fn post(&self, url: &Url, headers: &[(&str, &str)], body: &[u8]) -> Result<Response, ClientError> {
        let classify = |error| classify(error, self.timeout, url);
        let mut request = self
            .agent
            .post(url.as_str())
            .header("Content-Type", "application/json")
            .header("Accept", "application/json");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let mut response = request.send(body).map_err(classify)?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BODY_BYTES)
            .read_to_vec()
            .map_err(classify)?;
        Ok(Response { status, body })
    }
}

fn check_https(url: &Url) -> Result<(), ClientError> {
    let invalid = |reason: &str| ClientError::InvalidUrl {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    if url.scheme() != "https" {
        return Err(invalid("only https:// is spoken (certificates are always verified)"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("no host"));
    }
    Ok(())
}

/// Sorts ureq's failure into the causes a monitor logs and counts differently.
fn classify(error: ureq::Error, timeout: Duration, url: &Url) -> ClientError {
    match error {
        ureq::Error::Timeout(_) => ClientError::Timeout(timeout),
        ureq::Error::Io(error) => classify_io(error, timeout),
        ureq::Error::HostNotFound => ClientError::Connect(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{} has no address", url.host_str().unwrap_or_default()),
        )),
        ureq::Error::ConnectionFailed => ClientError::Connect(io::Error::other("connection failed")),
        ureq::Error::Rustls(error) => ClientError::Tls(error),
        ureq::Error::Tls(reason) => ClientError::Tls(rustls::Error::General(reason.to_string())),
        ureq::Error::BadUri(reason) => ClientError::InvalidUrl {
            url: url.to_string(),
            reason,
        },
        ureq::Error::BodyExceedsLimit(limit) => {
            ClientError::Protocol(format!("response body larger than {limit} bytes"))
        }
        other => ClientError::Protocol(other.to_string()),
    }
}

fn classify_io(error: io::Error, timeout: Duration) -> ClientError {
    // rustls reports handshake and record failures as io errors wrapping a rustls::Error.
    if let Some(tls) = error.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
        return ClientError::Tls(tls.clone());
    }
    match error.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => ClientError::Timeout(timeout),
        io::ErrorKind::ConnectionRefused
        | io::ErrorKind::HostUnreachable
        | io::ErrorKind::NetworkUnreachable
        | io::ErrorKind::AddrNotAvailable
        | io::ErrorKind::NotFound => ClientError::Connect(error),
        _ => ClientError::Protocol(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_urls_are_accepted() {
        let err = VeriflierClient::new(
            "v",
            "http://127.0.0.1:1",
            "t",
            ClientTls::web_pki(),
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert!(matches!(err, ClientError::InvalidUrl { .. }));
    }

    #[test]
    fn refused_connection_is_a_connect_error() {
        // Port 9 (discard) is closed on test machines; a refusal comes back at once.
        let client = VeriflierClient::new(
            "v",
            "https://127.0.0.1:9",
            "t",
            ClientTls::web_pki(),
            Duration::from_secs(5),
        )
        .unwrap();
        let err = client.check(&[]).unwrap_err();
        assert!(matches!(err, ClientError::Connect(_)), "{err:?}");
    }
}
