//! The wire formats between a monitor (jetmond or jetmon.js) and a veriflier, shared by the server and
//! the client so both sides cannot drift apart.
//!
//! Two modes exist (full description with examples in `docs/protocol.md`):
//!
//! - **Synchronous** (ours): `POST /v1/check` with `Authorization: Bearer <token>` and a [`CheckBatch`];
//!   the response is a [`CheckResponse`] sent once every check has run.
//! - **jetmon.js-compatible**: `POST /get/host-status` with a [`LegacyRequest`] (token in the body), answered
//!   at once with a [`LegacyAck`]; the results follow later as a [`LegacyCallback`] that the veriflier posts
//!   to the monitor's `/put/host-status`.
//!
//! jetmond speaks both as a client: `/v1/check` to new verifliers, `/get/host-status` to old Qt ones, whose
//! callbacks its own server parses with [`parse_legacy_callback`].
//!
//! The parsers here are pure (bytes in, typed value or [`ProtocolError`] out) so fuzz targets can call them.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Path of the synchronous check endpoint.
pub const CHECK_PATH: &str = "/v1/check";
/// Path of the jetmon.js-compatible check endpoint on the veriflier.
pub const LEGACY_CHECK_PATH: &str = "/get/host-status";
/// Path of the jetmon.js-compatible result callback on the monitor.
pub const LEGACY_CALLBACK_PATH: &str = "/put/host-status";
/// The original health endpoint (answers `OK`).
pub const STATUS_PATH: &str = "/get/status";
/// Our health endpoint (answers a small JSON document).
pub const HEALTHZ_PATH: &str = "/healthz";

/// One site to check, as the monitor sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckItem {
    /// The site's blog id; echoed back so the monitor can match results.
    pub blog_id: u64,
    /// The URL to check (`http://` or `https://`).
    pub monitor_url: String,
}

/// The body of `POST /v1/check`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckBatch {
    /// The name of the asking monitor, as configured on the veriflier (`monitors[].name`). Optional: the
    /// token already identifies the monitor; when given, it must match the token's monitor, which catches a
    /// monitor configured with another one's token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor: Option<String>,
    /// The sites to check.
    pub checks: Vec<CheckItem>,
}

/// What the veriflier saw of a site.
///
/// Serialised as a number, like the original: 0 offline, 1 online, 2 unknown. A veriflier whose internet
/// weather guard ([`crate::weather`]) finds its own network degraded (its canaries unreachable, its resolver
/// down) answers 2 instead of 0 for the sites it could not reach, rather than voting them down. Clients count
/// it as neither up nor down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RemoteStatus {
    /// The site did not answer, or answered with HTTP 400 or above.
    Offline,
    /// The site answered with a status below 400.
    Online,
    /// The veriflier cannot tell: its own network is degraded (see the type's docs).
    Unknown,
}

impl RemoteStatus {
    /// The wire number.
    pub fn as_u8(self) -> u8 {
        match self {
            RemoteStatus::Offline => 0,
            RemoteStatus::Online => 1,
            RemoteStatus::Unknown => 2,
        }
    }

    /// The status for a wire number, `None` for numbers no version has defined.
    pub fn from_u8(value: u8) -> Option<RemoteStatus> {
        match value {
            0 => Some(RemoteStatus::Offline),
            1 => Some(RemoteStatus::Online),
            2 => Some(RemoteStatus::Unknown),
            _ => None,
        }
    }
}

impl fmt::Display for RemoteStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RemoteStatus::Offline => "offline",
            RemoteStatus::Online => "online",
            RemoteStatus::Unknown => "unknown",
        })
    }
}

impl Serialize for RemoteStatus {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u8(self.as_u8())
    }
}

impl<'de> Deserialize<'de> for RemoteStatus {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = u8::deserialize(deserializer)?;
        RemoteStatus::from_u8(value)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown site status {value} (expected 0, 1 or 2)")))
    }
}

/// The veriflier's answer for one site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultItem {
    /// As in the request.
    pub blog_id: u64,
    /// As in the request.
    pub monitor_url: String,
    /// Online or offline by the original rule (HTTP status below 400 is online).
    pub status: RemoteStatus,
    /// Round-trip time of the check in milliseconds (0 when nothing answered).
    pub rtt: u64,
    /// HTTP status code of the last response, 0 when none was received.
    pub code: u16,
    /// Why the check failed, when it produced no response: the engine's error class (`"timeout"`,
    /// `"refused"`, `"forbidden"`, ...). A string rather than an enum so that a newer veriflier's classes
    /// still decode on an older monitor.
    pub error: Option<String>,
}

/// The response to `POST /v1/check`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResponse {
    /// The answering veriflier's name (`veriflier_name`).
    pub veriflier: String,
    /// One entry per requested check, in request order.
    pub results: Vec<ResultItem>,
}

/// The body of every 4xx/5xx answer of the synchronous endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What was wrong, for a human.
    pub error: String,
}

/// The body of jetmon.js's `POST /get/host-status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegacyRequest {
    /// The monitor's token (`monitors[].auth_token` on the veriflier).
    pub auth_token: String,
    /// The sites to check.
    pub checks: Vec<CheckItem>,
}

/// The immediate answer to `POST /get/host-status`, in the original's shape: `status` 1 accepted, -1
/// refused (with `error`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegacyAck {
    /// The veriflier's name. Optional when decoding: the Qt veriflier's answer is only sure to carry
    /// `status`.
    #[serde(default)]
    pub veriflier: String,
    /// 1 when the batch was accepted, -1 when it was refused.
    pub status: i8,
    /// Why the batch was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One result in a [`LegacyCallback`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegacyResultItem {
    /// As in the request.
    pub blog_id: u64,
    /// As in the request.
    pub monitor_url: String,
    /// 0 offline, 1 online.
    pub status: RemoteStatus,
    /// Round-trip time in milliseconds.
    pub rtt: u64,
    /// The HTTP code, or the original's error code (995–999) when no response came.
    pub code: u16,
}

/// The body the veriflier posts to the monitor's `/put/host-status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegacyCallback {
    /// The veriflier's own token (`auth_token` in its config), which the monitor checks.
    pub auth_token: String,
    /// The veriflier's name.
    pub veriflier: String,
    /// The results.
    pub checks: Vec<LegacyResultItem>,
}

/// A request or response body that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// Not JSON at all, or JSON cut short.
    #[error("body is not valid JSON: {0}")]
    Syntax(String),
    /// JSON of the wrong shape: a missing field, a wrong type, an unknown field.
    #[error("body field `{path}`: {message}")]
    Shape {
        /// Where in the document (`checks[2].blog_id`, `.` for the top level).
        path: String,
        /// What is wrong there.
        message: String,
    },
    /// A batch without checks.
    #[error("request has no checks")]
    Empty,
}

/// Parses a `POST /v1/check` body.
///
/// ```
/// let batch = veriflierd::protocol::parse_check_request(
///     br#"{"monitor":"m1","checks":[{"blog_id":7,"monitor_url":"https://example.com/"}]}"#,
/// )?;
/// assert_eq!(batch.checks[0].blog_id, 7);
/// let err = veriflierd::protocol::parse_check_request(br#"{"monitor":"m1","checks":[{"blog_id":"7"}]}"#);
/// assert!(err.unwrap_err().to_string().contains("checks[0].blog_id"));
/// # Ok::<(), veriflierd::protocol::ProtocolError>(())
/// ```
pub fn parse_check_request(body: &[u8]) -> Result<CheckBatch, ProtocolError> {
    parse_non_empty(body, |batch: &CheckBatch| batch.checks.len())
}

/// Parses a jetmon.js `POST /get/host-status` body. Unknown fields are ignored there, as the original did,
/// so a jetmon.js that sends extra fields keeps working.
pub fn parse_legacy_request(body: &[u8]) -> Result<LegacyRequest, ProtocolError> {
    parse_non_empty(body, |request: &LegacyRequest| request.checks.len())
}

/// Parses the immediate answer to `POST /get/host-status`, as the monitor's client does. Only `status`
/// must be there (the Qt veriflier's answer may carry nothing else); unknown fields are ignored.
pub fn parse_legacy_ack(body: &[u8]) -> Result<LegacyAck, ProtocolError> {
    parse(body)
}

/// Parses a `POST /put/host-status` body, as the monitor's callback server does. Unknown fields are ignored
/// (older and newer verifliers may add some); a callback without results is refused like an empty batch.
pub fn parse_legacy_callback(body: &[u8]) -> Result<LegacyCallback, ProtocolError> {
    parse_non_empty(body, |callback: &LegacyCallback| callback.checks.len())
}

/// Parses the body of a `200` answer to `POST /v1/check`, as the monitor's client does. Unknown fields are
/// ignored so a newer veriflier can add some; whether there is one result per check is the caller's to
/// judge, since only it knows the request.
pub fn parse_check_response(body: &[u8]) -> Result<CheckResponse, ProtocolError> {
    parse(body)
}

/// Parses a body whose list of checks (counted by `len`) must not be empty.
fn parse_non_empty<T: DeserializeOwned>(body: &[u8], len: impl Fn(&T) -> usize) -> Result<T, ProtocolError> {
    let value: T = parse(body)?;
    if len(&value) == 0 {
        return Err(ProtocolError::Empty);
    }
    Ok(value)
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ProtocolError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if inner.is_syntax() || inner.is_eof() || inner.is_io() {
            ProtocolError::Syntax(inner.to_string())
        } else {
            ProtocolError::Shape {
                path,
                message: inner.to_string(),
            }
        }
    })?;
    // Trailing garbage after the document is as malformed as a document cut short.
    deserializer
        .end()
        .map_err(|error| ProtocolError::Syntax(error.to_string()))?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_request_round_trips() {
        let batch = CheckBatch {
            monitor: Some("m".into()),
            checks: vec![CheckItem {
                blog_id: 1,
                monitor_url: "http://a/".into(),
            }],
        };
        let bytes = serde_json::to_vec(&batch).unwrap();
        assert_eq!(parse_check_request(&bytes).unwrap(), batch);
    }

    #[test]
    fn wrong_type_names_the_field() {
        let err = parse_check_request(br#"{"monitor":"m","checks":[{"blog_id":-1,"monitor_url":"x"}]}"#).unwrap_err();
        assert!(
            matches!(&err, ProtocolError::Shape { path, .. } if path == "checks[0].blog_id"),
            "{err}"
        );
    }

    #[test]
    fn missing_and_unknown_fields_are_shape_errors() {
        assert!(matches!(
            parse_check_request(br#"{"monitor":"m"}"#),
            Err(ProtocolError::Shape { .. })
        ));
        assert!(matches!(
            parse_check_request(br#"{"monitor":"m","checks":[],"x":1}"#),
            Err(ProtocolError::Shape { .. })
        ));
    }

    #[test]
    fn garbage_is_a_syntax_error() {
        for body in [&b"{"[..], b"", b"nope", b"{\"monitor\":\"m\",\"checks\":[]} x"] {
            assert!(
                matches!(parse_check_request(body), Err(ProtocolError::Syntax(_))),
                "{body:?}"
            );
        }
    }

    #[test]
    fn empty_batches_are_refused() {
        assert_eq!(
            parse_check_request(br#"{"monitor":"m","checks":[]}"#),
            Err(ProtocolError::Empty)
        );
        assert_eq!(
            parse_legacy_request(br#"{"auth_token":"t","checks":[]}"#),
            Err(ProtocolError::Empty)
        );
    }

    #[test]
    fn legacy_request_ignores_extra_fields() {
        let request =
            parse_legacy_request(br#"{"auth_token":"t","extra":1,"checks":[{"blog_id":2,"monitor_url":"u"}]}"#)
                .unwrap();
        assert_eq!(request.checks.len(), 1);
    }

    #[test]
    fn legacy_ack_needs_only_a_status() {
        let ack = parse_legacy_ack(br#"{"status":1}"#).unwrap();
        assert_eq!((ack.status, ack.veriflier.as_str()), (1, ""));
        assert!(matches!(
            parse_legacy_ack(br#"{"veriflier":"v"}"#),
            Err(ProtocolError::Shape { .. })
        ));
    }

    #[test]
    fn legacy_callback_names_bad_fields_and_refuses_empty_ones() {
        let callback = parse_legacy_callback(
            br#"{"auth_token":"t","veriflier":"v","checks":[{"blog_id":1,"monitor_url":"u","status":0,"rtt":0,"code":995}]}"#,
        )
        .unwrap();
        assert_eq!(callback.checks[0].code, 995);
        let err =
            parse_legacy_callback(br#"{"auth_token":"t","veriflier":"v","checks":[{"blog_id":"1"}]}"#).unwrap_err();
        assert!(
            matches!(&err, ProtocolError::Shape { path, .. } if path == "checks[0].blog_id"),
            "{err}"
        );
        assert_eq!(
            parse_legacy_callback(br#"{"auth_token":"t","veriflier":"v","checks":[]}"#),
            Err(ProtocolError::Empty)
        );
    }

    #[test]
    fn check_response_parses_and_names_bad_fields() {
        let response = parse_check_response(
            br#"{"veriflier":"v","results":[{"blog_id":1,"monitor_url":"u","status":2,"rtt":3,"code":0,"error":"timeout"}],"new":1}"#,
        )
        .unwrap();
        assert_eq!(response.results[0].status, RemoteStatus::Unknown);
        let err = parse_check_response(br#"{"veriflier":"v","results":[{"blog_id":1}]}"#).unwrap_err();
        assert!(
            matches!(&err, ProtocolError::Shape { path, .. } if path.starts_with("results[0]")),
            "{err}"
        );
    }

    #[test]
    fn status_is_a_number_and_unknown_is_reserved() {
        assert_eq!(serde_json::to_string(&RemoteStatus::Online).unwrap(), "1");
        assert_eq!(
            serde_json::from_str::<RemoteStatus>("2").unwrap(),
            RemoteStatus::Unknown
        );
        assert!(serde_json::from_str::<RemoteStatus>("3").is_err());
    }
}
