//! Event rules (`events[]`): where an event may be pushed, how it is
//! delivered, and the JSON Schema its payload must satisfy.
//!
//! - `allowedChannels` (or its older name `channels`) entries are patterns in
//!   the topic pattern language. An entry allows the event on a topic when
//!   the entry is exactly the pattern string of the channel the topic
//!   matched, OR the entry — compiled as a pattern whose variables have no
//!   rules — matches the topic. No entries: allowed on every channel.
//! - `payload` is compiled once with `jsonschema`, in the draft its `$schema`
//!   declares (2020-12 when it declares none). External `$ref`s are not
//!   fetched (this crate does no I/O), so a schema that needs one is refused.
//! - `delivery` is `"forward"` or `"broadcast"`; absent means the server
//!   picks its default.

use std::fmt;

use serde_json::Value;

use crate::channel::ChannelMatch;
use crate::document::RawEvent;
use crate::error::SchemaError;
use crate::pattern::Pattern;

/// At most this many payload errors are reported per message.
const MAX_PAYLOAD_ERRORS: usize = 10;
/// A payload error message longer than this many characters is cut (an error
/// can quote the offending value, which may be large).
const MAX_ERROR_CHARS: usize = 200;

/// How a valid push of an event is delivered (CONTRACT §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Delivery {
    /// Sent to the app's `message_endpoint`, which answers with actions.
    Forward,
    /// Broadcast to the topic directly, sender included, no backend round trip.
    Broadcast,
}

impl Delivery {
    /// The document's spelling: `"forward"` or `"broadcast"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Delivery::Forward => "forward",
            Delivery::Broadcast => "broadcast",
        }
    }
}

/// One compiled event rule.
pub struct EventRule {
    name: String,
    delivery: Option<Delivery>,
    allowed: Vec<Pattern>,
    payload: Option<jsonschema::Validator>,
}

impl EventRule {
    pub(crate) fn compile(raw: &RawEvent) -> Result<EventRule, SchemaError> {
        if raw.name.is_empty() {
            return Err(SchemaError::new(
                format!("{}.name", raw.path),
                "an event name may not be empty",
            ));
        }
        let in_event = |key: String, message: String| {
            SchemaError::new(
                format!("{}.{key}", raw.path),
                format!("{message} in event \"{}\"", raw.name),
            )
        };
        let delivery = match raw.delivery.as_deref() {
            None => None,
            Some("forward") => Some(Delivery::Forward),
            Some("broadcast") => Some(Delivery::Broadcast),
            Some(other) => {
                return Err(in_event(
                    "delivery".into(),
                    format!("unknown delivery \"{other}\" (expected \"forward\" or \"broadcast\")"),
                ))
            }
        };
        let allowed = raw
            .allowed_channels
            .iter()
            .enumerate()
            .map(|(i, entry)| {
                Pattern::parse(entry).map_err(|e| {
                    in_event(
                        format!("{}[{i}]", raw.allowed_key),
                        format!("{e} in pattern \"{entry}\""),
                    )
                })
            })
            .collect::<Result<_, _>>()?;
        let payload = match &raw.payload {
            None => None,
            Some(schema) => Some(jsonschema::validator_for(schema).map_err(|e| {
                in_event(
                    "payload".into(),
                    format!("invalid JSON Schema: {}", error_line(&e)),
                )
            })?),
        };
        Ok(EventRule {
            name: raw.name.clone(),
            delivery,
            allowed,
            payload,
        })
    }

    /// The event's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The declared delivery; `None` when the document leaves it to the server.
    pub fn delivery(&self) -> Option<Delivery> {
        self.delivery
    }

    /// The `allowedChannels` entries as written; empty = every channel.
    pub fn allowed_channels(&self) -> impl Iterator<Item = &str> {
        self.allowed.iter().map(Pattern::source)
    }

    /// Whether the event may be pushed on `topic`, which matched the channel
    /// of `matched` (see the module docs for the rule).
    pub fn allowed_on(&self, topic: &str, matched: &ChannelMatch<'_>) -> bool {
        if self.allowed.is_empty() {
            return true;
        }
        let channel_pattern = matched.channel().pattern();
        let mut spans = Vec::new();
        self.allowed
            .iter()
            .any(|entry| entry.source() == channel_pattern || entry.matches(topic, &mut spans))
    }

    /// True when the event declares a payload JSON Schema (a binary payload
    /// can never satisfy one).
    pub fn has_payload_schema(&self) -> bool {
        self.payload.is_some()
    }

    /// Checks `payload` against the event's payload schema; `Ok` when the
    /// event declares none.
    ///
    /// On failure, up to 10 messages, each `"<instance path>: <message>"`,
    /// e.g. `/taskId: 5 is not of type "string"`; an error about the payload
    /// as a whole has no path prefix, e.g. `"taskId" is a required property`.
    /// A message is cut to 200 characters (with `…`) as it may quote the value.
    pub fn validate(&self, payload: &Value) -> Result<(), Vec<String>> {
        let Some(validator) = &self.payload else {
            return Ok(());
        };
        if validator.is_valid(payload) {
            return Ok(());
        }
        let errors: Vec<String> = validator
            .iter_errors(payload)
            .take(MAX_PAYLOAD_ERRORS)
            .map(|e| {
                let message = truncate(error_line(&e));
                let path = e.instance_path().as_str();
                if path.is_empty() {
                    message
                } else {
                    format!("{path}: {message}")
                }
            })
            .collect();
        if errors.is_empty() {
            // is_valid and iter_errors disagreeing would be a jsonschema bug;
            // refuse rather than let an invalid payload through.
            Err(vec!["payload does not match the event's schema".to_owned()])
        } else {
            Err(errors)
        }
    }
}

impl fmt::Debug for EventRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventRule")
            .field("name", &self.name)
            .field("delivery", &self.delivery)
            .field(
                "allowed_channels",
                &self.allowed_channels().collect::<Vec<_>>(),
            )
            .field("has_payload_schema", &self.payload.is_some())
            .finish()
    }
}

/// A `jsonschema` error's text on one line.
fn error_line(e: &jsonschema::ValidationError<'_>) -> String {
    let text = e.to_string();
    if text.contains('\n') {
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    } else {
        text
    }
}

fn truncate(mut text: String) -> String {
    if let Some((cut, _)) = text.char_indices().nth(MAX_ERROR_CHARS) {
        text.truncate(cut);
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(value: Value) -> Result<EventRule, SchemaError> {
        let doc = crate::document::RawDocument::read(&json!({"channels": [], "events": [value]}))?;
        EventRule::compile(&doc.events[0])
    }

    #[test]
    fn delivery_is_optional() {
        assert_eq!(event(json!({"name": "a"})).unwrap().delivery(), None);
        let e = event(json!({"name": "a", "delivery": "broadcast"})).unwrap();
        assert_eq!(e.delivery(), Some(Delivery::Broadcast));
        assert_eq!(e.delivery().unwrap().as_str(), "broadcast");
        assert_eq!(
            event(json!({"name": "a", "delivery": "forward"}))
                .unwrap()
                .delivery(),
            Some(Delivery::Forward)
        );
        assert_eq!(
            event(json!({"name": "a", "delivery": "fanout"}))
                .unwrap_err()
                .to_string(),
            "events[0].delivery: unknown delivery \"fanout\" (expected \"forward\" or \"broadcast\") in event \"a\""
        );
    }

    #[test]
    fn payload_errors_have_paths() {
        let e = event(json!({
            "name": "task:assigned",
            "payload": {"type": "object", "properties": {"taskId": {"type": "string"}}, "required": ["taskId"]}
        }))
        .unwrap();
        assert_eq!(e.validate(&json!({"taskId": "t1"})), Ok(()));
        assert_eq!(
            e.validate(&json!({"taskId": 5})),
            Err(vec!["/taskId: 5 is not of type \"string\"".to_owned()])
        );
        assert_eq!(
            e.validate(&json!({})),
            Err(vec!["\"taskId\" is a required property".to_owned()])
        );
    }

    #[test]
    fn at_most_ten_short_errors() {
        let e = event(json!({"name": "a", "payload": {"items": {"type": "string"}}})).unwrap();
        let errors = e.validate(&json!((0..50).collect::<Vec<_>>())).unwrap_err();
        assert_eq!(errors.len(), 10);
        assert_eq!(errors[3], "/3: 3 is not of type \"string\"");

        let e = event(json!({"name": "a", "payload": {"type": "string"}})).unwrap();
        let big = json!(vec!["x".repeat(50); 100]);
        let errors = e.validate(&big).unwrap_err();
        assert_eq!(errors[0].chars().count(), MAX_ERROR_CHARS + 1);
        assert!(errors[0].ends_with('…'));
    }

    #[test]
    fn no_payload_schema_accepts_anything() {
        let e = event(json!({"name": "a", "payload": null})).unwrap();
        assert_eq!(e.validate(&json!([1, "x"])), Ok(()));
    }

    #[test]
    fn the_declared_draft_is_used() {
        // Draft 4's boolean exclusiveMaximum would be a type error in 2020-12.
        let e = event(json!({"name": "a", "payload": {
            "$schema": "http://json-schema.org/draft-04/schema#",
            "maximum": 5, "exclusiveMaximum": true
        }}))
        .unwrap();
        assert!(e.validate(&json!(4)).is_ok());
        assert!(e.validate(&json!(5)).is_err());
    }

    #[test]
    fn bad_payload_schemas_and_patterns_are_refused() {
        let err = event(json!({"name": "a", "payload": {"type": "strin"}}))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("events[0].payload: invalid JSON Schema: "),
            "{err}"
        );
        let err = event(json!({"name": "a", "payload": {"$ref": "https://example.com/s.json"}}))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("events[0].payload: "), "{err}");
        let err = event(json!({"name": "a", "channels": ["ok:*", "x:*:y"]}))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("events[0].channels[1]: "), "{err}");
        assert!(
            err.ends_with("in pattern \"x:*:y\" in event \"a\""),
            "{err}"
        );
        assert_eq!(
            event(json!({"name": ""})).unwrap_err().to_string(),
            "events[0].name: an event name may not be empty"
        );
    }
}
