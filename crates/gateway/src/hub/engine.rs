//! The `Engine` seam: what a node shares with the other nodes of a cluster.
//!
//! The hub always delivers to local subscribers itself; the engine carries
//! broadcasts to other nodes and keeps the cluster-wide views (presence,
//! connections) that the APIs read. [`MemoryEngine`] is the single-node
//! engine: nothing to share, every view is the local one. The Redis engine
//! lives in `crate::cluster`.

use futures_util::future::BoxFuture;
use serde_json::{Map, Value};

use super::Broadcast;
use crate::config::RawApp;
use crate::session::Connection;

/// One presence entry as the cluster sees it (and stores it in Redis).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PresenceEntry {
    /// Presence key (client id).
    pub key: String,
    /// The meta, `phx_ref` included.
    pub meta: Map<String, Value>,
}

/// What a node shares with the rest of the cluster.
pub trait Engine: Send + Sync {
    /// Carries a broadcast (already delivered locally) to the other nodes.
    fn publish(&self, app: &str, message: &Broadcast);

    /// Makes broadcasts of `topic` published on other nodes reach this node;
    /// resolves once that is true (so a join's ok reply means the
    /// subscription is live cluster-wide).
    fn subscribe<'a>(&'a self, app: &'a str, topic: &'a str) -> BoxFuture<'a, ()>;

    /// This node has no subscriber of `topic` left.
    fn unsubscribe(&self, app: &str, topic: &str);

    /// A connection of this node was tracked on a presence topic.
    fn presence_tracked(&self, app: &str, topic: &str, connection: u64, entry: &PresenceEntry);

    /// A connection of this node left a presence topic.
    fn presence_untracked(&self, app: &str, topic: &str, connection: u64);

    /// The cluster-wide presence entries of a topic, in a stable order;
    /// `None` means "use the local table" (single node).
    fn presence_entries<'a>(
        &'a self,
        app: &'a str,
        topic: &'a str,
    ) -> BoxFuture<'a, Option<Vec<PresenceEntry>>>;

    /// A connection of this node opened or changed its topics.
    fn connection_updated(&self, connection: &Connection);

    /// A connection of this node closed.
    fn connection_closed(&self, connection: &Connection);

    /// Every connection of `app` in the cluster as the connections API lists
    /// them; `None` means "use the local registry".
    fn connections<'a>(&'a self, app: &'a str) -> BoxFuture<'a, Option<Vec<Value>>>;

    /// Asks every other node to close the client's connections.
    fn disconnect_elsewhere(&self, app: &str, client_id: &str);

    /// Stores (or with `None` removes) an admin-registered app where every
    /// node sees it. The memory engine has nowhere to store it (the state
    /// file does that on a single node).
    fn save_app<'a>(
        &'a self,
        id: &'a str,
        raw: Option<&'a RawApp>,
    ) -> BoxFuture<'a, Result<(), String>>;

    /// True when admin-registered apps live in the engine (not the state file).
    fn shares_apps(&self) -> bool;

    /// False while the engine cannot reach what it shares through (Redis).
    fn is_healthy(&self) -> bool;
}

/// The single-node engine.
#[derive(Debug, Default)]
pub struct MemoryEngine;

impl Engine for MemoryEngine {
    fn publish(&self, _app: &str, _message: &Broadcast) {}

    fn subscribe<'a>(&'a self, _app: &'a str, _topic: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(std::future::ready(()))
    }

    fn unsubscribe(&self, _app: &str, _topic: &str) {}

    fn presence_tracked(&self, _app: &str, _topic: &str, _connection: u64, _entry: &PresenceEntry) {
    }

    fn presence_untracked(&self, _app: &str, _topic: &str, _connection: u64) {}

    fn presence_entries<'a>(
        &'a self,
        _app: &'a str,
        _topic: &'a str,
    ) -> BoxFuture<'a, Option<Vec<PresenceEntry>>> {
        Box::pin(std::future::ready(None))
    }

    fn connection_updated(&self, _connection: &Connection) {}

    fn connection_closed(&self, _connection: &Connection) {}

    fn connections<'a>(&'a self, _app: &'a str) -> BoxFuture<'a, Option<Vec<Value>>> {
        Box::pin(std::future::ready(None))
    }

    fn disconnect_elsewhere(&self, _app: &str, _client_id: &str) {}

    fn save_app<'a>(
        &'a self,
        _id: &'a str,
        _raw: Option<&'a RawApp>,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(std::future::ready(Ok(())))
    }

    fn shares_apps(&self) -> bool {
        false
    }

    fn is_healthy(&self) -> bool {
        true
    }
}
