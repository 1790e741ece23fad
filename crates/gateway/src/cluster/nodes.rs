//! Node liveness and recovery: the health check behind readiness, the
//! heartbeat key with a TTL, the reaper that clears the presence entries and
//! connections of dead nodes (announcing presence leaves for them), and the
//! resync that rewrites this node's state after Redis comes back.
//!
//! Timing: the health check runs every second (so readiness turns 503
//! within a few seconds of losing Redis); the heartbeat and the reaper run
//! every `node_ttl / 3`. A node that dies stops refreshing its key, which
//! expires after `node_ttl`; within the next reaper round its entries leave
//! every view, so ghosts are gone within about `1.4 × node_ttl`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fred::interfaces::{ClientLike, EventInterface, HashesInterface, KeysInterface, SetsInterface};
use fred::types::{Expiration, SetOptions};
use serde_json::Value as JsonValue;
use switchboard_protocol::Payload;

use super::keys::field_node;
use super::RedisEngine;
use crate::hub::{diff_of, Broadcast, PresenceEntry};

const HEALTH_INTERVAL: Duration = Duration::from_secs(1);

impl RedisEngine {
    pub(super) fn spawn_node_tasks(self: Arc<Self>) {
        // A reconnect can be too quick for the once-a-second ping to see
        // (Redis restarted within a second): it must resync all the same,
        // since the new connections hold no subscriptions and a restarted
        // Redis no state.
        let mut reconnects = [self.client.reconnect_rx(), self.subscriber.reconnect_rx()];
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(HEALTH_INTERVAL);
            let heartbeat_every = (self.node_ttl / 3).max(Duration::from_millis(300));
            let mut last_heartbeat: Option<Instant> = None;
            let mut cleared_previous_run = false;
            loop {
                tick.tick().await;
                if self.gateway.strong_count() == 0 {
                    return;
                }
                let reachable = matches!(
                    tokio::time::timeout(HEALTH_INTERVAL, self.client.ping::<String>(None)).await,
                    Ok(Ok(_))
                ) && self.subscriber.is_connected();
                if !reachable {
                    if self.set_healthy(false) {
                        tracing::warn!("Redis unreachable: not ready; local delivery continues, cross-node messages are dropped and counted");
                    }
                    continue;
                }
                let mut reconnected = false;
                for rx in &mut reconnects {
                    reconnected |= drained(rx);
                }
                if !cleared_previous_run {
                    // A node restarted under the same name (a fixed
                    // SWITCHBOARD_NODE) renews its liveness key before the
                    // old one expires, so nobody would ever reap what its
                    // previous run left: it clears that itself, announcing
                    // the presence leaves, before writing anything new.
                    self.clear_node(&self.node).await;
                    cleared_previous_run = true;
                }
                // Ready only once subscribed again: a node that reported
                // ready before resubscribing would miss what is published
                // meanwhile (disconnects on the control channel included).
                if !self.is_healthy_now() || reconnected {
                    self.resync().await;
                    last_heartbeat = None;
                    self.set_healthy(true);
                    tracing::info!(node = %self.node, "Redis reachable: cluster state resynchronised");
                }
                if last_heartbeat.is_none_or(|t| t.elapsed() >= heartbeat_every) {
                    last_heartbeat = Some(Instant::now());
                    self.heartbeat().await;
                    self.reap_dead_nodes().await;
                }
            }
        });
    }

    async fn heartbeat(&self) {
        let ttl_ms = self.node_ttl.as_millis() as i64;
        let _ = self
            .client
            .set::<(), _, _>(
                self.keys.node_alive(&self.node),
                "1",
                Some(Expiration::PX(ttl_ms)),
                None,
                false,
            )
            .await;
        let _ = self
            .client
            .sadd::<i64, _, _>(self.keys.nodes(), self.node.as_str())
            .await;
    }

    /// Subscriptions, presence entries and connection listings again: after
    /// an outage Redis may have restarted empty.
    async fn resync(&self) {
        self.resubscribe().await;
        self.heartbeat().await;
        let Some(gateway) = self.gateway.upgrade() else {
            return;
        };
        for (app, topic, connection, entry) in gateway.hub.presence.all_entries() {
            self.write_presence(&app, &topic, connection, &entry);
        }
        for connection in gateway.connections.all() {
            self.write_connection(&connection);
        }
    }

    async fn reap_dead_nodes(&self) {
        let Ok(nodes) = self
            .client
            .smembers::<Vec<String>, _>(self.keys.nodes())
            .await
        else {
            return;
        };
        let mut dead = HashSet::new();
        for node in nodes {
            if node == self.node {
                continue;
            }
            let exists = self
                .client
                .exists::<i64, _>(self.keys.node_alive(&node))
                .await;
            if let Ok(0) = exists {
                dead.insert(node);
            }
        }
        *self.dead.write().unwrap_or_else(|p| p.into_inner()) = dead.clone();
        for node in dead {
            self.reap(&node).await;
        }
    }

    /// Clears a dead node's entries. One node does it (a lock with a TTL);
    /// the others see the entries filtered out meanwhile.
    async fn reap(&self, dead: &str) {
        let locked = self
            .client
            .set::<Option<String>, _, _>(
                self.keys.reap_lock(dead),
                self.node.as_str(),
                Some(Expiration::EX(30)),
                Some(SetOptions::NX),
                false,
            )
            .await;
        if !matches!(locked, Ok(Some(_))) {
            return;
        }
        self.clear_node(dead).await;
    }

    /// Deletes a node's presence entries (broadcasting their leaves) and
    /// connection listings, and forgets the node.
    async fn clear_node(&self, dead: &str) {
        tracing::info!(
            node = dead,
            "clearing the presence entries and connections of a dead node (or of this node's previous run)"
        );
        let Some(gateway) = self.gateway.upgrade() else {
            return;
        };
        // Clearing this node's previous run: connections this run already
        // accepted are not stale (connection ids differ between runs).
        let stale = |field: &str| {
            field_node(field) == dead
                && !(dead == self.node
                    && field
                        .rsplit_once(':')
                        .and_then(|(_, id)| id.parse::<u64>().ok())
                        .is_some_and(|id| gateway.connections.contains(id)))
        };
        let topics: Vec<String> = self
            .client
            .smembers(self.keys.node_presence(dead))
            .await
            .unwrap_or_default();
        for app_topic in topics {
            let Some((app, topic)) = app_topic.split_once(':') else {
                continue;
            };
            let key = self.keys.presence(app, topic);
            let stored: HashMap<String, String> =
                self.client.hgetall(&key).await.unwrap_or_default();
            let mut leaves = Vec::new();
            for (field, value) in stored.iter().filter(|(f, _)| stale(f)) {
                let _ = self.client.hdel::<i64, _, _>(&key, field.as_str()).await;
                if let Ok(entry) = serde_json::from_str::<PresenceEntry>(value) {
                    leaves.push(entry);
                }
            }
            if !leaves.is_empty() {
                let diff: JsonValue = diff_of(&[], &leaves);
                gateway.hub.publish(
                    app,
                    &Broadcast::new(topic, "presence_diff", Payload::Json(diff)),
                    None,
                );
            }
        }
        let apps: Vec<String> = self
            .client
            .smembers(self.keys.node_apps(dead))
            .await
            .unwrap_or_default();
        for app in apps {
            let key = self.keys.connections(&app);
            let stored: HashMap<String, String> =
                self.client.hgetall(&key).await.unwrap_or_default();
            for field in stored.keys().filter(|f| stale(f)) {
                let _ = self.client.hdel::<i64, _, _>(&key, field.as_str()).await;
            }
        }
        // One key per DEL: in a Redis Cluster the keys may sit on different shards.
        let _ = self
            .client
            .del::<i64, _>(self.keys.node_presence(dead))
            .await;
        let _ = self.client.del::<i64, _>(self.keys.node_apps(dead)).await;
        let _ = self.client.srem::<i64, _, _>(self.keys.nodes(), dead).await;
    }
}

/// True when a reconnect was announced since the last call.
fn drained(rx: &mut tokio::sync::broadcast::Receiver<fred::types::config::Server>) -> bool {
    use tokio::sync::broadcast::error::TryRecvError;
    let mut any = false;
    loop {
        match rx.try_recv() {
            Ok(_) | Err(TryRecvError::Lagged(_)) => any = true,
            Err(TryRecvError::Empty | TryRecvError::Closed) => return any,
        }
    }
}
