//! An app's schema document (CONTRACT §4), compiled once into a [`Schema`]
//! that answers the per-message questions cheaply: which channel does a
//! topic belong to ([`Schema::match_topic`]), may this client join or push
//! there ([`ChannelMatch::may_join`], [`ChannelMatch::may_send`]), is this
//! event allowed on this topic ([`EventRule::allowed_on`]), is its payload
//! valid ([`EventRule::validate`]), and what are the push rate limits
//! ([`Schema::rate_limits`]).
//!
//! This crate is pure: no I/O, no async, no clock. Fetching the document and
//! counting pushes belong to the server. A [`Schema`] is `Send + Sync` and is
//! meant to be shared by every session of an app behind an `Arc`, replaced
//! whole when the app serves a new document.
//!
//! Modules, one job each: [`document`] reads the JSON shape, then
//! [`pattern`], [`variable`], [`permission`], [`channel`], [`event`] and
//! [`rate_limit`] compile their part; [`error`] holds the error types.
//! The language decisions (pattern grammar, wildcard grants, ...) are
//! documented in the module that owns them.

#![deny(missing_docs)]

pub mod channel;
pub mod document;
pub mod error;
pub mod event;
pub mod pattern;
pub mod permission;
pub mod rate_limit;
pub mod variable;

use std::collections::HashMap;

use serde_json::Value;

pub use channel::{ChannelMatch, ChannelRule};
pub use error::{SchemaError, TopicError};
pub use event::{Delivery, EventRule};
pub use rate_limit::{Limit, RateLimits};

use document::RawDocument;

/// A compiled schema document.
#[derive(Debug)]
pub struct Schema {
    version: String,
    channels: Vec<ChannelRule>,
    events: Vec<EventRule>,
    events_by_name: HashMap<String, usize>,
    rate_limits: RateLimits,
}

impl Schema {
    /// Parses and compiles a schema document from JSON bytes.
    pub fn from_json(doc: &[u8]) -> Result<Schema, SchemaError> {
        let value: Value = serde_json::from_slice(doc).map_err(|e| {
            SchemaError::new("", format!("the schema document is not valid JSON: {e}"))
        })?;
        Schema::from_value(value)
    }

    /// Compiles a schema document already parsed as JSON.
    ///
    /// Compiling costs regexes and JSON Schemas; do it once per document, not
    /// per message (and, for large documents, off the async executor).
    pub fn from_value(doc: Value) -> Result<Schema, SchemaError> {
        let raw = RawDocument::read(&doc)?;
        let channels = raw
            .channels
            .iter()
            .map(ChannelRule::compile)
            .collect::<Result<Vec<_>, _>>()?;
        let mut events = Vec::with_capacity(raw.events.len());
        let mut events_by_name = HashMap::with_capacity(raw.events.len());
        for raw_event in &raw.events {
            if let Some(first) = events_by_name.get(&raw_event.name) {
                return Err(SchemaError::new(
                    format!("{}.name", raw_event.path),
                    format!(
                        "event \"{}\" is already defined by events[{first}]",
                        raw_event.name
                    ),
                ));
            }
            events_by_name.insert(raw_event.name.clone(), events.len());
            events.push(EventRule::compile(raw_event)?);
        }
        Ok(Schema {
            version: raw.version,
            channels,
            events,
            events_by_name,
            rate_limits: RateLimits::compile(&raw.rate_limits)?,
        })
    }

    /// The document's `version` (`"unversioned"` when it declares none).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Finds the channel `topic` belongs to.
    ///
    /// Channels are tried in document order; the first whose pattern matches
    /// the topic's shape AND whose variable values all pass their rules wins.
    /// When none wins: [`TopicError::InvalidChannelPattern`] if some pattern
    /// matched the shape but a variable broke its rules, otherwise
    /// [`TopicError::Unmatched`].
    pub fn match_topic(&self, topic: &str) -> Result<ChannelMatch<'_>, TopicError> {
        let mut spans = Vec::new();
        let mut shape_matched = false;
        for (index, channel) in self.channels.iter().enumerate() {
            if channel.matches_shape(topic, &mut spans) {
                if channel.accepts_values(topic, &spans) {
                    return Ok(ChannelMatch::new(channel, index, topic, spans));
                }
                shape_matched = true;
            }
        }
        Err(if shape_matched {
            TopicError::InvalidChannelPattern
        } else {
            TopicError::Unmatched
        })
    }

    /// The rule of event `name`, if the document defines it.
    pub fn event(&self, name: &str) -> Option<&EventRule> {
        self.events_by_name.get(name).map(|&i| &self.events[i])
    }

    /// Every event rule, in document order.
    pub fn events(&self) -> &[EventRule] {
        &self.events
    }

    /// The push rate limits.
    pub fn rate_limits(&self) -> &RateLimits {
        &self.rate_limits
    }

    /// Every channel rule, in document order.
    pub fn channels(&self) -> &[ChannelRule] {
        &self.channels
    }
}

#[cfg(test)]
mod tests;
