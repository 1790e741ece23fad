//! The channels one session has joined, by topic.
//!
//! A vector, not a hash map: a connection joins a handful of topics (at most
//! `max_channels_per_connection`, 100 by default), a linear scan of that many
//! is as fast as hashing, and an empty vector costs nothing while a hash
//! map's first insert allocates room for several entries — paid by every
//! idle connection.

use super::JoinedChannel;

/// Topic → joined channel.
#[derive(Default)]
pub(super) struct JoinedChannels(Vec<(Box<str>, JoinedChannel)>);

impl JoinedChannels {
    pub(super) fn get(&self, topic: &str) -> Option<&JoinedChannel> {
        self.0.iter().find(|(t, _)| &**t == topic).map(|(_, c)| c)
    }

    /// Adds or replaces the channel of `topic`.
    pub(super) fn insert(&mut self, topic: &str, channel: JoinedChannel) {
        match self.0.iter_mut().find(|(t, _)| &**t == topic) {
            Some((_, existing)) => *existing = channel,
            None => self.0.push((topic.into(), channel)),
        }
    }

    pub(super) fn remove(&mut self, topic: &str) -> Option<JoinedChannel> {
        let index = self.0.iter().position(|(t, _)| &**t == topic)?;
        Some(self.0.swap_remove(index).1)
    }

    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    pub(super) fn topics(&self) -> Vec<String> {
        self.0.iter().map(|(t, _)| t.to_string()).collect()
    }
}
