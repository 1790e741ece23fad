//! Criterion micro-benchmarks of the schema document (issue 5).
//!
//! - `from_json`: compiling the CONTRACT §4 example, and a 20-channel
//!   document with regexes and JSON Schemas (a document's one-off cost);
//! - `match_topic`: topics against 20 channel patterns (uuid, enum, slug,
//!   integer and regex variables, a final `*`), matched by the first, a
//!   middle and the last channel, unmatched, and matched in shape but with
//!   an invalid variable (the per-join and per-push cost);
//! - `may_join` / `may_send`: exact and wildcard grants, and a denial after
//!   checking ten grants;
//! - `validate`: `EventRule::validate` on a valid and an invalid payload, for
//!   the CONTRACT example's small object schema and a bigger nested one.
//!
//! Run with `cargo bench -p switchboard-schema`; results are in
//! BENCHMARKS.md ("Micro-benchmarks (criterion)").

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::{json, Value};
use switchboard_schema::{Schema, TopicError};

/// The example document of CONTRACT §4, verbatim (as in the crate's tests).
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

/// A bigger payload schema: an order with a nested customer and an array of
/// line items, with enums, bounds, regexes and `additionalProperties`.
fn order_schema() -> Value {
    json!({
        "type": "object",
        "required": ["orderId", "customer", "items", "status"],
        "additionalProperties": false,
        "properties": {
            "orderId": {"type": "string", "pattern": "^ORD-[0-9]{8}$"},
            "status": {"enum": ["new", "paid", "shipped", "cancelled"]},
            "note": {"type": "string", "maxLength": 500},
            "customer": {
                "type": "object",
                "required": ["id", "name", "address"],
                "properties": {
                    "id": {"type": "string", "minLength": 36, "maxLength": 36},
                    "name": {"type": "string", "minLength": 1},
                    "vip": {"type": "boolean"},
                    "address": {
                        "type": "object",
                        "required": ["street", "city", "country"],
                        "properties": {
                            "street": {"type": "string"},
                            "city": {"type": "string"},
                            "zip": {"type": "string", "pattern": "^[0-9A-Z -]{3,10}$"},
                            "country": {"type": "string", "pattern": "^[A-Z]{2}$"}
                        }
                    }
                }
            },
            "items": {
                "type": "array",
                "minItems": 1,
                "maxItems": 100,
                "items": {
                    "type": "object",
                    "required": ["sku", "quantity", "price"],
                    "properties": {
                        "sku": {"type": "string", "pattern": "^[A-Z0-9-]{4,20}$"},
                        "quantity": {"type": "integer", "minimum": 1, "maximum": 1000},
                        "price": {"type": "number", "exclusiveMinimum": 0},
                        "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": true}
                    }
                }
            }
        }
    })
}

/// 20 channels, first match wins: the CONTRACT example's two, then a mix of
/// variable rules, a literal topic, and two final-`*` patterns last.
fn twenty_channels() -> Value {
    json!({
        "version": "bench-1",
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
            {"pattern": "user:{userId}:notifications", "variables": {"userId": {"format": "uuid"}}},
            {"pattern": "room:{roomId}:messages", "variables": {"roomId": {"type": "integer"}}},
            {"pattern": "team:{team}:chat", "variables": {"team": {"format": "slug", "maxLength": 40}}},
            {
                "pattern": "org:{org}:member:{memberId}",
                "variables": {"org": {"format": "slug"}, "memberId": {"format": "uuid"}},
                "permissions": {"join": ["org:{org}:admin", "member:{memberId}"]}
            },
            {"pattern": "ticket:{code}:updates", "variables": {"code": {"pattern": "[A-Z]{2,5}-[0-9]{1,6}"}}},
            {"pattern": "doc:{docId}:cursor", "variables": {"docId": {"pattern": "[a-f0-9]{24}"}}},
            {
                "pattern": "game:{mode}:{matchId}",
                "variables": {"mode": {"enum": ["ranked", "casual", "custom"]}, "matchId": {"type": "integer"}}
            },
            {"pattern": "region:{region}:alerts", "variables": {"region": {"enum": ["eu-west", "us-east", "ap-south"]}}},
            {"pattern": "feed:{feedId}:live", "variables": {"feedId": {"format": "slug", "minLength": 3, "maxLength": 32}}},
            {"pattern": "invoice:{number}:status", "variables": {"number": {"pattern": "INV-[0-9]{8}"}}},
            {"pattern": "device:{serial}:telemetry", "variables": {"serial": {"pattern": "[A-Z0-9]{12}"}}},
            {"pattern": "stock:{symbol}:ticks", "variables": {"symbol": {"pattern": "[A-Z]{1,5}"}}},
            {"pattern": "queue:{name}:jobs", "variables": {"name": {"format": "slug"}}},
            {
                "pattern": "board:{boardId}:card:{cardId}",
                "variables": {"boardId": {"format": "uuid"}, "cardId": {"format": "uuid"}}
            },
            {
                "pattern": "support:{lang}:agent:{agentId}",
                "variables": {"lang": {"enum": ["en", "fr", "de", "es", "it"]}, "agentId": {"type": "integer"}}
            },
            {
                "pattern": "metrics:{host}:{metric}:stream",
                "variables": {"host": {"format": "slug"}, "metric": {"pattern": "[a-z_]{1,40}"}}
            },
            {"pattern": "lobby"},
            {"pattern": "admin:{section}:*", "variables": {"section": {"enum": ["users", "billing", "audit"]}}},
            {"pattern": "public:*"}
        ],
        "events": [
            {"name": "order:placed", "payload": order_schema()},
            {"name": "chat:msg", "delivery": "broadcast"}
        ]
    })
}

fn bench_from_json(c: &mut Criterion) {
    let big = serde_json::to_vec(&twenty_channels()).unwrap();
    let mut group = c.benchmark_group("from_json");
    group.bench_function("contract_example", |b| {
        b.iter(|| Schema::from_json(black_box(CONTRACT_EXAMPLE.as_bytes())).unwrap())
    });
    group.bench_function("20_channels_nested_payload", |b| {
        b.iter(|| Schema::from_json(black_box(&big)).unwrap())
    });
    group.finish();
}

fn bench_match_topic(c: &mut Criterion) {
    let schema = Schema::from_value(twenty_channels()).unwrap();
    assert_eq!(schema.channels().len(), 20);
    let matching = [
        ("first_uuid_enum", format!("project:{UUID}"), 0),
        ("mid_regex", "ticket:ABC-1234:updates".to_owned(), 5),
        ("late_two_uuids", format!("board:{UUID}:card:{UUID}"), 14),
        ("last_final_star", "public:news:sports".to_owned(), 19),
    ];
    let mut group = c.benchmark_group("match_topic");
    for (name, topic, index) in &matching {
        assert_eq!(schema.match_topic(topic).unwrap().index(), *index, "{name}");
        group.bench_function(*name, |b| b.iter(|| schema.match_topic(black_box(topic))));
    }
    let failing = [
        ("unmatched", "nothing:here:at:all", TopicError::Unmatched),
        (
            "invalid_uuid",
            "project:not-a-uuid",
            TopicError::InvalidChannelPattern,
        ),
        (
            "invalid_regex",
            "device:abc:telemetry",
            TopicError::InvalidChannelPattern,
        ),
    ];
    for (name, topic, expected) in failing {
        assert_eq!(schema.match_topic(topic).unwrap_err(), expected, "{name}");
        group.bench_function(name, |b| b.iter(|| schema.match_topic(black_box(topic))));
    }
    group.finish();
}

fn bench_permissions(c: &mut Criterion) {
    let schema = Schema::from_value(twenty_channels()).unwrap();
    let topic = format!("project:{UUID}");
    let m = schema.match_topic(&topic).unwrap();
    let exact_read = vec![format!("read:project:{UUID}")];
    let exact_write = vec![format!("write:project:{UUID}")];
    let wildcard_read = vec!["read:project:*".to_owned()];
    let wildcard_write = vec!["write:project:*".to_owned()];
    // Ten grants, none of which covers the topic: every one is checked.
    let ten_others: Vec<String> = (0..10)
        .map(|i| format!("read:task:{i:08}-3d4a-4c5b-9e8f-0123456789ab"))
        .collect();

    let mut group = c.benchmark_group("may_join");
    for (name, grants, expected) in [
        ("exact", &exact_read, true),
        ("wildcard", &wildcard_read, true),
        ("denied_10_grants", &ten_others, false),
    ] {
        assert_eq!(m.may_join(grants), expected, "{name}");
        group.bench_function(name, |b| b.iter(|| m.may_join(black_box(grants))));
    }
    group.finish();

    let mut group = c.benchmark_group("may_send");
    for (name, grants, expected) in [
        ("exact", &exact_write, true),
        ("wildcard", &wildcard_write, true),
        ("denied_10_grants", &ten_others, false),
    ] {
        assert_eq!(m.may_send(grants), expected, "{name}");
        group.bench_function(name, |b| b.iter(|| m.may_send(black_box(grants))));
    }
    group.finish();
}

fn order(items: usize) -> Value {
    let items: Vec<Value> = (0..items)
        .map(|i| {
            json!({
                "sku": format!("SKU-{i:04}"),
                "quantity": i + 1,
                "price": 4.5 + i as f64,
                "tags": ["gift", "fragile"]
            })
        })
        .collect();
    json!({
        "orderId": "ORD-20260101",
        "status": "paid",
        "note": "leave at the door",
        "customer": {
            "id": UUID,
            "name": "Ann",
            "vip": true,
            "address": {"street": "1 Main St", "city": "Lyon", "zip": "69001", "country": "FR"}
        },
        "items": items
    })
}

fn bench_validate(c: &mut Criterion) {
    let contract = Schema::from_json(CONTRACT_EXAMPLE.as_bytes()).unwrap();
    let small = contract.event("task:assigned").unwrap();
    let big_schema = Schema::from_value(twenty_channels()).unwrap();
    let nested = big_schema.event("order:placed").unwrap();

    let small_valid = json!({"taskId": "t-1"});
    let small_invalid = json!({"taskId": 5});
    let nested_valid = order(10);
    // Four errors: a bad orderId, an unknown status, a missing city and a
    // zero quantity.
    let mut nested_invalid = order(10);
    nested_invalid["orderId"] = json!("ORD-1");
    nested_invalid["status"] = json!("lost");
    nested_invalid["customer"]["address"]
        .as_object_mut()
        .unwrap()
        .remove("city");
    nested_invalid["items"][7]["quantity"] = json!(0);

    assert_eq!(small.validate(&small_valid), Ok(()));
    assert_eq!(small.validate(&small_invalid).unwrap_err().len(), 1);
    assert_eq!(nested.validate(&nested_valid), Ok(()));
    assert_eq!(nested.validate(&nested_invalid).unwrap_err().len(), 4);

    let mut group = c.benchmark_group("validate");
    for (name, rule, payload) in [
        ("small_valid", small, &small_valid),
        ("small_invalid", small, &small_invalid),
        ("nested_valid", nested, &nested_valid),
        ("nested_invalid", nested, &nested_invalid),
    ] {
        group.bench_function(name, |b| b.iter(|| rule.validate(black_box(payload))));
    }
    group.finish();
}

criterion_group!(
    benches,
    bench_from_json,
    bench_match_topic,
    bench_permissions,
    bench_validate
);
criterion_main!(benches);
