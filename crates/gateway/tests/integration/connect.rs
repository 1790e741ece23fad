//! Connection admission (CONTRACT §3, §5 auth): every 403 reason, both ways
//! of passing the token, and the auth webhook's request.

use std::time::Duration;

use base64::Engine;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn unknown_or_missing_app_is_refused() {
    let (_backend, server) = start(|s| s).await;
    assert_refused(
        server.addr,
        "app=nope&token=alice&vsn=2.0.0",
        &[],
        "unknown_app",
    )
    .await;
    assert_refused(server.addr, "token=alice&vsn=2.0.0", &[], "unknown_app").await;

    // A real WebSocket client sees the refusal before any upgrade.
    let error = WsClient::try_connect(server.addr, "app=nope&token=alice", &[])
        .await
        .err()
        .expect("refused");
    match error {
        tokio_tungstenite::tungstenite::Error::Http(response) => {
            assert_eq!(response.status().as_u16(), 403)
        }
        other => panic!("expected an HTTP refusal, got {other}"),
    }
}

#[tokio::test]
async fn refused_or_missing_token_is_unauthorized() {
    let (backend, server) = start(|s| s).await;
    let q = |token: &str| format!("app={APP}&token={token}&vsn=2.0.0");
    assert_refused(server.addr, &q("deny"), &[], "unauthorized").await; // 401
    assert_refused(server.addr, &q("forbid"), &[], "unauthorized").await; // 403
    assert_eq!(backend.requests("/auth").len(), 2);

    // No token, or an empty one: refused without asking the app.
    assert_refused(
        server.addr,
        &format!("app={APP}&vsn=2.0.0"),
        &[],
        "unauthorized",
    )
    .await;
    assert_refused(server.addr, &q(""), &[], "unauthorized").await;
    assert_eq!(backend.requests("/auth").len(), 2);
}

#[tokio::test]
async fn auth_backend_error_is_auth_service_error() {
    let (backend, server) = start(|s| s).await;
    backend.set("/auth", Reply::json(500, json!({"error": "boom"})));
    assert_refused(
        server.addr,
        &format!("app={APP}&token=alice"),
        &[],
        "auth_service_error",
    )
    .await;
    // A 200 that is not an auth answer is no better.
    backend.set("/auth", Reply::raw(200, "not json"));
    assert_refused(
        server.addr,
        &format!("app={APP}&token=alice"),
        &[],
        "auth_service_error",
    )
    .await;
    let text = metrics(&server).await;
    assert!(
        metric_sum(
            &text,
            "switchboard_auth_failures_total",
            &[&format!("app=\"{APP}\""), "reason=\"auth_service_error\""]
        ) >= 2.0,
        "{text}"
    );
}

#[tokio::test]
async fn auth_backend_timeout_is_auth_service_error() {
    let (backend, server) = start(|s| s.app("webhook_timeout_ms = 300")).await;
    backend.set(
        "/auth",
        Reply::ok(json!({"client_id": "alice"})).delayed(Duration::from_secs(5)),
    );
    let started = std::time::Instant::now();
    assert_refused(
        server.addr,
        &format!("app={APP}&token=alice"),
        &[],
        "auth_service_error",
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the refusal came from the gateway's timeout, not the backend's answer"
    );
}

#[tokio::test]
async fn app_without_a_loaded_schema_refuses_with_auth_service_error() {
    let backend = MockBackend::start(schema("1.0.0")).await;
    backend.set("/schema", Reply::json(500, json!({"error": "not yet"})));
    let server = Setup::new(&backend).no_schema_wait().start().await;
    // The gateway tried (and failed) to load it.
    backend.wait_requests("/schema", 2).await;
    assert_refused(
        server.addr,
        &format!("app={APP}&token=alice"),
        &[],
        "auth_service_error",
    )
    .await;
    assert!(backend.requests("/auth").is_empty(), "auth is not asked");

    // Once the schema loads (retry with backoff), the app accepts clients.
    backend.set("/schema", Reply::ok(schema("1.0.0")));
    let addr = server.addr;
    eventually("the app accepts connections", || async move {
        WsClient::try_connect(addr, &format!("app={APP}&token=alice&vsn=2.0.0"), &[])
            .await
            .is_ok()
    })
    .await;
}

#[tokio::test]
async fn origin_must_be_allowed() {
    let (_backend, server) =
        start(|s| s.app(r#"allowed_origins = ["https://good.example", "http://localhost:3000"]"#))
            .await;
    let q = format!("app={APP}&token=alice&vsn=2.0.0");
    assert_refused(
        server.addr,
        &q,
        &[("origin", "https://evil.example")],
        "origin_not_allowed",
    )
    .await;
    WsClient::try_connect(server.addr, &q, &[("origin", "https://good.example")])
        .await
        .expect("an allowed origin connects");
    WsClient::try_connect(server.addr, &q, &[("origin", "http://localhost:3000")])
        .await
        .expect("an allowed origin connects");
    // No Origin header (not a browser): allowed.
    WsClient::try_connect(server.addr, &q, &[])
        .await
        .expect("no origin connects");
}

#[tokio::test]
async fn connects_over_the_per_ip_rate_are_refused() {
    let (_backend, server) = start(|s| s.limits("connects_per_ip_per_second = 1")).await;
    let q = format!("app={APP}&token=alice&vsn=2.0.0");
    let _first = WsClient::connect_query(server.addr, &q).await;
    // The burst is 1: the very next attempt, well within the second, is over.
    assert_refused(server.addr, &q, &[], "rate_limited").await;
    let text = metrics(&server).await;
    assert!(
        metric_sum(
            &text,
            "switchboard_auth_failures_total",
            &["reason=\"rate_limited\""]
        ) >= 1.0,
        "{text}"
    );
}

#[tokio::test]
async fn refusals_for_made_up_app_ids_add_no_metric_series() {
    let (_backend, server) = start(|s| s.limits("connects_per_ip_per_second = 1")).await;
    // The first attempt spends the burst; the rest are rate limited.
    assert_refused(
        server.addr,
        &format!("app={APP}&token=deny"),
        &[],
        "unauthorized",
    )
    .await;
    for n in 0..3 {
        assert_refused(
            server.addr,
            &format!("app=made-up-{n}&token=t"),
            &[],
            "rate_limited",
        )
        .await;
    }
    assert_refused(
        server.addr,
        &format!("app={APP}&token=t"),
        &[],
        "rate_limited",
    )
    .await;
    let text = metrics(&server).await;
    assert_eq!(
        metric_sum(
            &text,
            "switchboard_rate_limited_total",
            &[&format!("app=\"{APP}\""), "kind=\"connect\""]
        ),
        1.0,
        "{text}"
    );
    // Anyone can invent app ids: they must not become label values, or the
    // metrics grow without bound.
    assert!(!text.contains("made-up"), "{text}");
}

#[tokio::test]
async fn connections_per_client_are_capped() {
    let (_backend, server) = start(|s| s.limits("max_connections_per_client = 1")).await;
    let q = |token: &str| format!("app={APP}&token={token}&vsn=2.0.0");
    let first = WsClient::connect_query(server.addr, &q("alice")).await;
    assert_refused(server.addr, &q("alice"), &[], "too_many_connections").await;
    // The cap is per client id: another client connects.
    let _bob = WsClient::connect_query(server.addr, &q("bob")).await;
    // The same client id on another app is another client.
    WsClient::connect_query(server.addr, &format!("app={APP2}&token=alice&vsn=2.0.0")).await;

    // Once alice's connection is gone, she may connect again.
    first.close().await;
    let addr = server.addr;
    eventually("alice may connect again", || async move {
        WsClient::try_connect(addr, &format!("app={APP}&token=alice&vsn=2.0.0"), &[])
            .await
            .is_ok()
    })
    .await;
}

#[tokio::test]
async fn unsupported_vsn_is_refused() {
    let (_backend, server) = start(|s| s).await;
    for vsn in ["3.0.0", "123.1.1", "banana"] {
        assert_refused(
            server.addr,
            &format!("app={APP}&token=alice&vsn={vsn}"),
            &[],
            "unsupported_vsn",
        )
        .await;
    }
    // 1.0.0, 2.0.0 and no vsn at all are fine.
    for query in ["vsn=1.0.0", "vsn=2.0.0", ""] {
        WsClient::connect_query(server.addr, &format!("app={APP}&token=alice&{query}")).await;
    }
}

#[tokio::test]
async fn token_in_the_query_reaches_auth_with_every_field_signed() {
    let (backend, server) = start(|s| s).await;
    let mut client = WsClient::try_connect(
        server.addr,
        &format!("app={APP}&token=alice%20smith&vsn=2.0.0&client_type=cli&room=42&foo=bar"),
        &[("origin", "https://app.example")],
    )
    .await
    .expect("connects");
    client.sync().await;

    let auth = backend.wait_requests("/auth", 1).await.remove(0);
    assert_eq!(auth.method, "POST");
    assert_eq!(auth.header("content-type"), Some("application/json"));
    auth.assert_signed(APP, SECRET);
    assert_eq!(
        auth.json(),
        json!({
            "token": "alice smith",
            "connection_type": "websocket",
            "app": APP,
            "client_type": "cli",
            "params": {"room": "42", "foo": "bar"},
            "remote_ip": "127.0.0.1",
            "origin": "https://app.example",
        })
    );
}

#[tokio::test]
async fn token_in_the_websocket_subprotocol_is_accepted_and_phoenix_echoed() {
    let (backend, server) = start(|s| s).await;
    // A token whose standard base64 has `+`, `/` and padding (stripped, as
    // phoenix.js does).
    let token = "ab?>>~ü";
    let b64 = base64::engine::general_purpose::STANDARD.encode(token);
    assert!(b64.contains('+') || b64.contains('/'), "{b64}");
    let protocols = format!(
        "phoenix, base64url.bearer.phx.{}",
        b64.trim_end_matches('=')
    );
    let mut client = WsClient::try_connect(
        server.addr,
        &format!("app={APP}&vsn=2.0.0"),
        &[("sec-websocket-protocol", &protocols)],
    )
    .await
    .unwrap_or_else(|e| panic!("connects: {e}"));
    assert_eq!(
        client
            .headers
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok()),
        Some("phoenix")
    );
    client.sync().await;
    let auth = backend.wait_requests("/auth", 1).await.remove(0);
    assert_eq!(auth.json()["token"], token);
    auth.assert_signed(APP, SECRET);

    // The client id the app gave is the one the gateway uses.
    let (status, body) = api(
        reqwest::Method::GET,
        &server.url(&format!("/api/v1/apps/{APP}/connections")),
        SECRET,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["connections"][0]["client_id"], token);
}

/// `limits.handshake_timeout_ms` bounds how long a client may take to send
/// its request headers (slow-loris): the server hangs up.
#[tokio::test]
async fn a_stalled_handshake_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (_backend, server) = start(|s| s.limits("handshake_timeout_ms = 300")).await;
    let mut socket = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    // Half a request line, then nothing.
    socket
        .write_all(b"GET /socket/websocket?app=app1&token=alice HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        socket.read_to_end(&mut buf),
    )
    .await;
    assert!(
        read.is_ok(),
        "the server still holds the half-open handshake"
    );
}
