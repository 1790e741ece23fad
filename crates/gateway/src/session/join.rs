//! `phx_join` (PHOENIX_PROTOCOL.md §4 rules 2 and 3; CONTRACT §4, §5, §7):
//! check the connection's join rate, route the topic through the app's
//! schema, check the channel limit and the join permission, ask the app's
//! join webhook when it has one, then subscribe.

use serde_json::Value;
use switchboard_protocol::{encode_push, Message, Payload};
use switchboard_schema::TopicError;

use super::{JoinedChannel, Session};
use crate::hub::join_meta;
use crate::upstream::{ask_join, emit_event, new_request_id, JoinDecision, LifecycleEvent};

impl Session {
    pub(super) async fn join(&mut self, message: Message) {
        let topic = message.topic.as_str();
        let join_ref = message.join_ref.as_deref();
        let msg_ref = message.msg_ref.as_deref();

        // Before anything else, so a refused join leaves an existing join
        // of the topic alone.
        let throttle = self.throttle.get_or_insert_with(Box::default);
        if !throttle.allow_join(&self.gateway.limits) {
            self.refuse_rate_limited("join", true, join_ref, msg_ref, topic);
            return;
        }
        throttle.passed();

        // A second join of a joined topic ends the first join; its phx_close
        // follows the new join's reply on the wire, as in Phoenix. Its
        // presence entry stays until the outcome is known: a new join with
        // presence updates it (phx_ref_prev), anything else untracks it.
        let replaced = self.forget_channel_with(topic, false);
        let was_tracked = replaced.as_ref().is_some_and(|old| old.presence);

        let outcome = self.admit(&message).await;
        match outcome {
            Ok((response, presence)) => {
                self.gateway.hub.subscribe(topic, &self.conn).await;
                self.conn.add_topic(topic);
                self.gateway.hub.engine().connection_updated(&self.conn);
                self.channels.insert(
                    topic,
                    JoinedChannel {
                        join_ref: message.join_ref.clone(),
                        reply_join_ref: message
                            .join_ref
                            .clone()
                            .or_else(|| message.msg_ref.clone()),
                        presence,
                    },
                );
                self.gateway.metrics.join(self.conn.app.id());
                self.reply(
                    join_ref.or(msg_ref),
                    msg_ref,
                    topic,
                    "ok",
                    &Payload::Json(response),
                );
                if presence {
                    self.track_presence(topic, join_ref.or(msg_ref), &message.payload, was_tracked)
                        .await;
                } else if was_tracked {
                    self.untrack_replaced(topic);
                }
                emit_event(
                    &self.gateway.webhooks,
                    &self.conn.app,
                    LifecycleEvent::ChannelJoined,
                    &self.conn.identity.client_id,
                    Some(topic),
                    &self.conn.identity.metadata,
                );
            }
            Err(refusal) => {
                if was_tracked {
                    self.untrack_replaced(topic);
                }
                // Unmatched topics are answered with a null join_ref (rule 2).
                let reply_join_ref = if refusal.reason == "unmatched topic" {
                    None
                } else {
                    join_ref
                };
                self.reply(
                    reply_join_ref,
                    msg_ref,
                    topic,
                    "error",
                    &Payload::Json(refusal.response),
                );
            }
        }
        if let Some(old) = replaced {
            self.send_close(old.join_ref.as_deref(), topic);
        }
    }

    /// Tracks the client on a presence topic: `presence_state` to it (after
    /// its join reply), then a `presence_diff` to every subscriber.
    async fn track_presence(
        &self,
        topic: &str,
        join_ref: Option<&str>,
        params: &Payload,
        replacing: bool,
    ) {
        let params = match params {
            Payload::Json(value) => value,
            Payload::Binary(_) => &Value::Null,
        };
        let meta = join_meta(params, &self.conn.identity.metadata);
        let hub = &self.gateway.hub;
        let app = self.conn.app.id();
        let client_id = &self.conn.identity.client_id;
        hub.track_presence(app, topic, self.conn.id, client_id, meta, replacing);
        let state = Payload::Json(hub.presence_state(app, topic).await);
        self.deliver(encode_push(
            self.conn.format,
            join_ref,
            topic,
            "presence_state",
            &state,
        ));
    }

    /// The replaced join's presence entry, when the new join does not keep it.
    fn untrack_replaced(&self, topic: &str) {
        self.gateway
            .hub
            .untrack_presence(self.conn.app.id(), topic, self.conn.id);
    }

    /// Decides a join: Ok((join reply response, presence on)) or the refusal.
    async fn admit(&self, message: &Message) -> Result<(Value, bool), JoinRefusal> {
        let topic = message.topic.as_str();
        let app = &self.conn.app;
        let Some(schema) = app.schema() else {
            return Err(JoinRefusal::reason("unmatched topic"));
        };
        let matched = schema.match_topic(topic).map_err(|e| match e {
            TopicError::Unmatched => JoinRefusal::reason("unmatched topic"),
            TopicError::InvalidChannelPattern => JoinRefusal::reason("invalid_channel_pattern"),
        })?;
        if self.channels.len() >= self.gateway.limits.max_channels_per_connection {
            self.gateway
                .metrics
                .limit_exceeded(app.id(), "max_channels_per_connection");
            return Err(JoinRefusal::reason("too many channels joined"));
        }
        if !matched.may_join(&self.conn.identity.permissions) {
            return Err(JoinRefusal::reason("unauthorized"));
        }
        let presence = matched.channel().presence();
        let Some(url) = &app.config().join_endpoint else {
            return Ok((Value::Object(Default::default()), presence));
        };
        let params = match &message.payload {
            Payload::Json(value) => value.clone(),
            Payload::Binary(_) => Value::Object(Default::default()),
        };
        let request_id = new_request_id();
        match ask_join(
            &self.gateway.webhooks,
            app,
            url,
            topic,
            &params,
            &self.conn.identity,
            &request_id,
        )
        .await
        {
            Ok(JoinDecision::Allow(data)) => Ok((data, presence)),
            Ok(JoinDecision::Deny(reason)) => Err(JoinRefusal::reason_owned(reason)),
            Err(failure) => Err(JoinRefusal::reason(failure.reason())),
        }
    }
}

/// A refused join: its reason and the error reply's response.
struct JoinRefusal {
    reason: String,
    response: Value,
}

impl JoinRefusal {
    fn reason(reason: &str) -> Self {
        Self::reason_owned(reason.to_owned())
    }

    fn reason_owned(reason: String) -> Self {
        let response = serde_json::json!({ "reason": reason });
        Self { reason, response }
    }
}
