//! The inbound entry points: decoding a client frame into a [`Message`], and
//! peeking at a frame's [`Header`] when it is too large to decode.
//!
//! Dispatch only; the formats live in `json_v1`, `json_v2` and `binary`.

use bytes::Bytes;

use crate::error::DecodeError;
use crate::frame::FrameRef;
use crate::message::{Header, Message};
use crate::vsn::Vsn;
use crate::{binary, json_v1, json_v2};

/// Decodes one text frame.
///
/// V2: a JSON array whose first five elements are used (extra ones are
/// ignored); join_ref and ref may be strings, null or integers (converted to
/// their decimal string); topic and event must be strings; the payload may be
/// any JSON value. V1: a JSON object with keys topic, event, payload and ref
/// (all required, ref may be null) and an optional join_ref.
pub fn decode_text(vsn: Vsn, text: &[u8]) -> Result<Message, DecodeError> {
    match vsn {
        Vsn::V1 => json_v1::decode(text),
        Vsn::V2 => json_v2::decode(text),
    }
}

/// Decodes one V2 binary frame. Only kind 0 (client push) is valid from a
/// client; the payload is the rest of the frame as [`Payload::Binary`],
/// copied out of `frame`. A zero-length join_ref or ref decodes as `None`.
///
/// [`Payload::Binary`]: crate::Payload::Binary
pub fn decode_binary(frame: &[u8]) -> Result<Message, DecodeError> {
    binary::decode(frame)
}

/// Like [`decode_binary`], but the payload shares `frame`'s buffer instead of
/// copying it.
pub fn decode_binary_bytes(frame: Bytes) -> Result<Message, DecodeError> {
    binary::decode_bytes(frame)
}

/// Finds join_ref, ref, topic and event of a frame without decoding its
/// payload, so a frame too large to process can still be answered to the
/// right ref. `None` when they cannot be found.
///
/// V2 text reads only the first four array elements (the rest may be
/// malformed or cut off). V1 text skips over values it does not need without
/// building them and stops once topic, event and ref are known, so join_ref
/// is reported only if it comes before them (V1 replies carry no join_ref
/// anyway). Binary frames read the client-push header, whatever `vsn` is.
pub fn peek_header(frame: FrameRef<'_>, vsn: Vsn) -> Option<Header> {
    match (frame, vsn) {
        (FrameRef::Text(text), Vsn::V1) => json_v1::peek(text),
        (FrameRef::Text(text), Vsn::V2) => json_v2::peek(text),
        (FrameRef::Binary(frame), _) => binary::parse_client_push(frame).ok().map(|(h, _)| h),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Payload;

    #[test]
    fn dispatches_by_vsn() {
        let v2 = br#"["1","2","t","e",{}]"#;
        let v1 = br#"{"topic":"t","event":"e","payload":{},"ref":"2"}"#;
        assert_eq!(
            decode_text(Vsn::V2, v2).unwrap().join_ref.as_deref(),
            Some("1")
        );
        assert_eq!(
            decode_text(Vsn::V1, v1).unwrap().msg_ref.as_deref(),
            Some("2")
        );
        assert_eq!(decode_text(Vsn::V1, v2), Err(DecodeError::NotAnObject));
        assert_eq!(decode_text(Vsn::V2, v1), Err(DecodeError::NotAnArray));
    }

    #[test]
    fn binary_entry_points_agree() {
        let frame = [0u8, 1, 1, 1, 1, b'j', b'r', b't', b'e', 7, 8];
        let borrowed = decode_binary(&frame).unwrap();
        let shared = decode_binary_bytes(Bytes::copy_from_slice(&frame)).unwrap();
        assert_eq!(borrowed, shared);
        assert_eq!(
            borrowed.payload,
            Payload::Binary(Bytes::from_static(&[7, 8]))
        );
        assert_eq!(
            decode_binary(&[1, 0, 0, 0, 0]),
            Err(DecodeError::NotAClientPush(1))
        );
    }

    #[test]
    fn peek_each_kind() {
        let expected = Some(Header {
            join_ref: Some("j".into()),
            msg_ref: Some("r".into()),
            topic: "t".into(),
            event: "e".into(),
        });
        let bin = [0u8, 1, 1, 1, 1, b'j', b'r', b't', b'e', 0xff];
        assert_eq!(peek_header(FrameRef::Binary(&bin), Vsn::V2), expected);
        assert_eq!(peek_header(FrameRef::Binary(&bin), Vsn::V1), expected);
        assert_eq!(peek_header(FrameRef::Binary(&bin[..7]), Vsn::V2), None);
        assert_eq!(
            peek_header(FrameRef::Binary(&[2, 1, 1, b't', b'e']), Vsn::V2),
            None
        );
        let text = br#"["j","r","t","e",{"huge":"#;
        assert_eq!(peek_header(FrameRef::Text(text), Vsn::V2), expected);
        assert_eq!(peek_header(FrameRef::Text(text), Vsn::V1), None);
        let text = br#"{"join_ref":"j","ref":"r","topic":"t","event":"e","payload":"#;
        assert_eq!(peek_header(FrameRef::Text(text), Vsn::V1), expected);
    }

    /// Hostile JSON is an error, never a stack overflow or a panic: serde_json
    /// stops at 128 levels of nesting and refuses numbers beyond `f64`.
    #[test]
    fn hostile_json_is_refused() {
        let deep = "[".repeat(100_000);
        let digits = "9".repeat(500);
        let frames = [
            deep.clone(),
            format!(r#"["1","2","t","e",{deep}"#),
            format!(r#"["1","2","t","e",{}{}]"#, deep, "]".repeat(100_000)),
            format!(r#"{{"topic":"t","event":"e","ref":null,"payload":{deep}"#),
            r#"["1",1e999999,"t","e",{}]"#.to_owned(),
            format!(r#"["1",{digits},"t","e",{{}}]"#),
            format!(r#"["1","2","t","e",{{"n":-{digits}}}]"#),
        ];
        for frame in &frames {
            for vsn in [Vsn::V1, Vsn::V2] {
                let result = decode_text(vsn, frame.as_bytes());
                assert!(result.is_err(), "{vsn:?} accepted {:.40}", frame);
                let _ = peek_header(FrameRef::Text(frame.as_bytes()), vsn);
            }
        }
        // The header of a frame whose payload is too deep can still be read,
        // so an oversized one is answered to the right ref.
        let header = peek_header(FrameRef::Text(frames[1].as_bytes()), Vsn::V2).unwrap();
        assert_eq!(header.msg_ref.as_deref(), Some("2"));
    }
}
