//! The V2 JSON text serializer (PHOENIX_PROTOCOL.md §2.1):
//! `[join_ref, ref, topic, event, payload]`.
//!
//! Decoding reads the first five elements and skips any extra ones; peeking
//! reads only the first four and never touches the payload. Encoding writes
//! the array directly into a buffer. Choosing between text and binary frames
//! is not done here (see `encode`).

use bytes::Bytes;
use serde::de::{Deserializer as _, IgnoredAny, SeqAccess, Visitor};
use serde_json::Value;
use std::fmt;

use crate::error::DecodeError;
use crate::json_field::{fail, finish, parse_all, Field, Stash};
use crate::json_write::{write_body, write_opt_str, write_str, Body};
use crate::message::{Header, Message, Payload};

/// Decodes one V2 text message.
pub(crate) fn decode(text: &[u8]) -> Result<Message, DecodeError> {
    let mut stash = None;
    let result = parse_all(text, |de| {
        de.deserialize_seq(MessageVisitor { stash: &mut stash })
    });
    finish(result, stash, DecodeError::NotAnArray)
}

/// Reads join_ref, ref, topic and event from the front of a V2 text message,
/// stopping there: the rest of the frame may be huge or even cut off.
pub(crate) fn peek(text: &[u8]) -> Option<Header> {
    let mut out = None;
    let mut de = serde_json::Deserializer::from_slice(text);
    // After the visitor stops early serde_json reports the unread elements as
    // an error; the header, if found, is already in `out`.
    let _ = de.deserialize_seq(PeekVisitor { out: &mut out });
    out
}

/// Encodes one V2 text message.
pub(crate) fn encode(
    join_ref: Option<&str>,
    msg_ref: Option<&str>,
    topic: &str,
    event: &str,
    body: Body<'_>,
) -> Bytes {
    let capacity = 16
        + join_ref.map_or(0, str::len)
        + msg_ref.map_or(0, str::len)
        + topic.len()
        + event.len()
        + body.size_hint();
    let mut buf = Vec::with_capacity(capacity);
    buf.push(b'[');
    write_opt_str(&mut buf, join_ref);
    buf.push(b',');
    write_opt_str(&mut buf, msg_ref);
    buf.push(b',');
    write_str(&mut buf, topic);
    buf.push(b',');
    write_str(&mut buf, event);
    buf.push(b',');
    write_body(&mut buf, body);
    buf.push(b']');
    Bytes::from(buf)
}

fn next_field<'de, A: SeqAccess<'de>>(seq: &mut A, stash: &mut Stash) -> Result<Field, A::Error> {
    match seq.next_element::<Field>()? {
        Some(field) => Ok(field),
        None => Err(fail(stash, DecodeError::NotAnArray)),
    }
}

fn read_header<'de, A: SeqAccess<'de>>(seq: &mut A, stash: &mut Stash) -> Result<Header, A::Error> {
    let join_ref = next_field(seq, stash)?.into_ref("join_ref");
    let join_ref = join_ref.map_err(|e| fail(stash, e))?;
    let msg_ref = next_field(seq, stash)?.into_ref("ref");
    let msg_ref = msg_ref.map_err(|e| fail(stash, e))?;
    let topic = next_field(seq, stash)?.into_string("topic");
    let topic = topic.map_err(|e| fail(stash, e))?;
    let event = next_field(seq, stash)?.into_string("event");
    let event = event.map_err(|e| fail(stash, e))?;
    Ok(Header {
        join_ref,
        msg_ref,
        topic,
        event,
    })
}

struct MessageVisitor<'s> {
    stash: &'s mut Stash,
}

impl<'de> Visitor<'de> for MessageVisitor<'_> {
    type Value = Message;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON array of five elements")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Message, A::Error> {
        let header = read_header(&mut seq, self.stash)?;
        let Some(payload) = seq.next_element::<Value>()? else {
            return Err(fail(self.stash, DecodeError::NotAnArray));
        };
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Message {
            join_ref: header.join_ref,
            msg_ref: header.msg_ref,
            topic: header.topic,
            event: header.event,
            payload: Payload::Json(payload),
        })
    }
}

struct PeekVisitor<'o> {
    out: &'o mut Option<Header>,
}

impl<'de> Visitor<'de> for PeekVisitor<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut stash = None;
        *self.out = Some(read_header(&mut seq, &mut stash)?);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok(text: &str) -> Message {
        decode(text.as_bytes()).unwrap()
    }

    fn err(text: &str) -> DecodeError {
        decode(text.as_bytes()).unwrap_err()
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_owned())
    }

    #[test]
    fn decodes_spec_examples() {
        let m = ok(r#"["3","3","room:lobby","phx_join",{"name":"ann"}]"#);
        assert_eq!(
            m,
            Message {
                join_ref: s("3"),
                msg_ref: s("3"),
                topic: "room:lobby".into(),
                event: "phx_join".into(),
                payload: Payload::Json(json!({"name": "ann"})),
            }
        );
        let m = ok(r#"[null,"5","phoenix","heartbeat",{}]"#);
        assert_eq!(m.join_ref, None);
        assert_eq!(m.msg_ref, s("5"));
        assert_eq!(m.payload, Payload::empty());
    }

    #[test]
    fn extra_elements_ignored_and_whitespace_allowed() {
        let m = ok(" [ \"1\" , \"2\" , \"t\" , \"e\" , [1] , {\"x\":[1,2]}, 3 ] \n");
        assert_eq!(m.payload, Payload::Json(json!([1])));
        assert_eq!(m.topic, "t");
    }

    #[test]
    fn integer_refs_become_decimal_strings() {
        let m = ok(r#"[7,12,"t","e",null]"#);
        assert_eq!((m.join_ref, m.msg_ref), (s("7"), s("12")));
        assert_eq!(m.payload, Payload::Json(Value::Null));
    }

    #[test]
    fn payload_may_be_any_value() {
        for p in [r#""str""#, "1.5", "true", "null", "[]"] {
            let m = ok(&format!(r#"[null,null,"t","e",{p}]"#));
            assert_eq!(m.payload, Payload::Json(serde_json::from_str(p).unwrap()));
        }
    }

    #[test]
    fn escaped_strings_decode() {
        let m = ok(r#"["a\"b",null,"room:\u00e9","new\nline",{}]"#);
        assert_eq!(m.join_ref, s("a\"b"));
        assert_eq!(m.topic, "room:é");
        assert_eq!(m.event, "new\nline");
    }

    #[test]
    fn wrong_arity() {
        assert_eq!(err("[]"), DecodeError::NotAnArray);
        assert_eq!(err(r#"["1","2","t","e"]"#), DecodeError::NotAnArray);
        assert_eq!(err(r#"["1"]"#), DecodeError::NotAnArray);
    }

    #[test]
    fn not_an_array() {
        for text in [r#"{"topic":"t"}"#, "1", r#""x""#, "null"] {
            assert_eq!(err(text), DecodeError::NotAnArray, "{text}");
        }
    }

    #[test]
    fn bad_json() {
        for text in [
            "",
            "[",
            r#"["1","2","t","e",{]"#,
            r#"["1","2","t","e",{}"#,
            r#"["1","2","t","e",{}] x"#,
            r#"["1","2","t","e",{},]"#,
            "\u{0}",
        ] {
            assert!(
                matches!(err(text), DecodeError::InvalidJson(_)),
                "{text:?}: {:?}",
                err(text)
            );
        }
    }

    #[test]
    fn invalid_utf8_is_bad_json() {
        let text = b"[\"1\",\"2\",\"t\xff\",\"e\",{}]";
        assert!(matches!(decode(text), Err(DecodeError::InvalidJson(_))));
    }

    #[test]
    fn wrong_field_types() {
        let invalid = |field, expected| DecodeError::InvalidField { field, expected };
        assert_eq!(err(r#"["1","2",3,"e",{}]"#), invalid("topic", "a string"));
        assert_eq!(
            err(r#"["1","2",null,"e",{}]"#),
            invalid("topic", "a string")
        );
        assert_eq!(err(r#"["1","2","t",{},{}]"#), invalid("event", "a string"));
        assert_eq!(
            err(r#"[true,"2","t","e",{}]"#),
            invalid("join_ref", "a string or null")
        );
        assert_eq!(
            err(r#"["1",[2],"t","e",{}]"#),
            invalid("ref", "a string or null")
        );
        assert_eq!(
            err(r#"["1",2.5,"t","e",{}]"#),
            invalid("ref", "a string or null")
        );
    }

    #[test]
    fn encodes_spec_examples() {
        let enc = |jr, r, ev, p: &Payload| encode(jr, r, "room:lobby", ev, Body::Payload(p));
        assert_eq!(
            enc(
                Some("3"),
                None,
                "joined",
                &Payload::Json(json!({"status": "connected"}))
            ),
            r#"["3",null,"room:lobby","joined",{"status":"connected"}]"#
        );
        assert_eq!(
            enc(
                None,
                None,
                "user_entered",
                &Payload::Json(json!({"user": "ann"}))
            ),
            r#"[null,null,"room:lobby","user_entered",{"user":"ann"}]"#
        );
        let reply = encode(
            Some("3"),
            Some("3"),
            "room:lobby",
            "phx_reply",
            Body::Reply {
                status: "ok",
                response: &Payload::empty(),
            },
        );
        assert_eq!(
            reply,
            r#"["3","3","room:lobby","phx_reply",{"status":"ok","response":{}}]"#
        );
    }

    #[test]
    fn round_trip() {
        let original = Message {
            join_ref: s("1\"x"),
            msg_ref: None,
            topic: "room:ü".into(),
            event: "ev\t".into(),
            payload: Payload::Json(json!({"a": [1, "two", null], "b": {"c": 1.5}})),
        };
        let text = encode(
            original.join_ref.as_deref(),
            original.msg_ref.as_deref(),
            &original.topic,
            &original.event,
            Body::Payload(&original.payload),
        );
        assert_eq!(decode(&text).unwrap(), original);
        assert_eq!(
            peek(&text),
            Some(Header {
                join_ref: original.join_ref.clone(),
                msg_ref: None,
                topic: original.topic.clone(),
                event: original.event.clone(),
            })
        );
    }

    #[test]
    fn peek_stops_before_the_payload() {
        let header = Some(Header {
            join_ref: s("1"),
            msg_ref: s("9"),
            topic: "t".into(),
            event: "e".into(),
        });
        // Cut off mid-payload, invalid payload, trailing garbage: all fine.
        assert_eq!(peek(br#"["1","9","t","e",{"a":"#), header);
        assert_eq!(peek(br#"["1","9","t","e",{]]]"#), header);
        assert_eq!(peek(br#"["1",9,"t","e"]"#), header);
        assert_eq!(peek(br#"["1","9","t","e""#), header);
    }

    #[test]
    fn peek_gives_up_without_a_header() {
        for text in [
            &br#"["1","9","t"]"#[..],
            br#"["1","9","t""#,
            br#"["1","9",5,"e",{}]"#,
            br#"{"topic":"t"}"#,
            b"",
            b"garbage",
        ] {
            assert_eq!(peek(text), None, "{:?}", String::from_utf8_lossy(text));
        }
    }
}
