//! Shared pieces of the JSON decoders: reading one header field leniently
//! ([`Field`]) and turning serde failures into [`DecodeError`]s.
//!
//! The decoders run serde visitors straight over the input (no intermediate
//! `Value` for the envelope). A visitor that rejects something records the
//! precise [`DecodeError`] in a stash before returning a serde error; [`finish`]
//! prefers the stash, so callers see "field `topic` must be a string" rather
//! than serde's wording.

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;

use crate::error::DecodeError;

/// Where a visitor leaves the precise reason it failed.
pub(crate) type Stash = Option<DecodeError>;

/// Records `err` in `stash` and returns a serde error to abort parsing.
pub(crate) fn fail<E: de::Error>(stash: &mut Stash, err: DecodeError) -> E {
    let e = E::custom(&err);
    *stash = Some(err);
    e
}

/// Maps a parse result to the crate's error. `shape` is reported when the
/// top-level value had the wrong JSON type (serde's data errors that no
/// visitor stashed).
pub(crate) fn finish<T>(
    result: Result<T, serde_json::Error>,
    stash: Stash,
    shape: DecodeError,
) -> Result<T, DecodeError> {
    match (result, stash) {
        (Ok(v), _) => Ok(v),
        (Err(_), Some(err)) => Err(err),
        (Err(e), None) if e.is_data() => Err(shape),
        (Err(e), None) => Err(DecodeError::InvalidJson(e.to_string())),
    }
}

/// Runs `visit` over the whole of `text`, rejecting trailing data.
pub(crate) fn parse_all<T>(
    text: &[u8],
    visit: impl FnOnce(
        &mut serde_json::Deserializer<serde_json::de::SliceRead<'_>>,
    ) -> serde_json::Result<T>,
) -> serde_json::Result<T> {
    let mut de = serde_json::Deserializer::from_slice(text);
    let value = visit(&mut de)?;
    de.end()?;
    Ok(value)
}

/// One header field as found in the JSON, whatever its type.
///
/// Accepting every type (instead of asking serde for a string) lets the
/// decoder name the field that was wrong.
pub(crate) enum Field {
    Null,
    Str(String),
    /// An integer ref from a lenient client, already in decimal.
    Int(String),
    Other,
}

impl Field {
    /// A `join_ref` / `ref`: string, integer (as decimal) or null.
    pub(crate) fn into_ref(self, name: &'static str) -> Result<Option<String>, DecodeError> {
        match self {
            Field::Null => Ok(None),
            Field::Str(s) | Field::Int(s) => Ok(Some(s)),
            Field::Other => Err(DecodeError::InvalidField {
                field: name,
                expected: "a string or null",
            }),
        }
    }

    /// A `topic` / `event`: strings only.
    pub(crate) fn into_string(self, name: &'static str) -> Result<String, DecodeError> {
        match self {
            Field::Str(s) => Ok(s),
            _ => Err(DecodeError::InvalidField {
                field: name,
                expected: "a string",
            }),
        }
    }
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Field, D::Error> {
        d.deserialize_any(FieldVisitor)
    }
}

struct FieldVisitor;

impl<'de> Visitor<'de> for FieldVisitor {
    type Value = Field;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<Field, E> {
        Ok(Field::Null)
    }

    fn visit_none<E>(self) -> Result<Field, E> {
        Ok(Field::Null)
    }

    fn visit_str<E>(self, v: &str) -> Result<Field, E> {
        Ok(Field::Str(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Field, E> {
        Ok(Field::Str(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Field, E> {
        Ok(Field::Int(v.to_string()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Field, E> {
        Ok(Field::Int(v.to_string()))
    }

    fn visit_f64<E>(self, _: f64) -> Result<Field, E> {
        Ok(Field::Other)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Field, E> {
        Ok(Field::Other)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Field, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Field::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Field, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Field::Other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(json: &str) -> Field {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn refs_are_lenient() {
        assert_eq!(field("null").into_ref("ref"), Ok(None));
        assert_eq!(field(r#""7""#).into_ref("ref"), Ok(Some("7".into())));
        assert_eq!(field("42").into_ref("ref"), Ok(Some("42".into())));
        assert_eq!(field("-3").into_ref("ref"), Ok(Some("-3".into())));
        for bad in ["1.5", "true", "[1]", r#"{"a":1}"#] {
            assert_eq!(
                field(bad).into_ref("ref"),
                Err(DecodeError::InvalidField {
                    field: "ref",
                    expected: "a string or null"
                }),
                "{bad}"
            );
        }
    }

    #[test]
    fn names_are_strict() {
        assert_eq!(field(r#""t""#).into_string("topic"), Ok("t".into()));
        for bad in ["null", "1", "[]", "{}"] {
            assert!(field(bad).into_string("topic").is_err(), "{bad}");
        }
    }

    #[test]
    fn finish_prefers_the_stash() {
        let err = serde_json::from_str::<u8>("\"x\"").unwrap_err();
        assert_eq!(
            finish::<()>(
                Err(err),
                Some(DecodeError::MissingField("ref")),
                DecodeError::NotAnArray
            ),
            Err(DecodeError::MissingField("ref"))
        );
        let err = serde_json::from_str::<u8>("\"x\"").unwrap_err();
        assert_eq!(
            finish::<()>(Err(err), None, DecodeError::NotAnArray),
            Err(DecodeError::NotAnArray)
        );
        let err = serde_json::from_str::<serde_json::Value>("{").unwrap_err();
        assert!(matches!(
            finish::<()>(Err(err), None, DecodeError::NotAnArray),
            Err(DecodeError::InvalidJson(_))
        ));
    }
}
