//! The subscription table: `(app, topic)` → subscribed connections, in a
//! sharded concurrent map.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use dashmap::DashMap;
use serde_json::{Map, Value};
use switchboard_protocol::Payload;

use super::engine::{Engine, MemoryEngine};
use super::presence::state_of;
use super::{Broadcast, Presence};
use crate::session::{Connection, SendOutcome};
use crate::telemetry::Metrics;

/// Topics are scoped to their app; `\n` cannot appear in an app id, so the
/// joined key is unambiguous.
fn key(app: &str, topic: &str) -> String {
    let mut key = String::with_capacity(app.len() + 1 + topic.len());
    key.push_str(app);
    key.push('\n');
    key.push_str(topic);
    key
}

/// Counts of one delivery.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    /// Frames queued to subscribers.
    pub queued: usize,
    /// Frames dropped (slow or closing subscribers).
    pub dropped: usize,
}

/// All subscriptions of the process, its presence tables, and the engine
/// that shares both with other nodes.
pub struct Hub {
    topics: DashMap<String, HashMap<u64, Arc<Connection>>>,
    metrics: Arc<Metrics>,
    /// Presence tables of this node's connections.
    pub presence: Presence,
    engine: OnceLock<Arc<dyn Engine>>,
}

impl Hub {
    /// An empty hub on the single-node engine until [`Hub::set_engine`].
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self {
            topics: DashMap::new(),
            metrics,
            presence: Presence::new(),
            engine: OnceLock::new(),
        }
    }

    /// Installs the cluster engine (once, at startup).
    pub fn set_engine(&self, engine: Arc<dyn Engine>) {
        let _ = self.engine.set(engine);
    }

    /// The engine: the cluster one if installed, else the memory engine.
    pub fn engine(&self) -> &dyn Engine {
        static MEMORY: MemoryEngine = MemoryEngine;
        match self.engine.get() {
            Some(engine) => engine.as_ref(),
            None => &MEMORY,
        }
    }

    /// Subscribes `conn` to `topic` of its app; resolves once broadcasts
    /// from every node reach it.
    pub async fn subscribe(&self, topic: &str, conn: &Arc<Connection>) {
        self.topics
            .entry(key(conn.app.id(), topic))
            .or_default()
            .insert(conn.id, conn.clone());
        self.engine().subscribe(conn.app.id(), topic).await;
    }

    /// Removes a subscription; forgets the topic when it was the last.
    pub fn unsubscribe(&self, app: &str, topic: &str, connection_id: u64) {
        let mut emptied = false;
        self.topics
            .remove_if_mut(&key(app, topic), |_, subscribers| {
                subscribers.remove(&connection_id);
                emptied = subscribers.is_empty();
                emptied
            });
        if emptied {
            self.engine().unsubscribe(app, topic);
        }
    }

    /// Number of local subscribers of a topic.
    pub fn subscriber_count(&self, app: &str, topic: &str) -> usize {
        self.topics.get(&key(app, topic)).map_or(0, |s| s.len())
    }

    /// Every topic with local subscribers, as `(app, topic)`.
    pub fn local_topics(&self) -> Vec<(String, String)> {
        self.topics
            .iter()
            .filter_map(|t| {
                let (app, topic) = t.key().split_once('\n')?;
                Some((app.to_owned(), topic.to_owned()))
            })
            .collect()
    }

    /// Delivers `message` to every subscriber of its topic in `app`, on
    /// this node and (through the engine) on every other, except `exclude`
    /// (the local sender of a `broadcast_from`).
    pub fn publish(&self, app: &str, message: &Broadcast, exclude: Option<u64>) -> Delivered {
        let delivered = self.deliver_local(app, message, exclude);
        self.engine().publish(app, message);
        delivered
    }

    /// Delivers `message` to this node's subscribers only.
    pub fn deliver_local(&self, app: &str, message: &Broadcast, exclude: Option<u64>) -> Delivered {
        let mut delivered = Delivered::default();
        if let Some(subscribers) = self.topics.get(&key(app, message.topic())) {
            for (id, conn) in subscribers.iter() {
                if Some(*id) == exclude {
                    continue;
                }
                match conn.send(message.frame(conn.format)) {
                    SendOutcome::Queued => delivered.queued += 1,
                    SendOutcome::SlowConsumer | SendOutcome::Closed => delivered.dropped += 1,
                }
            }
        }
        self.metrics.messages_out(app, delivered.queued as u64);
        if delivered.dropped > 0 {
            self.metrics
                .dropped(app, "subscriber_unavailable", delivered.dropped as u64);
        }
        delivered
    }

    /// Tracks a connection on a presence topic (or, `replacing`, updates its
    /// meta after a rejoin of the same topic) and broadcasts the
    /// `presence_diff` everywhere.
    pub fn track_presence(
        &self,
        app: &str,
        topic: &str,
        connection: u64,
        presence_key: &str,
        meta: Map<String, Value>,
        replacing: bool,
    ) {
        let (diff, entry) = if replacing {
            self.presence
                .update(app, topic, connection, presence_key, meta)
        } else {
            self.presence
                .track(app, topic, connection, presence_key, meta)
        };
        self.engine()
            .presence_tracked(app, topic, connection, &entry);
        self.publish(
            app,
            &Broadcast::new(topic, "presence_diff", Payload::Json(diff)),
            None,
        );
    }

    /// Stops tracking a connection and broadcasts the leave everywhere.
    pub fn untrack_presence(&self, app: &str, topic: &str, connection: u64) {
        if let Some(diff) = self.presence.untrack(app, topic, connection) {
            self.engine().presence_untracked(app, topic, connection);
            self.publish(
                app,
                &Broadcast::new(topic, "presence_diff", Payload::Json(diff)),
                None,
            );
        }
    }

    /// The `presence_state` payload of a topic, cluster-wide.
    pub async fn presence_state(&self, app: &str, topic: &str) -> Value {
        match self.engine().presence_entries(app, topic).await {
            Some(entries) => state_of(&entries),
            None => self.presence.state(app, topic),
        }
    }
}
