//! The long-poll transport (CONTRACT §3, §10; PHOENIX_PROTOCOL.md §8), as
//! phoenix.js's `LongPoll` drives it.

use reqwest::Method;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn long_poll_refusals_carry_the_same_body() {
    let (_backend, server) = start(|s| s).await;
    for (query, reason) in [
        ("app=nope&token=alice&vsn=2.0.0", "unknown_app"),
        ("token=alice&vsn=2.0.0", "unknown_app"),
        ("app=app1&token=deny&vsn=2.0.0", "unauthorized"),
        ("app=app1&vsn=2.0.0", "unauthorized"),
        ("app=app1&token=alice&vsn=9.0.0", "unsupported_vsn"),
    ] {
        let response = http()
            .get(server.url(&format!("/socket/longpoll?{query}&")))
            .send()
            .await
            .unwrap();
        // HTTP 200 with the logical status in the body, as Phoenix answers.
        assert_eq!(
            status_json(response).await,
            (200, json!({"status": 403, "reason": reason})),
            "{query}"
        );
    }
    // A POST without a live session is told the session is gone.
    let response = http()
        .post(server.url("/socket/longpoll?app=app1&vsn=2.0.0&token=forged.0000"))
        .header("content-type", "application/x-ndjson")
        .body(r#"[null,"1","phoenix","heartbeat",{}]"#)
        .send()
        .await
        .unwrap();
    assert_eq!(status_json(response).await, (200, json!({"status": 410})));
}

#[tokio::test]
async fn long_poll_session_joins_pushes_and_receives() {
    let (backend, server) = start(|s| s).await;
    let mut lp = LongPoll::new(&server, "app=app1&token=alice&vsn=2.0.0");
    lp.open().await;
    let auth = backend.wait_requests("/auth", 1).await.remove(0);
    assert_eq!(auth.json()["connection_type"], "longpoll");
    assert_eq!(
        auth.json()["token"],
        "alice",
        "the session token is not the auth token"
    );

    let answer = lp
        .post(&[
            r#"["1","1","room:a","phx_join",{}]"#.to_owned(),
            r#"[null,"2","phoenix","heartbeat",{}]"#.to_owned(),
            r#"["1","3","room:a","chat:msg",{"body":"hi"}]"#.to_owned(),
        ])
        .await;
    assert_eq!(answer, json!({"status": 200}));
    let mut messages = lp.messages(4).await;
    messages.sort_by_key(|m| m.to_string());
    let mut expected = vec![
        json!(["1", "1", "room:a", "phx_reply", {"status": "ok", "response": {}}]),
        json!([null, "2", "phoenix", "phx_reply", {"status": "ok", "response": {}}]),
        json!([null, null, "room:a", "chat:msg", {"body": "hi"}]),
        json!(["1", "3", "room:a", "phx_reply", {"status": "ok", "response": {}}]),
    ];
    expected.sort_by_key(|m| m.to_string());
    assert_eq!(messages, expected);

    // A WebSocket client's message reaches the long-poll client, and a
    // binary one comes as base64 JSON.
    let mut ws = WsClient::connect(server.addr, "bob").await;
    ws.join_ok("room:a", "1").await;
    let mut frame = vec![0, 1, 1, 6, 4];
    frame.extend_from_slice(b"12room:ablob");
    frame.extend_from_slice(&[1, 2, 3]);
    ws.send_binary(frame).await;
    assert_eq!(ws.reply("2").await[4]["status"], "ok");
    assert_eq!(
        lp.messages(1).await,
        vec![json!([null, null, "room:a", "blob", {"payload_base64": "AQID"}])]
    );

    // And a binary push from the long-poll client (a base64 ndjson line)
    // reaches the WebSocket client as binary.
    let mut push = vec![0, 1, 1, 6, 4];
    push.extend_from_slice(b"14room:ablob");
    push.extend_from_slice(&[9]);
    use base64::Engine;
    let line = base64::engine::general_purpose::STANDARD.encode(&push);
    assert_eq!(lp.post(&[line]).await, json!({"status": 200}));
    let mut expected = vec![2, 6, 4];
    expected.extend_from_slice(b"room:ablob");
    expected.push(9);
    let expected = Frame::Binary(expected);
    ws.until(|f| *f == expected).await;

    // The long-poll connection is listed with its topic.
    let (_, body) = api(
        Method::GET,
        &server.url(&format!("/api/v1/apps/{APP}/connections?client_id=alice")),
        SECRET,
        None,
    )
    .await;
    assert_eq!(body["connections"][0]["topics"], json!(["room:a"]));
}

#[tokio::test]
async fn long_poll_tokens_may_come_in_headers() {
    let (backend, server) = start(|s| s).await;
    let url = server.url("/socket/longpoll?app=app1&vsn=2.0.0");
    let (_, opened) = status_json(
        http()
            .get(&url)
            .header("x-phoenix-authtoken", "carol")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(opened["status"], 410);
    assert_eq!(
        backend.wait_requests("/auth", 1).await[0].json()["token"],
        "carol"
    );
    let session = opened["token"].as_str().unwrap();
    let (_, posted) = status_json(
        http()
            .post(&url)
            .header("x-phoenix-longpoll-token", session)
            .body(r#"[null,"1","phoenix","heartbeat",{}]"#)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(posted, json!({"status": 200}));
    let (_, polled) = status_json(
        http()
            .get(&url)
            .header("x-phoenix-longpoll-token", session)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(polled["status"], 200, "{polled}");
    assert_eq!(
        polled["messages"],
        json!([r#"[null,"1","phoenix","phx_reply",{"status":"ok","response":{}}]"#])
    );
}

#[tokio::test]
async fn disconnect_ends_a_long_poll_session() {
    let (_backend, server) = start(|s| s).await;
    let mut lp = LongPoll::new(&server, "app=app1&token=alice&vsn=2.0.0");
    lp.open().await;
    let (status, _) = api(
        Method::POST,
        &server.url(&format!("/api/v1/apps/{APP}/clients/alice/disconnect")),
        SECRET,
        None,
    )
    .await;
    assert_eq!(status, 200);
    let old = lp.token.clone();
    let body = lp.get().await;
    assert_eq!(body["status"], 410, "{body}");
    // The old session is gone for good.
    lp.token = old;
    assert_eq!(
        lp.post(&[r#"[null,"1","phoenix","heartbeat",{}]"#.to_owned()])
            .await,
        json!({"status": 410})
    );
}

#[tokio::test]
async fn long_poll_answers_cors_preflight() {
    let (_backend, server) = start(|s| s).await;
    let response = http()
        .request(Method::OPTIONS, server.url("/socket/longpoll"))
        .header("origin", "https://app.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    assert_eq!(header("access-control-allow-origin").as_deref(), Some("*"));
    assert_eq!(
        header("access-control-allow-headers").as_deref(),
        Some("content-type")
    );
    assert_eq!(
        header("access-control-allow-methods").as_deref(),
        Some("get, post, options")
    );
}
