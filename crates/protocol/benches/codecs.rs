//! Criterion micro-benchmarks of the wire codecs (issue 5).
//!
//! - `decode_text`: V1 objects and V2 arrays, with a small payload and a
//!   ~1 KiB one;
//! - `decode_binary`: a V2 binary client push of 1 KiB and 64 KiB, copied
//!   out of the frame (`decode_binary`) or sharing its buffer
//!   (`decode_binary_bytes`);
//! - `peek_header`: the addressing fields of a 1 MiB frame, V1 (payload
//!   before `ref`, so it is skipped over), V2 text and V2 binary;
//! - `encode_reply` / `encode_push` / `encode_broadcast`: every
//!   [`WireFormat`], with a JSON payload and a 1 KiB binary one.
//!
//! Run with `cargo bench -p switchboard-protocol`; results are in
//! BENCHMARKS.md ("Micro-benchmarks (criterion)").

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use serde_json::{json, Value};
use switchboard_protocol::{
    decode_binary, decode_binary_bytes, decode_text, encode_broadcast, encode_client_binary,
    encode_push, encode_reply, peek_header, FrameRef, Payload, Vsn, WireFormat,
};

const TOPIC: &str = "room:lobby";
const EVENT: &str = "new_msg";

/// A chat-message-like payload.
fn small_payload() -> Value {
    json!({"body": "hello there", "user": "ann"})
}

/// A payload of about 1 KiB once serialized: nested objects, an array of
/// numbers, strings with escapes.
fn kib_payload() -> Value {
    let items: Vec<Value> = (0..12)
        .map(|i| {
            json!({
                "id": i,
                "name": format!("item-{i}"),
                "price": 9.99 + f64::from(i),
                "tags": ["a", "b"],
            })
        })
        .collect();
    json!({
        "body": "a \"quoted\" line\nand a second one with unicode: caf\u{e9}",
        "user": {"id": "6f1c2b7e-3d4a-4c5b-9e8f-0123456789ab", "name": "ann", "admin": false},
        "items": items,
    })
}

fn v2_text(payload: &Value) -> Vec<u8> {
    serde_json::to_vec(&json!(["3", "7", TOPIC, EVENT, payload])).unwrap()
}

/// The key order phoenix.js's V1 serializer produces.
fn v1_text(payload: &Value) -> Vec<u8> {
    format!(
        r#"{{"topic":"{TOPIC}","event":"{EVENT}","payload":{payload},"ref":"7","join_ref":"3"}}"#
    )
    .into_bytes()
}

fn client_binary(len: usize) -> Bytes {
    let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
    encode_client_binary(Some("3"), Some("7"), TOPIC, EVENT, &data)
        .expect("short fields fit")
        .bytes()
        .clone()
}

fn bench_decode_text(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode_text");
    for (size, payload) in [("small", small_payload()), ("1KiB", kib_payload())] {
        for (vsn, name, frame) in [
            (Vsn::V1, "v1", v1_text(&payload)),
            (Vsn::V2, "v2", v2_text(&payload)),
        ] {
            decode_text(vsn, &frame).expect("the bench frame decodes");
            group.throughput(Throughput::Bytes(frame.len() as u64));
            group.bench_with_input(BenchmarkId::new(name, size), &frame, |b, frame| {
                b.iter(|| decode_text(vsn, black_box(frame)))
            });
        }
    }
    group.finish();
}

fn bench_decode_binary(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode_binary");
    for (size, len) in [("1KiB", 1024), ("64KiB", 64 * 1024)] {
        let frame = client_binary(len);
        decode_binary(&frame).expect("the bench frame decodes");
        group.throughput(Throughput::Bytes(frame.len() as u64));
        group.bench_with_input(BenchmarkId::new("copy", size), &frame, |b, frame| {
            b.iter(|| decode_binary(black_box(frame)))
        });
        // Cloning `Bytes` is a reference-count bump, as when the transport
        // hands over the frame it received.
        group.bench_with_input(BenchmarkId::new("shared", size), &frame, |b, frame| {
            b.iter(|| decode_binary_bytes(black_box(frame.clone())))
        });
    }
    group.finish();
}

fn bench_peek_header(c: &mut Criterion) {
    // A 1 MiB string payload: a frame far over any frame-size limit.
    let big = Value::String("x".repeat(1024 * 1024));
    let v1 = v1_text(&big);
    let v2 = v2_text(&big);
    let bin = client_binary(1024 * 1024);
    let mut group = c.benchmark_group("peek_header_1MiB");
    for (name, frame, vsn) in [
        ("v1_text", FrameRef::Text(&v1), Vsn::V1),
        ("v2_text", FrameRef::Text(&v2), Vsn::V2),
        ("v2_binary", FrameRef::Binary(&bin), Vsn::V2),
    ] {
        let header = peek_header(frame, vsn).expect("the bench frame has a header");
        assert_eq!(header.msg_ref.as_deref(), Some("7"));
        group.bench_function(name, |b| b.iter(|| peek_header(black_box(frame), vsn)));
    }
    group.finish();
}

fn format_name(format: WireFormat) -> &'static str {
    match format {
        WireFormat::V1 => "v1",
        WireFormat::V2 => "v2",
        WireFormat::V2Text => "v2text",
    }
}

fn bench_encode(c: &mut Criterion) {
    let payloads = [
        ("json", Payload::Json(small_payload())),
        ("json_1KiB", Payload::Json(kib_payload())),
        (
            "binary_1KiB",
            Payload::Binary((0..1024).map(|i| i as u8).collect()),
        ),
    ];
    let mut group = c.benchmark_group("encode_reply");
    for format in WireFormat::ALL {
        for (kind, payload) in &payloads {
            let id = BenchmarkId::new(format_name(format), kind);
            group.bench_with_input(id, payload, |b, payload| {
                b.iter(|| {
                    encode_reply(
                        black_box(format),
                        Some("3"),
                        Some("7"),
                        TOPIC,
                        "ok",
                        black_box(payload),
                    )
                })
            });
        }
    }
    group.finish();

    let mut group = c.benchmark_group("encode_push");
    for format in WireFormat::ALL {
        for (kind, payload) in &payloads {
            let id = BenchmarkId::new(format_name(format), kind);
            group.bench_with_input(id, payload, |b, payload| {
                b.iter(|| {
                    encode_push(
                        black_box(format),
                        Some("3"),
                        TOPIC,
                        EVENT,
                        black_box(payload),
                    )
                })
            });
        }
    }
    group.finish();

    let mut group = c.benchmark_group("encode_broadcast");
    for format in WireFormat::ALL {
        for (kind, payload) in &payloads {
            let id = BenchmarkId::new(format_name(format), kind);
            group.bench_with_input(id, payload, |b, payload| {
                b.iter(|| encode_broadcast(black_box(format), TOPIC, EVENT, black_box(payload)))
            });
        }
    }
    group.finish();
}

criterion_group!(
    benches,
    bench_decode_text,
    bench_decode_binary,
    bench_peek_header,
    bench_encode
);
criterion_main!(benches);
