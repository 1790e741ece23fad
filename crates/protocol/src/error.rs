//! The crate's error types: why an inbound frame could not be decoded
//! ([`DecodeError`]) and why a `vsn` was refused ([`UnsupportedVsn`]).
//!
//! What the server does about them (close codes, HTTP statuses) is not decided
//! here: every decode failure is a protocol error for the caller to act on.

use thiserror::Error;

/// An inbound frame that is not a valid Phoenix message.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The text is not well-formed JSON (syntax error, trailing data, too deep).
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    /// V2 text: the JSON is not an array, or has fewer than five elements.
    #[error("expected a JSON array of five elements")]
    NotAnArray,
    /// V1 text: the JSON is not an object.
    #[error("expected a JSON object with topic, event, payload and ref")]
    NotAnObject,
    /// V1 text: a required key is absent.
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    /// A header field has the wrong JSON type.
    #[error("field `{field}` must be {expected}")]
    InvalidField {
        /// `join_ref`, `ref`, `topic` or `event`.
        field: &'static str,
        /// What was expected, e.g. "a string".
        expected: &'static str,
    },
    /// A binary frame with no bytes at all.
    #[error("empty binary frame")]
    EmptyBinary,
    /// A binary frame whose kind byte is not 0 (client push).
    #[error("binary frame kind {0} is not a client push")]
    NotAClientPush(u8),
    /// A binary frame shorter than its fixed header.
    #[error("binary frame header truncated")]
    TruncatedHeader,
    /// A binary frame whose declared field lengths run past its end.
    #[error("binary frame field lengths run past the end of the frame")]
    LengthPastEnd,
    /// A binary frame string field that is not UTF-8.
    #[error("binary frame field `{0}` is not valid UTF-8")]
    InvalidUtf8(&'static str),
}

/// A `vsn` query parameter that matches neither `~> 1.0.0` nor `~> 2.0.0`.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("unsupported serializer version {0:?}")]
pub struct UnsupportedVsn(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_readable() {
        assert_eq!(
            DecodeError::NotAnArray.to_string(),
            "expected a JSON array of five elements"
        );
        assert_eq!(
            DecodeError::NotAClientPush(1).to_string(),
            "binary frame kind 1 is not a client push"
        );
        assert_eq!(
            DecodeError::TruncatedHeader.to_string(),
            "binary frame header truncated"
        );
        assert_eq!(
            DecodeError::InvalidField {
                field: "topic",
                expected: "a string"
            }
            .to_string(),
            "field `topic` must be a string"
        );
        assert_eq!(
            UnsupportedVsn("3.0.0".into()).to_string(),
            "unsupported serializer version \"3.0.0\""
        );
    }
}
