//! Topic matching and the per-message checks against a fixed schema that
//! uses every variable rule (`fuzz/schemas/topic_match.json`). Input lines:
//! topic, event name, JSON payload, then permission grants.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use switchboard_schema::Schema;

fn schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        Schema::from_json(include_bytes!("../schemas/topic_match.json"))
            .expect("the schema compiles")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let topic = lines.next().unwrap_or_default();
    let event = lines.next().unwrap_or_default();
    let payload = lines.next().unwrap_or_default();
    let grants: Vec<&str> = lines.collect();
    let schema = schema();
    let Ok(matched) = schema.match_topic(topic) else {
        return;
    };
    assert_eq!(matched.topic(), topic);
    for (name, value) in matched.vars() {
        assert!(
            !value.is_empty(),
            "variable {name} matched an empty segment"
        );
        assert!(topic.contains(value));
    }
    let _ = matched.may_join(&grants);
    let _ = matched.may_send(&grants);
    if let Some(rule) = schema.event(event) {
        let _ = rule.allowed_on(topic, &matched);
        if let Ok(payload) = serde_json::from_str(payload) {
            let _ = rule.validate(&payload);
        }
    }
});
