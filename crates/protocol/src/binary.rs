//! The V2 binary frame layouts (PHOENIX_PROTOCOL.md §2.3): parsing the one
//! kind a client may send (kind 0 client push) and building the three a
//! server sends (kind 0 push, kind 1 reply, kind 2 broadcast).
//!
//! Every string length is one byte, so builders return `None` when a field is
//! longer than 255 bytes; the caller falls back to a text frame. An empty
//! join_ref or ref means "none" both ways.

use bytes::Bytes;

use crate::error::DecodeError;
use crate::message::{Header, Message, Payload};

const KIND_PUSH: u8 = 0;
const KIND_REPLY: u8 = 1;
const KIND_BROADCAST: u8 = 2;

/// Client push header: kind plus four lengths.
const CLIENT_PUSH_HEADER: usize = 5;

/// Parses a client push's header, returning it and where the data starts.
pub(crate) fn parse_client_push(frame: &[u8]) -> Result<(Header, usize), DecodeError> {
    let kind = *frame.first().ok_or(DecodeError::EmptyBinary)?;
    if kind != KIND_PUSH {
        return Err(DecodeError::NotAClientPush(kind));
    }
    let lens = frame
        .get(1..CLIENT_PUSH_HEADER)
        .ok_or(DecodeError::TruncatedHeader)?;
    let mut pos = CLIENT_PUSH_HEADER;
    let mut take = |len: u8, name: &'static str| -> Result<&str, DecodeError> {
        let end = pos + usize::from(len);
        let raw = frame.get(pos..end).ok_or(DecodeError::LengthPastEnd)?;
        pos = end;
        std::str::from_utf8(raw).map_err(|_| DecodeError::InvalidUtf8(name))
    };
    let join_ref = take(lens[0], "join_ref")?;
    let msg_ref = take(lens[1], "ref")?;
    let topic = take(lens[2], "topic")?;
    let event = take(lens[3], "event")?;
    let header = Header {
        join_ref: non_empty(join_ref),
        msg_ref: non_empty(msg_ref),
        topic: topic.to_owned(),
        event: event.to_owned(),
    };
    Ok((header, pos))
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

/// Decodes a client push, copying its data out of the borrowed frame.
pub(crate) fn decode(frame: &[u8]) -> Result<Message, DecodeError> {
    let (header, start) = parse_client_push(frame)?;
    Ok(with_payload(
        header,
        Bytes::copy_from_slice(&frame[start..]),
    ))
}

/// Decodes a client push, sharing the frame's buffer for the data (no copy).
pub(crate) fn decode_bytes(frame: Bytes) -> Result<Message, DecodeError> {
    let (header, start) = parse_client_push(&frame)?;
    Ok(with_payload(header, frame.slice(start..)))
}

fn with_payload(header: Header, data: Bytes) -> Message {
    Message {
        join_ref: header.join_ref,
        msg_ref: header.msg_ref,
        topic: header.topic,
        event: header.event,
        payload: Payload::Binary(data),
    }
}

/// Builds `kind | len(field)... | field... | data`, or `None` when a field is
/// longer than 255 bytes.
fn build(kind: u8, fields: &[&str], data: &[u8]) -> Option<Bytes> {
    let strings: usize = fields.iter().map(|f| f.len()).sum();
    let mut buf = Vec::with_capacity(1 + fields.len() + strings + data.len());
    buf.push(kind);
    for field in fields {
        buf.push(u8::try_from(field.len()).ok()?);
    }
    for field in fields {
        buf.extend_from_slice(field.as_bytes());
    }
    buf.extend_from_slice(data);
    Some(Bytes::from(buf))
}

/// Kind 0 server push: `0 | jr_len | topic_len | event_len | ... | data`.
pub(crate) fn encode_push(
    join_ref: Option<&str>,
    topic: &str,
    event: &str,
    data: &[u8],
) -> Option<Bytes> {
    build(KIND_PUSH, &[join_ref.unwrap_or(""), topic, event], data)
}

/// Kind 1 reply: `1 | jr_len | ref_len | topic_len | status_len | ... | data`.
pub(crate) fn encode_reply(
    join_ref: Option<&str>,
    msg_ref: Option<&str>,
    topic: &str,
    status: &str,
    data: &[u8],
) -> Option<Bytes> {
    let fields = [join_ref.unwrap_or(""), msg_ref.unwrap_or(""), topic, status];
    build(KIND_REPLY, &fields, data)
}

/// Kind 2 broadcast: `2 | topic_len | event_len | topic | event | data`.
pub(crate) fn encode_broadcast(topic: &str, event: &str, data: &[u8]) -> Option<Bytes> {
    build(KIND_BROADCAST, &[topic, event], data)
}

/// Kind 0 client push, as a client sends it (5-byte header, with ref).
pub(crate) fn encode_client_push(
    join_ref: Option<&str>,
    msg_ref: Option<&str>,
    topic: &str,
    event: &str,
    data: &[u8],
) -> Option<Bytes> {
    let fields = [join_ref.unwrap_or(""), msg_ref.unwrap_or(""), topic, event];
    build(KIND_PUSH, &fields, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses the spec's space-separated hex.
    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    }

    const CLIENT_PUSH: &str =
        "00 02 01 08 0c 31 31 32 72 6f 6f 6d 3a 62 69 6e 62 69 6e 61 72 79 5f 65 76 65 6e 74 01 02";

    #[test]
    fn decodes_spec_client_push() {
        let frame = hex(CLIENT_PUSH);
        let expected = Message {
            join_ref: Some("11".into()),
            msg_ref: Some("2".into()),
            topic: "room:bin".into(),
            event: "binary_event".into(),
            payload: Payload::Binary(Bytes::from_static(&[1, 2])),
        };
        assert_eq!(decode(&frame), Ok(expected.clone()));
        assert_eq!(decode_bytes(Bytes::from(frame)), Ok(expected));
    }

    #[test]
    fn encodes_spec_client_push() {
        let frame = encode_client_push(Some("11"), Some("2"), "room:bin", "binary_event", &[1, 2]);
        assert_eq!(frame.unwrap(), hex(CLIENT_PUSH));
    }

    #[test]
    fn encodes_spec_reply() {
        let frame = encode_reply(Some("11"), Some("2"), "room:bin", "ok", &[1, 2, 3, 4]);
        let expected = "01 02 01 08 02 31 31 32 72 6f 6f 6d 3a 62 69 6e 6f 6b 01 02 03 04";
        assert_eq!(frame.unwrap(), hex(expected));
    }

    #[test]
    fn encodes_spec_push() {
        let frame = encode_push(Some("11"), "room:bin", "binary_event", &[0, 1]);
        let expected = "00 02 08 0c 31 31 72 6f 6f 6d 3a 62 69 6e \
                        62 69 6e 61 72 79 5f 65 76 65 6e 74 00 01";
        assert_eq!(frame.unwrap(), hex(expected));
    }

    #[test]
    fn encodes_spec_broadcast() {
        let frame = encode_broadcast("topic", "event", &[0x65, 0x66, 0x67]);
        let expected = "02 05 05 74 6f 70 69 63 65 76 65 6e 74 65 66 67";
        assert_eq!(frame.unwrap(), hex(expected));
    }

    #[test]
    fn none_refs_are_zero_length() {
        let frame = encode_reply(None, None, "t", "ok", &[]).unwrap();
        assert_eq!(frame, [1u8, 0, 0, 1, 2, b't', b'o', b'k'].as_slice());
        let frame = encode_client_push(None, None, "t", "e", &[9]).unwrap();
        let m = decode(&frame).unwrap();
        assert_eq!((m.join_ref, m.msg_ref), (None, None));
        assert_eq!(m.payload, Payload::Binary(Bytes::from_static(&[9])));
    }

    #[test]
    fn round_trip_with_empty_data_and_max_lengths() {
        let long = "x".repeat(255);
        let frame = encode_client_push(Some(&long), Some("r"), &long, "é", &[]).unwrap();
        let m = decode_bytes(frame).unwrap();
        assert_eq!(m.join_ref.as_deref(), Some(long.as_str()));
        assert_eq!(m.topic, long);
        assert_eq!(m.event, "é");
        assert_eq!(m.payload, Payload::Binary(Bytes::new()));
    }

    #[test]
    fn fields_over_255_bytes_refuse_to_encode() {
        let long = "x".repeat(256);
        assert_eq!(encode_push(Some(&long), "t", "e", &[]), None);
        assert_eq!(encode_push(None, &long, "e", &[]), None);
        assert_eq!(encode_reply(None, Some(&long), "t", "ok", &[]), None);
        assert_eq!(encode_reply(None, None, "t", &long, &[]), None);
        assert_eq!(encode_broadcast("t", &long, &[]), None);
    }

    #[test]
    fn malformed_frames() {
        assert_eq!(decode(&[]), Err(DecodeError::EmptyBinary));
        for kind in [1u8, 2, 3, 255] {
            assert_eq!(
                decode(&[kind, 0, 0, 1, 1, b't', b'e']),
                Err(DecodeError::NotAClientPush(kind))
            );
        }
        for len in 1..CLIENT_PUSH_HEADER {
            assert_eq!(
                decode(&[0, 0, 0, 0, 0][..len]),
                Err(DecodeError::TruncatedHeader)
            );
        }
        // Topic says 5 bytes, only 2 follow.
        assert_eq!(
            decode(&[0, 0, 0, 5, 0, b'a', b'b']),
            Err(DecodeError::LengthPastEnd)
        );
        // Event length runs one past the end.
        assert_eq!(
            decode(&[0, 0, 0, 1, 2, b't', b'e']),
            Err(DecodeError::LengthPastEnd)
        );
        assert_eq!(
            decode(&[0, 0, 0, 1, 1, 0xff, b'e']),
            Err(DecodeError::InvalidUtf8("topic"))
        );
        assert_eq!(
            decode(&[0, 1, 0, 1, 1, 0xc3, b't', b'e']),
            Err(DecodeError::InvalidUtf8("join_ref"))
        );
        assert_eq!(
            decode(&[0, 0, 1, 1, 1, 0x80, b't', b'e']),
            Err(DecodeError::InvalidUtf8("ref"))
        );
        assert_eq!(
            decode(&[0, 0, 0, 1, 1, b't', 0xfe]),
            Err(DecodeError::InvalidUtf8("event"))
        );
    }

    #[test]
    fn header_only_frame_has_empty_payload() {
        let m = decode(&[0, 0, 0, 0, 0]).unwrap();
        assert_eq!(m.topic, "");
        assert_eq!(m.payload, Payload::Binary(Bytes::new()));
    }
}
