//! Schema documents (`Schema::from_json`): never panic; a document that
//! compiles answers topic matches, event lookups and payload checks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::json;
use switchboard_schema::Schema;

fuzz_target!(|data: &[u8]| {
    let Ok(schema) = Schema::from_json(data) else {
        return;
    };
    let patterns: Vec<String> = schema
        .channels()
        .iter()
        .map(|c| c.pattern().to_owned())
        .collect();
    let payloads = [json!({}), json!(null), json!({"body": "x", "taskId": "1"})];
    for pattern in &patterns {
        for topic in [pattern.as_str(), "room:lobby", "a:b:c", ""] {
            let Ok(matched) = schema.match_topic(topic) else {
                continue;
            };
            let _ = matched.may_join(&["read:*"]);
            for rule in schema.events() {
                let _ = rule.allowed_on(topic, &matched);
                for payload in &payloads {
                    let _ = rule.validate(payload);
                }
            }
        }
    }
    let _ = schema.rate_limits();
});
