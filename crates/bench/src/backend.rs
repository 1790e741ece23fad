//! The fast mock app backend: answers the gateway's webhooks (CONTRACT §5)
//! with as little work as possible, so what a scenario measures is the
//! gateway. Auth accepts any non-empty token as the client id; a message is
//! answered `{"action":"reply","data":{}}`; the schema is the bench's
//! permissive one; join allows; events are acknowledged.
//!
//! Signatures are not checked (the backend only ever runs on loopback for a
//! benchmark). Messages carrying the bench's `t` timestamp are timed from
//! client send to webhook arrival.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use axum::serve::ListenerExt;
use axum::Router;
use hdrhistogram::Histogram;
use serde_json::Value;
use tokio::net::TcpSocket;

use crate::stats::{new_histogram, record_ns};
use crate::sys::now_ns;

/// Accept queue of the backend's listener (the kernel caps it at
/// `net.core.somaxconn`).
const LISTEN_BACKLOG: u32 = 4096;

/// What the backend saw.
pub struct BackendStats {
    /// Auth calls answered.
    pub auth: AtomicU64,
    /// Message calls answered.
    pub messages: AtomicU64,
    /// Client send → message webhook arrival, for timed payloads (µs).
    pub inbound: Mutex<Histogram<u64>>,
}

impl BackendStats {
    /// Clears the counters and the histogram.
    pub fn reset(&self) {
        self.auth.store(0, Ordering::Relaxed);
        self.messages.store(0, Ordering::Relaxed);
        if let Ok(mut hist) = self.inbound.lock() {
            hist.reset();
        }
    }
}

struct AppState {
    schema: Bytes,
    stats: Arc<BackendStats>,
}

/// A running backend.
pub struct Backend {
    /// Where it listens.
    pub addr: SocketAddr,
    /// What it saw.
    pub stats: Arc<BackendStats>,
}

impl Backend {
    /// The base URL, e.g. `http://127.0.0.1:4100`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Starts the backend on `listen` (port 0: any free port) serving `schema`.
pub async fn start(listen: &str, schema: String) -> Result<Backend> {
    let stats = Arc::new(BackendStats {
        auth: AtomicU64::new(0),
        messages: AtomicU64::new(0),
        inbound: Mutex::new(new_histogram()),
    });
    let state = Arc::new(AppState {
        schema: Bytes::from(schema),
        stats: stats.clone(),
    });
    let app = Router::new()
        .route("/auth", post(auth))
        .route("/schema", any(schema_doc))
        .route("/messages", post(message))
        .route("/join", post(join))
        .route("/events", post(events))
        .with_state(state);
    let listener = bind(listen).with_context(|| format!("backend cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    // No Nagle delay on answers: the webhook scenario measures milliseconds.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            eprintln!("bench: backend stopped: {error}");
        }
    });
    Ok(Backend { addr, stats })
}

/// Binds with a deep accept queue: tokio's `TcpListener::bind` uses a
/// backlog of 128, which a connect storm's burst of auth calls overflows
/// (each overflow costs the gateway a 1 s SYN retransmit).
fn bind(listen: &str) -> Result<tokio::net::TcpListener> {
    let addr = listen
        .to_socket_addrs()?
        .next()
        .context("address resolves to nothing")?;
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    Ok(socket.listen(LISTEN_BACKLOG)?)
}

fn json(body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn auth(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    state.stats.auth.fetch_add(1, Ordering::Relaxed);
    let token = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("token").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_default();
    if token.is_empty() {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    axum::Json(serde_json::json!({ "client_id": token })).into_response()
}

async fn schema_doc(State(state): State<Arc<AppState>>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        state.schema.clone(),
    )
        .into_response()
}

async fn message(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    let arrived = now_ns();
    state.stats.messages.fetch_add(1, Ordering::Relaxed);
    let sent = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.pointer("/payload/t").and_then(Value::as_u64));
    if let (Some(sent), Ok(mut hist)) = (sent, state.stats.inbound.lock()) {
        record_ns(&mut hist, arrived.saturating_sub(sent));
    }
    json(r#"{"action":"reply","data":{}}"#)
}

async fn join() -> Response {
    json(r#"{"action":"allow"}"#)
}

async fn events() -> Response {
    StatusCode::NO_CONTENT.into_response()
}
