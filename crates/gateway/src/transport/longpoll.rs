//! The long-poll transport at `/socket/longpoll`, as phoenix.js `LongPoll`
//! speaks it (PHOENIX_PROTOCOL.md §8, CONTRACT §3 and §10).
//!
//! A session is a [`Session`] plus its outbound queue, kept in a table and
//! named by a token the server signs (HMAC with a key made at startup, so a
//! token cannot be forged or carried to another process). GET polls: it
//! returns every queued message at once, or waits up to the poll window for
//! one, answering 204 when none came. POST sends one message or an
//! `application/x-ndjson` batch (at most 100 lines). Every answer is HTTP 200
//! with the logical status in the JSON body, except refusals, which carry
//! their own status as well. A session with neither GET nor POST for the
//! session timeout ends, its channels with it; so does a session whose JWT
//! expired (checked by the same reaper, every 2 s). Sessions are capped in
//! all and per client address (`max_longpoll_sessions`, `..._per_ip`).

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use dashmap::DashMap;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use switchboard_protocol::{decode_binary, decode_text, FrameRef, Vsn};

use super::client_ip::client_ip;
use super::connect::{admit, open_connection, ConnectRequest};
use super::longpoll_body::{posted_frames, PostedFrame};
use super::query::ConnectQuery;
use crate::gateway::Gateway;
use crate::session::{unix_now, CloseReason, Connection, Outbound, OutboundReceiver, Session};
use crate::telemetry::TransportKind;

/// How long a GET is held waiting for a message (CONTRACT §10).
pub const POLL_WINDOW: Duration = Duration::from_secs(10);
/// A session with no GET or POST for this long ends (CONTRACT §10).
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(20);
pub use super::longpoll_body::MAX_BATCH_LINES;
/// Bytes of the HMAC-SHA256 tag kept in a session token (128 bits).
const SIGNATURE_BYTES: usize = 16;

/// One long-poll client.
struct LongPollSession {
    id: String,
    session: tokio::sync::Mutex<Session>,
    outbound: tokio::sync::Mutex<OutboundReceiver>,
    conn: Arc<Connection>,
    vsn: Vsn,
    /// The client address it was opened from (`max_longpoll_sessions_per_ip`).
    remote_ip: IpAddr,
    /// Milliseconds since the table's epoch of the last GET or POST.
    last_seen: AtomicU64,
    ended: AtomicBool,
}

/// Every long-poll session of the process.
pub struct LongPollSessions {
    sessions: DashMap<String, Arc<LongPollSession>>,
    /// Open sessions per client address; addresses with none are removed.
    per_ip: DashMap<IpAddr, usize>,
    key: [u8; 32],
    epoch: Instant,
}

impl Default for LongPollSessions {
    fn default() -> Self {
        let mut key = [0u8; 32];
        key[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        key[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        Self {
            sessions: DashMap::new(),
            per_ip: DashMap::new(),
            key,
            epoch: Instant::now(),
        }
    }
}

impl LongPollSessions {
    /// Number of live sessions.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Open sessions from `ip`.
    fn count_from(&self, ip: IpAddr) -> usize {
        self.per_ip.get(&ip).map_or(0, |n| *n)
    }

    fn insert(&self, session: Arc<LongPollSession>) {
        *self.per_ip.entry(session.remote_ip).or_insert(0) += 1;
        self.sessions.insert(session.id.clone(), session);
    }

    fn mac(&self, id: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("hmac takes any key");
        mac.update(id.as_bytes());
        mac
    }

    fn issue_token(&self, id: &str) -> String {
        let tag = self.mac(id).finalize().into_bytes();
        format!("{id}.{}", hex::encode(&tag[..SIGNATURE_BYTES]))
    }

    /// The session id a token names, if the token is one this process signed.
    /// The signature is checked by the HMAC crate's constant-time verify,
    /// after its length is fixed (a shorter truncation must not verify).
    fn verify(&self, token: &str) -> Option<String> {
        let (id, signature) = token.split_once('.')?;
        let mut presented = [0u8; SIGNATURE_BYTES];
        hex::decode_to_slice(signature, &mut presented).ok()?;
        self.mac(id)
            .verify_truncated_left(&presented)
            .ok()
            .map(|()| id.to_owned())
    }

    fn find(&self, token: &str) -> Option<Arc<LongPollSession>> {
        let id = self.verify(token)?;
        self.sessions.get(&id).map(|s| s.value().clone())
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn touch(&self, session: &LongPollSession) {
        session.last_seen.store(self.now_ms(), Ordering::Release);
    }

    /// Ends sessions idle longer than [`SESSION_TIMEOUT`] or whose token
    /// expired; returns how many.
    pub async fn reap_idle(&self) -> usize {
        let cutoff = self
            .now_ms()
            .saturating_sub(SESSION_TIMEOUT.as_millis() as u64);
        let now = unix_now();
        for session in self.sessions.iter() {
            let conn = &session.conn;
            if conn
                .identity
                .token_expires_at
                .is_some_and(|at| now >= at.get())
                && conn.close(CloseReason::TokenExpired)
            {
                tracing::info!(
                    app = conn.app.id(),
                    client_id = %conn.identity.client_id,
                    connection = conn.id,
                    reason = CloseReason::TokenExpired.as_str(),
                    "closing connection"
                );
            }
        }
        let idle: Vec<Arc<LongPollSession>> = self
            .sessions
            .iter()
            // Idle sessions, and sessions asked to close (disconnect, drain) that
            // no poll is there to see: they end now rather than at the timeout.
            .filter(|s| s.last_seen.load(Ordering::Acquire) < cutoff || s.conn.is_closing())
            .map(|s| s.value().clone())
            .collect();
        for session in &idle {
            tracing::info!(
                app = session.conn.app.id(),
                client_id = %session.conn.identity.client_id,
                connection = session.conn.id,
                closing = session.conn.is_closing(),
                "long-poll session ended (idle, or closed while no poll was waiting)"
            );
            self.end(session).await;
        }
        idle.len()
    }

    async fn end(&self, session: &LongPollSession) {
        if self.sessions.remove(&session.id).is_some() {
            if let Some(mut open) = self.per_ip.get_mut(&session.remote_ip) {
                *open = open.saturating_sub(1);
            }
            self.per_ip
                .remove_if(&session.remote_ip, |_, open| *open == 0);
        }
        if !session.ended.swap(true, Ordering::AcqRel) {
            session.conn.close(CloseReason::Disconnected);
            session.session.lock().await.terminate();
        }
    }
}

/// Runs [`LongPollSessions::reap_idle`] every few seconds while the
/// gateway lives.
pub fn spawn_reaper(gateway: &Arc<Gateway>) {
    let weak = Arc::downgrade(gateway);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        loop {
            tick.tick().await;
            let Some(gateway) = weak.upgrade() else {
                return;
            };
            gateway.longpoll.reap_idle().await;
        }
    });
}

/// `/socket/longpoll`, every method.
pub async fn longpoll_handler(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    RawQuery(raw_query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let query = ConnectQuery::parse(raw_query.as_deref());
    let session_token = header_str(&headers, "x-phoenix-longpoll-token")
        .map(str::to_owned)
        .or_else(|| query.tokens.last().cloned());
    let session = session_token
        .as_deref()
        .and_then(|t| gateway.longpoll.find(t));
    match method {
        Method::OPTIONS => preflight(&headers),
        Method::GET => match session {
            Some(session) => poll(&gateway, session).await,
            None => open(&gateway, &query, &headers, peer).await,
        },
        Method::POST => match session {
            Some(session) => match body {
                Ok(body) => publish(&gateway, &session, &headers, &body).await,
                Err(rejection) => refuse_body(&gateway, &session, rejection),
            },
            None => answer(json!({ "status": 410 })),
        },
        _ => (StatusCode::BAD_REQUEST, cors_headers()).into_response(),
    }
}

async fn open(
    gateway: &Arc<Gateway>,
    query: &ConnectQuery,
    headers: &HeaderMap,
    peer: SocketAddr,
) -> Response {
    // The auth token is the first `token` unless that one is a session token
    // (phoenix.js appends its session token after the user's params), or
    // the X-Phoenix-AuthToken header.
    let auth_token = header_str(headers, "x-phoenix-authtoken")
        .map(str::to_owned)
        .or_else(|| {
            query
                .tokens
                .first()
                .filter(|t| gateway.longpoll.verify(t).is_none())
                .cloned()
        });
    let remote_ip = client_ip(&gateway.server.trusted_proxies, peer.ip(), headers);
    let limits = &gateway.limits;
    if gateway.longpoll.len() >= limits.max_longpoll_sessions {
        let app = query.app.as_deref();
        return refuse_over_session_cap(gateway, app, remote_ip, "max_longpoll_sessions");
    }
    if gateway.longpoll.count_from(remote_ip) >= limits.max_longpoll_sessions_per_ip {
        let app = query.app.as_deref();
        return refuse_over_session_cap(gateway, app, remote_ip, "max_longpoll_sessions_per_ip");
    }
    let request = ConnectRequest {
        app: query.app.as_deref(),
        token: auth_token.as_deref(),
        vsn: query.vsn.as_deref(),
        client_type: query.client_type.as_deref(),
        params: &query.params,
        remote_ip,
        origin: header_str(headers, "origin"),
        transport: TransportKind::Longpoll,
    };
    let admitted = match admit(gateway, request).await {
        Ok(admitted) => admitted,
        Err(refusal) => return refused(refusal),
    };
    let vsn = admitted.vsn;
    let (conn, outbound) = match open_connection(gateway, admitted, TransportKind::Longpoll) {
        Ok(opened) => opened,
        Err(refusal) => return refused(refusal),
    };
    let id = uuid::Uuid::new_v4().simple().to_string();
    let session = Arc::new(LongPollSession {
        id: id.clone(),
        session: tokio::sync::Mutex::new(Session::new(gateway.clone(), conn.clone())),
        outbound: tokio::sync::Mutex::new(outbound),
        conn,
        vsn,
        last_seen: AtomicU64::new(gateway.longpoll.now_ms()),
        ended: AtomicBool::new(false),
        remote_ip,
    });
    gateway.longpoll.insert(session);
    answer(json!({ "status": 410, "token": gateway.longpoll.issue_token(&id), "messages": [] }))
}

/// Refuses a new session while `limit` (`max_longpoll_sessions`, or
/// `max_longpoll_sessions_per_ip` for its address) are open: checked before
/// auth, so a flood of long-poll opens costs no webhook calls. (Concurrent
/// opens may overshoot a cap by a few: it bounds memory, it is not an exact
/// quota.)
fn refuse_over_session_cap(
    gateway: &Gateway,
    app: Option<&str>,
    remote_ip: IpAddr,
    limit: &'static str,
) -> Response {
    let refusal = super::Refusal::TooManyConnections;
    // Only known app ids become label values: anyone can make one up.
    let app = app
        .filter(|id| gateway.apps.get(id).is_some())
        .unwrap_or("unknown");
    gateway.metrics.auth_failure(app, refusal.reason());
    gateway.metrics.limit_exceeded(app, limit);
    tracing::info!(
        app,
        remote_ip = %remote_ip,
        reason = refusal.reason(),
        limit,
        "connection refused: long-poll session limit reached"
    );
    refused(refusal)
}

async fn poll(gateway: &Arc<Gateway>, session: Arc<LongPollSession>) -> Response {
    let sessions = &gateway.longpoll;
    sessions.touch(&session);
    let mut messages: Vec<Value> = Vec::new();
    let mut closed = false;
    {
        let mut outbound = session.outbound.lock().await;
        let first = match outbound.try_recv() {
            Some(item) => Some(item),
            None => tokio::time::timeout(POLL_WINDOW, outbound.recv())
                .await
                .unwrap_or(None),
        };
        let mut next = first;
        while let Some(item) = next {
            match item {
                Outbound::Frame(frame) => {
                    if let Some(text) = frame.as_text() {
                        messages.push(Value::String(text.to_owned()));
                    }
                }
                Outbound::Close(_) => {
                    closed = true;
                    break;
                }
            }
            next = outbound.try_recv();
        }
    }
    sessions.touch(&session);
    if closed {
        sessions.end(&session).await;
        if messages.is_empty() {
            return answer(json!({ "status": 410, "messages": [] }));
        }
    }
    let token = sessions.issue_token(&session.id);
    if messages.is_empty() {
        answer(json!({ "status": 204, "token": token, "messages": [] }))
    } else {
        answer(json!({ "status": 200, "token": token, "messages": messages }))
    }
}

async fn publish(
    gateway: &Arc<Gateway>,
    session: &Arc<LongPollSession>,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    gateway.longpoll.touch(session);
    let ndjson = header_str(headers, "content-type").is_some_and(|ct| {
        ct.split(';')
            .next()
            .is_some_and(|t| t.trim() == "application/x-ndjson")
    });
    let mut state = session.session.lock().await;
    for frame in posted_frames(body, ndjson) {
        match frame {
            PostedFrame::Text(text) => receive_text(gateway, &mut state, text, session.vsn).await,
            PostedFrame::Binary(bytes) => {
                receive_binary(gateway, &mut state, &bytes, session.vsn).await
            }
            PostedFrame::NotBase64 => {
                state.drop_malformed("ndjson line is neither JSON nor base64")
            }
        }
    }
    answer(json!({ "status": 200 }))
}

/// A POST body that could not be read whole (over `max_body_bytes`: 413,
/// counted as `message_too_large`): none of its messages are processed.
/// Logged and counted; the session stays.
fn refuse_body(
    gateway: &Gateway,
    session: &LongPollSession,
    rejection: BytesRejection,
) -> Response {
    let conn = &session.conn;
    tracing::warn!(
        app = conn.app.id(),
        client_id = %conn.identity.client_id,
        connection = conn.id,
        error = %rejection.body_text(),
        "dropped a long-poll POST whose body could not be read"
    );
    let reason = if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        "message_too_large"
    } else {
        "malformed_frame"
    };
    gateway.metrics.dropped(conn.app.id(), reason, 1);
    rejection.into_response()
}

/// A binary push from an ndjson line (standard base64 of a V2 binary frame).
async fn receive_binary(gateway: &Gateway, state: &mut Session, bytes: &[u8], vsn: Vsn) {
    if bytes.len() > gateway.limits.max_frame_bytes {
        return state.refuse_oversized(FrameRef::Binary(bytes), vsn);
    }
    match decode_binary(bytes) {
        Ok(message) => state.handle(message).await,
        Err(error) => state.drop_malformed(&error.to_string()),
    }
}

async fn receive_text(gateway: &Gateway, state: &mut Session, text: &[u8], vsn: Vsn) {
    if text.len() > gateway.limits.max_frame_bytes {
        return state.refuse_oversized(FrameRef::Text(text), vsn);
    }
    match decode_text(vsn, text) {
        Ok(message) => state.handle(message).await,
        Err(error) => state.drop_malformed(&error.to_string()),
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
}

fn cors_headers() -> [(header::HeaderName, HeaderValue); 2] {
    [
        (
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
    ]
}

fn answer(body: Value) -> Response {
    (
        StatusCode::OK,
        cors_headers(),
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body.to_string(),
    )
        .into_response()
}

/// A refusal: HTTP 200 with `{"status": 403, "reason": ...}`, as Phoenix's
/// long-poll answers every request (CONTRACT §10); phoenix.js reads the body.
fn refused(refusal: super::Refusal) -> Response {
    answer(refusal.body())
}

fn preflight(headers: &HeaderMap) -> Response {
    let requested = headers
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static(""));
    (
        StatusCode::OK,
        cors_headers(),
        [
            (header::ACCESS_CONTROL_ALLOW_HEADERS, requested),
            (
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("get, post, options"),
            ),
            (
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static("3600"),
            ),
        ],
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::LongPollSessions;

    #[test]
    fn only_whole_tokens_signed_by_this_process_verify() {
        let sessions = LongPollSessions::default();
        let token = sessions.issue_token("42");
        assert_eq!(sessions.verify(&token).as_deref(), Some("42"));

        let (id, signature) = token.split_once('.').unwrap();
        let truncated = format!("{id}.{}", &signature[..2]);
        let flipped = format!(
            "{id}.{}{}",
            if signature.starts_with('0') { '1' } else { '0' },
            &signature[1..]
        );
        let other_id = format!("43.{signature}");
        let other_process = LongPollSessions::default().issue_token("42");
        for forged in [
            truncated,
            flipped,
            other_id,
            other_process,
            "42".to_owned(),
            "42.zz".to_owned(),
        ] {
            assert_eq!(sessions.verify(&forged), None, "{forged} verified");
        }
    }
}
