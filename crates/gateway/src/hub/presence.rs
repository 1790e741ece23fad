//! Phoenix Presence for topics whose channel has `presence: true`
//! (CONTRACT §4, PHOENIX_PROTOCOL.md §9).
//!
//! Each joined connection is one tracked entry: key = client id, meta = the
//! auth metadata over the join's `meta` (the app's word wins) plus a unique
//! `phx_ref`. Several connections of one client are several metas under one
//! key. The table answers `presence_state` snapshots and builds the
//! `presence_diff` payloads; sending them is the session's job.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;
use serde_json::{json, Map, Value};

use super::engine::PresenceEntry;

/// Presence tables of every topic with presence, by `(app, topic)`.
pub struct Presence {
    topics: DashMap<String, HashMap<u64, PresenceEntry>>,
    ref_prefix: String,
    next_ref: AtomicU64,
}

impl Default for Presence {
    fn default() -> Self {
        Self::new()
    }
}

fn key(app: &str, topic: &str) -> String {
    format!("{app}\n{topic}")
}

impl Presence {
    /// Empty tables. `phx_ref`s are unique per process run: a random prefix
    /// keeps refs from a restarted node distinct from the old ones.
    pub fn new() -> Self {
        let prefix = uuid::Uuid::new_v4().simple().to_string();
        Self {
            topics: DashMap::new(),
            ref_prefix: prefix[..8].to_owned(),
            next_ref: AtomicU64::new(1),
        }
    }

    /// Tracks `connection` under `presence_key` with `meta`; returns the
    /// `presence_diff` payload announcing it and the entry (with its
    /// `phx_ref`).
    pub fn track(
        &self,
        app: &str,
        topic: &str,
        connection: u64,
        presence_key: &str,
        mut meta: Map<String, Value>,
    ) -> (Value, PresenceEntry) {
        let phx_ref = format!(
            "{}{:x}",
            self.ref_prefix,
            self.next_ref.fetch_add(1, Ordering::Relaxed)
        );
        meta.insert("phx_ref".into(), Value::String(phx_ref));
        let entry = PresenceEntry {
            key: presence_key.to_owned(),
            meta,
        };
        let diff = diff(Some(&entry), None);
        self.topics
            .entry(key(app, topic))
            .or_default()
            .insert(connection, entry.clone());
        (diff, entry)
    }

    /// Replaces the meta of a tracked connection (a rejoin of the same
    /// topic on the same connection): the new meta gets a new `phx_ref` and
    /// `phx_ref_prev` = the old one; the diff joins the new meta and leaves
    /// the old, as Phoenix's `Presence.update` does. Tracks afresh when the
    /// connection was not tracked.
    pub fn update(
        &self,
        app: &str,
        topic: &str,
        connection: u64,
        presence_key: &str,
        mut meta: Map<String, Value>,
    ) -> (Value, PresenceEntry) {
        let previous = self
            .topics
            .get(&key(app, topic))
            .and_then(|entries| entries.get(&connection).cloned());
        let Some(previous) = previous else {
            return self.track(app, topic, connection, presence_key, meta);
        };
        if let Some(old_ref) = previous.meta.get("phx_ref") {
            meta.insert("phx_ref_prev".into(), old_ref.clone());
        }
        let (_, entry) = self.track(app, topic, connection, presence_key, meta);
        (diff_of(std::slice::from_ref(&entry), &[previous]), entry)
    }

    /// Stops tracking `connection`; returns the `presence_diff` payload
    /// announcing the leave, if it was tracked.
    pub fn untrack(&self, app: &str, topic: &str, connection: u64) -> Option<Value> {
        let mut removed = None;
        self.topics.remove_if_mut(&key(app, topic), |_, entries| {
            removed = entries.remove(&connection);
            entries.is_empty()
        });
        removed.map(|entry| diff(None, Some(&entry)))
    }

    /// The local entries of a topic, in the order they were tracked.
    pub fn entries(&self, app: &str, topic: &str) -> Vec<PresenceEntry> {
        let Some(entries) = self.topics.get(&key(app, topic)) else {
            return Vec::new();
        };
        let mut ordered: Vec<(&u64, &PresenceEntry)> = entries.iter().collect();
        ordered.sort_by_key(|(connection, _)| **connection);
        ordered.into_iter().map(|(_, e)| e.clone()).collect()
    }

    /// Every local entry: `(app, topic, connection, entry)`, for re-sharing
    /// after the cluster store lost its data.
    pub fn all_entries(&self) -> Vec<(String, String, u64, PresenceEntry)> {
        let mut all = Vec::new();
        for topic in self.topics.iter() {
            let Some((app, name)) = topic.key().split_once('\n') else {
                continue;
            };
            for (connection, entry) in topic.value() {
                all.push((app.to_owned(), name.to_owned(), *connection, entry.clone()));
            }
        }
        all
    }

    /// The `presence_state` payload of a topic from this node's table.
    pub fn state(&self, app: &str, topic: &str) -> Value {
        state_of(&self.entries(app, topic))
    }
}

/// A `presence_state` payload: key → `{"metas": [...]}`, metas in order.
pub fn state_of(entries: &[PresenceEntry]) -> Value {
    let mut state = Map::new();
    for entry in entries {
        let slot = state
            .entry(entry.key.clone())
            .or_insert_with(|| json!({ "metas": [] }));
        if let Some(metas) = slot.get_mut("metas").and_then(Value::as_array_mut) {
            metas.push(Value::Object(entry.meta.clone()));
        }
    }
    Value::Object(state)
}

/// A `presence_diff` payload with the given joins and leaves.
pub fn diff_of(joins: &[PresenceEntry], leaves: &[PresenceEntry]) -> Value {
    json!({ "joins": state_of(joins), "leaves": state_of(leaves) })
}

fn diff(joined: Option<&PresenceEntry>, left: Option<&PresenceEntry>) -> Value {
    let side = |entry: Option<&PresenceEntry>| {
        let mut side = Map::new();
        if let Some(entry) = entry {
            side.insert(
                entry.key.clone(),
                json!({ "metas": [Value::Object(entry.meta.clone())] }),
            );
        }
        Value::Object(side)
    };
    json!({ "joins": side(joined), "leaves": side(left) })
}

/// The meta of a joining client: the join params' `meta` object overlaid
/// with the auth metadata (CONTRACT §10: where both have a key, the app's
/// metadata wins).
pub fn join_meta(params: &Value, auth_metadata: &Map<String, Value>) -> Map<String, Value> {
    let mut meta = params
        .get("meta")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    meta.remove("phx_ref");
    meta.remove("phx_ref_prev");
    for (k, v) in auth_metadata {
        meta.insert(k.clone(), v.clone());
    }
    meta
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_connections_of_one_client_are_two_metas_under_one_key() {
        let presence = Presence::new();
        let (a, _) = presence.track("app", "room:1", 1, "alice", Map::new());
        presence.track("app", "room:1", 2, "alice", Map::new());
        presence.track("app", "room:1", 3, "bob", Map::new());
        let state = presence.state("app", "room:1");
        assert_eq!(state["alice"]["metas"].as_array().unwrap().len(), 2);
        assert_eq!(state["bob"]["metas"].as_array().unwrap().len(), 1);
        assert_eq!(a["leaves"], json!({}));
        let first_ref = a["joins"]["alice"]["metas"][0]["phx_ref"].clone();
        let leave = presence.untrack("app", "room:1", 1).unwrap();
        assert_eq!(leave["leaves"]["alice"]["metas"][0]["phx_ref"], first_ref);
        assert_eq!(leave["joins"], json!({}));
        assert_eq!(
            presence.state("app", "room:1")["alice"]["metas"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        assert!(presence.untrack("app", "room:1", 1).is_none());
        assert_eq!(presence.state("other", "room:1"), json!({}));
    }

    #[test]
    fn auth_metadata_wins_over_join_meta() {
        let auth = json!({"role": "admin"}).as_object().unwrap().clone();
        let meta = join_meta(
            &json!({"meta": {"role": "god", "device": "web", "phx_ref": "x"}}),
            &auth,
        );
        assert_eq!(
            Value::Object(meta),
            json!({"role": "admin", "device": "web"})
        );
    }
}
