//! [`RedisEngine`]: the [`Engine`] of a clustered node.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use base64::Engine as _;
use dashmap::DashMap;
use fred::clients::{Client, SubscriberClient};
use fred::interfaces::{ClientLike, HashesInterface, PubsubInterface};
use fred::types::config::{Config as RedisConfig, ReconnectPolicy};
use fred::types::Builder;
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchboard_protocol::Payload;
use tokio::sync::OnceCell;

use super::keys::{field, field_node, Keys};
use super::outbox::{Outbox, Write};
use crate::config::{ClusterSettings, RawApp};
use crate::gateway::Gateway;
use crate::hub::{Broadcast, Engine, PresenceEntry};
use crate::session::Connection;
use crate::telemetry::Metrics;

/// How long a join waits for Redis to confirm a subscription before it
/// answers anyway (the subscription is retried when Redis is back).
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(2);

/// A broadcast as it travels between nodes.
#[derive(Serialize, Deserialize)]
pub(super) struct Envelope {
    /// Origin node (it already delivered locally).
    pub n: String,
    /// Event.
    pub e: String,
    /// JSON payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p: Option<Value>,
    /// Binary payload, standard base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub b: Option<String>,
}

/// How every envelope from `node` starts once serialized (`n` is the first
/// field).
fn envelope_prefix(node: &str) -> String {
    format!(
        "{{\"n\":{},",
        serde_json::to_string(node).unwrap_or_default()
    )
}

/// The engine of a node that shares Redis with other nodes.
pub struct RedisEngine {
    pub(super) node: String,
    pub(super) keys: Keys,
    pub(super) client: Client,
    pub(super) subscriber: SubscriberClient,
    pub(super) gateway: Weak<Gateway>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) node_ttl: Duration,
    pub(super) healthy: AtomicBool,
    pub(super) subscriptions: Arc<DashMap<String, Arc<OnceCell<()>>>>,
    /// Nodes whose liveness key had expired at the last check. Entries of
    /// other nodes count as live unless their node is known dead, so a node
    /// that just started sees the others at once.
    pub(super) dead: RwLock<HashSet<String>>,
    pub(super) outbox: Outbox,
    pub(super) app_sync_wake: tokio::sync::Notify,
    /// Redis Cluster: topic channels use sharded pub/sub (SSUBSCRIBE and
    /// SPUBLISH), so each message travels only within its channel's shard.
    pub(super) sharded: bool,
    /// How this node's envelopes start (`{"n":"<node>",`), to skip them on
    /// the way back without parsing.
    pub(super) own_envelope_prefix: String,
}

impl RedisEngine {
    /// Builds the engine and starts its tasks (connection with reconnect
    /// and backoff, receiver, outbox writer, health, heartbeat, reaper, app
    /// sync). Returns at once: Redis being down at startup is not an error;
    /// the node reports not-ready until it connects.
    pub fn start(
        gateway: &Arc<Gateway>,
        settings: &ClusterSettings,
    ) -> Result<Arc<RedisEngine>, String> {
        let config = RedisConfig::from_url(&settings.redis_url)
            .map_err(|e| format!("cluster.redis_url: {e}"))?;
        let sharded = config.server.is_clustered();
        let mut builder = Builder::from_config(RedisConfig {
            fail_fast: false,
            ..config
        });
        builder
            .set_policy(ReconnectPolicy::new_exponential(0, 100, 2_000, 2))
            .with_connection_config(|c| {
                c.connection_timeout = Duration::from_secs(2);
                c.internal_command_timeout = Duration::from_secs(2);
                c.max_command_attempts = 1;
            })
            .with_performance_config(|p| {
                p.default_command_timeout = Duration::from_secs(2);
                p.broadcast_channel_capacity = 16 * 1024;
            });
        let client = builder.build().map_err(|e| format!("redis client: {e}"))?;
        let subscriber = builder
            .build_subscriber_client()
            .map_err(|e| format!("redis subscriber: {e}"))?;
        let keys = Keys::new(&settings.key_prefix);
        let (outbox, writes) = Outbox::new(64 * 1024);
        let engine = Arc::new(RedisEngine {
            node: gateway.node.clone(),
            keys,
            client,
            subscriber,
            gateway: Arc::downgrade(gateway),
            metrics: gateway.metrics.clone(),
            node_ttl: settings.node_ttl,
            healthy: AtomicBool::new(false),
            subscriptions: Arc::new(DashMap::new()),
            dead: RwLock::new(HashSet::new()),
            outbox,
            app_sync_wake: tokio::sync::Notify::new(),
            sharded,
            own_envelope_prefix: envelope_prefix(&gateway.node),
        });
        engine.client.connect();
        engine.subscriber.connect();
        engine.outbox.spawn_writer(engine.clone(), writes);
        engine.clone().spawn_receiver();
        engine.clone().spawn_node_tasks();
        engine.clone().spawn_app_sync();
        tracing::info!(node = %engine.node, "cluster engine started (Redis)");
        Ok(engine)
    }

    pub(super) fn is_healthy_now(&self) -> bool {
        self.healthy.load(Ordering::Acquire)
    }

    pub(super) fn set_healthy(&self, healthy: bool) -> bool {
        self.healthy.swap(healthy, Ordering::AcqRel)
    }

    pub(super) fn is_alive(&self, node: &str) -> bool {
        node == self.node
            || !self
                .dead
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .contains(node)
    }

    /// The values other live nodes stored under `key` (one field per
    /// connection), parsed, in field order; this node's own fields are left
    /// out (the caller adds its local view).
    async fn other_nodes_fields<T: serde::de::DeserializeOwned>(
        &self,
        key: String,
        what: &str,
    ) -> Vec<T> {
        let stored: HashMap<String, String> = match self.client.hgetall(key).await {
            Ok(stored) => stored,
            Err(error) => {
                tracing::warn!(%error, what, "Redis read failed; answering with this node's own view");
                return Vec::new();
            }
        };
        let mut fields: Vec<(String, T)> = stored
            .into_iter()
            .filter(|(f, _)| field_node(f) != self.node && self.is_alive(field_node(f)))
            .filter_map(|(f, v)| Some((f, serde_json::from_str(&v).ok()?)))
            .collect();
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        fields.into_iter().map(|(_, value)| value).collect()
    }

    /// Entries of other live nodes from Redis, plus this node's own table.
    async fn cluster_presence(&self, app: &str, topic: &str) -> Vec<PresenceEntry> {
        let mut entries: Vec<PresenceEntry> = self
            .other_nodes_fields(self.keys.presence(app, topic), "presence")
            .await;
        if let Some(gateway) = self.gateway.upgrade() {
            entries.extend(gateway.hub.presence.entries(app, topic));
        }
        entries
    }

    async fn cluster_connections(&self, app: &str) -> Vec<Value> {
        let mut list: Vec<Value> = self
            .other_nodes_fields(self.keys.connections(app), "connections")
            .await;
        if let Some(gateway) = self.gateway.upgrade() {
            list.extend(
                gateway
                    .connections
                    .list(app, None, None)
                    .iter()
                    .map(|c| c.listing(&self.node)),
            );
        }
        list
    }

    /// Writes this node's presence entry of a connection.
    pub(super) fn write_presence(
        &self,
        app: &str,
        topic: &str,
        connection: u64,
        entry: &PresenceEntry,
    ) {
        let Ok(value) = serde_json::to_string(entry) else {
            return;
        };
        self.outbox.send(
            self,
            Write::HashSet {
                key: self.keys.presence(app, topic),
                field: field(&self.node, connection),
                value,
            },
        );
        self.outbox.send(
            self,
            Write::SetAdd {
                key: self.keys.node_presence(&self.node),
                member: format!("{app}:{topic}"),
            },
        );
    }

    /// Writes this node's listing of a connection.
    pub(super) fn write_connection(&self, connection: &Connection) {
        let app = connection.app.id();
        self.outbox.send(
            self,
            Write::HashSet {
                key: self.keys.connections(app),
                field: field(&self.node, connection.id),
                value: connection.listing(&self.node).to_string(),
            },
        );
        self.outbox.send(
            self,
            Write::SetAdd {
                key: self.keys.node_apps(&self.node),
                member: app.to_owned(),
            },
        );
    }

    /// Subscribes the control channel and every topic channel again (after
    /// Redis came back).
    pub(super) async fn resubscribe(&self) {
        if let Err(error) = self.subscriber.subscribe(self.keys.control_channel()).await {
            tracing::warn!(%error, "subscribing the control channel failed; will retry");
        }
        let channels: Vec<String> = self.subscriptions.iter().map(|s| s.key().clone()).collect();
        for channel in channels {
            if let Err(error) = self.subscribe_topic_channel(&channel).await {
                tracing::warn!(%error, channel, "resubscribing after a Redis reconnect failed; will retry");
            }
        }
    }

    async fn subscribe_topic_channel(&self, channel: &str) -> Result<(), fred::error::Error> {
        if self.sharded {
            self.subscriber.ssubscribe(channel).await
        } else {
            self.subscriber.subscribe(channel).await
        }
    }
}

impl Engine for RedisEngine {
    fn publish(&self, app: &str, message: &Broadcast) {
        let (p, b) = match message.payload() {
            Payload::Json(value) => (Some(value.clone()), None),
            Payload::Binary(bytes) => (
                None,
                Some(base64::engine::general_purpose::STANDARD.encode(bytes)),
            ),
        };
        let envelope = Envelope {
            n: self.node.clone(),
            e: message.event().to_owned(),
            p,
            b,
        };
        let Ok(body) = serde_json::to_string(&envelope) else {
            return;
        };
        self.outbox.send(
            self,
            Write::Publish {
                app: app.to_owned(),
                channel: self.keys.topic_channel(app, message.topic()),
                body,
            },
        );
    }

    fn subscribe<'a>(&'a self, app: &'a str, topic: &'a str) -> BoxFuture<'a, ()> {
        let channel = self.keys.topic_channel(app, topic);
        let cell = self
            .subscriptions
            .entry(channel.clone())
            .or_insert_with(|| Arc::new(OnceCell::new()))
            .clone();
        Box::pin(async move {
            cell.get_or_init(|| async {
                let subscribing = self.subscribe_topic_channel(&channel);
                match tokio::time::timeout(SUBSCRIBE_TIMEOUT, subscribing).await {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => {
                        tracing::warn!(%error, channel, "Redis subscribe failed; retried when Redis is back")
                    }
                    Err(_) => tracing::warn!(channel, "Redis subscribe timed out; retried when Redis is back"),
                }
            })
            .await;
        })
    }

    fn unsubscribe(&self, app: &str, topic: &str) {
        let channel = self.keys.topic_channel(app, topic);
        if self.subscriptions.remove(&channel).is_none() {
            return;
        }
        let subscriber = self.subscriber.clone();
        let subscriptions = self.subscriptions.clone();
        let sharded = self.sharded;
        tokio::spawn(async move {
            // A join may have wanted the topic again in the meantime.
            if !subscriptions.contains_key(&channel) {
                let _ = if sharded {
                    subscriber.sunsubscribe(channel).await
                } else {
                    subscriber.unsubscribe(channel).await
                };
            }
        });
    }

    fn presence_tracked(&self, app: &str, topic: &str, connection: u64, entry: &PresenceEntry) {
        self.write_presence(app, topic, connection, entry);
    }

    fn presence_untracked(&self, app: &str, topic: &str, connection: u64) {
        self.outbox.send(
            self,
            Write::HashDelete {
                key: self.keys.presence(app, topic),
                field: field(&self.node, connection),
            },
        );
    }

    fn presence_entries<'a>(
        &'a self,
        app: &'a str,
        topic: &'a str,
    ) -> BoxFuture<'a, Option<Vec<PresenceEntry>>> {
        Box::pin(async move { Some(self.cluster_presence(app, topic).await) })
    }

    fn connection_updated(&self, connection: &Connection) {
        self.write_connection(connection);
    }

    fn connection_closed(&self, connection: &Connection) {
        self.outbox.send(
            self,
            Write::HashDelete {
                key: self.keys.connections(connection.app.id()),
                field: field(&self.node, connection.id),
            },
        );
    }

    fn connections<'a>(&'a self, app: &'a str) -> BoxFuture<'a, Option<Vec<Value>>> {
        Box::pin(async move { Some(self.cluster_connections(app).await) })
    }

    fn disconnect_elsewhere(&self, app: &str, client_id: &str) {
        let body = serde_json::json!({
            "t": "disconnect", "n": self.node, "app": app, "client_id": client_id
        })
        .to_string();
        self.outbox.send(
            self,
            Write::Publish {
                app: app.to_owned(),
                channel: self.keys.control_channel(),
                body,
            },
        );
    }

    fn save_app<'a>(
        &'a self,
        id: &'a str,
        raw: Option<&'a RawApp>,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(self.store_app(id, raw))
    }

    fn shares_apps(&self) -> bool {
        true
    }

    fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Acquire)
            && self.client.is_connected()
            && self.subscriber.is_connected()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_serialized_envelope_starts_with_its_nodes_prefix() {
        let node = "host-\"1\":a";
        let envelope = Envelope {
            n: node.to_owned(),
            e: "msg".into(),
            p: Some(serde_json::json!({})),
            b: None,
        };
        let body = serde_json::to_string(&envelope).unwrap();
        assert!(body.starts_with(&envelope_prefix(node)), "{body}");
        assert!(!body.starts_with(&envelope_prefix("host-")), "{body}");
    }
}
