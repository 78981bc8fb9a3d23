//! The HTTPS server that receives the results of jetmon.js-compatible ("legacy") verifliers: the original
//! Qt veriflier accepts a batch at once and later posts `{auth_token, veriflier, checks}` to the monitor's
//! `POST /put/host-status`. Each result becomes a [`VeriflierReply`] on the channel the
//! [`VeriflierPool`](super::verifliers::VeriflierPool) already delivers v1 answers on, so the control loop
//! and the status machine cannot tell the two modes apart. A request that never gets its callback expires
//! by the status machine's `timeout_for_requests` rule like any unanswered one.
//!
//! Serving (TLS, limits, accept loop) is veriflierd's [`veriflierd::https`], shared with the veriflier.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use crossbeam_channel::Sender;
use rustls::ServerConfig;
use veriflierd::https::{bind, error_response, find_by_token, read_parsed, HttpsServer};
use veriflierd::protocol::{parse_legacy_callback, ResultItem, LEGACY_CALLBACK_PATH, STATUS_PATH};
use veriflierd::server::ServeError;

use super::verifliers::VeriflierReply;

/// Time callbacks in flight get to finish when the daemon stops; the verifliers do not retry, so a short
/// wait saves their results without holding the shutdown up.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// A veriflier allowed to post results: its configured name and the token its callbacks must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyVeriflier {
    /// Its name in `verifiers[]`, which its callbacks give as `veriflier`.
    pub name: String,
    /// Its `auth_token` in `verifiers[]`.
    pub auth_token: String,
}

/// The running callback server; dropping it stops it.
#[derive(Debug)]
pub struct LegacyCallbackServer {
    http: HttpsServer,
}

impl LegacyCallbackServer {
    /// Binds `addr` and serves `/put/host-status` for `verifliers`, sending each result to `replies`.
    pub fn start(
        addr: SocketAddr,
        tls: Arc<ServerConfig>,
        verifliers: Vec<LegacyVeriflier>,
        replies: Sender<VeriflierReply>,
    ) -> Result<LegacyCallbackServer, ServeError> {
        let listener = bind(addr)?;
        let app = Arc::new(Callbacks { verifliers, replies });
        let router = Router::new()
            .route(LEGACY_CALLBACK_PATH, post(put_host_status))
            .route(STATUS_PATH, get(|| async { "OK" }))
            .fallback(|| async { error_response(StatusCode::NOT_FOUND, "no such endpoint".into()) })
            .with_state(app);
        let http = HttpsServer::start(listener, tls, router, "jetmond-callback", SHUTDOWN_GRACE)?;
        tracing::info!(addr = %http.local_addr(), "legacy veriflier callbacks listening");
        Ok(LegacyCallbackServer { http })
    }

    /// The bound address (with the real port when port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.http.local_addr()
    }
}

struct Callbacks {
    verifliers: Vec<LegacyVeriflier>,
    replies: Sender<VeriflierReply>,
}

impl Callbacks {
    /// The veriflier named `name` if `token` is its token, compared in constant time. Names are not
    /// secret; several verifliers may share one token, so the name narrows the candidates first.
    fn authenticate(&self, name: &str, token: &[u8]) -> Option<&LegacyVeriflier> {
        let named = self.verifliers.iter().filter(|v| v.name == name);
        find_by_token(named, |v| &v.auth_token, token)
    }
}

async fn put_host_status(State(app): State<Arc<Callbacks>>, headers: HeaderMap, body: Body) -> Response {
    // The token travels in the body, so the body is parsed before anyone is authenticated.
    let callback = match read_parsed(&headers, body, parse_legacy_callback).await {
        Ok(callback) => callback,
        Err((status, message)) => return error_response(status, message),
    };
    let Some(veriflier) = app.authenticate(&callback.veriflier, callback.auth_token.as_bytes()) else {
        tracing::warn!(veriflier = ?callback.veriflier, "legacy callback refused: unknown veriflier or wrong auth_token");
        return error_response(StatusCode::UNAUTHORIZED, "unknown veriflier or wrong auth_token".into());
    };
    let count = callback.checks.len();
    for item in callback.checks {
        let result = ResultItem {
            blog_id: item.blog_id,
            monitor_url: item.monitor_url,
            status: item.status,
            rtt: item.rtt,
            // The legacy `code` is the HTTP code or jetmon.js's 995–999 error code: the reason is in it.
            code: item.code,
            error: None,
        };
        let reply = VeriflierReply::from_result(&veriflier.name, result);
        if app.replies.send(reply).is_err() {
            // The control loop is gone: the daemon is stopping and nobody will decide anything.
            return error_response(StatusCode::SERVICE_UNAVAILABLE, "the monitor is stopping".into());
        }
    }
    tracing::info!(veriflier = %veriflier.name, checks = count, "legacy veriflier results received");
    Json(serde_json::json!({"status": 1})).into_response()
}
