//! The ops HTTP server: axum on a one-thread tokio runtime of its own, so neither the engine's loops nor
//! the control thread ever wait for a scrape. Handlers only read [`OpsState`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use super::api::{FleetView, SiteView};
use super::metrics;
use super::state::OpsState;
use crate::status::BlogId;

/// The status page, one self-contained file.
const PAGE: &str = include_str!("page.html");

/// Why the ops server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpsServerError {
    /// The address could not be bound.
    #[error("cannot listen on {addr} (ops_listen): {source}")]
    Bind {
        /// The configured address.
        addr: SocketAddr,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// The runtime or its thread could not start.
    #[error("cannot start the ops server: {0}")]
    Start(#[source] std::io::Error),
}

/// The running server. Dropping it stops it (without waiting for open connections).
pub struct OpsServer {
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl OpsServer {
    /// Binds `addr` and serves `state` from a thread of its own.
    pub fn start(addr: SocketAddr, state: Arc<OpsState>) -> Result<OpsServer, OpsServerError> {
        // Bound here, synchronously, so a taken port is an error of `jetmond run`, not a log line later.
        let listener = std::net::TcpListener::bind(addr).map_err(|source| OpsServerError::Bind { addr, source })?;
        let bound = listener
            .local_addr()
            .map_err(|source| OpsServerError::Bind { addr, source })?;
        listener
            .set_nonblocking(true)
            .map_err(|source| OpsServerError::Bind { addr, source })?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(OpsServerError::Start)?;
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let router = router(state);
        let thread = std::thread::Builder::new()
            .name("jetmond-ops".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(listener) => listener,
                        Err(e) => {
                            tracing::error!("ops server: cannot use the listener: {e}");
                            return;
                        }
                    };
                    let serving = axum::serve(listener, router).with_graceful_shutdown(async move {
                        // Either a stop or a dropped sender ends the server.
                        let _ = stopped.await;
                    });
                    if let Err(e) = serving.await {
                        tracing::error!("ops server stopped: {e}");
                    }
                });
            })
            .map_err(OpsServerError::Start)?;
        tracing::info!(addr = %bound, "ops endpoint listening (/, /metrics, /healthz, /readyz, /api/status)");
        Ok(OpsServer {
            addr: bound,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// The address actually bound (the port is chosen by the system for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for OpsServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        // Not joined: a client holding a connection open must not delay the daemon's exit.
        self.thread.take();
    }
}

/// The routes, for tests that drive them without a socket.
pub fn router(state: Arc<OpsState>) -> Router {
    Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(|| async { Json(serde_json::json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        // The original's liveness path, answered as veriflierd answers it.
        .route(veriflierd::protocol::STATUS_PATH, get(|| async { "OK" }))
        .route("/api/status", get(fleet))
        .route("/api/sites/{blog_id}", get(site))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such endpoint".into()) })
        .method_not_allowed_fallback(|| async {
            error(StatusCode::METHOD_NOT_ALLOWED, "only GET is served here".into())
        })
        .with_state(state)
}

async fn metrics_text(State(state): State<Arc<OpsState>>) -> Response {
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        metrics::render(&state, Instant::now()),
    )
        .into_response()
}

async fn readyz(State(state): State<Arc<OpsState>>) -> Response {
    match state.readiness(Instant::now()) {
        Ok(()) => Json(serde_json::json!({"status": "ready"})).into_response(),
        Err(reasons) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"status": "not ready", "reasons": reasons})),
        )
            .into_response(),
    }
}

async fn fleet(State(state): State<Arc<OpsState>>) -> Response {
    Json(FleetView::new(&state, Instant::now())).into_response()
}

async fn site(State(state): State<Arc<OpsState>>, Path(blog_id): Path<String>) -> Response {
    let Ok(blog_id) = blog_id.parse::<BlogId>() else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("blog id {blog_id:?} is not a decimal number"),
        );
    };
    match state.site(blog_id) {
        Some(history) => Json(SiteView::new(blog_id, &history)).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            format!("no results for blog {blog_id}: not monitored here, or not checked yet"),
        ),
    }
}

fn error(status: StatusCode, message: String) -> Response {
    (status, Json(serde_json::json!({"error": message}))).into_response()
}
