//! The message, join and events webhooks (CONTRACT §5, §10): every action,
//! every failure, and what the app receives.

use std::time::Duration;

use serde_json::json;

use crate::support::*;

/// A client joined to `room:a` with join_ref "1".
async fn joined(server: &TestServer, token: &str) -> WsClient {
    let mut client = WsClient::connect(server.addr, token).await;
    client.join_ok("room:a", "1").await;
    client
}

#[tokio::test]
async fn reply_action_answers_the_push_and_the_app_gets_every_field() {
    let (backend, server) = start(|s| s).await;
    backend.set(
        "/messages",
        Reply::ok(json!({"action": "reply", "data": {"answer": 42}})),
    );
    let mut client = WsClient::connect_query(
        server.addr,
        &format!("app={APP}&token=alice&vsn=2.0.0&client_type=cli"),
    )
    .await;
    client.join_ok("room:a", "1").await;
    client
        .send_v2(Some("1"), Some("7"), "room:a", "ask", json!({"q": "?"}))
        .await;
    assert_eq!(
        client.reply("7").await,
        json!(["1", "7", "room:a", "phx_reply", {"status": "ok", "response": {"answer": 42}}])
    );

    let request = backend.wait_requests("/messages", 1).await.remove(0);
    request.assert_signed(APP, SECRET);
    let body = request.json();
    let request_id = body["request_id"].as_str().expect("request_id").to_owned();
    assert_eq!(request.header("x-request-id"), Some(request_id.as_str()));
    assert_eq!(
        body,
        json!({
            "event": "ask",
            "payload": {"q": "?"},
            "channel": "room:a",
            "client_id": "alice",
            "client_type": "cli",
            "metadata": {"name": "alice"},
            "ref": "7",
            "request_id": request_id,
        })
    );
}

#[tokio::test]
async fn webhook_calls_reuse_kept_alive_connections() {
    let (backend, server) = start(|s| s).await;
    let mut client = joined(&server, "alice").await;
    for n in 0..5 {
        let reply = client.push("1", "room:a", "ask", json!({"n": n})).await;
        assert_eq!(reply["response"], json!({"echo": {"n": n}}));
    }
    let calls = backend.requests("/messages");
    assert_eq!(calls.len(), 5);
    let mut peers: Vec<_> = calls.iter().map(|r| r.peer).collect();
    peers.dedup();
    assert_eq!(peers.len(), 1, "one connection per call: {peers:?}");
}

#[tokio::test]
async fn reply_action_with_error_status() {
    let (backend, server) = start(|s| s).await;
    backend.set(
        "/messages",
        Reply::ok(json!({"action": "reply", "status": "error", "data": {"reason": "nope"}})),
    );
    let mut client = joined(&server, "alice").await;
    let reply = client.push("1", "room:a", "ask", json!({})).await;
    assert_eq!(
        reply,
        json!({"status": "error", "response": {"reason": "nope"}})
    );
}

#[tokio::test]
async fn broadcast_action_reaches_every_subscriber_including_the_sender() {
    let (backend, server) = start(|s| s).await;
    backend.set(
        "/messages",
        Reply::ok(json!({"actions": [
            {"action": "broadcast", "event": "news", "data": {"n": 1}},
            {"action": "reply", "data": {}}
        ]})),
    );
    let mut sender = joined(&server, "alice").await;
    let mut other = joined(&server, "bob").await;
    let mut elsewhere = WsClient::connect(server.addr, "carol").await;
    elsewhere.join_ok("room:b", "1").await;

    let reply = sender.push("1", "room:a", "ask", json!({})).await;
    assert_eq!(reply["status"], "ok");
    let news = Frame::Text(json!([null, null, "room:a", "news", {"n": 1}]));
    let frame = sender.until(|f| f.is_event("room:a", "news")).await;
    assert_eq!(frame, news);
    assert_eq!(other.next_frame().await, news);
    assert_eq!(elsewhere.sync().await, Vec::<Frame>::new());
}

#[tokio::test]
async fn broadcast_action_to_another_topic() {
    let (backend, server) = start(|s| s).await;
    backend.set(
        "/messages",
        Reply::ok(json!({"actions": [
            {"action": "broadcast", "event": "moved", "data": {"to": "b"}, "topic": "room:b"},
            {"action": "reply", "data": {}}
        ]})),
    );
    let mut sender = joined(&server, "alice").await;
    let mut same_topic = joined(&server, "bob").await;
    let mut target = WsClient::connect(server.addr, "carol").await;
    target.join_ok("room:b", "1").await;

    sender.push("1", "room:a", "ask", json!({})).await;
    assert_eq!(
        target.next_frame().await,
        Frame::Text(json!([null, null, "room:b", "moved", {"to": "b"}]))
    );
    assert_eq!(same_topic.sync().await, Vec::<Frame>::new());
    assert_eq!(sender.sync().await, Vec::<Frame>::new());
}

#[tokio::test]
async fn broadcast_action_can_exclude_the_sender() {
    let (backend, server) = start(|s| s).await;
    backend.set(
        "/messages",
        Reply::ok(json!({"actions": [
            {"action": "broadcast", "event": "typing", "data": {}, "exclude_sender": true},
            {"action": "reply", "data": {}}
        ]})),
    );
    let mut sender = joined(&server, "alice").await;
    let mut other = joined(&server, "bob").await;
    sender
        .send_v2(Some("1"), Some("5"), "room:a", "ask", json!({}))
        .await;
    // Actions run in order: a broadcast to the sender would precede the reply.
    sender.reply("5").await;
    assert_eq!(sender.sync().await, Vec::<Frame>::new());
    assert_eq!(
        other.next_frame().await,
        Frame::Text(json!([null, null, "room:a", "typing", {}]))
    );
}

#[tokio::test]
async fn noreply_action_sends_nothing() {
    let (backend, server) = start(|s| s).await;
    backend.set("/messages", Reply::ok(json!({"action": "noreply"})));
    let mut client = joined(&server, "alice").await;
    client
        .send_v2(Some("1"), Some("5"), "room:a", "ask", json!({}))
        .await;
    // The webhook call is complete once its duration is observed; its
    // actions are applied right after, with no await in between.
    eventually("the message webhook call completes", || async {
        metric_sum(
            &metrics(&server).await,
            "switchboard_webhook_duration_seconds_count",
            &[&format!("app=\"{APP}\""), "kind=\"message\""],
        ) >= 1.0
    })
    .await;
    assert_eq!(client.sync().await, Vec::<Frame>::new());
}

#[tokio::test]
async fn action_list_without_reply_sends_no_reply() {
    let (backend, server) = start(|s| s).await;
    backend.set(
        "/messages",
        Reply::ok(json!({"actions": [
            {"action": "broadcast", "event": "seen", "data": {}},
            {"action": "noreply"}
        ]})),
    );
    let mut client = joined(&server, "alice").await;
    client
        .send_v2(Some("1"), Some("5"), "room:a", "ask", json!({}))
        .await;
    // The broadcast proves the actions were applied ...
    client.until(|f| f.is_event("room:a", "seen")).await;
    // ... and no reply to ref 5 comes before a later heartbeat's reply.
    let frames = client.sync().await;
    assert!(!frames.iter().any(|f| f.is_reply_to("5")), "{frames:?}");
}

#[tokio::test]
async fn data_base64_replies_are_binary() {
    let (backend, server) = start(|s| s).await;
    backend.set(
        "/messages",
        Reply::ok(json!({"action": "reply", "data_base64": "AQIDBA=="})),
    );
    let mut client = joined(&server, "alice").await;
    client
        .send_v2(Some("1"), Some("2"), "room:a", "ask", json!({}))
        .await;
    // kind 1 | jr_len | ref_len | topic_len | status_len | jr | ref | topic | status | data
    let mut expected = vec![1, 1, 1, 6, 2];
    expected.extend_from_slice(b"12room:aok");
    expected.extend_from_slice(&[1, 2, 3, 4]);
    assert_eq!(client.next_frame().await, Frame::Binary(expected));

    // A V1 client gets the bytes as base64 JSON.
    let mut v1 =
        WsClient::connect_query(server.addr, &format!("app={APP}&token=bob&vsn=1.0.0")).await;
    v1.send_text(r#"{"topic":"room:a","event":"phx_join","payload":{},"ref":"1"}"#)
        .await;
    v1.next_frame().await;
    v1.send_text(r#"{"topic":"room:a","event":"ask","payload":{},"ref":"2"}"#)
        .await;
    assert_eq!(
        v1.next_frame().await,
        Frame::Text(json!({
            "topic": "room:a", "event": "phx_reply",
            "payload": {"status": "ok", "response": {"payload_base64": "AQIDBA=="}},
            "ref": "2"
        }))
    );
}

#[tokio::test]
async fn binary_push_is_forwarded_as_payload_base64() {
    let (backend, server) = start(|s| s).await;
    backend.set(
        "/messages",
        Reply::ok(json!({"action": "reply", "data": {}})),
    );
    let mut client = joined(&server, "alice").await;
    let mut frame = vec![0, 1, 1, 6, 3];
    frame.extend_from_slice(b"12room:aask");
    frame.extend_from_slice(&[0xff, 0, 7]);
    client.send_binary(frame).await;
    assert_eq!(client.reply("2").await[4]["status"], "ok");
    let body = backend.wait_requests("/messages", 1).await[0].json();
    assert_eq!(body["payload_base64"], "/wAH");
    assert!(body.get("payload").is_none(), "{body}");
}

#[tokio::test]
async fn webhook_failures_answer_api_error_and_the_connection_stays() {
    let (backend, server) = start(|s| s).await;
    let mut client = joined(&server, "alice").await;
    let answers = [
        Reply::json(500, json!({"error": "boom"})),
        Reply::json(404, json!({})),
        Reply::raw(200, "{not json"),
        Reply::ok(json!({"action": "explode"})),
    ];
    for answer in answers {
        backend.set("/messages", answer.clone());
        let reply = client.push("1", "room:a", "ask", json!({})).await;
        assert_eq!(
            reply,
            json!({"status": "error", "response": {"reason": "api_error"}}),
            "{answer:?}"
        );
    }
    assert_eq!(client.sync().await, Vec::<Frame>::new());
    let text = metrics(&server).await;
    assert!(
        metric_sum(
            &text,
            "switchboard_webhook_failures_total",
            &["kind=\"message\""]
        ) >= 4.0,
        "{text}"
    );
}

#[tokio::test]
async fn slow_webhook_answers_api_timeout() {
    let (backend, server) = start(|s| s.app("webhook_timeout_ms = 300")).await;
    backend.set(
        "/messages",
        Reply::ok(json!({"action": "reply", "data": {}})).delayed(Duration::from_secs(5)),
    );
    let mut client = joined(&server, "alice").await;
    let reply = client.push("1", "room:a", "ask", json!({})).await;
    assert_eq!(
        reply,
        json!({"status": "error", "response": {"reason": "api_timeout"}})
    );
    // The connection stays up.
    assert_eq!(client.sync().await, Vec::<Frame>::new());
}

#[tokio::test]
async fn one_slow_webhook_does_not_hold_up_the_connection() {
    let (backend, server) = start(|s| s).await;
    backend.on("/messages", |r| {
        let reply = Reply::ok(json!({"action": "reply", "data": r.json()["payload"]}));
        if r.json()["payload"]["slow"] == true {
            reply.delayed(Duration::from_secs(3))
        } else {
            reply
        }
    });
    let mut client = joined(&server, "alice").await;
    client
        .send_v2(
            Some("1"),
            Some("10"),
            "room:a",
            "ask",
            json!({"slow": true}),
        )
        .await;
    backend.wait_requests("/messages", 1).await;
    // A later push and a heartbeat are answered while the first still waits.
    let reply = client
        .push("1", "room:a", "ask", json!({"slow": false}))
        .await;
    assert_eq!(reply["response"], json!({"slow": false}));
    let frames = client.sync().await;
    assert!(!frames.iter().any(|f| f.is_reply_to("10")), "{frames:?}");
    assert_eq!(
        client.reply("10").await[4]["response"],
        json!({"slow": true})
    );
}

#[tokio::test]
async fn join_webhook_allows_with_data() {
    let (backend, server) = with_join_endpoint().await;
    backend.set(
        "/join",
        Reply::ok(json!({"action": "allow", "data": {"welcome": "alice"}})),
    );
    let mut client = WsClient::connect_query(
        server.addr,
        &format!("app={APP}&token=alice&vsn=2.0.0&client_type=web"),
    )
    .await;
    assert_eq!(
        client
            .join_with("room:a", "1", json!({"meta": {"x": 1}}))
            .await,
        json!({"status": "ok", "response": {"welcome": "alice"}})
    );
    let request = backend.wait_requests("/join", 1).await.remove(0);
    request.assert_signed(APP, SECRET);
    assert_eq!(
        request.json(),
        json!({
            "channel": "room:a",
            "params": {"meta": {"x": 1}},
            "client_id": "alice",
            "client_type": "web",
            "metadata": {"name": "alice"},
        })
    );
    // The join is live.
    assert_eq!(
        client.push("1", "room:a", "chat:msg", json!({})).await["status"],
        "ok"
    );
}

async fn with_join_endpoint() -> (MockBackend, TestServer) {
    let backend = MockBackend::start(schema("1.0.0")).await;
    let server = Setup::new(&backend)
        .app(&format!("join_endpoint = \"{}\"", backend.url("/join")))
        .app("webhook_timeout_ms = 1000")
        .start()
        .await;
    (backend, server)
}

#[tokio::test]
async fn join_webhook_denies_with_or_without_a_reason() {
    let (backend, server) = with_join_endpoint().await;
    let mut client = WsClient::connect(server.addr, "alice").await;
    backend.set(
        "/join",
        Reply::ok(json!({"action": "deny", "reason": "banned"})),
    );
    client
        .send_v2(Some("1"), Some("1"), "room:a", "phx_join", json!({}))
        .await;
    assert_eq!(
        client.next_frame().await,
        Frame::Text(json!(["1", "1", "room:a", "phx_reply",
            {"status": "error", "response": {"reason": "banned"}}]))
    );
    backend.set("/join", Reply::ok(json!({"action": "deny"})));
    assert_eq!(
        client.join("room:a", "2").await,
        json!({"status": "error", "response": {"reason": "join_denied"}})
    );
    // A denied join is not joined.
    client
        .send_v2(Some("2"), Some("3"), "room:a", "chat:msg", json!({}))
        .await;
    assert_eq!(
        client.reply("3").await,
        json!([null, "3", "room:a", "phx_reply",
            {"status": "error", "response": {"reason": "unmatched topic"}}])
    );
}

#[tokio::test]
async fn join_webhook_failures_answer_api_error_or_api_timeout() {
    let (backend, server) = with_join_endpoint().await;
    let mut client = WsClient::connect(server.addr, "alice").await;
    backend.set("/join", Reply::json(500, json!({})));
    assert_eq!(
        client.join("room:a", "1").await,
        json!({"status": "error", "response": {"reason": "api_error"}})
    );
    backend.set(
        "/join",
        Reply::ok(json!({"action": "allow"})).delayed(Duration::from_secs(5)),
    );
    assert_eq!(
        client.join("room:a", "2").await,
        json!({"status": "error", "response": {"reason": "api_timeout"}})
    );
}

#[tokio::test]
async fn events_webhook_hears_the_connection_lifecycle() {
    let backend = MockBackend::start(schema("1.0.0")).await;
    let server = Setup::new(&backend)
        .app(&format!("events_endpoint = \"{}\"", backend.url("/events")))
        .start()
        .await;
    let mut client = WsClient::connect(server.addr, "alice").await;
    client.join_ok("room:a", "1").await;
    client
        .send_v2(Some("1"), Some("2"), "room:a", "phx_leave", json!({}))
        .await;
    client.reply("2").await;
    client.join_ok("room:b", "3").await;
    client.close().await;

    // Fire and forget: they may arrive in any order. room:b is left by the
    // disconnect.
    let events = backend.wait_requests("/events", 6).await;
    let mut seen: Vec<(String, Option<String>)> = events
        .iter()
        .map(|r| {
            r.assert_signed(APP, SECRET);
            let body = r.json();
            assert_eq!(body["client_id"], "alice", "{body}");
            assert_eq!(body["metadata"], json!({"name": "alice"}), "{body}");
            assert!(
                body["at"].as_u64().is_some_and(|at| at > 1_600_000_000),
                "{body}"
            );
            (
                body["type"].as_str().unwrap().to_owned(),
                body["channel"].as_str().map(str::to_owned),
            )
        })
        .collect();
    seen.sort();
    let s = |t: &str, c: Option<&str>| (t.to_owned(), c.map(str::to_owned));
    assert_eq!(
        seen,
        vec![
            s("channel.joined", Some("room:a")),
            s("channel.joined", Some("room:b")),
            s("channel.left", Some("room:a")),
            s("channel.left", Some("room:b")),
            s("connection.closed", None),
            s("connection.established", None),
        ]
    );
}
