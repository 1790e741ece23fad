//! One connected client: its identity, the channels it joined, its push
//! and join limits, and the dispatch of every message it sends
//! (PHOENIX_PROTOCOL.md §4).
//!
//! A [`Session`] lives inside its transport's task and is never shared; what
//! others need to reach the client is the [`Connection`] handle. Each
//! protocol event has its own file (`heartbeat`, `join`, `leave`, `push`),
//! all answering through the same reply helpers here.

mod channels;
mod close;
mod connection;
mod heartbeat;
mod identity;
mod join;
mod leave;
mod push;
mod registry;
mod throttle;

use std::sync::Arc;

use serde_json::json;
use switchboard_protocol::{
    encode_message, encode_reply, peek_header, FrameRef, Message, Payload, Vsn,
};

use channels::JoinedChannels;
pub use close::CloseReason;
pub use connection::{
    unix_now, Connection, NewConnection, Outbound, OutboundReceiver, SendOutcome,
};
pub use identity::Identity;
pub use registry::{ConnectionRegistry, RegisterError};

use crate::apps::PushLimiter;
use crate::gateway::Gateway;
use crate::upstream::{emit_event, LifecycleEvent};

/// A channel the client has joined.
#[derive(Debug, Clone)]
struct JoinedChannel {
    /// The join_ref the client joined with (may be null for V1 clients).
    join_ref: Option<String>,
    /// What replies and pushes carry: the join_ref, or the join's ref when
    /// the client sent none.
    reply_join_ref: Option<String>,
    /// Whether the client is tracked in the topic's presence.
    presence: bool,
}

/// The per-connection protocol state machine.
pub struct Session {
    gateway: Arc<Gateway>,
    conn: Arc<Connection>,
    channels: JoinedChannels,
    limiter: Option<Box<PushLimiter>>,
    throttle: Option<Box<throttle::Throttle>>,
}

impl Session {
    /// A session for a newly accepted connection; counts it as open and
    /// tells the app (`connection.established`).
    pub fn new(gateway: Arc<Gateway>, conn: Arc<Connection>) -> Self {
        gateway
            .metrics
            .connection_delta(conn.app.id(), conn.transport, 1);
        gateway.hub.engine().connection_updated(&conn);
        emit_event(
            &gateway.webhooks,
            &conn.app,
            LifecycleEvent::ConnectionEstablished,
            &conn.identity.client_id,
            None,
            &conn.identity.metadata,
        );
        Self {
            gateway,
            conn,
            channels: JoinedChannels::default(),
            limiter: None,
            throttle: None,
        }
    }

    /// The connection handle.
    pub fn connection(&self) -> &Arc<Connection> {
        &self.conn
    }

    /// Dispatches one decoded client message.
    pub async fn handle(&mut self, message: Message) {
        // A connection being closed (rate limits, disconnect, drain) takes
        // nothing more: the rest of a burst already read is not processed.
        if self.conn.is_closing() {
            return;
        }
        self.gateway.metrics.message_in(self.conn.app.id());
        match (message.topic.as_str(), message.event.as_str()) {
            ("phoenix", "heartbeat") => self.heartbeat(&message),
            // Boxed: a join may await the join webhook, and that future is
            // large; inline, every connection's task would carry its size
            // for life.
            (_, "phx_join") => Box::pin(self.join(message)).await,
            (_, "phx_leave") => self.leave(&message),
            _ => self.push(message),
        }
    }

    /// Answers a frame larger than `max_frame_bytes`: `message_too_large`
    /// to its ref when its header can be read, else dropped as malformed.
    pub fn refuse_oversized(&mut self, frame: FrameRef<'_>, vsn: Vsn) {
        let Some(header) = peek_header(frame, vsn) else {
            return self.drop_malformed("oversized frame without a readable header");
        };
        self.gateway.metrics.message_in(self.conn.app.id());
        self.gateway
            .metrics
            .dropped(self.conn.app.id(), "message_too_large", 1);
        self.reply_error(
            header.join_ref.as_deref(),
            header.msg_ref.as_deref(),
            &header.topic,
            "message_too_large",
        );
    }

    /// Drops a client frame that could not be parsed: logged and counted,
    /// nothing else happens (CONTRACT §7).
    pub fn drop_malformed(&self, error: &str) {
        tracing::warn!(
            app = self.conn.app.id(),
            client_id = %self.conn.identity.client_id,
            connection = self.conn.id,
            transport = self.conn.transport.as_str(),
            error,
            "dropped a client frame that could not be parsed"
        );
        self.gateway
            .metrics
            .dropped(self.conn.app.id(), "malformed_frame", 1);
    }

    /// Ends the session: leaves every channel and tells the app.
    pub fn terminate(&mut self) {
        let topics = self.channels.topics();
        for topic in topics {
            self.forget_channel(&topic);
        }
        self.gateway.connections.unregister(&self.conn);
        self.gateway.hub.engine().connection_closed(&self.conn);
        self.gateway
            .metrics
            .connection_delta(self.conn.app.id(), self.conn.transport, -1);
        emit_event(
            &self.gateway.webhooks,
            &self.conn.app,
            LifecycleEvent::ConnectionClosed,
            &self.conn.identity.client_id,
            None,
            &self.conn.identity.metadata,
        );
    }

    fn forget_channel(&mut self, topic: &str) -> Option<JoinedChannel> {
        self.forget_channel_with(topic, true)
    }

    /// Leaves a channel; `untrack` false keeps its presence entry (a rejoin
    /// on the same connection updates it instead).
    fn forget_channel_with(&mut self, topic: &str, untrack: bool) -> Option<JoinedChannel> {
        let joined = self.channels.remove(topic)?;
        self.gateway
            .hub
            .unsubscribe(self.conn.app.id(), topic, self.conn.id);
        self.conn.remove_topic(topic);
        self.gateway.hub.engine().connection_updated(&self.conn);
        if joined.presence && untrack {
            self.gateway
                .hub
                .untrack_presence(self.conn.app.id(), topic, self.conn.id);
        }
        emit_event(
            &self.gateway.webhooks,
            &self.conn.app,
            LifecycleEvent::ChannelLeft,
            &self.conn.identity.client_id,
            Some(topic),
            &self.conn.identity.metadata,
        );
        Some(joined)
    }

    fn reply(
        &self,
        join_ref: Option<&str>,
        msg_ref: Option<&str>,
        topic: &str,
        status: &str,
        response: &Payload,
    ) {
        send_reply(
            &self.gateway,
            &self.conn,
            join_ref,
            msg_ref,
            topic,
            status,
            response,
        );
    }

    fn reply_error(
        &self,
        join_ref: Option<&str>,
        msg_ref: Option<&str>,
        topic: &str,
        reason: &str,
    ) {
        self.reply(join_ref, msg_ref, topic, "error", &reason_payload(reason));
    }

    /// Ends a channel abnormally: forgets it and sends
    /// `[jr, jr, topic, "phx_error", {"reason": "channel_crash"}]`; phoenix.js
    /// then rejoins after its rejoin backoff.
    fn crash_channel(&mut self, topic: &str) {
        if let Some(joined) = self.forget_channel(topic) {
            let join_ref = joined.join_ref.as_deref();
            let frame = encode_message(
                self.conn.format,
                join_ref,
                join_ref,
                topic,
                "phx_error",
                &reason_payload("channel_crash"),
            );
            self.deliver(frame);
        }
    }

    /// `[jr, jr, topic, "phx_close", {}]`
    fn send_close(&self, join_ref: Option<&str>, topic: &str) {
        let frame = encode_message(
            self.conn.format,
            join_ref,
            join_ref,
            topic,
            "phx_close",
            &Payload::empty(),
        );
        self.deliver(frame);
    }

    fn deliver(&self, frame: switchboard_protocol::Frame) {
        deliver(&self.gateway, &self.conn, frame);
    }
}

/// `{"reason": reason}`
pub(crate) fn reason_payload(reason: &str) -> Payload {
    Payload::Json(json!({ "reason": reason }))
}

/// Queues a reply to `conn`, counting it.
pub(crate) fn send_reply(
    gateway: &Gateway,
    conn: &Connection,
    join_ref: Option<&str>,
    msg_ref: Option<&str>,
    topic: &str,
    status: &str,
    response: &Payload,
) {
    let frame = encode_reply(conn.format, join_ref, msg_ref, topic, status, response);
    deliver(gateway, conn, frame);
}

fn deliver(gateway: &Gateway, conn: &Connection, frame: switchboard_protocol::Frame) {
    match conn.send(frame) {
        SendOutcome::Queued => gateway.metrics.messages_out(conn.app.id(), 1),
        SendOutcome::SlowConsumer => gateway.metrics.dropped(conn.app.id(), "slow_consumer", 1),
        SendOutcome::Closed => gateway
            .metrics
            .dropped(conn.app.id(), "connection_closing", 1),
    }
}
