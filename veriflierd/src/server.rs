//! The veriflier's HTTPS server: axum routes on a small tokio runtime, TLS by rustls, and the checks on one
//! shared [`jetmon_engine::Engine`].
//!
//! ```text
//!  monitor ──TLS──▶ tokio accept loop ──▶ axum handler ──submit_many──▶ Engine threads (mio)
//!                                            ▲                               │ results()
//!                                            └── per-batch channel ◀── dispatcher thread
//! ```
//!
//! Every check gets a process-unique engine id (not its blog id: two monitors may ask about the same blog at
//! once). The dispatcher thread reads the engine's result channel and hands each result to the batch that
//! waits for that id. A handler whose client went away drops its ids, so late results are discarded.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use jetmon_engine::{AddressPolicy, CheckRequest, CheckResult, Engine, EngineConfig, EngineError, Submitter, Verdict};
use rustls::ServerConfig;
use tokio::sync::mpsc;
use url::Url;

use crate::client::post_json;
use crate::config::{MonitorConfig, VeriflierConfig};
use crate::https::{bind, error_response as error, find_by_token, read_parsed, server_tls, tls_error, HttpsServer};
use crate::protocol::{
    parse_check_request, parse_legacy_request, CheckItem, CheckResponse, LegacyAck, LegacyCallback, LegacyResultItem,
    RemoteStatus, ResultItem, CHECK_PATH, HEALTHZ_PATH, LEGACY_CALLBACK_PATH, LEGACY_CHECK_PATH, STATUS_PATH,
};
use crate::tls::ClientTls;
use crate::weather::{CanaryThread, SharedGuard, WeatherHandle};

pub use crate::https::MAX_BODY_BYTES;

/// Time a batch waits beyond the check deadline before giving up on a missing result. The engine delivers
/// every result within its deadline; this only guards against a bug turning into a hung request.
const RESULT_SLACK: Duration = Duration::from_secs(5);
/// Default time in-flight requests get to finish on shutdown.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// A certificate, key or CA file could not be read or used.
    #[error("TLS setup, {}: {reason}", file.display())]
    Tls {
        /// The file at fault (empty when the fault is not a file's).
        file: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A configuration value cannot be used.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The probe engine did not start.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The async runtime or a thread did not start.
    #[error("cannot start runtime: {0}")]
    Runtime(#[source] io::Error),
}

/// What [`start`] can be given beside the configuration.
#[derive(Debug, Clone)]
pub struct StartOptions {
    /// The engine settings the config's values are applied onto (threads, DNS, ...). The config decides
    /// `check_timeout`, `max_redirects`, `max_in_flight` and the address policy.
    pub base_engine: EngineConfig,
    /// A ready server TLS config instead of the config's certificate files.
    pub server_tls: Option<Arc<ServerConfig>>,
    /// A ready client TLS config for legacy callbacks instead of the config's `ca_file`.
    pub callback_tls: Option<ClientTls>,
    /// Time in-flight requests get to finish on shutdown.
    pub shutdown_grace: Duration,
}

impl Default for StartOptions {
    fn default() -> Self {
        StartOptions {
            base_engine: EngineConfig::default(),
            server_tls: None,
            callback_tls: None,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
        }
    }
}

/// A running veriflier. Stop it with [`RunningServer::shutdown`]; dropping it stops it too.
///
/// Both block the calling thread while the server drains, so call them from plain threads, not from
/// inside an async runtime.
pub struct RunningServer {
    local_addr: SocketAddr,
    http: Option<HttpsServer>,
    engine: Option<Engine>,
    dispatcher: Option<JoinHandle<()>>,
    canaries: Option<CanaryThread>,
    weather: WeatherHandle,
}

impl std::fmt::Debug for RunningServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningServer")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl RunningServer {
    /// The bound address (with the real port when the config asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The internet-weather guard's state (clear, or degraded with why and since when).
    pub fn weather(&self) -> WeatherHandle {
        self.weather.clone()
    }

    /// Stops accepting, lets requests in flight finish (up to the grace period), then stops the engine.
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        // Legacy batches still running are dropped with the server's runtime; their monitors time them out.
        if let Some(mut http) = self.http.take() {
            http.stop();
        }
        if let Some(canaries) = self.canaries.take() {
            canaries.stop();
        }
        if let Some(engine) = self.engine.take() {
            drop(engine.abort());
        }
        if let Some(dispatcher) = self.dispatcher.take() {
            let _ = dispatcher.join();
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// Starts the engine, the dispatcher and the HTTPS server for `config`.
pub fn start(config: VeriflierConfig, options: StartOptions) -> Result<RunningServer, ServeError> {
    if let Some((key, message)) = config.impossibility() {
        return Err(ServeError::Config(format!("`{key}`: {message}")));
    }
    let server_tls = match options.server_tls {
        Some(tls) => tls,
        None => server_tls_config(&config)?,
    };
    let callback_tls = match options.callback_tls {
        Some(tls) => tls,
        None => callback_tls_config(config.ca_file.as_deref())?,
    };
    let allowed = config
        .allowed_networks()
        .map_err(|e| ServeError::Config(format!("`allow_networks`: {e}")))?;
    let mut engine_config = options.base_engine;
    engine_config.check_timeout = config.check_timeout();
    engine_config.max_redirects = config.max_redirects;
    engine_config.max_in_flight = config.max_in_flight;
    engine_config.address_policy = AddressPolicy::public_only(allowed);
    engine_config.dns.overrides = config
        .resolve_overrides()
        .map_err(|e| ServeError::Config(format!("`resolve`: {e}")))?;

    let listener = bind(config.listen_addr())?;

    let engine = Engine::start(engine_config)?;
    let pending: Arc<Mutex<HashMap<u64, Waiter>>> = Arc::default();
    let weather = SharedGuard::new(config.weather.guard(Instant::now()));
    let dispatcher = {
        let results = engine.results().clone();
        let pending = Arc::clone(&pending);
        let weather = weather.clone();
        std::thread::Builder::new()
            .name("veriflierd-dispatch".into())
            .spawn(move || {
                // Ends when the engine's threads have exited and the channel is closed.
                for result in results.iter() {
                    if weather.observe(&result) {
                        continue; // A canary's: nobody waits for it.
                    }
                    if let Some(waiter) = lock(&pending).remove(&result.id) {
                        let _ = waiter.batch.send((waiter.index, result));
                    }
                }
            })
            .map_err(ServeError::Runtime)?
    };

    let canaries = weather
        .start_canaries(engine.submitter())
        .map_err(ServeError::Runtime)?;
    let weather_handle = weather.handle();
    let app = Arc::new(App {
        weather,
        check_timeout: config.check_timeout(),
        config,
        submitter: engine.submitter(),
        pending,
        next_id: AtomicU64::new(1),
        callback_tls,
    });
    let http = HttpsServer::start(
        listener,
        server_tls,
        router(app),
        "veriflierd-http",
        options.shutdown_grace,
    )?;
    let local_addr = http.local_addr();
    tracing::info!(%local_addr, "veriflier listening");
    Ok(RunningServer {
        local_addr,
        http: Some(http),
        engine: Some(engine),
        dispatcher: Some(dispatcher),
        canaries,
        weather: weather_handle,
    })
}

/// The server's TLS config from `privatecert_file`/`privatekey_file`, requiring client certificates signed
/// by `client_ca_file` when that is set.
pub fn server_tls_config(config: &VeriflierConfig) -> Result<Arc<ServerConfig>, ServeError> {
    server_tls(
        &config.privatecert_file,
        &config.privatekey_file,
        config.client_ca_file.as_deref(),
    )
}

/// The client TLS settings for legacy callbacks: trusts `ca_file`, or the web roots when there is none.
pub fn callback_tls_config(ca_file: Option<&Path>) -> Result<ClientTls, ServeError> {
    ClientTls::from_files(ca_file, None).map_err(|e| tls_error(ca_file.unwrap_or(Path::new("")), e.reason()))
}

/// A check waiting for its result: the channel of its batch and its place in the batch.
struct Waiter {
    batch: mpsc::UnboundedSender<(usize, CheckResult)>,
    index: usize,
}

type Pending = Arc<Mutex<HashMap<u64, Waiter>>>;

/// The map stays consistent under a panic elsewhere (inserts and removes are single calls), so a poisoned
/// lock is still usable.
fn lock(pending: &Pending) -> MutexGuard<'_, HashMap<u64, Waiter>> {
    pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Removes a batch's ids when the batch finishes or its request is dropped mid-way.
struct PendingGuard<'a> {
    pending: &'a Pending,
    ids: std::ops::Range<u64>,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        let mut map = lock(self.pending);
        for id in self.ids.clone() {
            map.remove(&id);
        }
    }
}

struct App {
    config: VeriflierConfig,
    submitter: Submitter,
    pending: Pending,
    next_id: AtomicU64,
    callback_tls: ClientTls,
    check_timeout: Duration,
    weather: SharedGuard,
}

impl App {
    /// The monitor whose token is `given` (constant time, see [`find_by_token`]).
    fn monitor_for_token(&self, given: &[u8]) -> Option<&MonitorConfig> {
        find_by_token(&self.config.monitors, |monitor| &monitor.auth_token.0, given)
    }

    /// Runs `checks` on the engine and waits for all results.
    async fn run(&self, checks: &[CheckItem]) -> Result<Vec<Option<CheckResult>>, EngineError> {
        let count = checks.len();
        let first = self.next_id.fetch_add(count as u64, Ordering::Relaxed);
        let (sender, mut receiver) = mpsc::unbounded_channel();
        {
            let mut map = lock(&self.pending);
            for index in 0..count {
                let waiter = Waiter {
                    batch: sender.clone(),
                    index,
                };
                map.insert(first + index as u64, waiter);
            }
        }
        drop(sender);
        let _guard = PendingGuard {
            pending: &self.pending,
            ids: first..first + count as u64,
        };
        let requests = checks
            .iter()
            .enumerate()
            .map(|(index, check)| CheckRequest::new(first + index as u64, check.monitor_url.clone()));
        self.submitter.submit_many(requests)?;

        let mut results: Vec<Option<CheckResult>> = vec![None; count];
        let mut received = 0;
        let deadline = tokio::time::sleep(self.check_timeout + RESULT_SLACK);
        tokio::pin!(deadline);
        while received < count {
            tokio::select! {
                next = receiver.recv() => match next {
                    Some((index, result)) => {
                        if let Some(slot) = results.get_mut(index) {
                            *slot = Some(result);
                            received += 1;
                        }
                    }
                    None => break,
                },
                _ = &mut deadline => {
                    tracing::warn!(missing = count - received, "engine results missing after the check deadline");
                    break;
                }
            }
        }
        Ok(results)
    }
}

fn router(app: Arc<App>) -> Router {
    Router::new()
        .route(CHECK_PATH, post(check))
        .route(LEGACY_CHECK_PATH, post(legacy_check))
        .route(STATUS_PATH, get(|| async { "OK" }))
        .route(HEALTHZ_PATH, get(healthz))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such endpoint".into()) })
        .with_state(app)
}

fn legacy_error(app: &App, status: StatusCode, message: String) -> Response {
    let ack = LegacyAck {
        veriflier: app.config.veriflier_name.clone(),
        status: -1,
        error: Some(message),
    };
    (status, Json(ack)).into_response()
}

fn too_many(app: &App, count: usize) -> Option<String> {
    (count > app.config.batch_size).then(|| {
        format!(
            "{count} checks in one request; this veriflier takes at most {} (batch_size)",
            app.config.batch_size
        )
    })
}

async fn check(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "));
    let Some(monitor) = token.and_then(|token| app.monitor_for_token(token)) else {
        let mut response = error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token".into());
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return response;
    };
    let batch = match read_parsed(&headers, body, parse_check_request).await {
        Ok(batch) => batch,
        Err((status, message)) => return error(status, message),
    };
    if let Some(name) = &batch.monitor {
        if name != &monitor.name {
            return error(
                StatusCode::FORBIDDEN,
                format!("the token is not the one of monitor {name:?}"),
            );
        }
    }
    if let Some(message) = too_many(&app, batch.checks.len()) {
        return error(StatusCode::PAYLOAD_TOO_LARGE, message);
    }
    let started = Instant::now();
    let results = match app.run(&batch.checks).await {
        Ok(results) => results,
        Err(problem) => return error(StatusCode::SERVICE_UNAVAILABLE, problem.to_string()),
    };
    let mut results: Vec<ResultItem> = batch
        .checks
        .iter()
        .zip(&results)
        .map(|(item, result)| result_item(item, result.as_ref()))
        .collect();
    app.weather.hold_back(&mut results);
    let offline = results.iter().filter(|r| r.status == RemoteStatus::Offline).count();
    tracing::info!(
        monitor = %monitor.name,
        checks = results.len(),
        offline,
        elapsed_ms = jetmon_engine::duration_ms(started.elapsed()),
        "batch checked"
    );
    let response = CheckResponse {
        veriflier: app.config.veriflier_name.clone(),
        results,
    };
    Json(response).into_response()
}

fn status_of(result: Option<&CheckResult>) -> RemoteStatus {
    match result.map(|r| r.verdict) {
        Some(Verdict::Up) => RemoteStatus::Online,
        _ => RemoteStatus::Offline,
    }
}

fn result_item(item: &CheckItem, result: Option<&CheckResult>) -> ResultItem {
    ResultItem {
        blog_id: item.blog_id,
        monitor_url: item.monitor_url.clone(),
        status: status_of(result),
        rtt: result.map_or(0, CheckResult::rtt_ms),
        code: result.map_or(0, |r| r.code),
        // A missing result means the engine missed its own deadline: report it as the timeout it is.
        error: match result {
            Some(r) => r.error.map(|e| e.as_str().to_string()),
            None => Some(jetmon_engine::ErrorClass::Timeout.as_str().to_string()),
        },
    }
}

fn legacy_item(item: &CheckItem, result: Option<&CheckResult>) -> LegacyResultItem {
    // jetmon.js reads one `code`: the HTTP code, or its 995–999 error code when no response came.
    let code = match result {
        Some(r) if r.code != 0 => r.code,
        Some(r) => r.legacy_error_code.unwrap_or(0),
        None => jetmon_engine::legacy_code::TIMEOUT,
    };
    LegacyResultItem {
        blog_id: item.blog_id,
        monitor_url: item.monitor_url.clone(),
        status: status_of(result),
        rtt: result.map_or(0, CheckResult::rtt_ms),
        code,
    }
}

async fn legacy_check(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Response {
    let request = match read_parsed(&headers, body, parse_legacy_request).await {
        Ok(request) => request,
        Err((status, message)) => return legacy_error(&app, status, message),
    };
    let Some(monitor) = app.monitor_for_token(request.auth_token.as_bytes()).cloned() else {
        return legacy_error(&app, StatusCode::UNAUTHORIZED, "wrong auth_token".into());
    };
    if let Some(message) = too_many(&app, request.checks.len()) {
        return legacy_error(&app, StatusCode::PAYLOAD_TOO_LARGE, message);
    }
    let callback = match callback_url(&monitor.host, app.config.jetmon_server_port) {
        Ok(url) => url,
        Err(message) => return legacy_error(&app, StatusCode::INTERNAL_SERVER_ERROR, message),
    };
    let checks = request.checks;
    let task_app = Arc::clone(&app);
    tokio::spawn(async move {
        let app = task_app;
        let results = match app.run(&checks).await {
            Ok(results) => results,
            Err(error) => {
                tracing::warn!(monitor = %monitor.name, %error, "legacy batch not run");
                return;
            }
        };
        let mut body = LegacyCallback {
            auth_token: app.config.auth_token.0.clone(),
            veriflier: app.config.veriflier_name.clone(),
            checks: checks
                .iter()
                .zip(&results)
                .map(|(item, result)| legacy_item(item, result.as_ref()))
                .collect(),
        };
        app.weather.hold_back_legacy(&mut body.checks);
        let Ok(body) = serde_json::to_vec(&body) else { return };
        let tls = app.callback_tls.clone();
        let timeout = app.config.net_comms_timeout();
        let outcome =
            tokio::task::spawn_blocking(move || post_json(&callback, &[], &body, &tls, timeout).map(|r| r.status))
                .await;
        match outcome {
            Ok(Ok(status)) if (200..300).contains(&status) => {
                tracing::info!(monitor = %monitor.name, checks = checks.len(), "legacy results delivered");
            }
            Ok(Ok(status)) => tracing::warn!(monitor = %monitor.name, status, "legacy callback refused"),
            Ok(Err(error)) => tracing::warn!(monitor = %monitor.name, %error, "legacy callback failed"),
            Err(error) => tracing::warn!(monitor = %monitor.name, %error, "legacy callback task failed"),
        }
    });
    let ack = LegacyAck {
        veriflier: app.config.veriflier_name.clone(),
        status: 1,
        error: None,
    };
    Json(ack).into_response()
}

/// Where legacy results go: the configured host of the monitor (not the peer address of the request, as
/// the original did, so a forged request cannot point the callback elsewhere).
fn callback_url(host: &str, port: u16) -> Result<Url, String> {
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    Url::parse(&format!("https://{host}:{port}{LEGACY_CALLBACK_PATH}"))
        .map_err(|e| format!("monitor host {host:?} does not make a callback URL: {e}"))
}

async fn healthz(State(app): State<Arc<App>>) -> Response {
    let waiting = lock(&app.pending).len();
    Json(serde_json::json!({
        "status": "ok",
        "veriflier": app.config.veriflier_name,
        "checks_waiting": waiting,
        "weather": app.weather.describe(),
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_urls_bracket_ipv6_hosts() {
        assert_eq!(
            callback_url("::1", 7800).unwrap().as_str(),
            "https://[::1]:7800/put/host-status"
        );
        assert_eq!(
            callback_url("jetmon.example", 7800).unwrap().as_str(),
            "https://jetmon.example:7800/put/host-status"
        );
    }
}
