//! The testable entry point: serve a bound listener until `shutdown`
//! resolves, then drain (CONTRACT §8): readiness goes 503, new connections
//! are refused, connected clients are told to reconnect elsewhere (close
//! 1012), in-flight webhook calls finish, and `run` returns.
//!
//! The accept loop is written out (rather than `axum::serve`) for two
//! things axum does not expose: hyper's header read timeout, which bounds a
//! client's HTTP request and WebSocket handshake (`handshake_timeout_ms`,
//! against slow-loris clients), and control over each connection's HTTP
//! settings. With built-in TLS, each connection's TLS handshake runs first
//! (bounded by the same timeout), then the same HTTP serving as plain TCP.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

use crate::api::router;
use crate::gateway::Gateway;
use crate::session::CloseReason;
use crate::telemetry::Metrics;
use crate::tls;

/// How long in-flight HTTP requests (long polls above all) may take to
/// finish once the drain is done.
const HTTP_GRACE: Duration = Duration::from_secs(11);

/// Serves `gateway` on `listener` until `shutdown` completes, then drains.
pub async fn run(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(gateway.clone());
    gateway.lifecycle.set_ready();
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let drain_task = tokio::spawn({
        let gateway = gateway.clone();
        async move {
            shutdown.await;
            drain(&gateway).await;
            let _ = stop_tx.send(true);
        }
    });
    // Every connection task holds a receiver: `closed()` on the sender
    // resolves when the last one has finished.
    let (connections_tx, connections_rx) = watch::channel(());
    let handshake_timeout = gateway.limits.handshake_timeout;
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop_rx.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        let connection = Connection {
            app: app.clone(),
            peer,
            handshake_timeout,
            stop: stop_rx.clone(),
            held: connections_rx.clone(),
            metrics: gateway.metrics.clone(),
        };
        // Two spawn sites, so that a plain-TCP connection's task has exactly
        // the plain type and size, unaffected by TLS state it never uses.
        match &gateway.tls {
            None => {
                tokio::spawn(connection.serve(TokioIo::new(stream)));
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                let metrics = gateway.metrics.clone();
                tokio::spawn(async move {
                    match tls::accept(&acceptor, stream, handshake_timeout).await {
                        Ok(stream) => connection.serve(TokioIo::new(stream)).await,
                        Err((failure, error)) => {
                            metrics.tls_handshake_failure(failure.as_str());
                            let error = error.map(|e| e.to_string()).unwrap_or_default();
                            tracing::info!(remote_ip = %peer.ip(), reason = failure.as_str(), error, "TLS handshake failed");
                        }
                    }
                });
            }
        }
    }
    drop(listener);
    drop(connections_rx);
    let _ = tokio::time::timeout(HTTP_GRACE, connections_tx.closed()).await;
    drain_task.abort();
    Ok(())
}

/// One accepted connection, ready to serve HTTP on its (plain or TLS) stream.
struct Connection {
    app: Router,
    peer: SocketAddr,
    handshake_timeout: Duration,
    stop: watch::Receiver<bool>,
    /// Dropped when the connection ends; `run` waits for all of them.
    held: watch::Receiver<()>,
    metrics: Arc<Metrics>,
}

impl Connection {
    async fn serve<I>(self, io: I)
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let Connection {
            app,
            peer,
            handshake_timeout,
            mut stop,
            held,
            metrics,
        } = self;
        let service = app.map_request(move |request: Request<Incoming>| {
            let mut request = request.map(Body::new);
            request.extensions_mut().insert(ConnectInfo(peer));
            request
        });
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(handshake_timeout)
            .keep_alive(true);
        let connection = http
            .serve_connection(io, TowerToHyperService::new(service))
            .with_upgrades();
        tokio::pin!(connection);
        loop {
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        connection_failed(&metrics, &error, peer);
                    }
                    break;
                }
                _ = stop.changed() => connection.as_mut().graceful_shutdown(),
            }
        }
        drop(held);
    }
}

/// An HTTP connection that ended in an error. A request hyper could not
/// parse (answered 400) is a refused connection attempt: logged and counted
/// as `auth_failures_total{app="unknown", reason="bad_request"}`. Header
/// read timeouts are not counted: hyper reports them for idle keep-alive
/// connections as well as for half-sent requests.
fn connection_failed(metrics: &Metrics, error: &hyper::Error, peer: std::net::SocketAddr) {
    if error.is_parse() {
        tracing::info!(remote_ip = %peer.ip(), reason = "bad_request", %error, "connection refused");
        metrics.auth_failure("unknown", "bad_request");
    } else {
        tracing::debug!(%error, %peer, "HTTP connection ended with an error");
    }
}

async fn drain(gateway: &Gateway) {
    gateway.lifecycle.start_draining();
    let told = gateway.connections.close_all(CloseReason::Draining);
    tracing::info!(
        connections = told,
        "draining: clients told to reconnect elsewhere"
    );
    let limit = gateway.server.drain_timeout;
    let webhooks_done = gateway.webhooks.wait_idle(limit).await;
    if !webhooks_done {
        tracing::warn!(
            in_flight = gateway.webhooks.in_flight(),
            "drain timeout: webhook calls still in flight"
        );
    }
    // Give connection tasks a moment to put their close frames on the wire.
    let deadline = tokio::time::Instant::now()
        + Duration::from_secs(5).min(limit.max(Duration::from_millis(100)));
    while !gateway.connections.is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tracing::info!("drained");
}
