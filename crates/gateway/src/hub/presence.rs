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

/// One tracked connection on a topic.
#[derive(Debug, Clone)]
struct Entry {
    key: String,
    meta: Map<String, Value>,
}

/// Presence tables of every topic with presence, by `(app, topic)`.
pub struct Presence {
    topics: DashMap<String, HashMap<u64, Entry>>,
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
    /// `presence_diff` payload announcing it.
    pub fn track(
        &self,
        app: &str,
        topic: &str,
        connection: u64,
        presence_key: &str,
        mut meta: Map<String, Value>,
    ) -> Value {
        let phx_ref = format!(
            "{}{:x}",
            self.ref_prefix,
            self.next_ref.fetch_add(1, Ordering::Relaxed)
        );
        meta.insert("phx_ref".into(), Value::String(phx_ref));
        let entry = Entry {
            key: presence_key.to_owned(),
            meta,
        };
        let diff = diff(Some(&entry), None);
        self.topics
            .entry(key(app, topic))
            .or_default()
            .insert(connection, entry);
        diff
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

    /// The `presence_state` payload of a topic: key → `{"metas": [...]}`,
    /// metas in the order they were tracked.
    pub fn state(&self, app: &str, topic: &str) -> Value {
        let mut state = Map::new();
        if let Some(entries) = self.topics.get(&key(app, topic)) {
            let mut ordered: Vec<(&u64, &Entry)> = entries.iter().collect();
            ordered.sort_by_key(|(connection, _)| **connection);
            for (_, entry) in ordered {
                let slot = state
                    .entry(entry.key.clone())
                    .or_insert_with(|| json!({ "metas": [] }));
                if let Some(metas) = slot.get_mut("metas").and_then(Value::as_array_mut) {
                    metas.push(Value::Object(entry.meta.clone()));
                }
            }
        }
        Value::Object(state)
    }
}

fn diff(joined: Option<&Entry>, left: Option<&Entry>) -> Value {
    let side = |entry: Option<&Entry>| {
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
        let a = presence.track("app", "room:1", 1, "alice", Map::new());
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
