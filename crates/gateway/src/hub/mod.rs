//! Topic subscriptions and fan-out.
//!
//! The hub maps `(app, topic)` to the connections subscribed to it and
//! delivers broadcasts to them. A broadcast is encoded at most once per wire
//! format ([`Broadcast`]) and every subscriber's queue gets a shared handle
//! to those bytes. Delivery never waits: it offers the frame to each
//! connection's bounded queue while holding only a shard's read lock, so no
//! lock is ever held across an `.await`. Presence tables live here too:
//! they are per-topic state shared by every connection of the topic.

mod broadcast;
mod engine;
mod presence;
mod topics;

pub use broadcast::Broadcast;
pub use engine::{Engine, MemoryEngine, PresenceEntry};
pub use presence::{diff_of, join_meta, state_of, Presence};
pub use topics::{Delivered, Hub};
