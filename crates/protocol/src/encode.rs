//! The outbound entry points: replies, pushes, broadcasts and the general
//! message form, each encoded for a [`WireFormat`].
//!
//! This module decides between a text and a binary frame: binary payloads go
//! out as V2 binary frames only on [`WireFormat::V2`], and only when the
//! layout can carry the message and every string fits in 255 bytes; otherwise
//! they become `{"payload_base64": "..."}` in a text frame. The layouts live
//! in `json_v1`, `json_v2` and `binary`. No payload shape is checked (Phoenix
//! requires pushed/broadcast payloads to be JSON objects; that is the
//! caller's rule to enforce).

use crate::frame::Frame;
use crate::json_write::Body;
use crate::message::Payload;
use crate::vsn::WireFormat;
use crate::{binary, json_v1, json_v2};

/// The reply event name.
pub const PHX_REPLY: &str = "phx_reply";

/// Encodes a reply (event `phx_reply`) to `msg_ref`.
///
/// JSON payload `{"status": status, "response": response}`. A binary
/// response is a kind 1 frame on V2; on V1/V2Text (or when a field is over
/// 255 bytes) the response becomes `{"payload_base64": ...}`.
pub fn encode_reply(
    format: WireFormat,
    join_ref: Option<&str>,
    msg_ref: Option<&str>,
    topic: &str,
    status: &str,
    response: &Payload,
) -> Frame {
    if let (WireFormat::V2, Payload::Binary(data)) = (format, response) {
        if let Some(frame) = binary::encode_reply(join_ref, msg_ref, topic, status, data) {
            return Frame::Binary(frame);
        }
    }
    let body = Body::Reply { status, response };
    encode_text(format, join_ref, msg_ref, topic, PHX_REPLY, body)
}

/// Encodes a server push to one client on a joined channel (ref `null`).
/// A binary payload on V2 is a kind 0 server push (or kind 2 when `join_ref`
/// is `None`, which phoenix.js reads identically).
pub fn encode_push(
    format: WireFormat,
    join_ref: Option<&str>,
    topic: &str,
    event: &str,
    payload: &Payload,
) -> Frame {
    encode_message(format, join_ref, None, topic, event, payload)
}

/// Encodes a broadcast (join_ref and ref `null`). A binary payload on V2 is
/// a kind 2 frame.
pub fn encode_broadcast(format: WireFormat, topic: &str, event: &str, payload: &Payload) -> Frame {
    encode_message(format, None, None, topic, event, payload)
}

/// Encodes any message, e.g. `phx_close` / `phx_error`
/// (`[jr, jr, topic, "phx_close", {}]`).
///
/// A binary payload on V2 becomes a binary frame only when `msg_ref` is
/// `None` (kind 2 if `join_ref` is also `None`, else kind 0 server push): no
/// server binary layout other than a reply carries a ref, so with a ref the
/// payload goes as `{"payload_base64": ...}` in a text frame.
pub fn encode_message(
    format: WireFormat,
    join_ref: Option<&str>,
    msg_ref: Option<&str>,
    topic: &str,
    event: &str,
    payload: &Payload,
) -> Frame {
    if let (WireFormat::V2, Payload::Binary(data)) = (format, payload) {
        let frame = match (join_ref, msg_ref) {
            (None, None) => binary::encode_broadcast(topic, event, data),
            (join_ref, None) => binary::encode_push(join_ref, topic, event, data),
            (_, Some(_)) => None,
        };
        if let Some(frame) = frame {
            return Frame::Binary(frame);
        }
    }
    encode_text(
        format,
        join_ref,
        msg_ref,
        topic,
        event,
        Body::Payload(payload),
    )
}

/// Encodes a V2 binary client push, as phoenix.js sends an `ArrayBuffer`
/// payload. For tests and tools acting as a client; `None` when a field is
/// longer than 255 bytes.
pub fn encode_client_binary(
    join_ref: Option<&str>,
    msg_ref: Option<&str>,
    topic: &str,
    event: &str,
    data: &[u8],
) -> Option<Frame> {
    binary::encode_client_push(join_ref, msg_ref, topic, event, data).map(Frame::Binary)
}

fn encode_text(
    format: WireFormat,
    join_ref: Option<&str>,
    msg_ref: Option<&str>,
    topic: &str,
    event: &str,
    body: Body<'_>,
) -> Frame {
    Frame::Text(match format {
        WireFormat::V1 => json_v1::encode(msg_ref, topic, event, body),
        WireFormat::V2 | WireFormat::V2Text => {
            json_v2::encode(join_ref, msg_ref, topic, event, body)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{decode_binary, decode_text};
    use crate::vsn::Vsn;
    use bytes::Bytes;
    use serde_json::json;

    fn text(frame: Frame) -> String {
        frame.as_text().expect("a text frame").to_owned()
    }

    fn bin(data: &'static [u8]) -> Payload {
        Payload::Binary(Bytes::from_static(data))
    }

    #[test]
    fn reply_json_each_format() {
        let ok = Payload::empty();
        let f = |fmt| {
            text(encode_reply(
                fmt,
                Some("3"),
                Some("4"),
                "room:lobby",
                "ok",
                &ok,
            ))
        };
        let v2 = r#"["3","4","room:lobby","phx_reply",{"status":"ok","response":{}}]"#;
        assert_eq!(f(WireFormat::V2), v2);
        assert_eq!(f(WireFormat::V2Text), v2);
        assert_eq!(
            f(WireFormat::V1),
            r#"{"topic":"room:lobby","event":"phx_reply","payload":{"status":"ok","response":{}},"ref":"4"}"#
        );
    }

    #[test]
    fn reply_binary_each_format() {
        let data = bin(&[1, 2, 3, 4]);
        let frame = encode_reply(
            WireFormat::V2,
            Some("11"),
            Some("2"),
            "room:bin",
            "ok",
            &data,
        );
        assert_eq!(
            frame,
            Frame::Binary(Bytes::from_static(&[
                1, 2, 1, 8, 2, b'1', b'1', b'2', b'r', b'o', b'o', b'm', b':', b'b', b'i', b'n',
                b'o', b'k', 1, 2, 3, 4
            ]))
        );
        let frame = encode_reply(WireFormat::V2Text, Some("11"), Some("2"), "t", "ok", &data);
        assert_eq!(
            text(frame),
            r#"["11","2","t","phx_reply",{"status":"ok","response":{"payload_base64":"AQIDBA=="}}]"#
        );
        let frame = encode_reply(WireFormat::V1, Some("11"), Some("2"), "t", "ok", &data);
        assert_eq!(
            text(frame),
            r#"{"topic":"t","event":"phx_reply","payload":{"status":"ok","response":{"payload_base64":"AQIDBA=="}},"ref":"2"}"#
        );
    }

    #[test]
    fn v1_never_has_join_ref() {
        let p = Payload::Json(json!({"a": 1}));
        let frames = [
            encode_reply(WireFormat::V1, Some("9"), Some("1"), "t", "ok", &p),
            encode_push(WireFormat::V1, Some("9"), "t", "e", &p),
            encode_broadcast(WireFormat::V1, "t", "e", &p),
            encode_message(WireFormat::V1, Some("9"), Some("9"), "t", "phx_close", &p),
            encode_push(WireFormat::V1, Some("9"), "t", "e", &bin(&[1])),
        ];
        for frame in frames {
            let v: serde_json::Value = serde_json::from_str(&text(frame)).unwrap();
            let obj = v.as_object().unwrap();
            assert!(!obj.contains_key("join_ref"), "{v}");
            assert!(obj.contains_key("ref"), "{v}");
            assert_eq!(obj.len(), 4, "{v}");
        }
    }

    #[test]
    fn push_and_broadcast_shapes() {
        let p = Payload::Json(json!({"u": "ann"}));
        assert_eq!(
            text(encode_push(WireFormat::V2, Some("3"), "r", "joined", &p)),
            r#"["3",null,"r","joined",{"u":"ann"}]"#
        );
        assert_eq!(
            text(encode_broadcast(WireFormat::V2Text, "r", "e", &p)),
            r#"[null,null,"r","e",{"u":"ann"}]"#
        );
        assert_eq!(
            text(encode_message(
                WireFormat::V2,
                Some("3"),
                Some("3"),
                "r",
                "phx_close",
                &Payload::empty()
            )),
            r#"["3","3","r","phx_close",{}]"#
        );
        assert_eq!(
            text(encode_push(WireFormat::V1, Some("3"), "r", "e", &p)),
            r#"{"topic":"r","event":"e","payload":{"u":"ann"},"ref":null}"#
        );
    }

    #[test]
    fn binary_push_and_broadcast_kinds() {
        let data = bin(&[0, 1]);
        let push = encode_push(
            WireFormat::V2,
            Some("11"),
            "room:bin",
            "binary_event",
            &data,
        );
        assert_eq!(push.bytes()[..4], [0, 2, 8, 12]);
        let anon = encode_push(WireFormat::V2, None, "topic", "event", &data);
        assert_eq!(
            anon,
            encode_broadcast(WireFormat::V2, "topic", "event", &data)
        );
        assert_eq!(anon.bytes()[0], 2);
        let with_ref = encode_message(WireFormat::V2, Some("1"), Some("1"), "t", "e", &data);
        assert_eq!(
            text(with_ref),
            r#"["1","1","t","e",{"payload_base64":"AAE="}]"#
        );
        assert_eq!(
            text(encode_broadcast(WireFormat::V2Text, "t", "e", &data)),
            r#"[null,null,"t","e",{"payload_base64":"AAE="}]"#
        );
    }

    #[test]
    fn long_fields_fall_back_to_text() {
        let long = "x".repeat(256);
        let data = bin(&[0xff]);
        let frames = [
            encode_reply(WireFormat::V2, None, Some(&long), "t", "ok", &data),
            encode_reply(WireFormat::V2, None, None, "t", &long, &data),
            encode_push(WireFormat::V2, Some(&long), "t", "e", &data),
            encode_broadcast(WireFormat::V2, &long, "e", &data),
            encode_broadcast(WireFormat::V2, "t", &long, &data),
        ];
        for frame in frames {
            let t = text(frame);
            assert!(t.starts_with('['), "{t}");
            assert!(t.contains(r#"{"payload_base64":"/w=="}"#), "{t}");
        }
    }

    #[test]
    fn decoded_messages_re_encode() {
        let input = r#"["1","2","room:x","ev",{"k":[1,2]}]"#;
        let m = decode_text(Vsn::V2, input.as_bytes()).unwrap();
        let out = encode_message(
            WireFormat::V2,
            m.join_ref.as_deref(),
            m.msg_ref.as_deref(),
            &m.topic,
            &m.event,
            &m.payload,
        );
        assert_eq!(text(out), input);
    }

    #[test]
    fn client_binary_round_trips() {
        let frame = encode_client_binary(Some("1"), Some("2"), "t", "e", &[5, 6]).unwrap();
        let m = decode_binary(frame.bytes()).unwrap();
        assert_eq!(m.msg_ref.as_deref(), Some("2"));
        assert_eq!(m.payload, bin(&[5, 6]));
        assert!(encode_client_binary(None, None, &"x".repeat(300), "e", &[]).is_none());
    }
}
