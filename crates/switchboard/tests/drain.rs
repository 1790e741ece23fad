//! Drain on SIGTERM (CONTRACT §8), driven on the real binary: readiness goes
//! 503, new connections are refused, connected clients are told to
//! reconnect elsewhere (close 1012), an in-flight webhook call is allowed to
//! finish, and the process exits 0.

#![cfg(unix)]

mod common;

use common::TempDir;

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Message;

/// The longest any single condition is waited for.
const WAIT: Duration = Duration::from_secs(15);

#[derive(Default)]
struct Calls {
    /// Message webhook calls received.
    started: AtomicUsize,
    /// Message webhook calls answered (the handler ran to the end: the
    /// gateway did not drop the request).
    finished: AtomicUsize,
    /// Lets the message webhook answer.
    release: Notify,
}

/// Auth (client id = token) and a slow message webhook.
async fn start_backend(calls: Arc<Calls>) -> SocketAddr {
    async fn auth(Json(body): Json<Value>) -> Json<Value> {
        Json(json!({"client_id": body["token"]}))
    }
    async fn message(State(calls): State<Arc<Calls>>) -> Json<Value> {
        calls.started.fetch_add(1, Ordering::SeqCst);
        // The backend is slow: it answers when the test says so.
        let _ = tokio::time::timeout(WAIT, calls.release.notified()).await;
        calls.finished.fetch_add(1, Ordering::SeqCst);
        Json(json!({"action": "reply", "data": {}}))
    }
    let router = Router::new()
        .route("/auth", post(auth))
        .route("/messages", post(message))
        .with_state(calls);
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

#[tokio::test]
async fn sigterm_drains_and_exits_zero() {
    let calls = Arc::new(Calls::default());
    let backend = start_backend(calls.clone()).await;
    let dir = TempDir::new("drain");
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
drain_timeout_secs = 10

[[apps]]
id = "app1"
secret = "app1-secret"
auth_endpoint = "http://{backend}/auth"
schema_file = "schema.json"
message_endpoint = "http://{backend}/messages"
"#,
            state = dir.0.join("state.json").display(),
        ),
    )
    .unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["serve", "--config"])
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");
    // Logs go to stderr: keep them, for the failure message, and keep the
    // pipe drained.
    let logs = Arc::new(Mutex::new(String::new()));
    let mut stderr = child.stderr.take().unwrap();
    let log_sink = logs.clone();
    tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        log_sink.lock().unwrap().push_str(&text);
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
    let ready = |http: reqwest::Client| {
        let url = format!("http://{addr}/health/ready");
        async move { http.get(url).send().await.map(|r| r.status().as_u16()) }
    };
    assert_eq!(ready(http.clone()).await.unwrap(), 200);

    // A connected, joined client with a push waiting on the slow webhook.
    let url = format!("ws://{addr}/socket/websocket?app=app1&token=alice&vsn=2.0.0");
    let (mut ws, _) = within("the websocket", tokio_tungstenite::connect_async(&url))
        .await
        .expect("the client connects");
    ws.send(Message::Text(r#"["1","1","room:a","phx_join",{}]"#.into()))
        .await
        .unwrap();
    let reply = within("the join reply", ws.next()).await.unwrap().unwrap();
    assert!(
        reply.to_text().unwrap().contains(r#""status":"ok""#),
        "{reply}"
    );
    ws.send(Message::Text(r#"["1","2","room:a","ask",{}]"#.into()))
        .await
        .unwrap();
    within("the webhook call", async {
        while calls.started.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;

    let pid = child.id().expect("running").to_string();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(kill.success());

    // The client is told to reconnect elsewhere.
    let close = within("the close frame", async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(frame))) => break frame,
                Some(Ok(_)) => continue,
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    })
    .await;
    let code = close.map(|f| u16::from(f.code));
    assert_eq!(code, Some(1012), "close code");

    // While the webhook call is still in flight, the server drains: not
    // ready, and new connections are refused.
    assert_eq!(ready(http.clone()).await.unwrap(), 503);
    let refused = tokio_tungstenite::connect_async(&url).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403, "refused while draining");
            let body: serde_json::Value =
                serde_json::from_slice(response.body().as_deref().unwrap_or_default())
                    .expect("a JSON refusal body");
            assert_eq!(
                body,
                serde_json::json!({"status": 403, "reason": "server_draining"})
            );
        }
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
        Ok(_) => panic!("a new connection was accepted while draining"),
    }

    // The process waits for the webhook call, then exits 0.
    assert_eq!(calls.finished.load(Ordering::SeqCst), 0);
    calls.release.notify_one();
    let status = within("the process to exit", child.wait()).await.unwrap();
    let logs = logs.lock().unwrap().clone();
    assert!(status.success(), "exit status {status:?}; logs:\n{logs}");
    assert_eq!(
        calls.finished.load(Ordering::SeqCst),
        1,
        "the in-flight webhook call was cut short; logs:\n{logs}"
    );
}
