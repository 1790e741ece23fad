//! Channel rules (`channels[]`) and the result of matching a topic against
//! one: [`ChannelRule`] and [`ChannelMatch`].
//!
//! A channel ties together a compiled [pattern](crate::pattern), the rules of
//! its variables, its join/send [permission](crate::permission) templates and
//! its presence flag. Compile-time checks done here, beyond those of the
//! modules it uses: every key of `variables` must be a variable of the
//! pattern (a misspelt name would silently drop its rules), and every error
//! names the channel's pattern.

use std::ops::Range;

use crate::document::RawChannel;
use crate::error::SchemaError;
use crate::pattern::Pattern;
use crate::permission::Permissions;
use crate::variable::VariableRule;

/// One compiled channel of the schema.
#[derive(Debug, Clone)]
pub struct ChannelRule {
    pattern: Pattern,
    /// By variable index; `None` = no rules beyond a non-empty segment.
    rules: Vec<Option<VariableRule>>,
    join: Permissions,
    send: Permissions,
    presence: bool,
}

impl ChannelRule {
    pub(crate) fn compile(raw: &RawChannel) -> Result<ChannelRule, SchemaError> {
        let in_channel = |key: String, message: String| {
            SchemaError::new(
                format!("{}.{key}", raw.path),
                format!("{message} in channel \"{}\"", raw.pattern),
            )
        };
        let pattern = Pattern::parse(&raw.pattern).map_err(|e| in_channel("pattern".into(), e))?;
        let mut rules = vec![None; pattern.vars().len()];
        for (name, raw_rule) in &raw.variables {
            let Some(index) = pattern.var_index(name) else {
                return Err(in_channel(
                    format!("variables.{name}"),
                    format!("variable \"{name}\" does not appear in the pattern"),
                ));
            };
            let rule = VariableRule::compile(raw_rule)
                .map_err(|(key, e)| in_channel(format!("variables.{name}.{key}"), e))?;
            rules[index] = Some(rule);
        }
        let permissions = |action: &str, templates: &[String]| {
            Permissions::compile(templates, &pattern)
                .map_err(|(i, e)| in_channel(format!("permissions.{action}[{i}]"), e))
        };
        Ok(ChannelRule {
            join: permissions("join", &raw.join)?,
            send: permissions("send", &raw.send)?,
            rules,
            pattern,
            presence: raw.presence,
        })
    }

    /// The pattern as written in the document, e.g. `"{resource}:{id}"`.
    pub fn pattern(&self) -> &str {
        self.pattern.source()
    }

    /// Whether Phoenix Presence is on for this channel's topics.
    pub fn presence(&self) -> bool {
        self.presence
    }

    /// The pattern's variable names, in order of appearance.
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.pattern.vars().iter().map(String::as_str)
    }

    /// Whether `topic` has this channel's shape; `spans` then holds the
    /// variables' byte ranges in `topic`.
    pub(crate) fn matches_shape(&self, topic: &str, spans: &mut Vec<Range<usize>>) -> bool {
        self.pattern.matches(topic, spans)
    }

    /// Whether every variable value (given by `spans` into `topic`) passes its rules.
    pub(crate) fn accepts_values(&self, topic: &str, spans: &[Range<usize>]) -> bool {
        self.rules.iter().zip(spans).all(|(rule, span)| {
            rule.as_ref()
                .is_none_or(|r| r.accepts(&topic[span.clone()]))
        })
    }
}

/// A topic accepted by a channel of the schema, with its variable values.
///
/// It borrows the schema, so it lives as long as the `Arc<Schema>` it came
/// from is held; matching is cheap enough to redo on every push.
#[derive(Debug, Clone)]
pub struct ChannelMatch<'s> {
    channel: &'s ChannelRule,
    index: usize,
    topic: String,
    /// By variable index.
    spans: Vec<Range<usize>>,
}

impl<'s> ChannelMatch<'s> {
    pub(crate) fn new(
        channel: &'s ChannelRule,
        index: usize,
        topic: &str,
        spans: Vec<Range<usize>>,
    ) -> Self {
        ChannelMatch {
            channel,
            index,
            topic: topic.to_owned(),
            spans,
        }
    }

    /// The channel the topic matched.
    pub fn channel(&self) -> &'s ChannelRule {
        self.channel
    }

    /// The channel's position in the document's `channels` list.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The topic that matched.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The value of variable `name` in the topic; `None` if the pattern has no
    /// such variable.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.channel
            .pattern
            .var_index(name)
            .map(|index| self.value(index))
    }

    /// Every variable with its value, in pattern order.
    pub fn vars(&self) -> impl Iterator<Item = (&str, &str)> {
        self.channel
            .variables()
            .enumerate()
            .map(|(index, name)| (name, self.value(index)))
    }

    /// Whether a client with these permission `grants` may join the topic:
    /// the channel declares no join permission, or the client holds at least
    /// one of them (see [`crate::permission`] for "holds").
    pub fn may_join<S: AsRef<str>>(&self, grants: &[S]) -> bool {
        self.channel.join.allow(|i| self.value(i), grants)
    }

    /// Whether a client with these permission `grants` may push on the
    /// topic: as [`may_join`](Self::may_join), with the `send` permissions.
    pub fn may_send<S: AsRef<str>>(&self, grants: &[S]) -> bool {
        self.channel.send.allow(|i| self.value(i), grants)
    }

    fn value(&self, index: usize) -> &str {
        &self.topic[self.spans[index].clone()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::RawDocument;
    use serde_json::{json, Value};

    fn channel(value: Value) -> Result<ChannelRule, SchemaError> {
        let doc = RawDocument::read(&json!({"channels": [value]}))?;
        ChannelRule::compile(&doc.channels[0])
    }

    fn err(value: Value) -> String {
        channel(value).unwrap_err().to_string()
    }

    #[test]
    fn errors_name_the_path_and_the_pattern() {
        assert_eq!(
            err(json!({"pattern": "user:{id}", "variables": {"id": {"format": "uuidv7"}}})),
            "channels[0].variables.id.format: unknown format \"uuidv7\" in channel \"user:{id}\""
        );
        assert_eq!(
            err(json!({"pattern": "{id}:{id}"})),
            "channels[0].pattern: variable \"id\" appears twice in channel \"{id}:{id}\""
        );
        assert!(
            err(json!({"pattern": "u:{id}", "variables": {"id": {"pattern": "(["}}}))
                .starts_with("channels[0].variables.id.pattern: invalid regex: ")
        );
        assert_eq!(
            err(json!({"pattern": "u:{id}", "variables": {"userId": {}}})),
            "channels[0].variables.userId: variable \"userId\" does not appear in the pattern in channel \"u:{id}\""
        );
        assert_eq!(
            err(json!({"pattern": "u:{id}", "permissions": {"send": ["w:{user}"]}})),
            "channels[0].permissions.send[0]: permission \"w:{user}\" uses variable \"user\", which the pattern lacks in channel \"u:{id}\""
        );
    }

    #[test]
    fn match_exposes_variables_and_checks_permissions() {
        let rule = channel(json!({
            "pattern": "{resource}:{id}",
            "permissions": {"join": ["read:{resource}:{id}"], "send": ["write:{resource}:{id}"]},
            "presence": true
        }))
        .unwrap();
        assert!(rule.presence());
        assert_eq!(rule.variables().collect::<Vec<_>>(), ["resource", "id"]);
        let mut spans = Vec::new();
        assert!(rule.matches_shape("task:7", &mut spans));
        assert!(rule.accepts_values("task:7", &spans));
        let m = ChannelMatch::new(&rule, 0, "task:7", spans);
        assert_eq!(m.var("resource"), Some("task"));
        assert_eq!(m.var("id"), Some("7"));
        assert_eq!(m.var("nope"), None);
        assert_eq!(
            m.vars().collect::<Vec<_>>(),
            [("resource", "task"), ("id", "7")]
        );
        assert_eq!(m.topic(), "task:7");
        assert!(m.may_join(&["read:task:*"]));
        assert!(!m.may_send(&["read:task:*"]));
        assert!(m.may_send(&["write:task:7".to_owned()]));
    }
}
