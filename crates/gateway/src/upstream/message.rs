//! The message webhook (CONTRACT §5): forwards a client's push to the app
//! and returns the actions it answered with.

use base64::Engine;
use serde::Serialize;
use serde_json::{Map, Value};
use switchboard_protocol::Payload;

use super::actions::{parse_actions, Action};
use super::client::{WebhookError, WebhookKind, Webhooks};
use crate::apps::App;

/// A client push as the app receives it.
#[derive(Debug, Serialize)]
pub struct MessageRequest<'a> {
    /// Event name.
    pub event: &'a str,
    /// JSON payload (absent for binary pushes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<&'a Value>,
    /// Binary payload as standard base64 (absent for JSON pushes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload_base64: Option<String>,
    /// The topic.
    pub channel: &'a str,
    /// The pushing client.
    pub client_id: &'a str,
    /// Its type.
    pub client_type: Option<&'a str>,
    /// Its metadata.
    pub metadata: &'a Map<String, Value>,
    /// The push's ref.
    #[serde(rename = "ref")]
    pub msg_ref: Option<&'a str>,
    /// The request id (also in `x-request-id` and the logs).
    pub request_id: &'a str,
}

impl<'a> MessageRequest<'a> {
    /// Puts `payload` in the field its kind belongs in.
    pub fn with_payload(mut self, payload: &'a Payload) -> Self {
        match payload {
            Payload::Json(value) => self.payload = Some(value),
            Payload::Binary(bytes) => {
                self.payload_base64 = Some(base64::engine::general_purpose::STANDARD.encode(bytes))
            }
        }
        self
    }
}

/// Why a forwarded push got no actions: the reason the client is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardFailure {
    /// `api_timeout`
    Timeout,
    /// `api_error`
    Error,
}

impl ForwardFailure {
    /// The client-facing reason.
    pub fn reason(self) -> &'static str {
        match self {
            ForwardFailure::Timeout => "api_timeout",
            ForwardFailure::Error => "api_error",
        }
    }
}

impl From<&WebhookError> for ForwardFailure {
    fn from(error: &WebhookError) -> Self {
        match error {
            WebhookError::Timeout => ForwardFailure::Timeout,
            _ => ForwardFailure::Error,
        }
    }
}

/// Calls the app's message endpoint.
pub async fn forward_message(
    webhooks: &Webhooks,
    app: &App,
    url: &str,
    request: &MessageRequest<'_>,
) -> Result<Vec<Action>, ForwardFailure> {
    let body = serde_json::to_vec(request).map_err(|_| ForwardFailure::Error)?;
    let response = webhooks
        .call(
            app,
            WebhookKind::Message,
            url,
            body,
            request.request_id,
            true,
        )
        .await
        .map_err(|e| ForwardFailure::from(&e))?;
    if response.status != 200 {
        webhooks
            .metrics()
            .webhook_failure(app.id(), "message", "status");
        tracing::warn!(
            app = app.id(),
            request_id = request.request_id,
            status = response.status,
            "message webhook answered an error status"
        );
        return Err(ForwardFailure::Error);
    }
    parse_actions(&response.body).map_err(|error| {
        webhooks.metrics().webhook_failure(app.id(), "message", "bad_response");
        tracing::warn!(app = app.id(), request_id = request.request_id, %error, "message webhook answer not understood");
        ForwardFailure::Error
    })
}
