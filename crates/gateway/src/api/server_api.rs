//! The server API of CONTRACT §6, authorized by `Bearer <app secret>`:
//! broadcast, disconnect, connections, schema refresh.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use base64::Engine;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};
use switchboard_protocol::Payload;

use super::ApiError;
use crate::apps::{load_schema, App};
use crate::gateway::Gateway;
use crate::hub::Broadcast;
use crate::session::CloseReason;

/// The app named in the path, once its secret was presented.
pub struct AuthorizedApp(pub Arc<App>);

impl FromRequestParts<Arc<Gateway>> for AuthorizedApp {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        gateway: &Arc<Gateway>,
    ) -> Result<Self, ApiError> {
        let Path(params) = Path::<Vec<(String, String)>>::from_request_parts(parts, gateway)
            .await
            .map_err(|_| ApiError::unauthorized())?;
        let app_id = params
            .iter()
            .find(|(name, _)| name == "app")
            .map(|(_, value)| value.as_str())
            .ok_or_else(ApiError::unauthorized)?;
        let presented = bearer_token(parts).ok_or_else(ApiError::unauthorized)?;
        // Unknown app and wrong secret answer alike, so ids cannot be probed.
        let app = gateway
            .apps
            .get(app_id)
            .ok_or_else(ApiError::unauthorized)?;
        if !app.config().secret.matches(presented) {
            return Err(ApiError::unauthorized());
        }
        Ok(AuthorizedApp(app))
    }
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer_token(parts: &Parts) -> Option<&str> {
    let value = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// `POST /api/v1/apps/{app}/broadcast` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BroadcastRequest {
    topic: String,
    event: String,
    #[serde(default)]
    payload: Option<Value>,
    #[serde(default)]
    payload_base64: Option<String>,
}

/// `POST /api/v1/apps/{app}/broadcast` → 202.
pub async fn broadcast(
    State(gateway): State<Arc<Gateway>>,
    AuthorizedApp(app): AuthorizedApp,
    body: Result<Json<BroadcastRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Json(request) = body?;
    if request.topic.is_empty() || request.event.is_empty() {
        return Err(ApiError::bad_request(
            "topic and event must be non-empty strings",
        ));
    }
    let payload = match (request.payload, request.payload_base64) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "give payload or payload_base64, not both",
            ))
        }
        (_, Some(b64)) => Payload::Binary(Bytes::from(
            base64::engine::general_purpose::STANDARD
                .decode(b64.as_bytes())
                .map_err(|e| ApiError::bad_request(format!("payload_base64: {e}")))?,
        )),
        (Some(value), None) => Payload::Json(value),
        (None, None) => Payload::empty(),
    };
    let message = Broadcast::new(request.topic, request.event, payload);
    let delivered = gateway.hub.publish(app.id(), &message, None);
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "delivered_locally": delivered.queued })),
    ))
}

/// `POST /api/v1/apps/{app}/clients/{client_id}/disconnect` → 200.
pub async fn disconnect(
    State(gateway): State<Arc<Gateway>>,
    AuthorizedApp(app): AuthorizedApp,
    Path((_, client_id)): Path<(String, String)>,
) -> impl IntoResponse {
    let closed =
        gateway
            .connections
            .close_matching(app.id(), Some(&client_id), CloseReason::Disconnected);
    gateway
        .hub
        .engine()
        .disconnect_elsewhere(app.id(), &client_id);
    tracing::info!(
        app = app.id(),
        client_id,
        closed,
        "disconnect requested by the server API"
    );
    Json(json!({ "disconnected": closed }))
}

/// Filters of `GET /api/v1/apps/{app}/connections`.
#[derive(Deserialize)]
pub struct ConnectionFilter {
    client_id: Option<String>,
    topic: Option<String>,
}

/// `GET /api/v1/apps/{app}/connections`
pub async fn connections(
    State(gateway): State<Arc<Gateway>>,
    AuthorizedApp(app): AuthorizedApp,
    Query(filter): Query<ConnectionFilter>,
) -> impl IntoResponse {
    let all: Vec<Value> = match gateway.hub.engine().connections(app.id()).await {
        Some(cluster_wide) => cluster_wide,
        None => gateway
            .connections
            .list(app.id(), None, None)
            .iter()
            .map(|conn| conn.listing(&gateway.node))
            .collect(),
    };
    let list: Vec<Value> = all
        .into_iter()
        .filter(|c| {
            filter
                .client_id
                .as_deref()
                .is_none_or(|id| c["client_id"] == id)
        })
        .filter(|c| {
            filter.topic.as_deref().is_none_or(|topic| {
                c["topics"]
                    .as_array()
                    .is_some_and(|topics| topics.iter().any(|t| t == topic))
            })
        })
        .collect();
    Json(json!({ "connections": list }))
}

/// `GET /api/v1/apps/{app}/presence/{topic}` (topic raw or percent-encoded)
/// → `{"presence": <presence_state payload>}`.
pub async fn presence(
    State(gateway): State<Arc<Gateway>>,
    AuthorizedApp(app): AuthorizedApp,
    Path((_, topic)): Path<(String, String)>,
) -> impl IntoResponse {
    Json(json!({ "presence": gateway.hub.presence_state(app.id(), &topic).await }))
}

/// `POST /api/v1/apps/{app}/schema/refresh` → 200 `{"version"}` or 502.
pub async fn refresh_schema(
    State(gateway): State<Arc<Gateway>>,
    AuthorizedApp(app): AuthorizedApp,
) -> impl IntoResponse {
    match load_schema(&gateway.webhooks, &app).await {
        Ok(version) => (StatusCode::OK, Json(json!({ "version": version }))),
        Err(reason) => (StatusCode::BAD_GATEWAY, Json(json!({ "reason": reason }))),
    }
}
