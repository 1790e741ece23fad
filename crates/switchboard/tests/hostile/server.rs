//! The real `switchboard` binary under test: started on an ephemeral port
//! with a config of one app (auth by a mock backend in the test, schema from
//! a file), and what the tests read from it: health, metrics, memory.

use crate::common::TempDir;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

/// The longest any single condition is waited for.
pub const WAIT: Duration = Duration::from_secs(20);

/// The app every test connects to.
pub const APP: &str = "app1";
const SECRET: &str = "app1-secret";

/// Limits that differ from the defaults, so attacks finish quickly.
pub struct Options {
    /// `[server] idle_timeout_secs`.
    pub idle_timeout_secs: u64,
    /// `[limits] handshake_timeout_ms`.
    pub handshake_timeout_ms: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            idle_timeout_secs: 60,
            handshake_timeout_ms: 2000,
        }
    }
}

/// A running binary; killed on drop.
pub struct Server {
    child: Child,
    pub addr: String,
    pid: u32,
    http: reqwest::Client,
    logs: Arc<Mutex<String>>,
    _dir: TempDir,
}

impl Server {
    pub async fn start(options: Options) -> Server {
        let backend = start_auth_backend().await;
        let dir = TempDir::new("hostile");
        std::fs::write(dir.0.join("schema.json"), schema().to_string()).unwrap();
        let config = dir.0.join("switchboard.toml");
        std::fs::write(
            &config,
            format!(
                r#"
[server]
listen = "127.0.0.1:0"
state_file = "{state}"
idle_timeout_secs = {idle}

[limits]
handshake_timeout_ms = {handshake}
connects_per_ip_per_second = 10000

[[apps]]
id = "{APP}"
secret = "{SECRET}"
auth_endpoint = "http://{backend}/auth"
schema_file = "schema.json"
"#,
                state = dir.0.join("state.json").display(),
                idle = options.idle_timeout_secs,
                handshake = options.handshake_timeout_ms,
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
        let logs = Arc::new(Mutex::new(String::new()));
        let mut stderr = child.stderr.take().unwrap();
        let log_sink = logs.clone();
        tokio::spawn(async move {
            let mut chunk = [0u8; 8192];
            while let Ok(n) = stderr.read(&mut chunk).await {
                if n == 0 {
                    break;
                }
                log_sink
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&chunk[..n]));
            }
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
        // Keep stdout drained.
        tokio::spawn(async move {
            let mut sink = Vec::new();
            let _ = stdout.read_to_end(&mut sink).await;
        });
        let pid = child.id().expect("running");
        Server {
            child,
            addr,
            pid,
            http: reqwest::Client::builder().timeout(WAIT).build().unwrap(),
            logs,
            _dir: dir,
        }
    }

    pub fn ws_url(&self, token: &str) -> String {
        format!(
            "ws://{}/socket/websocket?app={APP}&token={token}&vsn=2.0.0",
            self.addr
        )
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Recent log lines, for failure messages.
    pub fn logs(&self) -> String {
        let logs = self.logs.lock().unwrap();
        let start = logs.len().saturating_sub(4000);
        let start = (start..logs.len())
            .find(|i| logs.is_char_boundary(*i))
            .unwrap_or(logs.len());
        logs[start..].to_owned()
    }

    /// Panics (with the logs) unless the process is still running.
    pub fn assert_running(&mut self, what: &str) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "the server exited ({status}) after {what}; logs:\n{}",
                self.logs()
            );
        }
    }

    pub async fn health(&self) -> u16 {
        let url = format!("http://{}/health", self.addr);
        match self.http.get(url).send().await {
            Ok(response) => response.status().as_u16(),
            Err(error) => panic!("/health failed: {error}; logs:\n{}", self.logs()),
        }
    }

    /// `switchboard_dropped_messages_total{app, reason}`, 0 when absent.
    pub async fn dropped(&self, reason: &str) -> u64 {
        self.counter("switchboard_dropped_messages_total", APP, reason)
            .await
    }

    /// A counter with labels `app` and `reason`, 0 when absent.
    pub async fn counter(&self, family: &str, app: &str, reason: &str) -> u64 {
        let url = format!("http://{}/metrics", self.addr);
        let response = self.http.get(url).send().await.unwrap();
        let text = response.text().await.unwrap();
        let labels = format!(r#"app="{app}",reason="{reason}""#);
        let alt = format!(r#"reason="{reason}",app="{app}""#);
        text.lines()
            .filter(|line| line.starts_with(&format!("{family}{{")))
            .filter(|line| line.contains(&labels) || line.contains(&alt))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .map(|value| value as u64)
            .sum()
    }

    /// Waits until the dropped-messages counter for `reason` reaches `at_least`.
    pub async fn wait_dropped(&self, reason: &str, at_least: u64) {
        self.wait_counter("switchboard_dropped_messages_total", APP, reason, at_least)
            .await;
    }

    /// Waits until a counter with labels `app` and `reason` reaches `at_least`.
    pub async fn wait_counter(&self, family: &str, app: &str, reason: &str, at_least: u64) {
        let result = tokio::time::timeout(WAIT, async {
            while self.counter(family, app, reason).await < at_least {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        if result.is_err() {
            panic!(
                "{family}{{app={app:?}, reason={reason:?}}} stayed at {} (< {at_least}); logs:\n{}",
                self.counter(family, app, reason).await,
                self.logs()
            );
        }
    }

    /// `POST /api/v1/apps/{app}/broadcast`.
    pub async fn broadcast(&self, topic: &str, payload: Value) {
        let url = format!("http://{}/api/v1/apps/{APP}/broadcast", self.addr);
        let response = self
            .http
            .post(url)
            .bearer_auth(SECRET)
            .json(&json!({"topic": topic, "event": "message", "payload": payload}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202, "server API broadcast");
    }

    /// The server's resident memory, from `/proc/<pid>/status`.
    pub fn rss_kb(&self) -> u64 {
        rss_kb(self.pid)
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }
}

pub fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// `room:{name}` for the well-behaved clients and the join floods;
/// `message` is broadcast directly; `nested` takes arrays of arrays at any
/// depth (a recursive JSON Schema, for deep payloads).
fn schema() -> Value {
    json!({
        "version": "1",
        "channels": [
            {"pattern": "room:{name}", "variables": {"name": {"format": "slug"}}}
        ],
        "events": [
            {
                "name": "message",
                "delivery": "broadcast",
                "payload": {
                    "type": "object",
                    "properties": {"body": {"type": "string"}},
                    "required": ["body"]
                }
            },
            {
                "name": "nested",
                "delivery": "broadcast",
                "payload": {"type": "array", "items": {"$ref": "#"}}
            }
        ]
    })
}

/// Auth: any token is accepted, the client id is the token.
async fn start_auth_backend() -> SocketAddr {
    async fn auth(Json(body): Json<Value>) -> Json<Value> {
        Json(json!({"client_id": body["token"]}))
    }
    let router = Router::new().route("/auth", post(auth));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    addr
}

pub async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    crate::common::within_limit(WAIT, what, future).await
}
