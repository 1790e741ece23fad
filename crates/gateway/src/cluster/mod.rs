//! The Redis engine: many switchboard nodes acting as one gateway
//! (CONTRACT §9), with Redis as the only shared part — no gossip, no
//! consensus of our own.
//!
//! - Broadcasts travel over Redis pub/sub, one channel per `(app, topic)`; a
//!   node subscribes to a topic's channel only while it has local
//!   subscribers, and encodes each message it receives once per wire format
//!   for all of them (the hub does that).
//! - Presence entries and connection listings live in Redis hashes, with one
//!   field per connection (`<node>:<connection>`); nodes refresh a liveness
//!   key with a TTL, and every node reaps the entries of nodes whose key
//!   expired, announcing presence leaves for them.
//! - Control messages (disconnect a client, app registry changed) travel on
//!   one control channel.
//! - Apps registered through the admin API live in a Redis hash and are
//!   mirrored by every node.
//!
//! When Redis is unreachable the node keeps serving its own clients, reports
//! not-ready, counts every cross-node message it could not send, and, once
//! Redis is back, resubscribes and writes its presence and connections again
//! (a restarted Redis has lost them).

mod apps;
mod engine;
mod inbox;
mod keys;
mod nodes;
mod outbox;

pub use engine::RedisEngine;
