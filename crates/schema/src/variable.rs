//! The rules a topic variable's value must satisfy (`channels[].variables`),
//! compiled once, checked on every join and push.
//!
//! Rules, all optional, all of which must hold:
//! - `type`: `"string"` (no constraint beyond the segment) or `"integer"`
//!   (same as `format: "integer"`);
//! - `enum`: the value must be one of these strings;
//! - `format`: `uuid` (8-4-4-4-12 hex digits, any case), `integer` (an
//!   optional `-` then ASCII digits) or `slug` (ASCII letters, digits, `-` and
//!   `_`, starting with a letter or digit);
//! - `pattern`: a regular expression (Rust `regex` syntax) that must match the
//!   WHOLE value: it is anchored here as `^(?:...)$`;
//! - `minLength` / `maxLength`: bounds on the length in characters.
//!
//! The value itself is already known to be one non-empty segment (no `:`):
//! the pattern matcher guarantees that. This module does not know where the
//! rules sit in the document; its caller adds the path.

use regex::Regex;

use crate::document::RawVariable;

/// A built-in value format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Uuid,
    Integer,
    Slug,
}

impl Format {
    fn parse(name: &str) -> Option<Format> {
        match name {
            "uuid" => Some(Format::Uuid),
            "integer" => Some(Format::Integer),
            "slug" => Some(Format::Slug),
            _ => None,
        }
    }

    fn accepts(self, value: &str) -> bool {
        match self {
            Format::Uuid => is_uuid(value),
            Format::Integer => {
                let digits = value.strip_prefix('-').unwrap_or(value);
                !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
            }
            Format::Slug => {
                let mut bytes = value.bytes();
                bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
                    && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            }
        }
    }
}

fn is_uuid(value: &str) -> bool {
    let bytes = value.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// The compiled rules of one variable.
#[derive(Debug, Clone)]
pub(crate) struct VariableRule {
    one_of: Option<Vec<String>>,
    format: Option<Format>,
    pattern: Option<Regex>,
    min_length: Option<u64>,
    max_length: Option<u64>,
}

/// Which key of the rules object is wrong, and why.
pub(crate) type RuleError = (&'static str, String);

impl VariableRule {
    /// Compiles `raw`, or names the offending key and what is wrong with it.
    pub(crate) fn compile(raw: &RawVariable) -> Result<VariableRule, RuleError> {
        let mut format = match raw.format.as_deref() {
            None => None,
            Some(name) => Some(
                Format::parse(name)
                    .ok_or_else(|| ("format", format!("unknown format \"{name}\"")))?,
            ),
        };
        match raw.r#type.as_deref() {
            None | Some("string") => {}
            Some("integer") => match format {
                None | Some(Format::Integer) => format = Some(Format::Integer),
                Some(other) => {
                    return Err((
                        "type",
                        format!("type \"integer\" contradicts format {other:?}"),
                    ))
                }
            },
            Some(other) => {
                return Err((
                    "type",
                    format!("unknown type \"{other}\" (expected \"string\" or \"integer\")"),
                ))
            }
        }
        if raw.r#enum.as_ref().is_some_and(Vec::is_empty) {
            return Err(("enum", "is empty, so no value could ever match".to_owned()));
        }
        let pattern = match raw.pattern.as_deref() {
            None => None,
            Some(source) => Some(
                Regex::new(&format!("^(?:{source})$"))
                    .map_err(|e| ("pattern", format!("invalid regex: {}", one_line(&e))))?,
            ),
        };
        if let (Some(min), Some(max)) = (raw.min_length, raw.max_length) {
            if min > max {
                return Err((
                    "minLength",
                    format!("minLength {min} is greater than maxLength {max}"),
                ));
            }
        }
        Ok(VariableRule {
            one_of: raw.r#enum.clone(),
            format,
            pattern,
            min_length: raw.min_length,
            max_length: raw.max_length,
        })
    }

    /// Whether `value` satisfies every rule.
    pub(crate) fn accepts(&self, value: &str) -> bool {
        if let Some(one_of) = &self.one_of {
            if !one_of.iter().any(|v| v == value) {
                return false;
            }
        }
        if self.format.is_some_and(|f| !f.accepts(value)) {
            return false;
        }
        if self.min_length.is_some() || self.max_length.is_some() {
            let len = value.chars().count() as u64;
            if self.min_length.is_some_and(|min| len < min)
                || self.max_length.is_some_and(|max| len > max)
            {
                return false;
            }
        }
        self.pattern.as_ref().is_none_or(|re| re.is_match(value))
    }
}

/// A regex error's text on one line (regex errors span several lines).
fn one_line(e: &regex::Error) -> String {
    e.to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(raw: RawVariable) -> VariableRule {
        VariableRule::compile(&raw).unwrap()
    }

    fn format(name: &str) -> VariableRule {
        rule(RawVariable {
            format: Some(name.into()),
            ..Default::default()
        })
    }

    #[test]
    fn uuid_format() {
        let r = format("uuid");
        assert!(r.accepts("6f1c2b7e-3d4a-4c5b-9e8f-0123456789ab"));
        assert!(r.accepts("6F1C2B7E-3D4A-4C5B-9E8F-0123456789AB"));
        assert!(!r.accepts("6f1c2b7e-3d4a-4c5b-9e8f-0123456789a"));
        assert!(!r.accepts("6f1c2b7e3d4a-4c5b-9e8f-0123456789abc"));
        assert!(!r.accepts("6f1c2b7e-3d4a-4c5b-9e8f-0123456789ag"));
    }

    #[test]
    fn integer_format_and_type() {
        for r in [
            format("integer"),
            rule(RawVariable {
                r#type: Some("integer".into()),
                ..Default::default()
            }),
        ] {
            assert!(r.accepts("42") && r.accepts("-7") && r.accepts("007"));
            assert!(!r.accepts("-") && !r.accepts("4.2") && !r.accepts("+4") && !r.accepts("x"));
        }
    }

    #[test]
    fn slug_format() {
        let r = format("slug");
        assert!(r.accepts("my-project_2") && r.accepts("9lives"));
        assert!(!r.accepts("-lead") && !r.accepts("_lead") && !r.accepts("a b") && !r.accepts("é"));
    }

    #[test]
    fn enum_pattern_and_lengths() {
        let r = rule(RawVariable {
            r#enum: Some(vec!["task".into(), "project".into()]),
            ..Default::default()
        });
        assert!(r.accepts("task") && !r.accepts("tasks"));

        // The regex must match the whole value, even when it has no anchors or an alternation.
        let r = rule(RawVariable {
            pattern: Some("a|b+".into()),
            ..Default::default()
        });
        assert!(r.accepts("a") && r.accepts("bbb") && !r.accepts("ab") && !r.accepts("xa"));

        let r = rule(RawVariable {
            min_length: Some(2),
            max_length: Some(3),
            ..Default::default()
        });
        assert!(!r.accepts("é") && r.accepts("éé") && r.accepts("ééé") && !r.accepts("éééé"));
    }

    #[test]
    fn bad_rules_name_their_key() {
        let err = |raw| VariableRule::compile(&raw).unwrap_err();
        assert_eq!(
            err(RawVariable {
                format: Some("uuidv7".into()),
                ..Default::default()
            }),
            ("format", "unknown format \"uuidv7\"".to_owned())
        );
        assert_eq!(
            err(RawVariable {
                pattern: Some("(".into()),
                ..Default::default()
            })
            .0,
            "pattern"
        );
        assert_eq!(
            err(RawVariable {
                r#type: Some("number".into()),
                ..Default::default()
            })
            .0,
            "type"
        );
        assert_eq!(
            err(RawVariable {
                r#type: Some("integer".into()),
                format: Some("uuid".into()),
                ..Default::default()
            })
            .0,
            "type"
        );
        assert_eq!(
            err(RawVariable {
                r#enum: Some(vec![]),
                ..Default::default()
            })
            .0,
            "enum"
        );
        assert_eq!(
            err(RawVariable {
                min_length: Some(3),
                max_length: Some(2),
                ..Default::default()
            })
            .0,
            "minLength"
        );
    }
}
