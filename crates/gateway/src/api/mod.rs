//! HTTP surface that is not a client transport: the server API (apps push
//! to topics and manage connections), the admin API (register apps), health
//! and metrics. Thin handlers: they authenticate, validate the body, and
//! call the hub, registry or apps; they never bypass them.

mod admin;
mod body_limit;
mod error;
mod health;
mod server_api;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{any, get, post, put};
use axum::Router;

use crate::gateway::Gateway;
use crate::transport::longpoll::longpoll_handler;
use crate::transport::websocket::websocket_handler;

pub use error::ApiError;

/// Every route of the gateway.
pub fn router(gateway: Arc<Gateway>) -> Router {
    let body_limit = gateway.limits.max_body_bytes;
    Router::new()
        .route("/socket/websocket", any(websocket_handler))
        .route("/socket/longpoll", any(longpoll_handler))
        .route("/api/v1/apps/{app}/broadcast", post(server_api::broadcast))
        .route(
            "/api/v1/apps/{app}/clients/{client_id}/disconnect",
            post(server_api::disconnect),
        )
        .route(
            "/api/v1/apps/{app}/connections",
            get(server_api::connections),
        )
        .route(
            "/api/v1/apps/{app}/schema/refresh",
            post(server_api::refresh_schema),
        )
        .route(
            "/api/v1/apps/{app}/presence/{*topic}",
            get(server_api::presence),
        )
        .route("/admin/v1/apps", get(admin::list_apps))
        .route(
            "/admin/v1/apps/{app}",
            put(admin::put_app).delete(admin::delete_app),
        )
        .route("/health", get(health::health))
        .route("/health/live", get(health::live))
        .route("/health/ready", get(health::ready))
        .route("/metrics", get(health::metrics))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(
            gateway.clone(),
            body_limit::count_oversized_bodies,
        ))
        .with_state(gateway)
}
