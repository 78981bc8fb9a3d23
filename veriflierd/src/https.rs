//! HTTPS serving shared by both daemons: veriflierd's RPC server and jetmond's legacy-callback server
//! (the endpoint old Qt verifliers post their results to). One accept loop, one set of limits and one
//! reader of certificate files, so both servers refuse slow clients, oversized bodies and bad PEM files
//! the same way.
//!
//! ```no_run
//! use std::time::Duration;
//! use axum::{routing::get, Router};
//! use veriflierd::https::{bind, server_tls, HttpsServer};
//!
//! let tls = server_tls("/etc/jetmon/cert.pem".as_ref(), "/etc/jetmon/key.pem".as_ref(), None)?;
//! let listener = bind("127.0.0.1:7800".parse()?)?;
//! let router = Router::new().route("/get/status", get(|| async { "OK" }));
//! let server = HttpsServer::start(listener, tls, router, "example-https", Duration::from_secs(5))?;
//! println!("listening on {}", server.local_addr());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use subtle::ConstantTimeEq;
use tokio::sync::{watch, Semaphore};
use tokio_rustls::TlsAcceptor;

use crate::protocol::{ErrorBody, ProtocolError};
use crate::server::ServeError;
use crate::tls::ring_provider;

/// Largest request body accepted. A full batch of 200 long URLs is about 100 KiB.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Connections served at once; more wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 1024;
/// A client that has not finished its TLS handshake by then is dropped.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A client that has not sent a whole request head by then is dropped (slowloris).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after a failed accept (e.g. out of file descriptors) so the loop cannot spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Worker threads of the HTTP runtime: handlers only parse JSON and wait; the real work is elsewhere.
const HTTP_WORKER_THREADS: usize = 2;

/// A TLS server config from a certificate chain file and its key file, requiring client certificates
/// signed by `client_ca_file` when that is given. Speaks HTTP/1.1 only, like both daemons' clients.
pub fn server_tls(
    cert_file: &Path,
    key_file: &Path,
    client_ca_file: Option<&Path>,
) -> Result<Arc<ServerConfig>, ServeError> {
    let certs = read_certs(cert_file)?;
    let key = read_key(key_file)?;
    let provider = ring_provider();
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(Path::new(""), e))?;
    let builder = match client_ca_file {
        Some(file) => {
            let roots = read_roots(file)?;
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| tls_error(file, e))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut server = builder
        .with_single_cert(certs, key)
        .map_err(|e| tls_error(key_file, e))?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(server))
}

pub(crate) fn tls_error(file: &Path, error: impl std::fmt::Display) -> ServeError {
    ServeError::Tls {
        file: file.to_owned(),
        reason: error.to_string(),
    }
}

fn read_certs(file: &Path) -> Result<Vec<CertificateDer<'static>>, ServeError> {
    crate::tls::read_certificates(file, "certificate file").map_err(|e| tls_error(file, e.reason()))
}

fn read_key(file: &Path) -> Result<PrivateKeyDer<'static>, ServeError> {
    crate::tls::read_private_key(file, "key file").map_err(|e| tls_error(file, e.reason()))
}

fn read_roots(file: &Path) -> Result<RootCertStore, ServeError> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs(file)? {
        roots.add(cert).map_err(|e| tls_error(file, e))?;
    }
    Ok(roots)
}

/// The candidate whose token (`token_of`) is `given`, compared in constant time. Every candidate is
/// compared, without stopping at a match, so timing tells nothing about which one matched or how much of
/// it; the last match wins.
pub fn find_by_token<'a, T>(
    candidates: impl IntoIterator<Item = &'a T>,
    token_of: impl Fn(&T) -> &str,
    given: &[u8],
) -> Option<&'a T> {
    let mut found = None;
    for candidate in candidates {
        if bool::from(token_of(candidate).as_bytes().ct_eq(given)) {
            found = Some(candidate);
        }
    }
    found
}

/// Binds `addr` synchronously, so a taken port is an error at start rather than a log line later.
pub fn bind(addr: SocketAddr) -> Result<std::net::TcpListener, ServeError> {
    let listener = std::net::TcpListener::bind(addr).map_err(|source| ServeError::Bind { addr, source })?;
    listener
        .set_nonblocking(true)
        .map_err(|source| ServeError::Bind { addr, source })?;
    Ok(listener)
}

/// A running HTTPS server: a small tokio runtime of its own serving an axum router over rustls. Stop it
/// with [`HttpsServer::stop`]; dropping it stops it too. Both block while requests in flight finish (up to
/// the grace period), so call them from plain threads, not from inside an async runtime.
#[derive(Debug)]
pub struct HttpsServer {
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    runtime: Option<tokio::runtime::Runtime>,
    serve_task: Option<tokio::task::JoinHandle<()>>,
}

impl HttpsServer {
    /// Serves `router` on `listener` (from [`bind`]) with `tls`. Handlers may `tokio::spawn`: they run on
    /// this server's runtime, whose threads are named `thread_name`. `grace` is what requests in flight get
    /// on stop.
    pub fn start(
        listener: std::net::TcpListener,
        tls: Arc<ServerConfig>,
        router: Router,
        thread_name: &str,
        grace: Duration,
    ) -> Result<HttpsServer, ServeError> {
        let addr = listener.local_addr().map_err(ServeError::Runtime)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(HTTP_WORKER_THREADS)
            .thread_name(thread_name)
            .enable_all()
            .build()
            .map_err(ServeError::Runtime)?;
        let listener = {
            let _entered = runtime.enter();
            tokio::net::TcpListener::from_std(listener).map_err(|source| ServeError::Bind { addr, source })?
        };
        let (stop, stopped) = watch::channel(false);
        let serve_task = runtime.spawn(serve(listener, TlsAcceptor::from(tls), router, stopped, grace));
        Ok(HttpsServer {
            local_addr: addr,
            stop,
            runtime: Some(runtime),
            serve_task: Some(serve_task),
        })
    }

    /// The bound address (with the real port when port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, lets requests in flight finish (up to the grace period), then drops the runtime
    /// with whatever tasks the handlers spawned. Idempotent.
    pub fn stop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(runtime) = self.runtime.take() {
            if let Some(task) = self.serve_task.take() {
                let _ = runtime.block_on(task);
            }
            runtime.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn serve(
    listener: tokio::net::TcpListener,
    acceptor: TlsAcceptor,
    router: Router,
    mut stopped: watch::Receiver<bool>,
    grace: Duration,
) {
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&slots).acquire_owned() => permit,
            _ = stopped.changed() => break,
        };
        let Ok(permit) = permit else { break };
        let (socket, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            _ = stopped.changed() => break,
        };
        let acceptor = acceptor.clone();
        let service = TowerToHyperService::new(router.clone());
        let watcher = graceful.watcher();
        // The handshake runs in the connection's task so a slow client cannot stall the accept loop.
        tokio::spawn(async move {
            let _permit = permit;
            let stream = match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(socket)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => {
                    tracing::info!(%peer, %error, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::info!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(error) = watcher.watch(connection).await {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown()).await.is_err() {
        tracing::warn!(?grace, "requests still running at the end of the shutdown grace period");
    }
}

/// A JSON [`ErrorBody`] answer.
pub fn error_response(status: StatusCode, message: String) -> Response {
    (status, Json(ErrorBody { error: message })).into_response()
}

/// Why a body could not be read: too large (413) or broken (400).
fn read_error(status: StatusCode) -> (StatusCode, String) {
    let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
        format!("request body is larger than {MAX_BODY_BYTES} bytes")
    } else {
        "request body could not be read".to_string()
    };
    (status, message)
}

/// Reads a whole request body of at most [`MAX_BODY_BYTES`] and decodes it with `parse` (one of
/// [`crate::protocol`]'s parsers); the error is the status and message to answer with (413 too large, 400
/// broken or malformed, the message naming the field at fault).
pub async fn read_parsed<T>(
    headers: &HeaderMap,
    body: Body,
    parse: impl FnOnce(&[u8]) -> Result<T, ProtocolError>,
) -> Result<T, (StatusCode, String)> {
    let bytes = read_body(headers, body).await?;
    parse(&bytes).map_err(|problem| (StatusCode::BAD_REQUEST, problem.to_string()))
}

async fn read_body(headers: &HeaderMap, body: Body) -> Result<Bytes, (StatusCode, String)> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // Refused before reading a byte of it.
    if declared.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        return Err(read_error(StatusCode::PAYLOAD_TOO_LARGE));
    }
    axum::body::to_bytes(body, MAX_BODY_BYTES).await.map_err(|error| {
        let too_large =
            std::error::Error::source(&error).is_some_and(|source| source.is::<http_body_util::LengthLimitError>());
        read_error(if too_large {
            StatusCode::PAYLOAD_TOO_LARGE
        } else {
            StatusCode::BAD_REQUEST
        })
    })
}
