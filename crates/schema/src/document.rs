//! Reads the raw schema document (CONTRACT §4) out of a JSON value into plain
//! structs, checking only the JSON *shape*: every key has the right JSON type,
//! and every error carries the path of the offending item.
//!
//! What the values mean (pattern syntax, known formats, positive limits, ...)
//! is checked by the modules that compile them, not here.
//!
//! Shape decisions:
//! - unknown keys are ignored everywhere, so an app may serve a newer document
//!   to an older gateway;
//! - a `null` value means the same as an absent key;
//! - `channels` is required (a document without it is almost surely not a
//!   schema, e.g. an endpoint answering `{}`); everything else is optional;
//! - `version` may be a string or a number (stringified); absent means
//!   `"unversioned"`;
//! - `allowedChannels` and its older spelling `channels` mean the same; an
//!   event giving both is an error.

use serde_json::{Map, Value};

use crate::error::SchemaError;

/// The version reported when the document declares none.
pub(crate) const UNVERSIONED: &str = "unversioned";

/// The whole document.
#[derive(Debug)]
pub(crate) struct RawDocument {
    pub version: String,
    pub channels: Vec<RawChannel>,
    pub events: Vec<RawEvent>,
    pub rate_limits: RawRateLimits,
}

/// One entry of `channels`.
#[derive(Debug)]
pub(crate) struct RawChannel {
    /// Path of this entry, e.g. `channels[1]`.
    pub path: String,
    pub pattern: String,
    /// `variables`, keyed by variable name.
    pub variables: Vec<(String, RawVariable)>,
    /// `permissions.join` templates.
    pub join: Vec<String>,
    /// `permissions.send` templates.
    pub send: Vec<String>,
    pub presence: bool,
}

/// The rules of one variable, as written.
#[derive(Debug, Default)]
pub(crate) struct RawVariable {
    pub r#type: Option<String>,
    pub r#enum: Option<Vec<String>>,
    pub format: Option<String>,
    pub pattern: Option<String>,
    pub min_length: Option<u64>,
    pub max_length: Option<u64>,
}

/// One entry of `events`.
#[derive(Debug)]
pub(crate) struct RawEvent {
    /// Path of this entry, e.g. `events[0]`.
    pub path: String,
    pub name: String,
    /// `allowedChannels` (or `channels`); empty when absent.
    pub allowed_channels: Vec<String>,
    /// The key `allowedChannels` / `channels` was read from, for error paths.
    pub allowed_key: &'static str,
    pub payload: Option<Value>,
    pub delivery: Option<String>,
}

/// `rateLimits`.
#[derive(Debug, Default)]
pub(crate) struct RawRateLimits {
    pub default: Option<RawLimit>,
    pub by_event: Vec<(String, RawLimit)>,
}

/// One `{windowMs, maxRequests}` pair.
#[derive(Debug)]
pub(crate) struct RawLimit {
    /// Path of this limit, e.g. `rateLimits.byEvent.heartbeat`.
    pub path: String,
    pub window_ms: u64,
    pub max_requests: u64,
}

impl RawDocument {
    /// Reads the document's shape from `doc`.
    pub(crate) fn read(doc: &Value) -> Result<RawDocument, SchemaError> {
        let root = Obj::expect(doc, String::new(), "the schema document")?;
        let version = match root.get("version") {
            None => UNVERSIONED.to_owned(),
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(other) => return Err(wrong_type(&root.path_of("version"), "a string", other)),
        };
        let channels = match root.get("channels") {
            None => return Err(SchemaError::new("channels", "missing (a list of channels)")),
            Some(_) => root
                .array("channels")?
                .into_iter()
                .map(|(v, path)| read_channel(v, path))
                .collect::<Result<_, _>>()?,
        };
        let events = root
            .array("events")?
            .into_iter()
            .map(|(v, path)| read_event(v, path))
            .collect::<Result<_, _>>()?;
        let rate_limits = match root.object("rateLimits")? {
            None => RawRateLimits::default(),
            Some(limits) => read_rate_limits(&limits)?,
        };
        Ok(RawDocument {
            version,
            channels,
            events,
            rate_limits,
        })
    }
}

fn read_channel(value: &Value, path: String) -> Result<RawChannel, SchemaError> {
    let obj = Obj::expect(value, path, "a channel object")?;
    let pattern = obj.required_string("pattern")?;
    let mut variables = Vec::new();
    if let Some(vars) = obj.object("variables")? {
        for (name, value) in vars.map {
            let rules = Obj::expect(value, vars.path_of(name), "an object of variable rules")?;
            variables.push((name.clone(), read_variable(&rules)?));
        }
    }
    let (join, send) = match obj.object("permissions")? {
        None => (Vec::new(), Vec::new()),
        Some(perms) => (perms.strings("join")?, perms.strings("send")?),
    };
    let presence = obj.bool("presence")?.unwrap_or(false);
    Ok(RawChannel {
        path: obj.path,
        pattern,
        variables,
        join,
        send,
        presence,
    })
}

fn read_variable(obj: &Obj<'_>) -> Result<RawVariable, SchemaError> {
    Ok(RawVariable {
        r#type: obj.string("type")?,
        r#enum: match obj.get("enum") {
            None => None,
            Some(_) => Some(obj.strings("enum")?),
        },
        format: obj.string("format")?,
        pattern: obj.string("pattern")?,
        min_length: obj.unsigned("minLength")?,
        max_length: obj.unsigned("maxLength")?,
    })
}

fn read_event(value: &Value, path: String) -> Result<RawEvent, SchemaError> {
    let obj = Obj::expect(value, path, "an event object")?;
    let name = obj.required_string("name")?;
    let allowed_key = match (obj.get("allowedChannels"), obj.get("channels")) {
        (Some(_), Some(_)) => {
            return Err(SchemaError::new(
                obj.path_of("channels"),
                "give either allowedChannels or channels (its older name), not both",
            ))
        }
        (None, Some(_)) => "channels",
        _ => "allowedChannels",
    };
    Ok(RawEvent {
        allowed_channels: obj.strings(allowed_key)?,
        allowed_key,
        payload: obj.get("payload").cloned(),
        delivery: obj.string("delivery")?,
        name,
        path: obj.path,
    })
}

fn read_rate_limits(obj: &Obj<'_>) -> Result<RawRateLimits, SchemaError> {
    let default = match obj.object("default")? {
        None => None,
        Some(limit) => Some(read_limit(limit)?),
    };
    let mut by_event = Vec::new();
    if let Some(events) = obj.object("byEvent")? {
        for (name, value) in events.map {
            let limit = Obj::expect(
                value,
                events.path_of(name),
                "a {windowMs, maxRequests} object",
            )?;
            by_event.push((name.clone(), read_limit(limit)?));
        }
    }
    Ok(RawRateLimits { default, by_event })
}

fn read_limit(obj: Obj<'_>) -> Result<RawLimit, SchemaError> {
    let required = |key: &str| {
        obj.unsigned(key)?
            .ok_or_else(|| SchemaError::new(obj.path_of(key), "missing (a positive integer)"))
    };
    Ok(RawLimit {
        window_ms: required("windowMs")?,
        max_requests: required("maxRequests")?,
        path: obj.path.clone(),
    })
}

/// A JSON object being read, with its path for error messages.
struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: String,
}

impl<'a> Obj<'a> {
    /// `value` as an object, or an error saying `what` was expected.
    fn expect(value: &'a Value, path: String, what: &str) -> Result<Self, SchemaError> {
        match value {
            Value::Object(map) => Ok(Obj { map, path }),
            other => Err(wrong_type(&path, what, other)),
        }
    }

    fn path_of(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// The value under `key`; `None` when absent or `null`.
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn string(&self, key: &str) -> Result<Option<String>, SchemaError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(wrong_type(&self.path_of(key), "a string", other)),
        }
    }

    fn required_string(&self, key: &str) -> Result<String, SchemaError> {
        self.string(key)?
            .ok_or_else(|| SchemaError::new(self.path_of(key), "missing (a string)"))
    }

    fn bool(&self, key: &str) -> Result<Option<bool>, SchemaError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(wrong_type(&self.path_of(key), "true or false", other)),
        }
    }

    fn unsigned(&self, key: &str) -> Result<Option<u64>, SchemaError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) if n.as_u64().is_some() => Ok(n.as_u64()),
            Some(other) => Err(wrong_type(
                &self.path_of(key),
                "a non-negative integer",
                other,
            )),
        }
    }

    fn object(&self, key: &str) -> Result<Option<Obj<'a>>, SchemaError> {
        match self.get(key) {
            None => Ok(None),
            Some(value) => Obj::expect(value, self.path_of(key), "an object").map(Some),
        }
    }

    /// The elements of the array under `key` with their paths; empty when absent.
    fn array(&self, key: &str) -> Result<Vec<(&'a Value, String)>, SchemaError> {
        let path = self.path_of(key);
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => Ok(items
                .iter()
                .enumerate()
                .map(|(i, v)| (v, format!("{path}[{i}]")))
                .collect()),
            Some(other) => Err(wrong_type(&path, "a list", other)),
        }
    }

    /// The array of strings under `key`; empty when absent.
    fn strings(&self, key: &str) -> Result<Vec<String>, SchemaError> {
        self.array(key)?
            .into_iter()
            .map(|(v, path)| match v {
                Value::String(s) => Ok(s.clone()),
                other => Err(wrong_type(&path, "a string", other)),
            })
            .collect()
    }
}

fn wrong_type(path: &str, expected: &str, found: &Value) -> SchemaError {
    let found = match found {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    };
    SchemaError::new(path, format!("expected {expected}, found {found}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(doc: Value) -> String {
        RawDocument::read(&doc).unwrap_err().to_string()
    }

    #[test]
    fn reads_a_minimal_document() {
        let doc = RawDocument::read(&json!({"channels": []})).unwrap();
        assert_eq!(doc.version, UNVERSIONED);
        assert!(doc.channels.is_empty() && doc.events.is_empty());
        assert!(doc.rate_limits.default.is_none());
    }

    #[test]
    fn version_may_be_a_number() {
        let doc = RawDocument::read(&json!({"version": 3, "channels": []})).unwrap();
        assert_eq!(doc.version, "3");
        assert_eq!(
            err(json!({"version": [1], "channels": []})),
            "version: expected a string, found a list"
        );
    }

    #[test]
    fn unknown_keys_and_nulls_are_ignored() {
        let doc = RawDocument::read(&json!({
            "channels": [{"pattern": "a", "description": "x", "presence": null}],
            "future": {"anything": true},
            "events": null
        }))
        .unwrap();
        assert!(!doc.channels[0].presence);
    }

    #[test]
    fn errors_carry_the_path() {
        assert_eq!(err(json!([])), "expected the schema document, found a list");
        assert_eq!(err(json!({})), "channels: missing (a list of channels)");
        assert_eq!(
            err(json!({"channels": [{"pattern": "a"}, {"pattern": 5}]})),
            "channels[1].pattern: expected a string, found a number"
        );
        assert_eq!(
            err(json!({"channels": [{"pattern": "{id}", "variables": {"id": {"minLength": -1}}}]})),
            "channels[0].variables.id.minLength: expected a non-negative integer, found a number"
        );
        assert_eq!(
            err(json!({"channels": [{"pattern": "a", "permissions": {"join": ["x", 1]}}]})),
            "channels[0].permissions.join[1]: expected a string, found a number"
        );
        assert_eq!(
            err(json!({"channels": [], "rateLimits": {"byEvent": {"ping": {"windowMs": 1}}}})),
            "rateLimits.byEvent.ping.maxRequests: missing (a positive integer)"
        );
        assert_eq!(
            err(json!({"channels": [], "events": [{"name": "e", "channels": [], "allowedChannels": []}]})),
            "events[0].channels: give either allowedChannels or channels (its older name), not both"
        );
    }

    #[test]
    fn channels_is_the_older_name_of_allowed_channels() {
        let doc = RawDocument::read(&json!({
            "channels": [],
            "events": [{"name": "a", "channels": ["x:*"]}, {"name": "b", "allowedChannels": ["y"]}]
        }))
        .unwrap();
        assert_eq!(doc.events[0].allowed_channels, ["x:*"]);
        assert_eq!(doc.events[0].allowed_key, "channels");
        assert_eq!(doc.events[1].allowed_channels, ["y"]);
    }
}
