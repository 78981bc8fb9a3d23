//! Delivery to WPCOM over HTTPS: the payload, the two modes, and what counts as accepted.
//!
//! The payload is the notification's fields (`blog_id, monitor_url, status_id, last_check,
//! last_status_change, checks`) plus `token` (`auth_token`, as jetmon.js sent it) and `notification_id`
//! (the same for every attempt, so the receiver can drop duplicates). Datetimes are UTC,
//! `YYYY-MM-DDTHH:MM:SS.sssZ`.
//!
//! - `original`: `GET {wpcom_url}/jetmon/?data=<payload, form-url-encoded>`, jetmon.js's wire.
//! - `post`: `POST {wpcom_url}` with the payload as an `application/json` body.
//!
//! Accepted means: a 2xx status, and a body that does not say otherwise. In `original` mode the body must
//! be JSON (jetmon.js's receiver answers with a JSON body, so anything else, e.g. a proxy's HTML page, is
//! not WPCOM having taken it); in `post` mode an empty or non-JSON body is fine. In both modes a JSON
//! object whose `success` is `false` (or `0`, `"false"`) is a refusal. Anything else is retried.
//!
//! TLS is always verified: against `wpcom_ca_file`, or the built-in Mozilla roots. The client certificate
//! is optional. The files are read by [`veriflierd::tls::ClientTls`], shared with the veriflier client;
//! the crypto is rustls on the ring provider, as in the engine.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use veriflierd::tls::ClientTls;

use super::{OutboxEntry, OutboxError};
use crate::config::{Config, WpcomMode};

/// Most of a response body read (and quoted in errors); WPCOM's answer is a few bytes.
const MAX_BODY_BYTES: u64 = 64 * 1024;
/// Most of a refused body quoted in a log line.
const MAX_QUOTED_BODY_CHARS: usize = 200;
/// The path jetmon.js called on WPCOM, in `original` mode.
const ORIGINAL_PATH: &str = "/jetmon/";

/// Sends one notification. Implemented by [`WpcomClient`]; tests may fake it.
pub trait Deliver: Send + Sync {
    /// Delivers `entry` once. `Ok` only when the receiver accepted it.
    fn deliver(&self, entry: &OutboxEntry) -> Result<(), DeliveryError>;
}

/// Why one delivery attempt failed. Every one is retried (up to the dead-letter limits).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeliveryError {
    /// No HTTP answer: DNS, connect, TLS (including an unverifiable certificate), timeout, or the
    /// connection closed early.
    #[error("no answer: {0}")]
    Transport(String),
    /// An HTTP status other than 2xx.
    #[error("HTTP {status}: {body}")]
    Status {
        /// The status code.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// A 2xx whose body refused the notification (`success: false`) or, in `original` mode, was not JSON.
    #[error("HTTP {status} but not accepted: {body}")]
    Refused {
        /// The status code.
        status: u16,
        /// The start of the body.
        body: String,
    },
}

/// What [`WpcomClient`] needs, in typed form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WpcomSettings {
    /// `wpcom_url`.
    pub url: String,
    /// `wpcom_mode`.
    pub mode: WpcomMode,
    /// `wpcom_ca_file`; `None`: the built-in roots.
    pub ca_file: Option<PathBuf>,
    /// `wpcom_client_cert_file` and `wpcom_client_key_file`.
    pub client_identity: Option<(PathBuf, PathBuf)>,
    /// `wpcom_timeout_sec`.
    pub timeout: Duration,
    /// `auth_token`, sent as `token`.
    pub auth_token: String,
}

impl WpcomSettings {
    /// The settings of `config`.
    pub fn from_config(config: &Config) -> WpcomSettings {
        let set = |path: &Path| (!path.as_os_str().is_empty()).then(|| path.to_path_buf());
        WpcomSettings {
            url: config.wpcom_url.clone(),
            mode: config.wpcom_mode,
            ca_file: set(&config.wpcom_ca_file),
            client_identity: set(&config.wpcom_client_cert_file).zip(set(&config.wpcom_client_key_file)),
            timeout: Duration::from_secs(config.wpcom_timeout_sec),
            auth_token: config.auth_token.clone(),
        }
    }
}

/// An HTTPS client for WPCOM; cheap to share between delivery workers (connections are pooled).
#[derive(Debug)]
pub struct WpcomClient {
    agent: ureq::Agent,
    settings: WpcomSettings,
}

impl WpcomClient {
    /// Reads the CA and client certificate files and builds the client. Every file problem is reported
    /// here, at start, rather than as a failed delivery.
    pub fn new(settings: WpcomSettings) -> Result<WpcomClient, OutboxError> {
        let identity = settings
            .client_identity
            .as_ref()
            .map(|(cert, key)| (cert.as_path(), key.as_path()));
        let tls = ClientTls::from_files(settings.ca_file.as_deref(), identity).map_err(|error| OutboxError::Tls {
            what: error.what(),
            path: error.path().map(Path::to_path_buf).unwrap_or_default(),
            reason: error.reason(),
        })?;
        let agent = ureq::Agent::config_builder()
            .tls_config(tls.ureq_config())
            .timeout_global(Some(settings.timeout))
            // Statuses are judged here, with the body in the error; ureq would drop it.
            .http_status_as_error(false)
            // A redirect of a GET with the token in its query must not be followed to somewhere else.
            .max_redirects(0)
            .user_agent(concat!("jetmond/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Ok(WpcomClient { agent, settings })
    }

    /// The URL an entry is sent to (in `original` mode, with the payload in it).
    pub fn request_url(&self, entry: &OutboxEntry) -> String {
        match self.settings.mode {
            WpcomMode::Original => format!(
                "{}{ORIGINAL_PATH}?data={}",
                self.settings.url.trim_end_matches('/'),
                url::form_urlencoded::byte_serialize(payload(entry, &self.settings.auth_token).to_string().as_bytes())
                    .collect::<String>()
            ),
            WpcomMode::Post => self.settings.url.clone(),
        }
    }
}

impl Deliver for WpcomClient {
    fn deliver(&self, entry: &OutboxEntry) -> Result<(), DeliveryError> {
        let url = self.request_url(entry);
        let result = match self.settings.mode {
            WpcomMode::Original => self.agent.get(&url).call(),
            WpcomMode::Post => self
                .agent
                .post(&url)
                .header("Content-Type", "application/json")
                .send(payload(entry, &self.settings.auth_token).to_string()),
        };
        let mut response = result.map_err(|error| DeliveryError::Transport(error.to_string()))?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_BODY_BYTES)
            .read_to_string()
            .map_err(|error| DeliveryError::Transport(format!("HTTP {status}, reading the body: {error}")))?;
        judge(self.settings.mode, status, &body)
    }
}

/// The JSON sent for `entry`: the notification's fields, `token` and `notification_id`.
pub fn payload(entry: &OutboxEntry, auth_token: &str) -> Value {
    let mut payload = serde_json::to_value(&entry.notification).unwrap_or(Value::Null);
    if let Value::Object(fields) = &mut payload {
        fields.insert("token".into(), Value::from(auth_token));
        fields.insert("notification_id".into(), Value::from(entry.notification_id.as_str()));
    }
    payload
}

/// Whether a response with `status` and `body` means the notification was accepted (see the module docs).
pub fn judge(mode: WpcomMode, status: u16, body: &str) -> Result<(), DeliveryError> {
    let quoted = || quote(body);
    if !(200..300).contains(&status) {
        return Err(DeliveryError::Status { status, body: quoted() });
    }
    let parsed = serde_json::from_str::<Value>(body);
    match (&parsed, mode) {
        (Ok(Value::Object(fields)), _) if fields.get("success").is_some_and(is_false) => {
            Err(DeliveryError::Refused { status, body: quoted() })
        }
        (Ok(_), _) => Ok(()),
        (Err(_), WpcomMode::Original) => Err(DeliveryError::Refused {
            status,
            body: format!("body is not JSON: {}", quoted()),
        }),
        (Err(_), WpcomMode::Post) => Ok(()),
    }
}

fn is_false(value: &Value) -> bool {
    match value {
        Value::Bool(flag) => !flag,
        Value::Number(number) => number.as_f64() == Some(0.0),
        Value::String(text) => text.eq_ignore_ascii_case("false"),
        _ => false,
    }
}

fn quote(body: &str) -> String {
    let mut quoted: String = body.chars().take(MAX_QUOTED_BODY_CHARS).collect();
    if quoted.len() < body.len() {
        quoted.push('…');
    }
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{CheckEntry, CheckType, Notification, SiteStatus, UnixMillis};

    fn entry() -> OutboxEntry {
        let notification = Notification {
            blog_id: 42,
            monitor_url: "https://a.example/x?y=1&z=2".into(),
            status_id: SiteStatus::ConfirmedDown,
            last_check: UnixMillis::from_millis(1_000),
            last_status_change: UnixMillis::from_millis(2_000),
            checks: vec![CheckEntry {
                check_type: CheckType::Local,
                host: "h".into(),
                status: SiteStatus::Down,
                rtt: 5,
                code: 503,
            }],
        };
        OutboxEntry::new(9, notification, UnixMillis::from_millis(3_000))
    }

    #[test]
    fn payload_is_the_notification_plus_token_and_id() {
        let entry = entry();
        let payload = payload(&entry, "s3cret");
        let mut expected = serde_json::to_value(&entry.notification).unwrap_or(Value::Null);
        if let Value::Object(fields) = &mut expected {
            fields.insert("token".into(), "s3cret".into());
            fields.insert("notification_id".into(), entry.notification_id.clone().into());
        }
        assert_eq!(payload, expected);
        assert_eq!(payload["status_id"], 2);
        assert_eq!(payload["last_check"], "1970-01-01T00:00:01.000Z");
    }

    #[test]
    fn acceptance_rule_per_mode() {
        use WpcomMode::{Original, Post};
        assert_eq!(judge(Original, 200, r#"{"success":true}"#), Ok(()));
        assert_eq!(judge(Original, 200, "{}"), Ok(()));
        assert!(matches!(judge(Original, 200, ""), Err(DeliveryError::Refused { .. })));
        assert!(matches!(
            judge(Original, 200, "<html>"),
            Err(DeliveryError::Refused { .. })
        ));
        assert_eq!(judge(Post, 204, ""), Ok(()));
        assert_eq!(judge(Post, 200, "ok"), Ok(()));
        for refusal in [r#"{"success":false}"#, r#"{"success":0}"#, r#"{"success":"false"}"#] {
            assert!(
                matches!(judge(Post, 200, refusal), Err(DeliveryError::Refused { .. })),
                "{refusal}"
            );
            assert!(matches!(
                judge(Original, 200, refusal),
                Err(DeliveryError::Refused { .. })
            ));
        }
        assert!(matches!(
            judge(Post, 500, r#"{"success":true}"#),
            Err(DeliveryError::Status { status: 500, .. })
        ));
        assert!(matches!(
            judge(Original, 302, "{}"),
            Err(DeliveryError::Status { status: 302, .. })
        ));
    }

    #[test]
    fn long_bodies_are_quoted_short() {
        let body = "x".repeat(10_000);
        let Err(DeliveryError::Status { body: quoted, .. }) = judge(WpcomMode::Post, 500, &body) else {
            panic!("500 must fail");
        };
        assert_eq!(quoted.chars().count(), MAX_QUOTED_BODY_CHARS + 1);
    }

    #[test]
    fn original_mode_url_carries_the_encoded_payload() {
        let settings = WpcomSettings {
            url: "https://wpcom.example/".into(),
            mode: WpcomMode::Original,
            ca_file: None,
            client_identity: None,
            timeout: Duration::from_secs(1),
            auth_token: "t&k".into(),
        };
        let client = WpcomClient::new(settings);
        let Ok(client) = client else {
            panic!("client: {client:?}");
        };
        let entry = entry();
        let url = client.request_url(&entry);
        let query = url
            .strip_prefix("https://wpcom.example/jetmon/?data=")
            .unwrap_or_default();
        let decoded: Vec<(String, String)> = url::form_urlencoded::parse(format!("data={query}").as_bytes())
            .into_owned()
            .collect();
        assert_eq!(decoded.len(), 1, "{url}");
        let sent: Value = serde_json::from_str(&decoded[0].1).unwrap_or(Value::Null);
        assert_eq!(sent, payload(&entry, "t&k"));
    }

    #[test]
    fn missing_ca_file_is_reported_at_start() {
        let settings = WpcomSettings {
            url: "https://wpcom.example".into(),
            mode: WpcomMode::Post,
            ca_file: Some(PathBuf::from("/nonexistent/ca.pem")),
            client_identity: None,
            timeout: Duration::from_secs(1),
            auth_token: String::new(),
        };
        assert!(matches!(
            WpcomClient::new(settings),
            Err(OutboxError::Tls { what: "CA file", .. })
        ));
    }
}
