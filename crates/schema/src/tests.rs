//! Whole-document tests of [`Schema`]: the CONTRACT §4 example end to end,
//! first-match-wins ordering, and document-level errors.

use super::*;
use serde_json::json;

/// The example document of CONTRACT §4, verbatim.
const CONTRACT_EXAMPLE: &str = r#"{
  "version": "1.0.0",
  "channels": [
    {
      "pattern": "{resource}:{id}",
      "variables": {
        "resource": {"type": "string", "enum": ["workstation", "project", "task"]},
        "id": {"type": "string", "format": "uuid"}
      },
      "permissions": {"join": ["read:{resource}:{id}"], "send": ["write:{resource}:{id}"]},
      "presence": true
    },
    {"pattern": "user:{userId}:notifications", "variables": {"userId": {"type": "string", "format": "uuid"}}}
  ],
  "events": [
    {
      "name": "task:assigned",
      "allowedChannels": ["workstation:*", "project:*"],
      "payload": {"type": "object", "properties": {"taskId": {"type": "string"}}, "required": ["taskId"]}
    },
    {"name": "chat:msg", "channels": ["project:*"], "delivery": "broadcast"}
  ],
  "rateLimits": {
    "default": {"windowMs": 60000, "maxRequests": 100},
    "byEvent": {"heartbeat": {"windowMs": 30000, "maxRequests": 10}}
  }
}"#;

const UUID: &str = "6f1c2b7e-3d4a-4c5b-9e8f-0123456789ab";

fn example() -> Schema {
    Schema::from_json(CONTRACT_EXAMPLE.as_bytes()).unwrap()
}

#[test]
fn schema_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<Schema>();
    assert_send_sync::<std::sync::Arc<Schema>>();
}

#[test]
fn contract_example_compiles() {
    let schema = example();
    assert_eq!(schema.version(), "1.0.0");
    assert_eq!(schema.channels().len(), 2);
    assert_eq!(schema.channels()[0].pattern(), "{resource}:{id}");
    assert!(schema.channels()[0].presence());
    assert!(!schema.channels()[1].presence());
    assert_eq!(
        schema.rate_limits().default,
        Some(Limit {
            window_ms: 60000,
            max_requests: 100
        })
    );
    assert_eq!(
        schema.rate_limits().by_event["heartbeat"],
        Limit {
            window_ms: 30000,
            max_requests: 10
        }
    );
    assert_eq!(schema.events().len(), 2);
    assert!(schema.event("nope").is_none());
}

#[test]
fn contract_example_topics() {
    let schema = example();
    let project = format!("project:{UUID}");
    let m = schema.match_topic(&project).unwrap();
    assert_eq!(m.index(), 0);
    assert_eq!(m.var("resource"), Some("project"));
    assert_eq!(m.var("id"), Some(UUID));
    assert!(schema
        .match_topic(&format!("workstation:{}", UUID.to_uppercase()))
        .is_ok());

    let notifications = format!("user:{UUID}:notifications");
    let m = schema.match_topic(&notifications).unwrap();
    assert_eq!(m.index(), 1);
    assert_eq!(m.var("userId"), Some(UUID));
    assert!(m.may_join(&[] as &[&str]), "no permissions declared");
    assert!(m.may_send(&[] as &[&str]));

    // Shape matches, rules do not.
    for bad in [
        "project:42",
        &format!("team:{UUID}"),
        "user:42:notifications",
    ] {
        assert_eq!(
            schema.match_topic(bad).unwrap_err(),
            TopicError::InvalidChannelPattern,
            "{bad}"
        );
    }
    // No shape matches.
    for bad in [
        "lobby",
        &format!("project:{UUID}:extra"),
        "user:x:settings",
        "",
    ] {
        assert_eq!(
            schema.match_topic(bad).unwrap_err(),
            TopicError::Unmatched,
            "{bad}"
        );
    }
    assert_eq!(
        schema.match_topic("lobby").unwrap_err().reason(),
        "unmatched topic"
    );
}

#[test]
fn contract_example_permissions() {
    let schema = example();
    let topic = format!("project:{UUID}");
    let m = schema.match_topic(&topic).unwrap();
    assert!(m.may_join(&["read:project:*"]));
    assert!(m.may_join(&[format!("read:project:{UUID}")]));
    assert!(!m.may_join(&["read:task:*"]));
    assert!(!m.may_join(&[] as &[String]));
    assert!(!m.may_send(&["read:project:*"]));
    assert!(m.may_send(&["read:project:*", "write:project:*"]));
    assert!(m.may_send(&["*"]));
}

#[test]
fn contract_example_events() {
    let schema = example();
    let project = format!("project:{UUID}");
    let task = format!("task:{UUID}");
    let on_project = schema.match_topic(&project).unwrap();
    let on_task = schema.match_topic(&task).unwrap();

    let chat = schema.event("chat:msg").unwrap();
    assert_eq!(chat.name(), "chat:msg");
    assert_eq!(chat.delivery(), Some(Delivery::Broadcast));
    assert!(chat.allowed_on(&project, &on_project));
    assert!(!chat.allowed_on(&task, &on_task));
    assert_eq!(chat.validate(&json!({"anything": [1, 2]})), Ok(()));

    let assigned = schema.event("task:assigned").unwrap();
    assert_eq!(assigned.delivery(), None);
    assert!(assigned.allowed_on(&project, &on_project));
    assert!(!assigned.allowed_on(&task, &on_task));
    assert_eq!(assigned.validate(&json!({"taskId": "t-1"})), Ok(()));
    assert_eq!(
        assigned.validate(&json!({"taskId": 5})),
        Err(vec!["/taskId: 5 is not of type \"string\"".to_owned()])
    );
}

#[test]
fn allowed_channels_match_by_pattern_string_or_by_topic() {
    let schema = Schema::from_value(json!({
        "channels": [
            {"pattern": "room:{id}", "variables": {"id": {"format": "integer"}}},
            {"pattern": "lobby"}
        ],
        "events": [
            {"name": "by_string", "allowedChannels": ["room:{id}"]},
            {"name": "by_topic", "allowedChannels": ["room:{x}"]},
            {"name": "anywhere"},
            {"name": "empty_list", "allowedChannels": []}
        ]
    }))
    .unwrap();
    let room = schema.match_topic("room:7").unwrap();
    let lobby = schema.match_topic("lobby").unwrap();
    for name in ["by_string", "by_topic"] {
        let event = schema.event(name).unwrap();
        assert!(event.allowed_on("room:7", &room), "{name}");
        assert!(!event.allowed_on("lobby", &lobby), "{name}");
    }
    for name in ["anywhere", "empty_list"] {
        assert!(schema.event(name).unwrap().allowed_on("lobby", &lobby));
    }
}

#[test]
fn first_channel_that_fully_matches_wins() {
    let schema = Schema::from_value(json!({
        "channels": [
            {"pattern": "room:{id}", "variables": {"id": {"format": "integer"}}},
            {"pattern": "room:{name}", "variables": {"name": {"format": "slug"}}},
            {"pattern": "room:*"}
        ]
    }))
    .unwrap();
    assert_eq!(schema.match_topic("room:42").unwrap().index(), 0);
    let m = schema.match_topic("room:general").unwrap();
    assert_eq!((m.index(), m.var("name")), (1, Some("general")));
    assert_eq!(m.channel().pattern(), "room:{name}");
    assert_eq!(schema.match_topic("room:a:b").unwrap().index(), 2);
    assert_eq!(schema.match_topic("room:-x").unwrap().index(), 2);
}

#[test]
fn document_level_errors() {
    let err = |doc: &str| Schema::from_json(doc.as_bytes()).unwrap_err().to_string();
    assert!(err("{").starts_with("the schema document is not valid JSON: "));
    assert_eq!(
        err(r#"{"channels": [], "events": [{"name": "a"}, {"name": "b"}, {"name": "a"}]}"#),
        "events[2].name: event \"a\" is already defined by events[0]"
    );
    assert_eq!(
        err(r#"{"channels": [{"pattern": "a"}, {"pattern": "b", "variables": {"id": {}}}]}"#),
        "channels[1].variables.id: variable \"id\" does not appear in the pattern in channel \"b\""
    );
    assert_eq!(
        err(r#"{"channels": [], "rateLimits": {"default": {"windowMs": 0, "maxRequests": 1}}}"#),
        "rateLimits.default.windowMs: must be greater than 0"
    );
}

#[test]
fn schema_error_exposes_path_and_message() {
    let e = Schema::from_value(json!({"channels": [{"pattern": 1}]})).unwrap_err();
    assert_eq!(e.path(), "channels[0].pattern");
    assert_eq!(e.message(), "expected a string, found a number");
}
