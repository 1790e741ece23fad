//! The two error types of this crate: [`SchemaError`], a schema document that
//! cannot be compiled, and [`TopicError`], a topic no channel accepts.
//!
//! Payload validation failures are not errors of this module: they are plain
//! strings returned by [`crate::EventRule::validate`].

use std::fmt;

/// A schema document that could not be read or compiled.
///
/// Its [`Display`](fmt::Display) is one line: the path of the offending item
/// (e.g. `channels[1].variables.id.format`) followed by what is wrong with it,
/// e.g. `channels[1].variables.id.format: unknown format "uuidv7" in channel
/// "user:{id}"`. Errors about the document as a whole (bad JSON, not an
/// object) have an empty path and print only the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaError {
    path: String,
    message: String,
}

impl SchemaError {
    /// An error at `path` (empty for the document itself).
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }

    /// Where in the document the error is, e.g. `events[2].payload`; empty
    /// when it concerns the document as a whole.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// What is wrong, without the path.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for SchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for SchemaError {}

/// Why [`crate::Schema::match_topic`] refused a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum TopicError {
    /// No channel pattern matches the topic's shape.
    #[error("unmatched topic")]
    Unmatched,
    /// At least one channel pattern matches the topic's shape, but in every
    /// such channel some variable's value breaks that variable's rules.
    #[error("invalid_channel_pattern")]
    InvalidChannelPattern,
}

impl TopicError {
    /// The reason sent to the client in the join's error reply (CONTRACT §7):
    /// `"unmatched topic"` or `"invalid_channel_pattern"`.
    pub fn reason(&self) -> &'static str {
        match self {
            TopicError::Unmatched => "unmatched topic",
            TopicError::InvalidChannelPattern => "invalid_channel_pattern",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_prefixes_the_path() {
        let e = SchemaError::new(
            "channels[1].variables.id.format",
            "unknown format \"uuidv7\"",
        );
        assert_eq!(
            e.to_string(),
            "channels[1].variables.id.format: unknown format \"uuidv7\""
        );
        assert_eq!(SchemaError::new("", "bad").to_string(), "bad");
    }

    #[test]
    fn topic_error_reasons_are_the_contract_strings() {
        assert_eq!(TopicError::Unmatched.reason(), "unmatched topic");
        assert_eq!(
            TopicError::InvalidChannelPattern.reason(),
            "invalid_channel_pattern"
        );
        assert_eq!(TopicError::Unmatched.to_string(), "unmatched topic");
    }
}
