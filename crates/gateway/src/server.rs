//! The testable entry point: serve a bound listener until `shutdown`
//! resolves, then drain (CONTRACT §8): readiness goes 503, new connections
//! are refused, connected clients are told to reconnect elsewhere (close
//! 1012), in-flight webhook calls finish, and `run` returns.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::api::router;
use crate::gateway::Gateway;
use crate::session::CloseReason;

/// Serves `gateway` on `listener` until `shutdown` completes, then drains.
pub async fn run(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(gateway.clone()).into_make_service_with_connect_info::<SocketAddr>();
    gateway.lifecycle.set_ready();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let drain = {
        let gateway = gateway.clone();
        async move {
            shutdown.await;
            drain(&gateway).await;
            let _ = stop_tx.send(());
        }
    };
    let drain_task = tokio::spawn(drain);
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = stop_rx.await;
        })
        .await;
    drain_task.abort();
    served
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
