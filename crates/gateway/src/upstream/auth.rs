//! The auth webhook (CONTRACT §5): asks the app who a connecting client is.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::client::{WebhookKind, Webhooks};
use crate::apps::App;
use crate::session::Identity;

/// What the gateway tells the app about a connection attempt.
#[derive(Debug, Serialize)]
pub struct AuthRequest<'a> {
    /// The client's token.
    pub token: &'a str,
    /// `websocket` or `longpoll`.
    pub connection_type: &'static str,
    /// The app id.
    pub app: &'a str,
    /// The `client_type` query parameter, if any.
    pub client_type: Option<&'a str>,
    /// Every other query parameter.
    pub params: &'a Map<String, Value>,
    /// The client's address.
    pub remote_ip: String,
    /// The `Origin` header, if any.
    pub origin: Option<&'a str>,
}

/// Why auth refused a connection; each maps to a 403 reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthRefusal {
    /// The app answered 401/403.
    Unauthorized,
    /// The app failed, timed out or answered nonsense.
    ServiceError,
}

#[derive(Deserialize)]
struct AuthAnswer {
    client_id: Value,
    #[serde(default)]
    client_type: Option<String>,
    #[serde(default)]
    metadata: Option<Map<String, Value>>,
    #[serde(default)]
    permissions: Option<Vec<String>>,
}

/// Calls the app's auth endpoint.
pub async fn authenticate(
    webhooks: &Webhooks,
    app: &App,
    url: &str,
    request: &AuthRequest<'_>,
    request_id: &str,
) -> Result<Identity, AuthRefusal> {
    let body = serde_json::to_vec(request).map_err(|_| AuthRefusal::ServiceError)?;
    let response = webhooks
        .call(app, WebhookKind::Auth, url, body, request_id, true)
        .await
        .map_err(|_| AuthRefusal::ServiceError)?;
    match response.status {
        200 => {}
        401 | 403 => return Err(AuthRefusal::Unauthorized),
        other => {
            webhooks
                .metrics()
                .webhook_failure(app.id(), "auth", "status");
            tracing::warn!(
                app = app.id(),
                request_id,
                status = other,
                "auth webhook answered an error status"
            );
            return Err(AuthRefusal::ServiceError);
        }
    }
    let answer: AuthAnswer = serde_json::from_slice(&response.body).map_err(|e| {
        webhooks.metrics().webhook_failure(app.id(), "auth", "bad_response");
        tracing::warn!(app = app.id(), request_id, error = %e, "auth webhook answer is not the expected JSON");
        AuthRefusal::ServiceError
    })?;
    let client_id = match answer.client_id {
        Value::String(s) if !s.is_empty() => s,
        Value::Number(n) => n.to_string(),
        _ => {
            tracing::warn!(
                app = app.id(),
                request_id,
                "auth webhook answered without a client_id"
            );
            return Err(AuthRefusal::ServiceError);
        }
    };
    Ok(Identity {
        client_id,
        client_type: answer
            .client_type
            .or_else(|| request.client_type.map(str::to_owned))
            .map(String::into_boxed_str),
        metadata: answer.metadata.unwrap_or_default(),
        permissions: answer.permissions.unwrap_or_default(),
        token_expires_at: None,
    })
}
