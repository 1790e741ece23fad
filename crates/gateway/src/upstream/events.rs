//! The optional events webhook (CONTRACT §5): fire-and-forget lifecycle
//! notices. Never delays a client: sent from a spawned task, and dropped
//! (logged, counted) when the app's in-flight cap is full.

use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};

use super::client::{new_request_id, WebhookKind, Webhooks};
use crate::apps::App;
use crate::session::unix_now;

/// A lifecycle notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum LifecycleEvent {
    /// A connection was accepted.
    #[serde(rename = "connection.established")]
    ConnectionEstablished,
    /// A connection ended.
    #[serde(rename = "connection.closed")]
    ConnectionClosed,
    /// A client joined a channel.
    #[serde(rename = "channel.joined")]
    ChannelJoined,
    /// A client left a channel (leave or disconnect).
    #[serde(rename = "channel.left")]
    ChannelLeft,
}

#[derive(Serialize)]
struct EventBody<'a> {
    #[serde(rename = "type")]
    kind: LifecycleEvent,
    client_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    channel: Option<&'a str>,
    metadata: &'a Map<String, Value>,
    at: u64,
}

/// Sends a lifecycle event if the app has an `events_endpoint`.
pub fn emit_event(
    webhooks: &Arc<Webhooks>,
    app: &Arc<App>,
    kind: LifecycleEvent,
    client_id: &str,
    channel: Option<&str>,
    metadata: &Map<String, Value>,
) {
    let Some(url) = app.config().events_endpoint.clone() else {
        return;
    };
    let body = match serde_json::to_vec(&EventBody {
        kind,
        client_id,
        channel,
        metadata,
        at: unix_now(),
    }) {
        Ok(body) => body,
        Err(_) => return,
    };
    let webhooks = webhooks.clone();
    let app = app.clone();
    tokio::spawn(async move {
        let request_id = new_request_id();
        // Failures are logged and counted by the client; there is no one to tell.
        let _ = webhooks
            .call(&app, WebhookKind::Events, &url, body, &request_id, false)
            .await;
    });
}
