//! Schema rules on joins and pushes (CONTRACT §4, §7): every refusal reason.

use serde_json::json;

use crate::support::*;

fn error(reason: &str) -> serde_json::Value {
    json!({"status": "error", "response": {"reason": reason}})
}

#[tokio::test]
async fn join_of_a_topic_no_channel_matches_is_unmatched_with_null_join_ref() {
    let (_backend, server) = start(|s| s).await;
    let mut client = WsClient::connect(server.addr, "alice").await;
    for topic in ["nope:1", "room", "room:a:b", "project:1:x"] {
        client
            .send_v2(Some("1"), Some("1"), topic, "phx_join", json!({}))
            .await;
        assert_eq!(
            client.next_frame().await,
            Frame::Text(json!([
                null,
                "1",
                topic,
                "phx_reply",
                error("unmatched topic")
            ])),
            "{topic}"
        );
    }
}

#[tokio::test]
async fn join_with_a_variable_breaking_its_rules_is_invalid_channel_pattern() {
    let (_backend, server) = start(|s| s).await;
    let mut client = WsClient::connect(server.addr, "alice").await;
    // `project:{id}` needs an integer, `room:{id}` a slug.
    for topic in ["project:abc", "room:-x", "room:a b"] {
        client
            .send_v2(Some("3"), Some("4"), topic, "phx_join", json!({}))
            .await;
        assert_eq!(
            client.next_frame().await,
            Frame::Text(json!([
                "3",
                "4",
                topic,
                "phx_reply",
                error("invalid_channel_pattern")
            ])),
            "{topic}"
        );
    }
}

#[tokio::test]
async fn join_and_send_need_the_permissions_auth_granted() {
    let (_backend, server) = start(|s| s).await;
    // Auth grants read:project:1, write:project:1, read:project:2.
    let mut client = WsClient::connect(server.addr, "alice").await;
    assert_eq!(client.join("project:3", "1").await, error("unauthorized"));
    client.join_ok("project:1", "2").await;
    client.join_ok("project:2", "3").await;
    let ok = client.push("2", "project:1", "chat:msg", json!({})).await;
    assert_eq!(ok["status"], "ok");
    let refused = client.push("3", "project:2", "chat:msg", json!({})).await;
    assert_eq!(refused, error("unauthorized"));
}

#[tokio::test]
async fn wildcard_grants_cover_permissions() {
    let (backend, server) = start(|s| s).await;
    backend.set(
        "/auth",
        Reply::ok(
            json!({"client_id": "root", "permissions": ["read:project:*", "write:project:*"]}),
        ),
    );
    let mut client = WsClient::connect(server.addr, "root").await;
    client.join_ok("project:77", "1").await;
    let ok = client.push("1", "project:77", "chat:msg", json!({})).await;
    assert_eq!(ok["status"], "ok");
}

#[tokio::test]
async fn event_not_allowed_on_the_channel_is_refused() {
    let (_backend, server) = start(|s| s).await;
    let mut client = WsClient::connect(server.addr, "alice").await;
    client.join_ok("room:a", "1").await;
    // Unknown event, and an event only allowed on projects.
    for event in ["no:such:event", "task:assigned"] {
        let reply = client
            .push("1", "room:a", event, json!({"taskId": "t"}))
            .await;
        assert_eq!(reply, error("invalid_event_for_channel"), "{event}");
    }
}

#[tokio::test]
async fn payload_breaking_the_event_schema_is_invalid_payload_with_errors() {
    let (_backend, server) = start(|s| s).await;
    let mut client = WsClient::connect(server.addr, "alice").await;
    client.join_ok("project:1", "1").await;
    let reply = client
        .push("1", "project:1", "task:assigned", json!({"taskId": 5}))
        .await;
    assert_eq!(reply["status"], "error");
    assert_eq!(reply["response"]["reason"], "invalid_payload");
    let errors = reply["response"]["errors"].as_array().expect("errors list");
    assert!(!errors.is_empty());
    assert!(
        errors
            .iter()
            .any(|e| e.as_str().unwrap().contains("taskId")),
        "{errors:?}"
    );

    let reply = client
        .push("1", "project:1", "task:assigned", json!({}))
        .await;
    assert_eq!(reply["response"]["reason"], "invalid_payload");
    assert!(reply["response"]["errors"][0]
        .as_str()
        .unwrap()
        .contains("taskId"));

    let reply = client
        .push("1", "project:1", "task:assigned", json!({"taskId": "t1"}))
        .await;
    assert_eq!(reply, json!({"status": "ok", "response": {}}));
}

#[tokio::test]
async fn pushes_over_the_event_rate_limit_are_rate_limited() {
    let (_backend, server) = start(|s| s).await;
    let mut client = WsClient::connect(server.addr, "alice").await;
    let mut other = WsClient::connect(server.addr, "bob").await;
    client.join_ok("room:a", "1").await;
    other.join_ok("room:a", "1").await;
    // `limited`: 2 per minute.
    for _ in 0..2 {
        assert_eq!(
            client.push("1", "room:a", "limited", json!({})).await["status"],
            "ok"
        );
    }
    assert_eq!(
        client.push("1", "room:a", "limited", json!({})).await,
        error("rate_limited")
    );
    // Other events and other connections are not affected.
    assert_eq!(
        client.push("1", "room:a", "chat:msg", json!({})).await["status"],
        "ok"
    );
    assert_eq!(
        other.push("1", "room:a", "limited", json!({})).await["status"],
        "ok"
    );
    let text = metrics(&server).await;
    assert!(
        metric_sum(
            &text,
            "switchboard_rate_limited_total",
            &[&format!("app=\"{APP}\"")]
        ) >= 1.0,
        "{text}"
    );
}

#[tokio::test]
async fn joins_past_the_channel_limit_are_refused() {
    let (_backend, server) = start(|s| s.limits("max_channels_per_connection = 2")).await;
    let mut client = WsClient::connect(server.addr, "alice").await;
    client.join_ok("room:a", "1").await;
    client.join_ok("room:b", "2").await;
    client
        .send_v2(Some("3"), Some("3"), "room:c", "phx_join", json!({}))
        .await;
    assert_eq!(
        client.next_frame().await,
        Frame::Text(json!([
            "3",
            "3",
            "room:c",
            "phx_reply",
            error("too many channels joined")
        ]))
    );
    // After a leave there is room again.
    client
        .send_v2(Some("1"), Some("4"), "room:a", "phx_leave", json!({}))
        .await;
    client.reply("4").await;
    client.join_ok("room:c", "5").await;
}

#[tokio::test]
async fn frames_over_max_frame_bytes_are_message_too_large() {
    let (_backend, server) = start(|s| s.limits("max_frame_bytes = 256")).await;
    let mut client = WsClient::connect(server.addr, "alice").await;
    client.join_ok("room:a", "1").await;
    let big = "x".repeat(1000);
    client
        .send_v2(
            Some("1"),
            Some("2"),
            "room:a",
            "chat:msg",
            json!({"body": big}),
        )
        .await;
    assert_eq!(
        client.next_frame().await,
        Frame::Text(json!([
            "1",
            "2",
            "room:a",
            "phx_reply",
            error("message_too_large")
        ]))
    );
    // The connection is still usable.
    assert_eq!(
        client
            .push("1", "room:a", "chat:msg", json!({"body": "small"}))
            .await["status"],
        "ok"
    );
    // A frame far over the limit closes the connection with 1009.
    let huge = "x".repeat(200_000);
    client
        .send_v2(
            Some("1"),
            Some("3"),
            "room:a",
            "chat:msg",
            json!({"body": huge}),
        )
        .await;
    let (code, _, _) = client.closed().await;
    assert_eq!(code, Some(1009));
}

#[tokio::test]
async fn refetching_the_same_schema_does_not_reset_push_rate_limits() {
    let (backend, server) = start(|s| s.app("schema_refresh_secs = 1")).await;
    let mut client = WsClient::connect(server.addr, "alice").await;
    client.join_ok("room:a", "1").await;
    for _ in 0..2 {
        assert_eq!(
            client.push("1", "room:a", "limited", json!({})).await["status"],
            "ok"
        );
    }
    assert_eq!(
        client.push("1", "room:a", "limited", json!({})).await,
        error("rate_limited")
    );
    // Two more fetches of app1's (unchanged) schema: the refresher is
    // sequential, so when the second arrives the first one is installed.
    let fetches = |found: &[Recorded]| {
        found
            .iter()
            .filter(|r| r.header("x-switchboard-app") == Some(APP))
            .count()
    };
    let seen = fetches(&backend.requests("/schema"));
    backend
        .wait_for("/schema", |found| fetches(found) >= seen + 2)
        .await
        .expect("the schema is fetched again");
    // Still within the 60 s window: still limited.
    assert_eq!(
        client.push("1", "room:a", "limited", json!({})).await,
        error("rate_limited")
    );
}

/// A refreshed schema that no longer has a joined topic's channel ends the
/// channel as a crash would (`phx_error` with the old join_ref), so the
/// client rejoins and the join is decided again under the new schema.
#[tokio::test]
async fn a_channel_the_new_schema_no_longer_has_errors_and_its_rejoin_is_refused() {
    let (backend, server) = start(|s| s).await;
    let mut client = WsClient::connect(server.addr, "alice").await;
    client.join_ok("room:old", "1").await;

    let mut v2 = schema("2.0.0");
    v2["channels"]
        .as_array_mut()
        .unwrap()
        .retain(|c| c["pattern"] != "room:{id}");
    backend.set("/schema", Reply::ok(v2));
    let url = server.url(&format!("/api/v1/apps/{APP}/schema/refresh"));
    let (status, body) = api(reqwest::Method::POST, &url, SECRET, None).await;
    assert_eq!((status, body["version"].clone()), (200, json!("2.0.0")));

    client
        .send_v2(Some("1"), Some("2"), "room:old", "chat:msg", json!({}))
        .await;
    let error = client.until(|f| f.is_event("room:old", "phx_error")).await;
    assert_eq!(
        error.json().cloned().unwrap(),
        json!(["1", "1", "room:old", "phx_error", {"reason": "channel_crash"}])
    );
    // phoenix.js rejoins; the new schema refuses the topic.
    assert_eq!(
        client.join("room:old", "3").await,
        json!({"status": "error", "response": {"reason": "unmatched topic"}})
    );
}
