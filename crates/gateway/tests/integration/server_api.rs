//! The server API (CONTRACT §6): broadcast, authorization, connections,
//! disconnect.

use reqwest::Method;
use serde_json::{json, Value};

use crate::support::*;

fn api_url(server: &TestServer, app: &str, rest: &str) -> String {
    server.url(&format!("/api/v1/apps/{app}/{rest}"))
}

#[tokio::test]
async fn broadcast_is_accepted_and_reaches_the_topics_subscribers() {
    let (_backend, server) = start(|s| s).await;
    let mut a = WsClient::connect(server.addr, "alice").await;
    let mut b =
        WsClient::connect_query(server.addr, &format!("app={APP}&token=bob&vsn=1.0.0")).await;
    let mut elsewhere = WsClient::connect(server.addr, "carol").await;
    a.join_ok("room:a", "1").await;
    b.send_text(r#"{"topic":"room:a","event":"phx_join","payload":{},"ref":"1"}"#)
        .await;
    b.next_frame().await;
    elsewhere.join_ok("room:b", "1").await;

    broadcast(&server, "room:a", "news", json!({"headline": "hi"})).await;
    assert_eq!(
        a.next_frame().await,
        Frame::Text(json!([null, null, "room:a", "news", {"headline": "hi"}]))
    );
    assert_eq!(
        b.next_frame().await,
        Frame::Text(
            json!({"topic": "room:a", "event": "news", "payload": {"headline": "hi"}, "ref": null})
        )
    );
    assert_eq!(elsewhere.sync().await, Vec::<Frame>::new());

    // A binary broadcast reaches V2 clients as a kind-2 frame.
    let (status, _) = api(
        Method::POST,
        &api_url(&server, APP, "broadcast"),
        SECRET,
        Some(json!({"topic": "room:a", "event": "bin", "payload_base64": "AAE="})),
    )
    .await;
    assert_eq!(status, 202);
    let mut expected = vec![2, 6, 3];
    expected.extend_from_slice(b"room:abin");
    expected.extend_from_slice(&[0, 1]);
    assert_eq!(a.next_frame().await, Frame::Binary(expected));
}

#[tokio::test]
async fn server_api_needs_the_apps_own_secret() {
    let (_backend, server) = start(|s| s).await;
    let body = json!({"topic": "room:a", "event": "e", "payload": {}});
    let url = api_url(&server, APP, "broadcast");
    for secret in ["wrong", "", SECRET2] {
        let (status, answer) = api(Method::POST, &url, secret, Some(body.clone())).await;
        assert_eq!(status, 401, "secret {secret:?}: {answer}");
    }
    // Another app's id with this app's secret.
    let (status, _) = api(
        Method::POST,
        &api_url(&server, APP2, "broadcast"),
        SECRET,
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, 401);
    // An unknown app answers like a wrong secret.
    let (status, _) = api(
        Method::GET,
        &api_url(&server, "ghost", "connections"),
        SECRET,
        None,
    )
    .await;
    assert_eq!(status, 401);
    // No Authorization header at all.
    let response = http().post(&url).json(&body).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 401);
    for (method, rest) in [
        (Method::GET, "connections"),
        (Method::POST, "clients/alice/disconnect"),
        (Method::POST, "schema/refresh"),
    ] {
        let (status, _) = api(method, &api_url(&server, APP, rest), "wrong", None).await;
        assert_eq!(status, 401, "{rest}");
    }
    // The right secret works.
    let (status, _) = api(Method::POST, &url, SECRET, Some(body)).await;
    assert_eq!(status, 202);
}

#[tokio::test]
async fn connections_are_listed_and_filtered() {
    let (_backend, server) = start(|s| s).await;
    let mut alice = WsClient::connect_query(
        server.addr,
        &format!("app={APP}&token=alice&vsn=2.0.0&client_type=web"),
    )
    .await;
    let mut bob = WsClient::connect(server.addr, "bob").await;
    let _other_app =
        WsClient::connect_query(server.addr, &format!("app={APP2}&token=zed&vsn=2.0.0")).await;
    alice.join_ok("room:a", "1").await;
    alice.join_ok("room:c", "2").await;
    bob.join_ok("room:b", "1").await;

    let list = |query: &'static str| {
        let url = api_url(&server, APP, &format!("connections{query}"));
        async move {
            let (status, body) = api(Method::GET, &url, SECRET, None).await;
            assert_eq!(status, 200, "{body}");
            body["connections"].as_array().unwrap().clone()
        }
    };
    let all = list("").await;
    assert_eq!(all.len(), 2, "only app1's connections: {all:#?}");
    let alice_entry = all.iter().find(|c| c["client_id"] == "alice").unwrap();
    for field in [
        "id",
        "client_id",
        "client_type",
        "metadata",
        "topics",
        "connected_at",
        "node",
    ] {
        assert!(
            alice_entry.get(field).is_some(),
            "{field} missing: {alice_entry}"
        );
    }
    assert_eq!(alice_entry["client_type"], "web");
    assert_eq!(alice_entry["metadata"], json!({"name": "alice"}));
    let mut topics: Vec<Value> = alice_entry["topics"].as_array().unwrap().clone();
    topics.sort_by_key(|t| t.to_string());
    assert_eq!(topics, vec![json!("room:a"), json!("room:c")]);
    assert!(alice_entry["connected_at"].as_u64().unwrap() > 1_600_000_000);

    let only_alice = list("?client_id=alice").await;
    assert_eq!(only_alice.len(), 1);
    assert_eq!(only_alice[0]["client_id"], "alice");
    let on_b = list("?topic=room:b").await;
    assert_eq!(on_b.len(), 1);
    assert_eq!(on_b[0]["client_id"], "bob");
    assert!(list("?topic=room%3Ab&client_id=alice").await.is_empty());
    assert!(list("?client_id=nobody").await.is_empty());

    // A leave shows up.
    alice
        .send_v2(Some("1"), Some("3"), "room:a", "phx_leave", json!({}))
        .await;
    alice.reply("3").await;
    assert!(list("?topic=room:a").await.is_empty());
}

#[tokio::test]
async fn disconnect_closes_every_connection_of_the_client_with_1001() {
    let (_backend, server) = start(|s| s).await;
    let mut first = WsClient::connect(server.addr, "alice").await;
    let mut second = WsClient::connect(server.addr, "alice").await;
    let mut bob = WsClient::connect(server.addr, "bob").await;
    first.join_ok("room:a", "1").await;

    let (status, _) = api(
        Method::POST,
        &api_url(&server, APP, "clients/alice/disconnect"),
        SECRET,
        None,
    )
    .await;
    assert_eq!(status, 200);
    for client in [&mut first, &mut second] {
        let (code, _, _) = client.closed().await;
        assert_eq!(code, Some(1001));
    }
    // Bob is untouched.
    assert_eq!(bob.sync().await, Vec::<Frame>::new());
    let url = api_url(&server, APP, "connections?client_id=alice");
    eventually("alice's connections are gone", || {
        let url = url.clone();
        async move {
            let (_, body) = api(Method::GET, &url, SECRET, None).await;
            body["connections"].as_array().is_some_and(|c| c.is_empty())
        }
    })
    .await;
}

#[tokio::test]
async fn schema_refresh_answers_the_version_or_502_and_keeps_the_old_schema() {
    let (mut backend, server) = start(|s| s).await;
    let url = api_url(&server, APP, "schema/refresh");
    let (status, body) = api(Method::POST, &url, SECRET, None).await;
    assert_eq!((status, body), (200, json!({"version": "1.0.0"})));

    // A new version with a new channel.
    let mut v2 = schema("2.0.0");
    v2["channels"]
        .as_array_mut()
        .unwrap()
        .push(json!({"pattern": "lobby"}));
    backend.set("/schema", Reply::ok(v2));
    let mut client = WsClient::connect(server.addr, "alice").await;
    let (status, body) = api(Method::POST, &url, SECRET, None).await;
    assert_eq!((status, body), (200, json!({"version": "2.0.0"})));
    client.join_ok("lobby", "1").await;
    let schema_get = backend.requests("/schema").pop().unwrap();
    assert_eq!(schema_get.method, "GET");
    schema_get.assert_signed(APP, SECRET);

    // Backend down: 502 with a reason; the last good schema stays in use.
    let failures_before = metric_sum(
        &metrics(&server).await,
        "switchboard_schema_fetch_failures_total",
        &[&format!("app=\"{APP}\"")],
    );
    backend.stop().await;
    let (status, body) = api(Method::POST, &url, SECRET, None).await;
    assert_eq!(status, 502, "{body}");
    assert!(
        body["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{body}"
    );
    client.join_ok("room:x", "2").await;
    client.join_ok("lobby", "3").await;
    assert_eq!(
        client.push("2", "room:x", "chat:msg", json!({})).await["status"],
        "ok"
    );
    let failures_after = metric_sum(
        &metrics(&server).await,
        "switchboard_schema_fetch_failures_total",
        &[&format!("app=\"{APP}\"")],
    );
    assert!(
        failures_after > failures_before,
        "{failures_before} → {failures_after}"
    );
}

#[tokio::test]
async fn schema_is_refreshed_on_a_timer() {
    let (backend, server) = start(|s| s.app("schema_refresh_secs = 1")).await;
    let mut client = WsClient::connect(server.addr, "alice").await;
    assert_eq!(
        client.join("lobby", "1").await,
        json!({"status": "error", "response": {"reason": "unmatched topic"}})
    );
    let mut v2 = schema("2.0.0");
    v2["channels"]
        .as_array_mut()
        .unwrap()
        .push(json!({"pattern": "lobby"}));
    backend.set("/schema", Reply::ok(v2));
    // Nobody asks for it: the refresher picks it up on its own.
    let gateway = server.gateway.clone();
    eventually("app1 runs schema 2.0.0", || {
        let gateway = gateway.clone();
        async move {
            gateway
                .apps
                .get(APP)
                .and_then(|a| a.schema())
                .is_some_and(|s| s.version() == "2.0.0")
        }
    })
    .await;
    client.join_ok("lobby", "2").await;
}
