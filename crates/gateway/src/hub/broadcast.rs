//! A message for every subscriber of a topic, encoded lazily and at most
//! once per wire format.

use std::sync::OnceLock;

use switchboard_protocol::{encode_broadcast, Frame, Payload, WireFormat};

/// A broadcast: `[null, null, topic, event, payload]` in each format.
#[derive(Debug)]
pub struct Broadcast {
    topic: String,
    event: String,
    payload: Payload,
    encoded: [OnceLock<Frame>; 3],
}

impl Broadcast {
    /// A broadcast of `event` with `payload` on `topic`.
    pub fn new(topic: impl Into<String>, event: impl Into<String>, payload: Payload) -> Self {
        Self {
            topic: topic.into(),
            event: event.into(),
            payload,
            encoded: Default::default(),
        }
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The event name.
    pub fn event(&self) -> &str {
        &self.event
    }

    /// The payload.
    pub fn payload(&self) -> &Payload {
        &self.payload
    }

    /// The frame for `format`, encoded on first use and shared afterwards.
    pub fn frame(&self, format: WireFormat) -> Frame {
        self.encoded[format.index()]
            .get_or_init(|| encode_broadcast(format, &self.topic, &self.event, &self.payload))
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_once_per_format_and_shares_the_bytes() {
        let b = Broadcast::new(
            "room:1",
            "msg",
            Payload::Json(serde_json::json!({"body": "hi"})),
        );
        let (a, c) = (b.frame(WireFormat::V2), b.frame(WireFormat::V2));
        match (a, c) {
            (Frame::Text(x), Frame::Text(y)) => {
                assert_eq!(x.as_ptr(), y.as_ptr(), "same allocation")
            }
            other => panic!("expected text frames, got {other:?}"),
        }
        assert_ne!(b.frame(WireFormat::V1), b.frame(WireFormat::V2));
    }
}
