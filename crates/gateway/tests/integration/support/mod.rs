//! Helpers shared by every area: the mock app backend, the in-process
//! gateway, a WebSocket client, HTTP helpers and the test schema.
//!
//! Nothing here sleeps to let something happen: every wait is on a
//! condition, with a deadline of [`WAIT`].

mod backend;
mod longpoll;
mod server;
pub mod tokens;
mod ws;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{json, Value};

pub use backend::{MockBackend, Recorded, Reply};
pub use longpoll::LongPoll;
pub use server::{Setup, TempDir, TestServer, ADMIN_TOKEN, APP, APP2, SECRET, SECRET2};
pub use ws::{Frame, WsClient};

/// The longest any single condition is waited for.
pub const WAIT: Duration = Duration::from_secs(10);

/// Polls `check` until it returns true; panics with `what` after [`WAIT`].
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if check().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The test app's schema (version `version`):
/// - `room:{id}` (slug), no permissions;
/// - `team:{id}`, with presence;
/// - `project:{id}` (integer), join needs `read:project:{id}`, send needs
///   `write:project:{id}`;
/// - events: `chat:msg` (broadcast, rooms and projects), `task:assigned`
///   (broadcast, projects, payload needs a string `taskId`), `ask`
///   (forwarded to the message webhook, rooms), `limited` (broadcast, rooms,
///   2 per minute), `blob` (broadcast, rooms).
pub fn schema(version: &str) -> Value {
    json!({
        "version": version,
        "channels": [
            {"pattern": "room:{id}", "variables": {"id": {"type": "string", "format": "slug"}}},
            {"pattern": "team:{id}", "presence": true},
            {
                "pattern": "project:{id}",
                "variables": {"id": {"type": "string", "format": "integer"}},
                "permissions": {"join": ["read:project:{id}"], "send": ["write:project:{id}"]}
            }
        ],
        "events": [
            {"name": "chat:msg", "allowedChannels": ["room:*", "project:*"], "delivery": "broadcast"},
            {
                "name": "task:assigned",
                "allowedChannels": ["project:*"],
                "delivery": "broadcast",
                "payload": {
                    "type": "object",
                    "properties": {"taskId": {"type": "string"}},
                    "required": ["taskId"]
                }
            },
            {"name": "ask", "allowedChannels": ["room:*"], "delivery": "forward"},
            {"name": "limited", "allowedChannels": ["room:*"], "delivery": "broadcast"},
            {"name": "blob", "allowedChannels": ["room:*"], "delivery": "broadcast"}
        ],
        "rateLimits": {"byEvent": {"limited": {"windowMs": 60000, "maxRequests": 2}}}
    })
}

/// A backend serving [`schema`] `1.0.0`, and a gateway on it with `setup`'s
/// additions.
pub async fn start(setup: impl FnOnce(Setup) -> Setup) -> (MockBackend, TestServer) {
    let backend = MockBackend::start(schema("1.0.0")).await;
    let server = setup(Setup::new(&backend)).start().await;
    (backend, server)
}

/// A shared HTTP client for the tests.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(WAIT)
        .build()
        .expect("http client")
}

/// Status and JSON body (`Null` when empty or not JSON) of a response.
pub async fn status_json(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let bytes = response.bytes().await.expect("response body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// A server-API request with `Authorization: Bearer <secret>`.
pub async fn api(
    method: reqwest::Method,
    url: &str,
    secret: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = http().request(method, url).bearer_auth(secret);
    if let Some(body) = body {
        request = request.json(&body);
    }
    status_json(request.send().await.expect("API request")).await
}

/// `POST /api/v1/apps/app1/broadcast` with the app's secret; asserts 202.
pub async fn broadcast(server: &TestServer, topic: &str, event: &str, payload: Value) -> Value {
    let (status, body) = api(
        reqwest::Method::POST,
        &server.url(&format!("/api/v1/apps/{APP}/broadcast")),
        SECRET,
        Some(json!({"topic": topic, "event": event, "payload": payload})),
    )
    .await;
    assert_eq!(status, 202, "broadcast answered {body}");
    body
}

/// A WebSocket upgrade request that the gateway refuses: its status and
/// JSON body, read over plain HTTP so the whole body is seen.
pub async fn refused(addr: SocketAddr, query: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut request = http()
        .get(format!("http://{addr}/socket/websocket?{query}"))
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    status_json(request.send().await.expect("upgrade request")).await
}

/// Asserts the upgrade is refused with 403 and `reason`.
pub async fn assert_refused(addr: SocketAddr, query: &str, headers: &[(&str, &str)], reason: &str) {
    let (status, body) = refused(addr, query, headers).await;
    assert_eq!(
        (status, body.clone()),
        (403, json!({"status": 403, "reason": reason})),
        "?{query}"
    );
}

/// The `/metrics` text.
pub async fn metrics(server: &TestServer) -> String {
    let response = http().get(server.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    response.text().await.unwrap()
}

/// Sum of the samples of `name` whose labels contain every `label="value"`
/// in `labels`.
pub fn metric_sum(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
            (metric == name && labels.iter().all(|l| rest.contains(l)))
                .then(|| value.parse::<f64>().ok())?
        })
        .sum()
}
