//! Health and metrics endpoints (CONTRACT §8, §10).

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn health_endpoints_answer_ok() {
    let (_backend, server) = start(|s| s).await;
    for path in ["/health", "/health/live", "/health/ready"] {
        let (status, body) = status_json(http().get(server.url(path)).send().await.unwrap()).await;
        assert_eq!(status, 200, "{path}");
        if path == "/health" {
            assert_eq!(body, json!({"status": "ok"}));
        }
    }
}

#[tokio::test]
async fn every_metric_family_is_exposed_before_any_traffic() {
    let (_backend, server) = start(|s| s).await;
    let response = http().get(server.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let text = response.text().await.unwrap();
    for (family, kind) in [
        ("switchboard_connections", "gauge"),
        ("switchboard_joins", "counter"),
        ("switchboard_messages_in", "counter"),
        ("switchboard_messages_out", "counter"),
        ("switchboard_webhook_duration_seconds", "histogram"),
        ("switchboard_webhook_failures", "counter"),
        ("switchboard_auth_failures", "counter"),
        ("switchboard_rate_limited", "counter"),
        ("switchboard_schema_fetch_failures", "counter"),
        ("switchboard_dropped_messages", "counter"),
    ] {
        assert!(
            text.lines().any(|l| l == format!("# TYPE {family} {kind}")),
            "# TYPE {family} {kind} missing:\n{text}"
        );
    }
    assert!(
        text.lines()
            .any(|l| l.starts_with("switchboard_process_resident_memory_bytes")),
        "process memory missing:\n{text}"
    );
}

#[tokio::test]
async fn metrics_count_traffic() {
    let (_backend, server) = start(|s| s).await;
    let mut client = WsClient::connect(server.addr, "alice").await;
    client.join_ok("room:a", "1").await;
    client.push("1", "room:a", "chat:msg", json!({})).await;
    let text = metrics(&server).await;
    let app = format!("app=\"{APP}\"");
    assert_eq!(
        metric_sum(
            &text,
            "switchboard_connections",
            &[&app, "transport=\"websocket\""]
        ),
        1.0,
        "{text}"
    );
    assert_eq!(metric_sum(&text, "switchboard_joins_total", &[&app]), 1.0);
    assert!(metric_sum(&text, "switchboard_messages_in_total", &[&app]) >= 2.0);
    assert!(metric_sum(&text, "switchboard_messages_out_total", &[&app]) >= 3.0);
    assert!(
        metric_sum(
            &text,
            "switchboard_webhook_duration_seconds_count",
            &[&app, "kind=\"auth\""]
        ) >= 1.0
    );
    client.close().await;
    eventually("the connection gauge drops to 0", || async {
        metric_sum(
            &metrics(&server).await,
            "switchboard_connections",
            &[&app, "transport=\"websocket\""],
        ) == 0.0
    })
    .await;
}
