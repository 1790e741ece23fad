//! `[limits]` over real sockets (docs/operations.md "Limits"): each rate and
//! size limit is hit, answered as documented, and counted in `/metrics` by
//! app and kind. Limits already covered elsewhere with their metric:
//! `connects_per_ip_per_second` (connect.rs), schema `rateLimits.byEvent`
//! (schema_rules.rs), `outbound_queue` (slow_consumer.rs).

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::support::*;

fn error(reason: &str) -> Value {
    json!({"status": "error", "response": {"reason": reason}})
}

/// The value of `name{app=APP,<label>}` in `/metrics`.
async fn counted(server: &TestServer, name: &str, app: &str, label: &str) -> f64 {
    let text = metrics(server).await;
    metric_sum(&text, name, &[&format!("app=\"{app}\""), label])
}

#[tokio::test]
async fn joins_over_the_connection_rate_are_rate_limited() {
    let (_backend, server) = start(|s| {
        s.limits("joins_per_connection_per_second = 1")
            .limits("joins_per_connection_burst = 2")
    })
    .await;
    let mut client = WsClient::connect(server.addr, "alice").await;
    client.join_ok("room:a", "1").await;
    client.join_ok("room:b", "2").await;
    // The burst is spent: a third join within the second is refused, and
    // carries its join_ref like any refused join of a matched topic.
    client
        .send_v2(Some("3"), Some("3"), "room:c", "phx_join", json!({}))
        .await;
    assert_eq!(
        client.reply("3").await,
        json!(["3", "3", "room:c", "phx_reply", error("rate_limited")])
    );
    // A refused rejoin leaves the existing join of that topic alone.
    client
        .send_v2(Some("4"), Some("4"), "room:a", "phx_join", json!({}))
        .await;
    assert_eq!(client.reply("4").await[4], error("rate_limited"));
    assert_eq!(
        client.push("1", "room:a", "chat:msg", json!({})).await["status"],
        "ok"
    );
    // Another connection has its own budget.
    let mut other = WsClient::connect(server.addr, "bob").await;
    other.join_ok("room:c", "1").await;
    assert_eq!(
        counted(
            &server,
            "switchboard_rate_limited_total",
            APP,
            "kind=\"join\""
        )
        .await,
        2.0
    );
}

#[tokio::test]
async fn pushes_over_the_schema_default_rate_are_rate_limited() {
    let mut limited = schema("1.0.0");
    limited["rateLimits"]["default"] = json!({"windowMs": 60000, "maxRequests": 3});
    let backend = MockBackend::start(limited).await;
    let server = Setup::new(&backend).start().await;
    let mut client = WsClient::connect(server.addr, "alice").await;
    client.join_ok("room:a", "1").await;
    // `default` caps every event of the connection together.
    for event in ["chat:msg", "blob", "chat:msg"] {
        assert_eq!(
            client.push("1", "room:a", event, json!({})).await["status"],
            "ok"
        );
    }
    assert_eq!(
        client.push("1", "room:a", "blob", json!({})).await,
        error("rate_limited")
    );
    assert_eq!(
        counted(
            &server,
            "switchboard_rate_limited_total",
            APP,
            "kind=\"push\""
        )
        .await,
        1.0
    );
}

#[tokio::test]
async fn the_app_push_ceiling_is_shared_by_its_connections_and_overridable_per_app() {
    // [limits] sets 2 pushes/s for every app; app1 lifts its own ceiling.
    let (_backend, server) = start(|s| {
        s.limits("app_pushes_per_second = 2")
            .limits("rate_limit_strikes = 2")
            .app("pushes_per_second = 0")
    })
    .await;
    let query = |token: &str| format!("app={APP2}&token={token}&vsn=2.0.0");
    let mut alice = WsClient::connect_query(server.addr, &query("alice")).await;
    let mut bob = WsClient::connect_query(server.addr, &query("bob")).await;
    alice.join_ok("room:a", "1").await;
    bob.join_ok("room:a", "1").await;
    assert_eq!(
        alice.push("1", "room:a", "chat:msg", json!({})).await["status"],
        "ok"
    );
    assert_eq!(
        bob.push("1", "room:a", "chat:msg", json!({})).await["status"],
        "ok"
    );
    // Two pushes in the app's second are spent, whoever made them. The
    // ceiling is not the client's fault: refusals past `rate_limit_strikes`
    // do not disconnect it.
    for _ in 0..4 {
        assert_eq!(
            alice.push("1", "room:a", "chat:msg", json!({})).await,
            error("rate_limited")
        );
    }
    alice.sync().await;
    assert_eq!(
        counted(
            &server,
            "switchboard_rate_limited_total",
            APP2,
            "kind=\"app\""
        )
        .await,
        4.0
    );

    // app1 (pushes_per_second = 0) is unlimited.
    let mut carol = WsClient::connect(server.addr, "carol").await;
    carol.join_ok("room:a", "1").await;
    for _ in 0..10 {
        assert_eq!(
            carol.push("1", "room:a", "chat:msg", json!({})).await["status"],
            "ok"
        );
    }
}

#[tokio::test]
async fn an_admin_registered_app_carries_its_own_push_ceiling() {
    let (backend, server) = start(|s| s.admin()).await;
    let app = json!({
        "secret": "app3-secret",
        "auth_endpoint": backend.url("/auth"),
        "schema_endpoint": backend.url("/schema"),
        "pushes_per_second": 1,
    });
    let response = http()
        .put(server.url("/admin/v1/apps/app3"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&app)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    let (_, listed) = status_json(
        http()
            .get(server.url("/admin/v1/apps"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let app3 = listed["apps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == "app3")
        .cloned()
        .unwrap();
    assert_eq!(app3["pushes_per_second"], 1, "{app3}");

    let gateway = server.gateway.clone();
    eventually("app3's schema loads", || {
        let gateway = gateway.clone();
        async move {
            gateway
                .apps
                .get("app3")
                .is_some_and(|a| a.schema().is_some())
        }
    })
    .await;
    let mut client = WsClient::connect_query(server.addr, "app=app3&token=alice&vsn=2.0.0").await;
    client.join_ok("room:a", "1").await;
    assert_eq!(
        client.push("1", "room:a", "chat:msg", json!({})).await["status"],
        "ok"
    );
    assert_eq!(
        client.push("1", "room:a", "chat:msg", json!({})).await,
        error("rate_limited")
    );
}

#[tokio::test]
async fn a_client_that_keeps_pushing_past_its_limits_is_closed_with_1008() {
    let (_backend, server) = start(|s| s.limits("rate_limit_strikes = 3")).await;
    let mut client = WsClient::connect(server.addr, "alice").await;
    client.join_ok("room:a", "1").await;
    // `limited`: 2 per minute.
    for _ in 0..2 {
        assert_eq!(
            client.push("1", "room:a", "limited", json!({})).await["status"],
            "ok"
        );
    }
    for _ in 0..2 {
        assert_eq!(
            client.push("1", "room:a", "limited", json!({})).await,
            error("rate_limited")
        );
    }
    // A push within its limits ends the streak: strikes must be in a row.
    assert_eq!(
        client.push("1", "room:a", "chat:msg", json!({})).await["status"],
        "ok"
    );
    for _ in 0..2 {
        assert_eq!(
            client.push("1", "room:a", "limited", json!({})).await,
            error("rate_limited")
        );
    }
    client.sync().await;
    // The third refusal in a row is answered, then the connection closes.
    client
        .send_v2(Some("1"), Some("99"), "room:a", "limited", json!({}))
        .await;
    assert_eq!(client.reply("99").await[4], error("rate_limited"));
    let (code, reason, _) = client.closed().await;
    assert_eq!((code, reason.as_str()), (Some(1008), "rate_limited"));
    assert_eq!(
        counted(
            &server,
            "switchboard_rate_limited_total",
            APP,
            "kind=\"disconnect\""
        )
        .await,
        1.0
    );
    assert_eq!(
        counted(
            &server,
            "switchboard_rate_limited_total",
            APP,
            "kind=\"push_event\""
        )
        .await,
        5.0
    );
}

#[tokio::test]
async fn joins_past_their_rate_count_as_strikes_too() {
    let (_backend, server) = start(|s| {
        s.limits("joins_per_connection_per_second = 1")
            .limits("joins_per_connection_burst = 1")
            .limits("rate_limit_strikes = 2")
    })
    .await;
    let mut client = WsClient::connect(server.addr, "alice").await;
    client.join_ok("room:a", "1").await;
    client
        .send_v2(Some("2"), Some("2"), "room:b", "phx_join", json!({}))
        .await;
    client
        .send_v2(Some("3"), Some("3"), "room:c", "phx_join", json!({}))
        .await;
    assert_eq!(client.reply("2").await[4], error("rate_limited"));
    assert_eq!(client.reply("3").await[4], error("rate_limited"));
    let (code, reason, _) = client.closed().await;
    assert_eq!((code, reason.as_str()), (Some(1008), "rate_limited"));
}

#[tokio::test]
async fn a_long_poll_client_past_its_strikes_loses_its_session() {
    let (_backend, server) = start(|s| s.limits("rate_limit_strikes = 2")).await;
    let mut lp = LongPoll::new(&server, &format!("app={APP}&token=alice&vsn=2.0.0"));
    lp.open().await;
    let line = |msg_ref: u32, event: &str, payload: Value| {
        json!(["1", msg_ref.to_string(), "room:a", event, payload]).to_string()
    };
    // `limited` allows 2 a minute: pushes 3 and 4 are strikes 1 and 2, and
    // the lines after them in the same batch are not processed.
    let batch: Vec<String> = std::iter::once(line(1, "phx_join", json!({})))
        .chain((2..=7).map(|n| line(n, "limited", json!({}))))
        .collect();
    assert_eq!(lp.post(&batch).await, json!({"status": 200}));
    // Five replies, and the two allowed `limited` broadcasts.
    let messages = lp.messages(7).await;
    let statuses: Vec<(String, Value)> = messages
        .iter()
        .filter(|m| m[3] == "phx_reply")
        .map(|m| (m[1].as_str().unwrap().to_owned(), m[4]["status"].clone()))
        .collect();
    assert_eq!(
        statuses,
        vec![
            ("1".to_owned(), json!("ok")),
            ("2".to_owned(), json!("ok")),
            ("3".to_owned(), json!("ok")),
            ("4".to_owned(), json!("error")),
            ("5".to_owned(), json!("error")),
        ]
    );
    // The session has ended: the next poll is told to reconnect.
    let body = lp.get().await;
    assert_eq!(body["status"], 410, "{body}");
    assert_eq!(
        counted(
            &server,
            "switchboard_rate_limited_total",
            APP,
            "kind=\"disconnect\""
        )
        .await,
        1.0
    );
}

#[tokio::test]
async fn payloads_over_max_webhook_payload_bytes_are_not_forwarded() {
    let (backend, server) = start(|s| s.limits("max_webhook_payload_bytes = 64")).await;
    let mut client = WsClient::connect(server.addr, "alice").await;
    client.join_ok("room:a", "1").await;
    let big = json!({"text": "x".repeat(100)});
    assert_eq!(
        client.push("1", "room:a", "ask", big).await,
        error("message_too_large")
    );
    // Exactly 64 bytes of JSON text is within the limit.
    let exact = json!({"text": "x".repeat(53)});
    assert_eq!(exact.to_string().len(), 64);
    assert_eq!(
        client.push("1", "room:a", "ask", exact.clone()).await["status"],
        "ok"
    );
    // A binary payload counts its bytes.
    let mut frame = vec![0u8, 1, 1, 6, 3];
    frame.extend_from_slice(b"19room:aask");
    frame.extend_from_slice(&[7u8; 65]);
    client.send_binary(frame).await;
    assert_eq!(client.reply("9").await[4], error("message_too_large"));
    // Only the payload within the limit reached the app.
    client.sync().await;
    let forwarded = backend.requests("/messages");
    assert_eq!(forwarded.len(), 1, "{forwarded:#?}");
    assert_eq!(forwarded[0].json()["payload"], exact);
    // Broadcast events never go to the webhook: the limit does not apply.
    let broadcast = json!({"text": "x".repeat(100)});
    assert_eq!(
        client.push("1", "room:a", "chat:msg", broadcast).await["status"],
        "ok"
    );
    assert_eq!(
        counted(
            &server,
            "switchboard_limit_exceeded_total",
            APP,
            "limit=\"max_webhook_payload_bytes\""
        )
        .await,
        2.0
    );
}

#[tokio::test]
async fn long_poll_sessions_over_the_cap_are_refused() {
    let (_backend, server) = start(|s| s.limits("max_longpoll_sessions = 2")).await;
    let query = |token: &str| format!("app={APP}&token={token}&vsn=2.0.0");
    let mut first = LongPoll::new(&server, &query("alice"));
    first.open().await;
    let mut second = LongPoll::new(&server, &query("bob"));
    second.open().await;
    let mut third = LongPoll::new(&server, &query("carol"));
    assert_eq!(
        third.get().await,
        json!({"status": 403, "reason": "too_many_connections"})
    );
    // WebSocket connections are not long-poll sessions.
    WsClient::connect(server.addr, "dave").await;
    assert_eq!(
        counted(
            &server,
            "switchboard_limit_exceeded_total",
            APP,
            "limit=\"max_longpoll_sessions\""
        )
        .await,
        1.0
    );
    assert_eq!(
        counted(
            &server,
            "switchboard_auth_failures_total",
            APP,
            "reason=\"too_many_connections\""
        )
        .await,
        1.0
    );
    // A session that ends frees its place.
    let (status, _) = api(
        Method::POST,
        &server.url(&format!("/api/v1/apps/{APP}/clients/alice/disconnect")),
        SECRET,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(first.get().await["status"], 410);
    third.open().await;
}

#[tokio::test]
async fn joins_past_the_channel_limit_are_counted() {
    let (_backend, server) = start(|s| s.limits("max_channels_per_connection = 1")).await;
    let mut client = WsClient::connect(server.addr, "alice").await;
    client.join_ok("room:a", "1").await;
    assert_eq!(
        client.join("room:b", "2").await,
        error("too many channels joined")
    );
    assert_eq!(
        counted(
            &server,
            "switchboard_limit_exceeded_total",
            APP,
            "limit=\"max_channels_per_connection\""
        )
        .await,
        1.0
    );
}

#[tokio::test]
async fn oversized_frames_are_counted() {
    let (_backend, server) = start(|s| s.limits("max_frame_bytes = 256")).await;
    let mut client = WsClient::connect(server.addr, "alice").await;
    client.join_ok("room:a", "1").await;
    let big = json!({"body": "x".repeat(1000)});
    assert_eq!(
        client.push("1", "room:a", "chat:msg", big).await,
        error("message_too_large")
    );
    assert_eq!(
        counted(
            &server,
            "switchboard_dropped_messages_total",
            APP,
            "reason=\"message_too_large\""
        )
        .await,
        1.0
    );
}

#[tokio::test]
async fn connections_over_the_per_client_cap_are_counted() {
    let (_backend, server) = start(|s| s.limits("max_connections_per_client = 1")).await;
    let q = format!("app={APP}&token=alice&vsn=2.0.0");
    let _first = WsClient::connect_query(server.addr, &q).await;
    assert_refused(server.addr, &q, &[], "too_many_connections").await;
    assert_eq!(
        counted(
            &server,
            "switchboard_auth_failures_total",
            APP,
            "reason=\"too_many_connections\""
        )
        .await,
        1.0
    );
}

#[tokio::test]
async fn bodies_over_max_body_bytes_are_refused_with_413() {
    let (_backend, server) = start(|s| s.limits("max_body_bytes = 1024")).await;
    let big = json!({"topic": "room:a", "event": "chat:msg", "payload": {"x": "y".repeat(2000)}});
    let (status, _) = api(
        Method::POST,
        &server.url(&format!("/api/v1/apps/{APP}/broadcast")),
        SECRET,
        Some(big),
    )
    .await;
    assert_eq!(status, 413);
    // Long-poll POST bodies too.
    let mut lp = LongPoll::new(&server, &format!("app={APP}&token=alice&vsn=2.0.0"));
    lp.open().await;
    let response = http()
        .post(lp.url())
        .header("content-type", "application/x-ndjson")
        .body("x".repeat(2000))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 413);
    assert_eq!(
        counted(
            &server,
            "switchboard_limit_exceeded_total",
            APP,
            "limit=\"max_body_bytes\""
        )
        .await,
        2.0
    );
}

#[tokio::test]
async fn webhook_calls_over_the_in_flight_cap_wait_for_a_slot_and_are_counted() {
    let (backend, server) = start(|s| s.limits("webhooks_in_flight_per_app = 1")).await;
    // The first call holds the only slot for 2 s: long enough that the
    // second call is seen waiting, well within the 5 s webhook timeout.
    backend.on("/messages", |r| {
        let reply = Reply::ok(json!({"action": "reply", "data": {}}));
        if r.json()["payload"]["slow"] == true {
            reply.delayed(Duration::from_secs(2))
        } else {
            reply
        }
    });
    let mut client = WsClient::connect(server.addr, "alice").await;
    client.join_ok("room:a", "1").await;
    client
        .send_v2(
            Some("1"),
            Some("slow"),
            "room:a",
            "ask",
            json!({"slow": true}),
        )
        .await;
    backend.wait_requests("/messages", 1).await;
    client
        .send_v2(Some("1"), Some("fast"), "room:a", "ask", json!({}))
        .await;
    let gateway = server.gateway.clone();
    eventually("the second call meets the full cap", || {
        let text = gateway.metrics.render();
        async move {
            metric_sum(
                &text,
                "switchboard_limit_exceeded_total",
                &[
                    &format!("app=\"{APP}\""),
                    "limit=\"webhooks_in_flight_per_app\"",
                ],
            ) == 1.0
        }
    })
    .await;
    assert_eq!(
        backend.requests("/messages").len(),
        1,
        "the second call waits for the slot"
    );
    // Both are answered: the cap delays, it does not refuse.
    assert_eq!(client.reply("slow").await[4]["status"], "ok");
    assert_eq!(client.reply("fast").await[4]["status"], "ok");
}

#[tokio::test]
async fn trusted_proxies_name_the_client_for_the_per_ip_limit_and_auth() {
    let (backend, server) = start(|s| {
        s.server("trusted_proxies = [\"127.0.0.0/8\"]")
            .limits("connects_per_ip_per_second = 1")
    })
    .await;
    let q = format!("app={APP}&token=alice&vsn=2.0.0");
    // Two clients behind the proxy each have their own budget of one.
    for client in ["203.0.113.1", "203.0.113.2"] {
        WsClient::try_connect(server.addr, &q, &[("x-forwarded-for", client)])
            .await
            .unwrap_or_else(|e| panic!("{client}: {e}"));
    }
    assert_refused(
        server.addr,
        &q,
        &[("x-forwarded-for", "198.51.100.9, 203.0.113.1")],
        "rate_limited",
    )
    .await;
    let seen: Vec<Value> = backend
        .requests("/auth")
        .iter()
        .map(|r| r.json()["remote_ip"].clone())
        .collect();
    assert_eq!(seen, vec![json!("203.0.113.1"), json!("203.0.113.2")]);
}

#[tokio::test]
async fn x_forwarded_for_from_an_untrusted_peer_is_ignored() {
    let (backend, server) = start(|s| s.limits("connects_per_ip_per_second = 1")).await;
    let q = format!("app={APP}&token=alice&vsn=2.0.0");
    WsClient::try_connect(server.addr, &q, &[("x-forwarded-for", "203.0.113.1")])
        .await
        .expect("the first connect is within the limit");
    // Another claimed address does not buy another budget.
    assert_refused(
        server.addr,
        &q,
        &[("x-forwarded-for", "203.0.113.2")],
        "rate_limited",
    )
    .await;
    assert_eq!(
        backend.requests("/auth")[0].json()["remote_ip"],
        "127.0.0.1"
    );
    assert_eq!(
        counted(
            &server,
            "switchboard_rate_limited_total",
            APP,
            "kind=\"connect\""
        )
        .await,
        1.0
    );
}

#[tokio::test]
async fn long_poll_sessions_per_ip_are_capped_and_freed_when_they_end() {
    let (_backend, server) = start(|s| s.limits("max_longpoll_sessions_per_ip = 1")).await;
    let query = |token: &str| format!("app={APP}&token={token}&vsn=2.0.0");
    let mut first = LongPoll::new(&server, &query("alice"));
    first.open().await;
    // Every test client is 127.0.0.1: a second session is one too many.
    let mut second = LongPoll::new(&server, &query("bob"));
    assert_eq!(
        second.get().await,
        json!({"status": 403, "reason": "too_many_connections"})
    );
    assert_eq!(
        counted(
            &server,
            "switchboard_limit_exceeded_total",
            APP,
            "limit=\"max_longpoll_sessions_per_ip\""
        )
        .await,
        1.0
    );
    let (status, _) = api(
        Method::POST,
        &server.url(&format!("/api/v1/apps/{APP}/clients/alice/disconnect")),
        SECRET,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(first.get().await["status"], 410);
    second.open().await;
}
