//! Names of every Redis key and channel the cluster uses, under the
//! configured prefix. App ids cannot contain `:`, so `<app>:<topic>` splits
//! unambiguously at the first colon.

/// Key and channel names for one prefix.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    /// Pub/sub channel of a topic.
    pub fn topic_channel(&self, app: &str, topic: &str) -> String {
        format!("{}:topic:{app}:{topic}", self.prefix)
    }

    /// `(app, topic)` of a topic channel.
    pub fn parse_topic_channel<'a>(&self, channel: &'a str) -> Option<(&'a str, &'a str)> {
        let rest = channel
            .strip_prefix(&self.prefix)?
            .strip_prefix(":topic:")?;
        rest.split_once(':')
    }

    /// The control channel.
    pub fn control_channel(&self) -> String {
        format!("{}:control", self.prefix)
    }

    /// Hash of a topic's presence entries.
    pub fn presence(&self, app: &str, topic: &str) -> String {
        format!("{}:presence:{app}:{topic}", self.prefix)
    }

    /// Set of `<app>:<topic>` where a node has presence entries.
    pub fn node_presence(&self, node: &str) -> String {
        format!("{}:node-presence:{node}", self.prefix)
    }

    /// Hash of an app's connections.
    pub fn connections(&self, app: &str) -> String {
        format!("{}:connections:{app}", self.prefix)
    }

    /// Set of apps where a node has connections.
    pub fn node_apps(&self, node: &str) -> String {
        format!("{}:node-apps:{node}", self.prefix)
    }

    /// Set of every node that announced itself.
    pub fn nodes(&self) -> String {
        format!("{}:nodes", self.prefix)
    }

    /// A node's liveness key (expires after the node TTL).
    pub fn node_alive(&self, node: &str) -> String {
        format!("{}:node:{node}", self.prefix)
    }

    /// The lock one node takes to reap a dead node.
    pub fn reap_lock(&self, node: &str) -> String {
        format!("{}:reap:{node}", self.prefix)
    }

    /// Hash of admin-registered apps.
    pub fn apps(&self) -> String {
        format!("{}:apps", self.prefix)
    }
}

/// The hash field of one connection of one node.
pub fn field(node: &str, connection: u64) -> String {
    format!("{node}:{connection}")
}

/// The node part of a hash field.
pub fn field_node(field: &str) -> &str {
    field.rsplit_once(':').map_or(field, |(node, _)| node)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_channels_round_trip_with_colons_in_topics() {
        let keys = Keys::new("t1");
        let channel = keys.topic_channel("app-1", "room:42:x");
        assert_eq!(
            keys.parse_topic_channel(&channel),
            Some(("app-1", "room:42:x"))
        );
        assert_eq!(keys.parse_topic_channel("other:topic:a:b"), None);
        assert_eq!(field_node(&field("host-ab:12", 7)), "host-ab:12");
    }
}
