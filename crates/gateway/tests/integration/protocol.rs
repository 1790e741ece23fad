//! The Phoenix wire protocol (PHOENIX_PROTOCOL.md §2–§4, §6): serializers,
//! binary frames, dispatch rules, malformed input, idle timeout.

use serde_json::{json, Value};

use crate::support::*;

/// A V2 binary client push (kind 0).
fn binary_push(join_ref: &str, msg_ref: &str, topic: &str, event: &str, data: &[u8]) -> Vec<u8> {
    let mut frame = vec![
        0,
        join_ref.len() as u8,
        msg_ref.len() as u8,
        topic.len() as u8,
        event.len() as u8,
    ];
    for part in [join_ref, msg_ref, topic, event] {
        frame.extend_from_slice(part.as_bytes());
    }
    frame.extend_from_slice(data);
    frame
}

#[tokio::test]
async fn heartbeat_is_answered_with_a_null_join_ref() {
    let (_backend, server) = start(|s| s).await;
    let mut client = WsClient::connect(server.addr, "alice").await;
    client
        .send_text(r#"[null,"7","phoenix","heartbeat",{}]"#)
        .await;
    assert_eq!(
        client.next_frame().await,
        Frame::Text(json!([null, "7", "phoenix", "phx_reply", {"status": "ok", "response": {}}]))
    );
}

#[tokio::test]
async fn v1_clients_get_objects_without_join_ref() {
    let (_backend, server) = start(|s| s).await;
    // No vsn means 1.0.0.
    let mut v1 = WsClient::connect_query(server.addr, &format!("app={APP}&token=alice")).await;
    v1.send_text(r#"{"topic":"room:a","event":"phx_join","payload":{},"ref":"1"}"#)
        .await;
    let reply = v1.next_frame().await;
    assert_eq!(
        reply,
        Frame::Text(json!({
            "topic": "room:a", "event": "phx_reply",
            "payload": {"status": "ok", "response": {}}, "ref": "1"
        }))
    );

    v1.send_text(r#"{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"2"}"#)
        .await;
    assert_eq!(
        v1.next_frame().await,
        Frame::Text(json!({
            "topic": "phoenix", "event": "phx_reply",
            "payload": {"status": "ok", "response": {}}, "ref": "2"
        }))
    );

    // A push answered by the channel, and the broadcast it causes.
    v1.send_text(r#"{"topic":"room:a","event":"chat:msg","payload":{"body":"hi"},"ref":"3"}"#)
        .await;
    let mut frames = vec![v1.next_frame().await, v1.next_frame().await];
    frames.sort_by_key(|f| f.json().unwrap()["event"].to_string());
    assert_eq!(
        frames,
        vec![
            Frame::Text(json!({
                "topic": "room:a", "event": "chat:msg", "payload": {"body": "hi"}, "ref": null
            })),
            Frame::Text(json!({
                "topic": "room:a", "event": "phx_reply",
                "payload": {"status": "ok", "response": {}}, "ref": "3"
            })),
        ]
    );
    for frame in frames {
        assert!(frame.json().unwrap().get("join_ref").is_none());
    }
}

#[tokio::test]
async fn binary_push_is_broadcast_as_binary_to_v2_and_base64_to_v1() {
    let (_backend, server) = start(|s| s).await;
    let mut sender = WsClient::connect(server.addr, "alice").await;
    let mut v2 = WsClient::connect(server.addr, "bob").await;
    let mut v1 =
        WsClient::connect_query(server.addr, &format!("app={APP}&token=carol&vsn=1.0.0")).await;
    sender.join_ok("room:bin", "11").await;
    v2.join_ok("room:bin", "1").await;
    v1.send_text(r#"{"topic":"room:bin","event":"phx_join","payload":{},"ref":"1"}"#)
        .await;
    assert_eq!(
        v1.next_frame().await.json().unwrap()["payload"]["status"],
        "ok"
    );

    sender
        .send_binary(binary_push("11", "2", "room:bin", "blob", &[1, 2, 3]))
        .await;
    let reply = sender.reply("2").await;
    assert_eq!(
        reply,
        json!(["11", "2", "room:bin", "phx_reply", {"status": "ok", "response": {}}])
    );

    // kind 2 | topic_len | event_len | topic | event | data
    let mut expected = vec![2, 8, 4];
    expected.extend_from_slice(b"room:binblob");
    expected.extend_from_slice(&[1, 2, 3]);
    assert_eq!(v2.next_frame().await, Frame::Binary(expected.clone()));
    // The sender is a subscriber too (Phoenix `broadcast!`).
    let frame = sender.until(|f| matches!(f, Frame::Binary(_))).await;
    assert_eq!(frame, Frame::Binary(expected));
    assert_eq!(
        v1.next_frame().await,
        Frame::Text(json!({
            "topic": "room:bin", "event": "blob",
            "payload": {"payload_base64": "AQID"}, "ref": null
        }))
    );
}

#[tokio::test]
async fn duplicate_join_replies_then_closes_the_old_join() {
    let (_backend, server) = start(|s| s).await;
    let mut client = WsClient::connect(server.addr, "alice").await;
    client.join_ok("room:a", "1").await;
    client
        .send_v2(Some("2"), Some("2"), "room:a", "phx_join", json!({}))
        .await;
    assert_eq!(
        client.next_frame().await,
        Frame::Text(json!(["2", "2", "room:a", "phx_reply", {"status": "ok", "response": {}}]))
    );
    assert_eq!(
        client.next_frame().await,
        Frame::Text(json!(["1", "1", "room:a", "phx_close", {}]))
    );
    // The new join is the live one: its pushes are answered.
    let reply = client.push("2", "room:a", "chat:msg", json!({})).await;
    assert_eq!(reply["status"], "ok");
}

#[tokio::test]
async fn leave_replies_ok_then_closes() {
    let (_backend, server) = start(|s| s).await;
    let mut client = WsClient::connect(server.addr, "alice").await;
    client.join_ok("room:a", "2").await;
    client
        .send_v2(Some("2"), Some("3"), "room:a", "phx_leave", json!({}))
        .await;
    assert_eq!(
        client.next_frame().await,
        Frame::Text(json!(["2", "3", "room:a", "phx_reply", {"status": "ok", "response": {}}]))
    );
    assert_eq!(
        client.next_frame().await,
        Frame::Text(json!(["2", "2", "room:a", "phx_close", {}]))
    );
    // After the leave the topic is not joined any more.
    client
        .send_v2(Some("2"), Some("4"), "room:a", "chat:msg", json!({}))
        .await;
    assert_eq!(
        client.next_frame().await,
        Frame::Text(json!([null, "4", "room:a", "phx_reply",
            {"status": "error", "response": {"reason": "unmatched topic"}}]))
    );
}

#[tokio::test]
async fn leave_with_a_stale_join_ref_is_ignored() {
    let (_backend, server) = start(|s| s).await;
    let mut client = WsClient::connect(server.addr, "alice").await;
    client.join_ok("room:a", "1").await;
    client.join_ok("room:a", "2").await;
    client
        .send_v2(Some("1"), Some("3"), "room:a", "phx_leave", json!({}))
        .await;
    // Only the rejoin's phx_close of join "1"; no reply, no close for "2".
    assert_eq!(
        client.sync().await,
        vec![Frame::Text(json!(["1", "1", "room:a", "phx_close", {}]))]
    );
    assert_eq!(
        client.push("2", "room:a", "chat:msg", json!({})).await["status"],
        "ok"
    );
}

#[tokio::test]
async fn leaving_a_topic_never_joined_is_ok() {
    let (_backend, server) = start(|s| s).await;
    let mut client = WsClient::connect(server.addr, "alice").await;
    client
        .send_v2(Some("9"), Some("10"), "room:zzz", "phx_leave", json!({}))
        .await;
    assert_eq!(
        client.next_frame().await,
        Frame::Text(json!(["9", "10", "room:zzz", "phx_reply", {"status": "ok", "response": {}}]))
    );
    // No phx_close follows.
    assert_eq!(client.sync().await, Vec::<Frame>::new());
}

#[tokio::test]
async fn push_to_a_topic_not_joined_is_an_unmatched_topic() {
    let (_backend, server) = start(|s| s).await;
    let mut client = WsClient::connect(server.addr, "alice").await;
    client
        .send_v2(Some("5"), Some("11"), "room:b", "chat:msg", json!({}))
        .await;
    assert_eq!(
        client.next_frame().await,
        Frame::Text(json!([null, "11", "room:b", "phx_reply",
            {"status": "error", "response": {"reason": "unmatched topic"}}]))
    );
}

#[tokio::test]
async fn push_with_a_stale_join_ref_is_ignored() {
    let (_backend, server) = start(|s| s).await;
    let mut client = WsClient::connect(server.addr, "alice").await;
    let mut other = WsClient::connect(server.addr, "bob").await;
    other.join_ok("room:a", "1").await;
    client.join_ok("room:a", "1").await;
    client.join_ok("room:a", "2").await; // rejoin: "1" is now stale
    let before = client.sync().await;
    assert!(
        before.iter().all(|f| f.is_event("room:a", "phx_close")),
        "{before:?}"
    );

    // `chat:msg` is answered synchronously, so a processed push would be
    // answered (and broadcast) before the heartbeat that follows it.
    client
        .send_v2(Some("1"), Some("20"), "room:a", "chat:msg", json!({"n": 1}))
        .await;
    assert_eq!(client.sync().await, Vec::<Frame>::new());
    assert_eq!(other.sync().await, Vec::<Frame>::new());

    // A null join_ref is accepted (phoenix.js ≥ 1.8.12 semantics).
    client
        .send_v2(None, Some("21"), "room:a", "chat:msg", json!({"n": 2}))
        .await;
    assert_eq!(client.reply("21").await[0], "2");
}

#[tokio::test]
async fn malformed_frames_are_dropped_and_the_connection_keeps_working() {
    let (_backend, server) = start(|s| s).await;
    let mut client = WsClient::connect(server.addr, "alice").await;
    client.join_ok("room:a", "1").await;
    for garbage in [
        "this is not json",
        r#"{"topic":"room:a"}"#,
        r#"["1","2","room:a"]"#,
        r#"[1,2,3,4,5]"#,
        "",
    ] {
        client.send_text(garbage).await;
    }
    client.send_binary(vec![9, 1, 2, 3]).await; // unknown binary kind
    client.send_binary(vec![0, 50, 50, 50, 50, 1]).await; // lengths past the end
    client.send_binary(Vec::new()).await;
    // Nothing was answered, and the channel still works.
    assert_eq!(client.sync().await, Vec::<Frame>::new());
    let reply = client.push("1", "room:a", "chat:msg", json!({})).await;
    assert_eq!(reply["status"], "ok");

    let text = metrics(&server).await;
    assert!(
        metric_sum(
            &text,
            "switchboard_dropped_messages_total",
            &["reason=\"malformed_frame\""]
        ) >= 8.0,
        "{text}"
    );
}

/// Regression (hostile-input suite): these connections used to end without
/// a close frame and without being counted.
#[tokio::test]
async fn frames_that_break_the_websocket_protocol_close_with_their_code() {
    use tokio_tungstenite::tungstenite::protocol::frame::coding::Data;
    let (_backend, server) = start(|s| s).await;
    let mut bystander = WsClient::connect(server.addr, "bob").await;
    bystander.join_ok("room:a", "1").await;

    let mut client = WsClient::connect(server.addr, "alice").await;
    client.send_raw_frame(Data::Text, b"[\"1\",\xff]").await;
    let (code, reason, _) = client.closed().await;
    assert_eq!((code, reason.as_str()), (Some(1007), "invalid_utf8"));

    let mut client = WsClient::connect(server.addr, "alice").await;
    client.send_raw_frame(Data::Reserved(3), b"?").await;
    let (code, reason, _) = client.closed().await;
    assert_eq!((code, reason.as_str()), (Some(1002), "protocol_error"));

    let text = metrics(&server).await;
    for reason in ["invalid_utf8", "protocol_error"] {
        let label = format!("reason=\"{reason}\"");
        assert_eq!(
            metric_sum(&text, "switchboard_dropped_messages_total", &[&label]),
            1.0,
            "{text}"
        );
    }
    let reply = bystander.push("1", "room:a", "chat:msg", json!({})).await;
    assert_eq!(reply["status"], "ok");
}

#[tokio::test]
async fn binary_frames_on_a_v1_connection_are_dropped() {
    let (_backend, server) = start(|s| s).await;
    let mut v1 =
        WsClient::connect_query(server.addr, &format!("app={APP}&token=alice&vsn=1.0.0")).await;
    v1.send_binary(binary_push("1", "2", "room:a", "blob", &[1]))
        .await;
    v1.send_text(r#"{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"3"}"#)
        .await;
    assert_eq!(v1.next_frame().await.json().unwrap()["ref"], "3");
}

#[tokio::test]
async fn idle_connection_is_closed_with_1000() {
    let (_backend, server) = start(|s| s.server("idle_timeout_secs = 1")).await;
    let mut client = WsClient::connect(server.addr, "alice").await;
    let started = std::time::Instant::now();
    let (code, reason, _) = client.closed().await;
    assert_eq!(code, Some(1000), "reason {reason}");
    assert!(started.elapsed() >= std::time::Duration::from_millis(900));
}

#[tokio::test]
async fn any_client_frame_counts_as_activity() {
    let (_backend, server) = start(|s| s.server("idle_timeout_secs = 1")).await;
    let mut client = WsClient::connect(server.addr, "alice").await;
    let started = std::time::Instant::now();
    // WebSocket pings alone keep it open well past the idle timeout ...
    while started.elapsed() < std::time::Duration::from_millis(2500) {
        client.send_ping().await;
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // (a closed connection would fail this heartbeat)
    assert_eq!(client.sync().await, Vec::<Frame>::new());
    // ... and once the client goes quiet, it closes with 1000.
    let (code, _, _) = client.closed().await;
    assert_eq!(code, Some(1000));
}

#[tokio::test]
async fn topics_are_scoped_to_their_app() {
    let (_backend, server) = start(|s| s).await;
    let mut one = WsClient::connect(server.addr, "alice").await;
    let mut two =
        WsClient::connect_query(server.addr, &format!("app={APP2}&token=bob&vsn=2.0.0")).await;
    one.join_ok("room:a", "1").await;
    two.join_ok("room:a", "1").await;
    let reply = one.push("1", "room:a", "chat:msg", json!({"x": 1})).await;
    assert_eq!(reply["status"], "ok");
    one.until(|f| f.is_event("room:a", "chat:msg")).await;
    let frames: Vec<Value> = two
        .sync()
        .await
        .iter()
        .filter_map(|f| f.json().cloned())
        .collect();
    assert_eq!(
        frames,
        Vec::<Value>::new(),
        "app2's room:a got app1's message"
    );
}
