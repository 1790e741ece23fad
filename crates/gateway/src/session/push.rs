//! Client pushes of channel events (PHOENIX_PROTOCOL.md §4 rules 6 and 7;
//! CONTRACT §4, §5, §7): rate limits (the connection's, then the app's
//! ceiling), event and permission checks, payload validation, then either a
//! direct broadcast or a forward (within `max_webhook_payload_bytes`) to the
//! app's message webhook, whose actions run in a task of their own so a slow
//! backend never stalls the client's socket.

use std::sync::Arc;

use serde_json::json;
use switchboard_protocol::{Message, Payload};
use switchboard_schema::Delivery;

use super::{reason_payload, send_reply, Connection, Session};
use crate::apps::{PushLimiter, RateLimitHit};
use crate::gateway::Gateway;
use crate::hub::Broadcast;
use crate::upstream::{forward_message, new_request_id, Action, MessageRequest};

impl Session {
    pub(super) fn push(&mut self, message: Message) {
        let topic = message.topic.as_str();
        let msg_ref = message.msg_ref.as_deref();
        let Some(joined) = self.channels.get(topic) else {
            self.reply_error(None, msg_ref, topic, "unmatched topic");
            return;
        };
        if message.join_ref.is_some() && message.join_ref != joined.join_ref {
            return; // for an older join of this topic: dropped, as Phoenix does
        }
        let join_ref = joined.reply_join_ref.clone();
        let join_ref = join_ref.as_deref();
        let app = self.conn.app.clone();
        let Some(schema) = app.schema() else {
            self.reply_error(join_ref, msg_ref, topic, "unmatched topic");
            return;
        };

        let limiter = self
            .limiter
            .get_or_insert_with(|| Box::new(PushLimiter::default()));
        if let Err(hit) = limiter.check(&schema, &message.event) {
            let kind = match hit {
                RateLimitHit::Default => "push",
                RateLimitHit::Event => "push_event",
            };
            self.refuse_rate_limited(kind, true, join_ref, msg_ref, topic);
            return;
        }
        if let Some(throttle) = &mut self.throttle {
            throttle.passed();
        }
        if !app.allow_push() {
            self.refuse_rate_limited("app", false, join_ref, msg_ref, topic);
            return;
        }

        let matched = match schema.match_topic(topic) {
            Ok(matched) => matched,
            // The schema changed since the join and no longer has this
            // topic: the channel ends as a crashed Phoenix channel would
            // (`phx_error`), so the client rejoins and the join is decided
            // again under the new schema.
            Err(_) => {
                let topic = topic.to_owned();
                self.crash_channel(&topic);
                return;
            }
        };
        let Some(rule) = schema
            .event(&message.event)
            .filter(|rule| rule.allowed_on(topic, &matched))
        else {
            self.reply_error(join_ref, msg_ref, topic, "invalid_event_for_channel");
            return;
        };
        if !matched.may_send(&self.conn.identity.permissions) {
            self.reply_error(join_ref, msg_ref, topic, "unauthorized");
            return;
        }
        let validation = match &message.payload {
            Payload::Json(value) => rule.validate(value),
            Payload::Binary(_) if rule.has_payload_schema() => Err(vec![
                "a binary payload cannot satisfy the event's JSON Schema".to_owned(),
            ]),
            Payload::Binary(_) => Ok(()),
        };
        if let Err(errors) = validation {
            let response = Payload::Json(json!({ "reason": "invalid_payload", "errors": errors }));
            self.reply(join_ref, msg_ref, topic, "error", &response);
            return;
        }

        let message_endpoint = app.config().message_endpoint.clone();
        let delivery = rule.delivery().unwrap_or(if message_endpoint.is_some() {
            Delivery::Forward
        } else {
            Delivery::Broadcast
        });
        match (delivery, message_endpoint) {
            (Delivery::Broadcast, _) => {
                let broadcast = Broadcast::new(
                    message.topic.clone(),
                    message.event.clone(),
                    message.payload.clone(),
                );
                self.gateway.hub.publish(app.id(), &broadcast, None);
                self.reply(join_ref, msg_ref, topic, "ok", &Payload::empty());
            }
            (Delivery::Forward, None) => {
                tracing::warn!(app = app.id(), event = %message.event, "event is forwarded but the app has no message_endpoint");
                self.reply_error(join_ref, msg_ref, topic, "api_error");
            }
            (Delivery::Forward, Some(_)) if self.over_webhook_payload_limit(&message.payload) => {
                self.reply_error(join_ref, msg_ref, topic, "message_too_large");
            }
            (Delivery::Forward, Some(url)) => {
                let forward = Forward {
                    gateway: self.gateway.clone(),
                    conn: self.conn.clone(),
                    join_ref: join_ref.map(str::to_owned),
                    message,
                    url,
                };
                tokio::spawn(forward.run());
            }
        }
    }
}

impl Session {
    /// True (logged and counted) when a payload is larger than
    /// `max_webhook_payload_bytes`: its JSON text, or a binary payload's
    /// bytes (before base64).
    fn over_webhook_payload_limit(&self, payload: &Payload) -> bool {
        let max = self.gateway.limits.max_webhook_payload_bytes;
        let size = match payload {
            Payload::Json(value) => json_len(value),
            Payload::Binary(bytes) => bytes.len(),
        };
        if size <= max {
            return false;
        }
        let app = self.conn.app.id();
        self.gateway
            .metrics
            .limit_exceeded(app, "max_webhook_payload_bytes");
        self.gateway.metrics.dropped(app, "message_too_large", 1);
        tracing::info!(
            app,
            client_id = %self.conn.identity.client_id,
            connection = self.conn.id,
            size,
            max,
            "push not forwarded: payload larger than max_webhook_payload_bytes"
        );
        true
    }
}

/// Length of a value's compact JSON text, without building the text.
fn json_len(value: &serde_json::Value) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // Writing to a counter cannot fail, and a `Value` always serializes.
    let _ = serde_json::to_writer(&mut counter, value);
    counter.0
}

/// One push on its way to the app's message webhook.
struct Forward {
    gateway: Arc<Gateway>,
    conn: Arc<Connection>,
    join_ref: Option<String>,
    message: Message,
    url: String,
}

impl Forward {
    async fn run(self) {
        let request_id = new_request_id();
        let identity = &self.conn.identity;
        let request = MessageRequest {
            event: &self.message.event,
            payload: None,
            payload_base64: None,
            channel: &self.message.topic,
            client_id: &identity.client_id,
            client_type: identity.client_type.as_deref(),
            metadata: &identity.metadata,
            msg_ref: self.message.msg_ref.as_deref(),
            request_id: &request_id,
        }
        .with_payload(&self.message.payload);
        let result =
            forward_message(&self.gateway.webhooks, &self.conn.app, &self.url, &request).await;
        match result {
            Ok(actions) => self.apply(actions),
            Err(failure) => self.reply("error", &reason_payload(failure.reason())),
        }
    }

    fn apply(&self, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Reply { status, data } => self.reply(&status, &data),
                Action::Broadcast {
                    event,
                    data,
                    topic,
                    exclude_sender,
                } => {
                    let topic = topic.unwrap_or_else(|| self.message.topic.clone());
                    let exclude = exclude_sender.then_some(self.conn.id);
                    let broadcast = Broadcast::new(topic, event, data);
                    self.gateway
                        .hub
                        .publish(self.conn.app.id(), &broadcast, exclude);
                }
                Action::NoReply => {}
            }
        }
    }

    fn reply(&self, status: &str, response: &Payload) {
        send_reply(
            &self.gateway,
            &self.conn,
            self.join_ref.as_deref(),
            self.message.msg_ref.as_deref(),
            &self.message.topic,
            status,
            response,
        );
    }
}
