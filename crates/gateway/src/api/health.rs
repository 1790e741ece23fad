//! `/health`, `/health/live`, `/health/ready` and `/metrics` (CONTRACT §8).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

use crate::gateway::Gateway;

/// `GET /health`
pub async fn health() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// `GET /health/live`: 200 while the process runs.
pub async fn live() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// `GET /health/ready`: 503 while starting, draining, or (in a cluster)
/// while Redis is unreachable.
pub async fn ready(State(gateway): State<Arc<Gateway>>) -> impl IntoResponse {
    if gateway.is_ready() {
        (StatusCode::OK, Json(json!({ "status": "ok" })))
    } else {
        let status = if gateway.lifecycle.is_draining() {
            "draining"
        } else if !gateway.hub.engine().is_healthy() {
            "cluster_unavailable"
        } else {
            "starting"
        };
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": status })),
        )
    }
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(gateway): State<Arc<Gateway>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        gateway.metrics.render(),
    )
}
