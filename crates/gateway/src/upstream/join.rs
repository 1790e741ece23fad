//! The optional join webhook (CONTRACT §5): lets the app allow or deny a
//! join that the schema already permits.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::client::{WebhookKind, Webhooks};
use super::message::ForwardFailure;
use crate::apps::App;

/// The app's decision.
#[derive(Debug, Clone, PartialEq)]
pub enum JoinDecision {
    /// Join; `data` becomes the join reply's response.
    Allow(Value),
    /// Refuse with this reason (`join_denied` when the app gives none).
    Deny(String),
}

#[derive(Serialize)]
struct JoinRequest<'a> {
    channel: &'a str,
    params: &'a Value,
    client_id: &'a str,
    client_type: Option<&'a str>,
    metadata: &'a Map<String, Value>,
}

#[derive(Deserialize)]
#[serde(tag = "action", rename_all = "lowercase")]
enum JoinAnswer {
    Allow {
        #[serde(default)]
        data: Option<Value>,
    },
    Deny {
        #[serde(default)]
        reason: Option<String>,
    },
}

/// Calls the app's join endpoint.
pub async fn ask_join(
    webhooks: &Webhooks,
    app: &App,
    url: &str,
    channel: &str,
    params: &Value,
    identity: &crate::session::Identity,
    request_id: &str,
) -> Result<JoinDecision, ForwardFailure> {
    let body = serde_json::to_vec(&JoinRequest {
        channel,
        params,
        client_id: &identity.client_id,
        client_type: identity.client_type.as_deref(),
        metadata: &identity.metadata,
    })
    .map_err(|_| ForwardFailure::Error)?;
    let response = webhooks
        .call(app, WebhookKind::Join, url, body, request_id, true)
        .await
        .map_err(|e| ForwardFailure::from(&e))?;
    if response.status != 200 {
        webhooks
            .metrics()
            .webhook_failure(app.id(), "join", "status");
        tracing::warn!(
            app = app.id(),
            request_id,
            status = response.status,
            "join webhook answered an error status"
        );
        return Err(ForwardFailure::Error);
    }
    match serde_json::from_slice::<JoinAnswer>(&response.body) {
        Ok(JoinAnswer::Allow { data }) => Ok(JoinDecision::Allow(
            data.unwrap_or_else(|| Value::Object(Map::new())),
        )),
        Ok(JoinAnswer::Deny { reason }) => Ok(JoinDecision::Deny(
            reason
                .filter(|r| !r.is_empty())
                .unwrap_or_else(|| "join_denied".to_owned()),
        )),
        Err(error) => {
            webhooks
                .metrics()
                .webhook_failure(app.id(), "join", "bad_response");
            tracing::warn!(app = app.id(), request_id, %error, "join webhook answer not understood");
            Err(ForwardFailure::Error)
        }
    }
}
