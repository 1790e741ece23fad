//! Secrets never reach the logs (CONTRACT §8), checked on the real binary
//! with JSON logs at debug level: every secret, token and signature the
//! gateway handles during a run (app secrets, the admin token, a JWT key,
//! client tokens in the query and in `Sec-WebSocket-Protocol`, long-poll
//! session tokens, webhook signatures, wrong bearer tokens) is looked for
//! in everything the process wrote.

#![cfg(unix)]

mod common;

use common::TempDir;

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(15);

const APP_SECRET: &str = "sb-app-secret-3f9a1c";
const ADMIN_TOKEN: &str = "sb-admin-token-77e0b2";
const JWT_KEY: &str = "sb-jwt-hs256-key-c41d9e";
const JWT_APP_SECRET: &str = "sb-jwt-app-secret-0a8b6f";
const QUERY_TOKEN: &str = "tok-query-good-91e2";
const PROTOCOL_TOKEN: &str = "tok-protocol-good-5c7d";
const LONGPOLL_TOKEN: &str = "tok-longpoll-good-2b4e";
const BAD_QUERY_TOKEN: &str = "tok-query-bad-6f01";
const BAD_PROTOCOL_TOKEN: &str = "tok-protocol-bad-d3a8";
const JWT_TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLWJhZA";
const WRONG_BEARER: &str = "sb-wrong-bearer-8e3c";
const WRONG_ADMIN: &str = "sb-wrong-admin-4d2a";

/// Signatures of every webhook the backend received.
type Signatures = Arc<Mutex<Vec<String>>>;

fn record(signatures: &Signatures, headers: &HeaderMap) {
    if let Some(value) = headers
        .get("x-switchboard-signature")
        .and_then(|v| v.to_str().ok())
    {
        signatures.lock().unwrap().push(value.to_owned());
    }
}

/// Auth accepts the three good tokens (client id `user-N`, never the
/// token); the message and events webhooks answer and record signatures.
async fn start_backend(signatures: Signatures) -> SocketAddr {
    async fn auth(
        State(signatures): State<Signatures>,
        headers: HeaderMap,
        Json(body): Json<Value>,
    ) -> (StatusCode, Json<Value>) {
        record(&signatures, &headers);
        let good = [QUERY_TOKEN, PROTOCOL_TOKEN, LONGPOLL_TOKEN];
        match good.iter().position(|t| body["token"] == *t) {
            Some(n) => (
                StatusCode::OK,
                Json(json!({"client_id": format!("user-{n}")})),
            ),
            None => (StatusCode::UNAUTHORIZED, Json(json!({}))),
        }
    }
    async fn message(State(signatures): State<Signatures>, headers: HeaderMap) -> Json<Value> {
        record(&signatures, &headers);
        Json(json!({"action": "reply", "data": {"ok": true}}))
    }
    async fn events(State(signatures): State<Signatures>, headers: HeaderMap) -> StatusCode {
        record(&signatures, &headers);
        StatusCode::OK
    }
    let router = Router::new()
        .route("/auth", post(auth))
        .route("/messages", post(message))
        .route("/events", post(events))
        .with_state(signatures);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    addr
}

async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    common::within_limit(WAIT, what, future).await
}

fn protocol_header(token: &str) -> String {
    let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token);
    format!("phoenix, base64url.bearer.phx.{encoded}")
}

/// Opens a WebSocket with `query` and optional `Sec-WebSocket-Protocol`;
/// `Err(status)` when refused.
async fn websocket(
    addr: &str,
    query: &str,
    protocol: Option<&str>,
) -> Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    u16,
> {
    let mut request = format!("ws://{addr}/socket/websocket?{query}")
        .into_client_request()
        .unwrap();
    if let Some(protocol) = protocol {
        request
            .headers_mut()
            .insert("sec-websocket-protocol", protocol.parse().unwrap());
    }
    match within(
        "a websocket handshake",
        tokio_tungstenite::connect_async(request),
    )
    .await
    {
        Ok((socket, _)) => Ok(socket),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Err(response.status().as_u16())
        }
        Err(other) => panic!("websocket handshake failed: {other}"),
    }
}

/// Sends one V2 frame and returns the reply to its ref.
async fn request_reply(
    socket: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    frame: Value,
) -> Value {
    let msg_ref = frame[1].clone();
    socket
        .send(Message::Text(frame.to_string().into()))
        .await
        .unwrap();
    within("a reply", async {
        loop {
            let message = socket.next().await.expect("open").expect("readable");
            let value: Value = serde_json::from_str(message.to_text().unwrap()).unwrap();
            if value[3] == "phx_reply" && value[1] == msg_ref {
                return value;
            }
        }
    })
    .await
}

#[tokio::test]
async fn no_secret_token_or_signature_reaches_the_output() {
    let signatures: Signatures = Arc::default();
    let backend = start_backend(signatures.clone()).await;
    let dir = TempDir::new("secrets");
    std::fs::write(
        dir.0.join("schema.json"),
        json!({
            "version": "1",
            "channels": [{"pattern": "room:{id}"}],
            "events": [{"name": "ask", "delivery": "forward"}]
        })
        .to_string(),
    )
    .unwrap();
    let config = dir.0.join("switchboard.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[server]
listen = "127.0.0.1:0"
state_file = "{state}"
admin_token = "${{TEST_ADMIN_TOKEN}}"
drain_timeout_secs = 2

[[apps]]
id = "app1"
secret = "${{TEST_APP_SECRET}}"
auth_endpoint = "http://{backend}/auth"
schema_file = "schema.json"
message_endpoint = "http://{backend}/messages"
events_endpoint = "http://{backend}/events"

[[apps]]
id = "jwtapp"
secret = "{JWT_APP_SECRET}"
jwt_secret = "{JWT_KEY}"
schema_file = "schema.json"
"#,
            state = dir.0.join("state.json").display(),
        ),
    )
    .unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["serve", "--config"])
        .arg(&config)
        .env("TEST_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("TEST_APP_SECRET", APP_SECRET)
        .env("SWITCHBOARD_LOG_FORMAT", "json")
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");
    let mut stderr = child.stderr.take().unwrap();
    let logs = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut banner = String::new();
    within("the banner", stdout.read_line(&mut banner))
        .await
        .unwrap();
    let addr = banner
        .trim()
        .strip_prefix("switchboard listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {banner:?}"))
        .to_owned();
    let http = reqwest::Client::builder().timeout(WAIT).build().unwrap();

    // Auth succeeds with the token in the query, then a forwarded push
    // (a signed message webhook).
    let mut ws = websocket(
        &addr,
        &format!("app=app1&token={QUERY_TOKEN}&vsn=2.0.0"),
        None,
    )
    .await
    .expect("the query token is accepted");
    let join = request_reply(&mut ws, json!(["1", "1", "room:a", "phx_join", {}])).await;
    assert_eq!(join[4]["status"], "ok", "{join}");
    let ask = request_reply(&mut ws, json!(["1", "2", "room:a", "ask", {"q": 1}])).await;
    assert_eq!(ask[4], json!({"status": "ok", "response": {"ok": true}}));

    // Auth succeeds with the token in Sec-WebSocket-Protocol (phoenix.js
    // `authToken`).
    let ws2 = websocket(
        &addr,
        "app=app1&vsn=2.0.0",
        Some(&protocol_header(PROTOCOL_TOKEN)),
    )
    .await
    .expect("the protocol token is accepted");

    // Auth failures, both ways, and a JWT app.
    let bad_query = format!("app=app1&token={BAD_QUERY_TOKEN}&vsn=2.0.0");
    assert_eq!(websocket(&addr, &bad_query, None).await.err(), Some(403));
    let bad_protocol = protocol_header(BAD_PROTOCOL_TOKEN);
    assert_eq!(
        websocket(&addr, "app=app1&vsn=2.0.0", Some(&bad_protocol))
            .await
            .err(),
        Some(403)
    );
    let jwt_query = format!("app=jwtapp&token={JWT_TOKEN}&vsn=2.0.0");
    let jwt = websocket(&addr, &jwt_query, None).await;
    assert!(jwt.is_err(), "an invalid JWT is refused");

    // Long-poll: a session token is issued and used; a forged one is not
    // accepted.
    let longpoll =
        format!("http://{addr}/socket/longpoll?app=app1&token={LONGPOLL_TOKEN}&vsn=2.0.0");
    let open: Value = http
        .get(&longpoll)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(open["status"], 410, "{open}");
    let session = open["token"].as_str().unwrap().to_owned();
    let posted: Value = http
        .post(format!("{longpoll}&token={session}"))
        .header("content-type", "application/x-ndjson")
        .body(json!(["1", "1", "room:a", "phx_join", {}]).to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(posted["status"], 200, "{posted}");
    let (session_id, _) = session.split_once('.').unwrap();
    let forged = format!("{session_id}.{}", "0".repeat(32));
    let refused: Value = http
        .post(format!("{longpoll}&token={forged}"))
        .header("content-type", "application/x-ndjson")
        .body(json!([null, "9", "phoenix", "heartbeat", {}]).to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(refused["status"], 410, "a forged session token is refused");

    // Server and admin APIs: wrong bearer tokens, then the right ones.
    let broadcast = format!("http://{addr}/api/v1/apps/app1/broadcast");
    let body = json!({"topic": "room:a", "event": "news", "payload": {}});
    for (bearer, status) in [(WRONG_BEARER, 401), (APP_SECRET, 202)] {
        let response = http
            .post(&broadcast)
            .bearer_auth(bearer)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status);
    }
    let admin = format!("http://{addr}/admin/v1/apps");
    for (bearer, status) in [(WRONG_ADMIN, 401), (ADMIN_TOKEN, 200)] {
        let response = http.get(&admin).bearer_auth(bearer).send().await.unwrap();
        assert_eq!(response.status().as_u16(), status);
        let text = response.text().await.unwrap();
        for secret in [APP_SECRET, JWT_KEY, JWT_APP_SECRET] {
            assert!(!text.contains(secret), "the admin API answered a secret");
        }
    }

    drop(ws);
    drop(ws2);
    let pid = child.id().expect("running").to_string();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(kill.success());
    let status = within("the process to exit", child.wait()).await.unwrap();
    let mut rest = String::new();
    let _ = stdout.read_to_string(&mut rest).await;
    let logs = within("the logs", logs).await.unwrap();
    assert!(status.success(), "exit status {status:?}; logs:\n{logs}");
    let output = format!("{banner}{rest}{logs}");

    // The run was logged at debug level, refusals included: the absence
    // below means something.
    for line in logs.lines() {
        let _: Value =
            serde_json::from_str(line).unwrap_or_else(|_| panic!("a log line is not JSON: {line}"));
    }
    assert!(
        logs.contains(r#""level":"DEBUG""#),
        "no debug lines:\n{logs}"
    );
    assert!(
        logs.contains("connection refused"),
        "no refusal logged:\n{logs}"
    );
    assert!(logs.contains(r#""reason":"unauthorized""#), "{logs}");

    let signatures = signatures.lock().unwrap().clone();
    assert!(signatures.len() >= 4, "webhooks signed: {signatures:?}");
    let mut secrets: Vec<String> = [
        APP_SECRET,
        ADMIN_TOKEN,
        JWT_KEY,
        JWT_APP_SECRET,
        QUERY_TOKEN,
        PROTOCOL_TOKEN,
        LONGPOLL_TOKEN,
        BAD_QUERY_TOKEN,
        BAD_PROTOCOL_TOKEN,
        JWT_TOKEN,
        WRONG_BEARER,
        WRONG_ADMIN,
        &session,
        &forged,
        session.split_once('.').unwrap().1,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    secrets.push(protocol_header(PROTOCOL_TOKEN));
    secrets.push(bad_protocol.clone());
    for signature in signatures {
        secrets.push(signature.trim_start_matches("sha256=").to_owned());
    }
    for secret in &secrets {
        assert!(
            !output.contains(secret.as_str()),
            "{secret:?} appears in the output:\n{}",
            output
                .lines()
                .filter(|l| l.contains(secret.as_str()))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}
