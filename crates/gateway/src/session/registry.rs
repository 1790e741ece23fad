//! Every open connection of this node, for the connections and disconnect
//! APIs, the per-client connection cap, and the drain on shutdown.

use std::sync::Arc;

use dashmap::DashMap;

use super::{CloseReason, Connection};

/// Why a connection could not be registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegisterError {
    /// The client already has `max_connections_per_client` connections.
    TooManyConnections,
}

/// Open connections by id, and connection counts per (app, client id).
#[derive(Default)]
pub struct ConnectionRegistry {
    by_id: DashMap<u64, Arc<Connection>>,
    per_client: DashMap<(String, String), usize>,
}

impl ConnectionRegistry {
    /// Records a new connection unless its client is at `max_per_client`
    /// (0 = unlimited). The check and the count happen under one entry lock,
    /// so concurrent connects cannot overshoot.
    pub fn register(
        &self,
        conn: &Arc<Connection>,
        max_per_client: usize,
    ) -> Result<(), RegisterError> {
        // Counted only when capped: the map costs two strings per client.
        if max_per_client > 0 {
            let key = (conn.app.id().to_owned(), conn.identity.client_id.clone());
            let mut count = self.per_client.entry(key).or_insert(0);
            if *count >= max_per_client {
                return Err(RegisterError::TooManyConnections);
            }
            *count += 1;
        }
        self.by_id.insert(conn.id, conn.clone());
        Ok(())
    }

    /// Forgets a connection.
    pub fn unregister(&self, conn: &Connection) {
        if self.by_id.remove(&conn.id).is_none() {
            return;
        }
        let key = (conn.app.id().to_owned(), conn.identity.client_id.clone());
        self.per_client.remove_if_mut(&key, |_, count| {
            *count = count.saturating_sub(1);
            *count == 0
        });
    }

    /// Connections of `app`, optionally only those of one client or with one
    /// topic joined, ordered by id.
    pub fn list(
        &self,
        app: &str,
        client_id: Option<&str>,
        topic: Option<&str>,
    ) -> Vec<Arc<Connection>> {
        let mut found: Vec<Arc<Connection>> = self
            .by_id
            .iter()
            .filter(|c| c.app.id() == app)
            .filter(|c| client_id.is_none_or(|id| c.identity.client_id == id))
            .filter(|c| topic.is_none_or(|t| c.has_topic(t)))
            .map(|c| c.value().clone())
            .collect();
        found.sort_by_key(|c| c.id);
        found
    }

    /// Closes every connection of `app` (optionally of one client) for
    /// `reason`; returns how many were closed.
    pub fn close_matching(&self, app: &str, client_id: Option<&str>, reason: CloseReason) -> usize {
        self.list(app, client_id, None)
            .iter()
            .filter(|c| c.close(reason))
            .count()
    }

    /// Closes every connection of the node.
    pub fn close_all(&self, reason: CloseReason) -> usize {
        let all: Vec<Arc<Connection>> = self.by_id.iter().map(|c| c.value().clone()).collect();
        all.iter().filter(|c| c.close(reason)).count()
    }

    /// True when connection `id` is open on this node.
    pub fn contains(&self, id: u64) -> bool {
        self.by_id.contains_key(&id)
    }

    /// Every open connection of the node.
    pub fn all(&self) -> Vec<Arc<Connection>> {
        self.by_id.iter().map(|c| c.value().clone()).collect()
    }

    /// Number of open connections.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// True when no connection is open.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}
