//! Shared pieces of the JSON encoders: writing strings, refs and payloads
//! straight into a byte buffer, and the message [`Body`] (a plain payload, or
//! a reply's `{"status", "response"}` envelope).
//!
//! Binary payloads on a text frame become `{"payload_base64": "<standard
//! base64>"}`. The envelope layout (array or object) belongs to `json_v1` /
//! `json_v2`.

use base64::Engine as _;
use serde::Serialize;

use crate::message::Payload;

/// What goes in a message's payload slot.
#[derive(Clone, Copy)]
pub(crate) enum Body<'a> {
    /// The payload as is.
    Payload(&'a Payload),
    /// A reply: `{"status": status, "response": response}`.
    Reply {
        status: &'a str,
        response: &'a Payload,
    },
}

impl Body<'_> {
    /// A capacity guess for the encoded body, exact for binary payloads.
    pub(crate) fn size_hint(&self) -> usize {
        match self {
            Body::Payload(p) => payload_size_hint(p),
            Body::Reply { status, response } => 26 + status.len() + payload_size_hint(response),
        }
    }
}

fn payload_size_hint(p: &Payload) -> usize {
    match p {
        // Unknown without walking the tree; the Vec grows as needed.
        Payload::Json(_) => 64,
        Payload::Binary(b) => 22 + base64_len(b.len()),
    }
}

fn base64_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}

/// Writes any serializable value as JSON.
pub(crate) fn write_json<T: Serialize + ?Sized>(buf: &mut Vec<u8>, value: &T) {
    // Writing into a Vec cannot fail, and neither can serializing strings or
    // `serde_json::Value` (its map keys are always strings).
    serde_json::to_writer(buf, value).expect("JSON serialization into a Vec is infallible");
}

/// Writes a JSON string, escaped.
pub(crate) fn write_str(buf: &mut Vec<u8>, s: &str) {
    write_json(buf, s);
}

/// Writes a JSON string, or `null`.
pub(crate) fn write_opt_str(buf: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => write_str(buf, s),
        None => buf.extend_from_slice(b"null"),
    }
}

/// Writes a payload; binary becomes `{"payload_base64": "..."}`.
pub(crate) fn write_payload(buf: &mut Vec<u8>, payload: &Payload) {
    match payload {
        Payload::Json(v) => write_json(buf, v),
        Payload::Binary(bytes) => {
            buf.extend_from_slice(b"{\"payload_base64\":\"");
            // The base64 alphabet needs no JSON escaping: encode in place.
            let start = buf.len();
            buf.resize(start + base64_len(bytes.len()), 0);
            let written = base64::engine::general_purpose::STANDARD
                .encode_slice(bytes, &mut buf[start..])
                .expect("buffer sized for padded base64");
            buf.truncate(start + written);
            buf.extend_from_slice(b"\"}");
        }
    }
}

/// Writes a message body.
pub(crate) fn write_body(buf: &mut Vec<u8>, body: Body<'_>) {
    match body {
        Body::Payload(p) => write_payload(buf, p),
        Body::Reply { status, response } => {
            buf.extend_from_slice(b"{\"status\":");
            write_str(buf, status);
            buf.extend_from_slice(b",\"response\":");
            write_payload(buf, response);
            buf.push(b'}');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use serde_json::json;

    fn body(b: Body<'_>) -> String {
        let mut buf = Vec::new();
        write_body(&mut buf, b);
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn strings_are_escaped() {
        let mut buf = Vec::new();
        write_str(&mut buf, "a\"b\\c\n\u{1}é");
        assert_eq!(
            String::from_utf8(buf.clone()).unwrap(),
            r#""a\"b\\c\n\u0001é""#
        );
        buf.clear();
        write_opt_str(&mut buf, None);
        assert_eq!(buf, b"null");
    }

    #[test]
    fn binary_payload_is_base64() {
        for (data, b64) in [
            (&b""[..], ""),
            (&b"f"[..], "Zg=="),
            (&b"fo"[..], "Zm8="),
            (&b"foo"[..], "Zm9v"),
            (&[0xfb, 0xff][..], "+/8="),
        ] {
            let p = Payload::Binary(Bytes::copy_from_slice(data));
            let out = body(Body::Payload(&p));
            assert_eq!(out, format!(r#"{{"payload_base64":"{b64}"}}"#));
            assert!(out.len() <= Body::Payload(&p).size_hint());
        }
    }

    #[test]
    fn reply_envelope() {
        let p = Payload::Json(json!({"a": 1}));
        assert_eq!(
            body(Body::Reply {
                status: "ok",
                response: &p
            }),
            r#"{"status":"ok","response":{"a":1}}"#
        );
        let p = Payload::Binary(Bytes::from_static(&[1, 2, 3]));
        assert_eq!(
            body(Body::Reply {
                status: "error",
                response: &p
            }),
            r#"{"status":"error","response":{"payload_base64":"AQID"}}"#
        );
    }
}
