//! The V1 JSON text serializer (PHOENIX_PROTOCOL.md §2.2): objects with
//! `topic`, `event`, `payload`, `ref` and, inbound only, `join_ref`.
//!
//! Outbound objects never carry `join_ref` and always carry `ref` (maybe
//! `null`). V1 has no binary frames: binary payloads are written as
//! `{"payload_base64": ...}` by `json_write`.

use bytes::Bytes;
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;
use std::fmt;

use crate::error::DecodeError;
use crate::json_field::{fail, finish, parse_all, Field, Stash};
use crate::json_write::{write_body, write_opt_str, write_str, Body};
use crate::message::{Header, Message, Payload};

/// Decodes one V1 text message. All of topic, event, payload and ref must be
/// present (ref may be null); join_ref is optional. Unknown keys are skipped;
/// a repeated key keeps its last value.
pub(crate) fn decode(text: &[u8]) -> Result<Message, DecodeError> {
    let mut stash = None;
    let result = parse_all(text, |de| {
        de.deserialize_map(MessageVisitor { stash: &mut stash })
    });
    finish(result, stash, DecodeError::NotAnObject)
}

/// Reads topic, event and ref (and join_ref if it comes first) from a V1
/// message, skipping the payload without building it and stopping as soon as
/// all three are known. Linear in the bytes before the last of them, with no
/// allocation for what is skipped.
pub(crate) fn peek(text: &[u8]) -> Option<Header> {
    let mut out = None;
    let mut de = serde_json::Deserializer::from_slice(text);
    // Stopping early leaves unread input, which serde_json reports as an
    // error; the header is already in `out`.
    let _ = de.deserialize_map(PeekVisitor { out: &mut out });
    out
}

/// Encodes one V1 text message: `{"topic","event","payload","ref"}`.
pub(crate) fn encode(msg_ref: Option<&str>, topic: &str, event: &str, body: Body<'_>) -> Bytes {
    let capacity = 40 + msg_ref.map_or(0, str::len) + topic.len() + event.len() + body.size_hint();
    let mut buf = Vec::with_capacity(capacity);
    buf.extend_from_slice(b"{\"topic\":");
    write_str(&mut buf, topic);
    buf.extend_from_slice(b",\"event\":");
    write_str(&mut buf, event);
    buf.extend_from_slice(b",\"payload\":");
    write_body(&mut buf, body);
    buf.extend_from_slice(b",\"ref\":");
    write_opt_str(&mut buf, msg_ref);
    buf.push(b'}');
    Bytes::from(buf)
}

/// The keys of a V1 object, read without allocating.
enum Key {
    Topic,
    Event,
    Payload,
    Ref,
    JoinRef,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
        d.deserialize_identifier(KeyVisitor)
    }
}

struct KeyVisitor;

impl Visitor<'_> for KeyVisitor {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E>(self, v: &str) -> Result<Key, E> {
        Ok(match v {
            "topic" => Key::Topic,
            "event" => Key::Event,
            "payload" => Key::Payload,
            "ref" => Key::Ref,
            "join_ref" => Key::JoinRef,
            _ => Key::Other,
        })
    }
}

fn read_ref<'de, A: MapAccess<'de>>(
    map: &mut A,
    stash: &mut Stash,
    name: &'static str,
) -> Result<Option<String>, A::Error> {
    let field = map.next_value::<Field>()?;
    field.into_ref(name).map_err(|e| fail(stash, e))
}

fn read_string<'de, A: MapAccess<'de>>(
    map: &mut A,
    stash: &mut Stash,
    name: &'static str,
) -> Result<String, A::Error> {
    let field = map.next_value::<Field>()?;
    field.into_string(name).map_err(|e| fail(stash, e))
}

fn require<T, E: serde::de::Error>(
    value: Option<T>,
    stash: &mut Stash,
    name: &'static str,
) -> Result<T, E> {
    value.ok_or_else(|| fail(stash, DecodeError::MissingField(name)))
}

struct MessageVisitor<'s> {
    stash: &'s mut Stash,
}

impl<'de> Visitor<'de> for MessageVisitor<'_> {
    type Value = Message;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object with topic, event, payload and ref")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Message, A::Error> {
        let stash = self.stash;
        let (mut topic, mut event, mut payload, mut msg_ref, mut join_ref) =
            (None, None, None, None, None);
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Topic => topic = Some(read_string(&mut map, stash, "topic")?),
                Key::Event => event = Some(read_string(&mut map, stash, "event")?),
                Key::Payload => payload = Some(map.next_value::<Value>()?),
                Key::Ref => msg_ref = Some(read_ref(&mut map, stash, "ref")?),
                Key::JoinRef => join_ref = read_ref(&mut map, stash, "join_ref")?,
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Message {
            topic: require(topic, stash, "topic")?,
            event: require(event, stash, "event")?,
            payload: Payload::Json(require(payload, stash, "payload")?),
            msg_ref: require(msg_ref, stash, "ref")?,
            join_ref,
        })
    }
}

struct PeekVisitor<'o> {
    out: &'o mut Option<Header>,
}

impl<'de> Visitor<'de> for PeekVisitor<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let stash = &mut None;
        let (mut topic, mut event, mut msg_ref, mut join_ref) = (None, None, None, None);
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Topic => topic = Some(read_string(&mut map, stash, "topic")?),
                Key::Event => event = Some(read_string(&mut map, stash, "event")?),
                Key::Ref => msg_ref = Some(read_ref(&mut map, stash, "ref")?),
                Key::JoinRef => join_ref = read_ref(&mut map, stash, "join_ref")?,
                Key::Payload | Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            if topic.is_some() && event.is_some() && msg_ref.is_some() {
                break;
            }
        }
        if let (Some(topic), Some(event)) = (topic, event) {
            *self.out = Some(Header {
                join_ref,
                msg_ref: msg_ref.flatten(),
                topic,
                event,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(text: &str) -> DecodeError {
        decode(text.as_bytes()).unwrap_err()
    }

    #[test]
    fn decodes_spec_example() {
        let m = decode(br#"{"topic":"room:lobby","event":"phx_join","payload":{},"ref":"1"}"#);
        assert_eq!(
            m,
            Ok(Message {
                join_ref: None,
                msg_ref: Some("1".into()),
                topic: "room:lobby".into(),
                event: "phx_join".into(),
                payload: Payload::empty(),
            })
        );
    }

    #[test]
    fn join_ref_optional_ref_nullable_any_order() {
        let m = decode(
            br#"{"ref":null,"payload":[1],"extra":{"x":1},"join_ref":"4","event":"e","topic":"t"}"#,
        )
        .unwrap();
        assert_eq!(m.join_ref.as_deref(), Some("4"));
        assert_eq!(m.msg_ref, None);
        assert_eq!(m.payload, Payload::Json(json!([1])));
        let m = decode(br#"{"topic":"t","event":"e","payload":null,"ref":3,"join_ref":2}"#);
        let m = m.unwrap();
        assert_eq!(
            (m.join_ref.as_deref(), m.msg_ref.as_deref()),
            (Some("2"), Some("3"))
        );
    }

    #[test]
    fn missing_fields() {
        assert_eq!(
            err(r#"{"event":"e","payload":{},"ref":"1"}"#),
            DecodeError::MissingField("topic")
        );
        assert_eq!(
            err(r#"{"topic":"t","payload":{},"ref":"1"}"#),
            DecodeError::MissingField("event")
        );
        assert_eq!(
            err(r#"{"topic":"t","event":"e","ref":"1"}"#),
            DecodeError::MissingField("payload")
        );
        assert_eq!(
            err(r#"{"topic":"t","event":"e","payload":{}}"#),
            DecodeError::MissingField("ref")
        );
    }

    #[test]
    fn wrong_types() {
        assert_eq!(
            err(r#"{"topic":1,"event":"e","payload":{},"ref":"1"}"#),
            DecodeError::InvalidField {
                field: "topic",
                expected: "a string"
            }
        );
        assert_eq!(
            err(r#"{"topic":"t","event":"e","payload":{},"ref":{}}"#),
            DecodeError::InvalidField {
                field: "ref",
                expected: "a string or null"
            }
        );
        for text in ["[]", r#"["1","2","t","e",{}]"#, "7", "null"] {
            assert_eq!(err(text), DecodeError::NotAnObject, "{text}");
        }
    }

    #[test]
    fn bad_json() {
        for text in [
            "",
            "{",
            r#"{"topic":"t",}"#,
            r#"{"topic":"t","event":"e","payload":{},"ref":null} {}"#,
            "{topic:1}",
        ] {
            assert!(matches!(err(text), DecodeError::InvalidJson(_)), "{text}");
        }
    }

    #[test]
    fn encodes_spec_examples_without_join_ref() {
        let reply = encode(
            Some("1"),
            "room:lobby",
            "phx_reply",
            Body::Reply {
                status: "ok",
                response: &Payload::empty(),
            },
        );
        assert_eq!(
            reply,
            r#"{"topic":"room:lobby","event":"phx_reply","payload":{"status":"ok","response":{}},"ref":"1"}"#
        );
        let push = encode(
            None,
            "room:lobby",
            "user_entered",
            Body::Payload(&Payload::Json(json!({"user": null}))),
        );
        assert_eq!(
            push,
            r#"{"topic":"room:lobby","event":"user_entered","payload":{"user":null},"ref":null}"#
        );
    }

    #[test]
    fn round_trip() {
        let payload = Payload::Json(json!({"k": ["v", 1, true]}));
        let text = encode(Some("8"), "a:\"b\"", "ev", Body::Payload(&payload));
        let m = decode(&text).unwrap();
        assert_eq!(
            m,
            Message {
                join_ref: None,
                msg_ref: Some("8".into()),
                topic: "a:\"b\"".into(),
                event: "ev".into(),
                payload,
            }
        );
    }

    #[test]
    fn peek_skips_payload_and_stops_early() {
        let header = Some(Header {
            join_ref: Some("2".into()),
            msg_ref: Some("5".into()),
            topic: "t".into(),
            event: "e".into(),
        });
        let text =
            br#"{"join_ref":"2","topic":"t","payload":{"big":[1,2,3]},"event":"e","ref":"5","x":"#;
        assert_eq!(peek(text), header);
        let text = br#"{"topic":"t","event":"e","payload":{},"ref":null}"#;
        assert_eq!(peek(text).unwrap().msg_ref, None);
    }

    #[test]
    fn peek_gives_up_without_topic_and_event() {
        assert_eq!(peek(br#"{"topic":"t","payload":{"a":"#), None);
        assert_eq!(peek(br#"{"topic":5,"event":"e","ref":"1"}"#), None);
        assert_eq!(peek(br#"["1","2","t","e",{}]"#), None);
    }
}
