//! The subscription table: `(app, topic)` → subscribed connections, in a
//! sharded concurrent map.

use std::collections::HashMap;
use std::sync::Arc;

use dashmap::DashMap;

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

/// All subscriptions of the process.
pub struct Hub {
    topics: DashMap<String, HashMap<u64, Arc<Connection>>>,
    metrics: Arc<Metrics>,
    /// Presence tables of topics with `presence: true`.
    pub presence: Presence,
}

impl Hub {
    /// An empty hub.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self {
            topics: DashMap::new(),
            metrics,
            presence: Presence::new(),
        }
    }

    /// Subscribes `conn` to `topic` of its app.
    pub fn subscribe(&self, topic: &str, conn: &Arc<Connection>) {
        self.topics
            .entry(key(conn.app.id(), topic))
            .or_default()
            .insert(conn.id, conn.clone());
    }

    /// Removes a subscription; forgets the topic when it was the last.
    pub fn unsubscribe(&self, app: &str, topic: &str, connection_id: u64) {
        self.topics
            .remove_if_mut(&key(app, topic), |_, subscribers| {
                subscribers.remove(&connection_id);
                subscribers.is_empty()
            });
    }

    /// Number of local subscribers of a topic.
    pub fn subscriber_count(&self, app: &str, topic: &str) -> usize {
        self.topics.get(&key(app, topic)).map_or(0, |s| s.len())
    }

    /// Delivers `message` to every local subscriber of its topic in `app`,
    /// except `exclude` (the sender of a `broadcast_from`).
    pub fn publish(&self, app: &str, message: &Broadcast, exclude: Option<u64>) -> Delivered {
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
}
