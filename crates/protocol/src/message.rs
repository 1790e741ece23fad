//! The decoded message model (PHOENIX_PROTOCOL.md §2): [`Message`], its
//! [`Payload`], and the payload-less [`Header`] used to answer frames too
//! large to decode.
//!
//! These are plain data; encoding and decoding live in the codec modules.

use bytes::Bytes;
use serde_json::Value;

/// A message payload: JSON or raw bytes (binary frames).
#[derive(Clone, Debug, PartialEq)]
pub enum Payload {
    /// A JSON value (text frames).
    Json(Value),
    /// Raw bytes (V2 binary frames).
    Binary(Bytes),
}

impl Payload {
    /// The empty JSON object `{}`, the payload of `phx_close` and most replies.
    pub fn empty() -> Payload {
        Payload::Json(Value::Object(serde_json::Map::new()))
    }
}

/// One decoded client message (PHOENIX_PROTOCOL.md §2).
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    /// The channel's join ref; `None` for heartbeats and when unset.
    pub join_ref: Option<String>,
    /// The client's ref for this message; replies echo it.
    pub msg_ref: Option<String>,
    /// The channel topic, e.g. `room:lobby`.
    pub topic: String,
    /// The event name, e.g. `phx_join`.
    pub event: String,
    /// The payload.
    pub payload: Payload,
}

/// The addressing fields of a message, without its payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// The channel's join ref, if present.
    pub join_ref: Option<String>,
    /// The message ref, if present.
    pub msg_ref: Option<String>,
    /// The channel topic.
    pub topic: String,
    /// The event name.
    pub event: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_payload_is_empty_object() {
        assert_eq!(Payload::empty(), Payload::Json(serde_json::json!({})));
    }
}
