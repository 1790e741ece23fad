//! `MockBackend`: a real HTTP server standing in for an app backend. Every
//! route answers what the test programmed (status, JSON or raw body, delay)
//! and every request is recorded (path, headers, body) so tests can assert
//! on it and check its signature independently.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use super::WAIT;

/// One request the backend received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// `GET` / `POST`.
    pub method: Method,
    /// The path, e.g. `/auth`.
    pub path: String,
    /// Every header.
    pub headers: HeaderMap,
    /// The raw body.
    pub body: Bytes,
    /// The gateway's end of the TCP connection it came on.
    pub peer: SocketAddr,
}

impl Recorded {
    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the CONTRACT §5 headers: app id, a request id, a recent
    /// timestamp, and `sha256=hex(HMAC-SHA256(secret, "<ts>.<body>"))`,
    /// computed here independently of the gateway's code.
    pub fn assert_signed(&self, app: &str, secret: &str) {
        assert_eq!(self.header("x-switchboard-app"), Some(app), "{self:?}");
        let request_id = self.header("x-request-id").expect("x-request-id header");
        assert!(!request_id.is_empty(), "empty x-request-id");
        let timestamp = self
            .header("x-switchboard-timestamp")
            .expect("x-switchboard-timestamp header");
        let ts: u64 = timestamp.parse().expect("timestamp is Unix seconds");
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(ts.abs_diff(now) <= 60, "timestamp {ts} is not now ({now})");
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(&self.body);
        let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert_eq!(
            self.header("x-switchboard-signature"),
            Some(expected.as_str()),
            "signature of {} {}",
            self.method,
            self.path
        );
    }
}

/// What a route answers.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Body bytes (sent as `application/json`).
    pub body: String,
    /// Wait this long before answering.
    pub delay: Duration,
    /// Extra response headers.
    pub headers: Vec<(String, String)>,
}

impl Reply {
    /// A JSON answer.
    pub fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            body: body.to_string(),
            delay: Duration::ZERO,
            headers: Vec::new(),
        }
    }

    /// 200 with a JSON body.
    pub fn ok(body: Value) -> Reply {
        Reply::json(200, body)
    }

    /// A raw (possibly invalid JSON) body.
    pub fn raw(status: u16, body: &str) -> Reply {
        Reply {
            status,
            body: body.to_owned(),
            delay: Duration::ZERO,
            headers: Vec::new(),
        }
    }

    /// The same answer with one more header.
    pub fn with_header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The same answer, late.
    pub fn delayed(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

type Handler = Arc<dyn Fn(&Recorded) -> Reply + Send + Sync>;

struct Shared {
    routes: Mutex<HashMap<String, Handler>>,
    requests: Mutex<Vec<Recorded>>,
    count: watch::Sender<usize>,
}

/// A programmable app backend on `127.0.0.1:<ephemeral>`.
pub struct MockBackend {
    /// Where it listens.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

/// Permissions the default auth grants every client.
const DEFAULT_PERMISSIONS: [&str; 3] = ["read:project:1", "write:project:1", "read:project:2"];

/// The default auth answer: token `deny` → 401, `forbid` → 403, anything
/// else → 200 with client id = token, metadata `{"name": token}` and
/// [`DEFAULT_PERMISSIONS`].
pub fn default_auth(request: &Recorded) -> Reply {
    let body = request.json();
    let token = body["token"].as_str().unwrap_or_default().to_owned();
    match token.as_str() {
        "deny" => Reply::json(401, json!({"error": "no"})),
        "forbid" => Reply::json(403, json!({"error": "no"})),
        _ => Reply::ok(json!({
            "client_id": token,
            "metadata": {"name": token},
            "permissions": DEFAULT_PERMISSIONS,
        })),
    }
}

impl MockBackend {
    /// Starts a backend serving `schema` at `/schema`, [`default_auth`] at
    /// `/auth`, an echo reply at `/messages`, allow at `/join`, 200 at
    /// `/events`.
    pub async fn start(schema: Value) -> MockBackend {
        let (count, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            routes: Mutex::new(HashMap::new()),
            requests: Mutex::new(Vec::new()),
            count,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = Router::new().fallback(handle).with_state(shared.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let service = router.into_make_service_with_connect_info::<SocketAddr>();
            let _ = axum::serve(listener, service)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        let backend = MockBackend {
            addr,
            shared,
            stop: Some(stop),
            task: Some(task),
        };
        backend.set("/schema", Reply::ok(schema));
        backend.on("/auth", default_auth);
        backend.on("/messages", |r| {
            Reply::ok(json!({"action": "reply", "data": {"echo": r.json()["payload"]}}))
        });
        backend.set("/join", Reply::ok(json!({"action": "allow"})));
        backend.set("/events", Reply::ok(json!({})));
        backend
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Makes `path` always answer `reply`.
    pub fn set(&self, path: &str, reply: Reply) {
        self.on(path, move |_| reply.clone());
    }

    /// Makes `path` answer whatever `handler` returns for each request.
    pub fn on(&self, path: &str, handler: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) {
        self.shared
            .routes
            .lock()
            .unwrap()
            .insert(path.to_owned(), Arc::new(handler));
    }

    /// Every request received on `path` so far, in order.
    pub fn requests(&self, path: &str) -> Vec<Recorded> {
        self.shared
            .requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    /// Waits until `path` has received at least `n` requests; returns them.
    pub async fn wait_requests(&self, path: &str, n: usize) -> Vec<Recorded> {
        self.wait_for(path, |found| found.len() >= n)
            .await
            .unwrap_or_else(|seen| {
                panic!("expected {n} request(s) on {path} within {WAIT:?}, got {seen:#?}")
            })
    }

    /// Waits until the requests on `path` satisfy `done`; Err(last seen) on
    /// timeout.
    pub async fn wait_for(
        &self,
        path: &str,
        mut done: impl FnMut(&[Recorded]) -> bool,
    ) -> Result<Vec<Recorded>, Vec<Recorded>> {
        let mut changes = self.shared.count.subscribe();
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let found = self.requests(path);
            if done(&found) {
                return Ok(found);
            }
            if tokio::time::timeout_at(deadline, changes.changed())
                .await
                .is_err()
            {
                return Err(found);
            }
        }
    }

    /// Stops the backend: it no longer accepts connections ("backend down").
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            // Graceful shutdown closes idle keep-alive connections; give it a
            // bound, then cut whatever is left.
            let abort = task.abort_handle();
            if tokio::time::timeout(WAIT, task).await.is_err() {
                abort.abort();
            }
        }
    }
}

impl Drop for MockBackend {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let recorded = Recorded {
        method,
        path: uri.path().to_owned(),
        headers,
        body,
        peer,
    };
    let handler = shared.routes.lock().unwrap().get(&recorded.path).cloned();
    let reply = match &handler {
        Some(handler) => handler(&recorded),
        None => Reply::json(404, json!({"error": "no such route"})),
    };
    shared.requests.lock().unwrap().push(recorded);
    shared.count.send_modify(|n| *n += 1);
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut response = (
        StatusCode::from_u16(reply.status).unwrap(),
        [("content-type", "application/json")],
        reply.body,
    )
        .into_response();
    for (name, value) in &reply.headers {
        response.headers_mut().append(
            axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            axum::http::HeaderValue::from_str(value).unwrap(),
        );
    }
    response
}
