//! What arrives from Redis pub/sub: broadcasts published on other nodes
//! (delivered to this node's subscribers, encoded once per wire format by
//! the hub) and control messages.

use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use fred::interfaces::EventInterface;
use serde_json::Value;
use switchboard_protocol::Payload;
use tokio::sync::broadcast::error::RecvError;

use super::engine::Envelope;
use super::RedisEngine;
use crate::hub::Broadcast;
use crate::session::CloseReason;

impl RedisEngine {
    pub(super) fn spawn_receiver(self: Arc<Self>) {
        let mut messages = self.subscriber.message_rx();
        tokio::spawn(async move {
            loop {
                match messages.recv().await {
                    Ok(message) => {
                        let Some(body) = message.value.as_string() else {
                            continue;
                        };
                        self.receive(&message.channel, &body);
                    }
                    Err(RecvError::Lagged(missed)) => {
                        // Not one app's loss: labelled with the empty app, which no app can have.
                        self.metrics.dropped("", "cluster_receiver_lagged", missed);
                        tracing::warn!(
                            missed,
                            "cross-node messages lost: this node fell behind Redis pub/sub"
                        );
                    }
                    Err(RecvError::Closed) => return,
                }
            }
        });
    }

    fn receive(&self, channel: &str, body: &str) {
        let Some(gateway) = self.gateway.upgrade() else {
            return;
        };
        if channel == self.keys.control_channel() {
            return self.control(&gateway, body);
        }
        // This node's own publishes come back from Redis: recognised by the
        // envelope's first field without parsing the message.
        if body.starts_with(&self.own_envelope_prefix) {
            return;
        }
        let Some((app, topic)) = self.keys.parse_topic_channel(channel) else {
            return;
        };
        let envelope: Envelope = match serde_json::from_str(body) {
            Ok(envelope) => envelope,
            Err(error) => {
                tracing::warn!(%error, channel, "dropped a cross-node message that could not be parsed");
                self.metrics.dropped(app, "malformed_cluster_message", 1);
                return;
            }
        };
        if envelope.n == self.node {
            return; // delivered locally when it was published
        }
        let payload = match (envelope.p, envelope.b) {
            (_, Some(b64)) => match base64::engine::general_purpose::STANDARD.decode(b64) {
                Ok(bytes) => Payload::Binary(Bytes::from(bytes)),
                Err(_) => return,
            },
            (Some(value), None) => Payload::Json(value),
            (None, None) => Payload::empty(),
        };
        gateway
            .hub
            .deliver_local(app, &Broadcast::new(topic, envelope.e, payload), None);
    }

    fn control(&self, gateway: &crate::gateway::Gateway, body: &str) {
        let Ok(message) = serde_json::from_str::<Value>(body) else {
            return;
        };
        if message["n"] == self.node.as_str() {
            return;
        }
        match message["t"].as_str() {
            Some("disconnect") => {
                let (Some(app), Some(client_id)) =
                    (message["app"].as_str(), message["client_id"].as_str())
                else {
                    return;
                };
                let closed = gateway.connections.close_matching(
                    app,
                    Some(client_id),
                    CloseReason::Disconnected,
                );
                if closed > 0 {
                    tracing::info!(
                        app,
                        client_id,
                        closed,
                        "disconnect requested by another node"
                    );
                }
            }
            Some("apps") => self.wake_app_sync(),
            _ => {}
        }
    }
}
