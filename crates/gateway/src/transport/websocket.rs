//! The WebSocket transport at `/socket/websocket`.
//!
//! Admission runs before the upgrade, so a refused client gets its 403 body.
//! After the upgrade one task per connection moves frames both ways: it
//! reads client frames into the session, writes queued frames in batches
//! (feed many, flush once), and closes the socket on idle timeout or when
//! the connection is asked to close. One task and a small read buffer keep an
//! idle connection cheap (see PERF_NOTES in the docs).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message as WsMessage, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use futures_util::SinkExt;
use switchboard_protocol::{decode_binary_bytes, decode_text, peek_header, Frame, FrameRef, Vsn};

use super::connect::{admit, open_connection, ConnectRequest};
use super::query::ConnectQuery;
use crate::gateway::Gateway;
use crate::session::{CloseReason, Connection, Outbound, OutboundReceiver, Session};
use crate::telemetry::TransportKind;

/// phoenix.js 1.8 `authToken`: a subprotocol carrying the token.
const TOKEN_PROTOCOL_PREFIX: &str = "base64url.bearer.phx.";
/// Frames written before one flush, so a burst costs one syscall.
const WRITE_BATCH: usize = 64;

/// `GET /socket/websocket`
pub async fn websocket_handler(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(raw_query): RawQuery,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let query = ConnectQuery::parse(raw_query.as_deref());
    let (protocol_token, offers_phoenix) = token_from_protocols(&headers);
    let token = query.auth_token().map(str::to_owned).or(protocol_token);
    let origin = headers.get("origin").and_then(|v| v.to_str().ok());
    let request = ConnectRequest {
        app: query.app.as_deref(),
        token: token.as_deref(),
        vsn: query.vsn.as_deref(),
        client_type: query.client_type.as_deref(),
        params: &query.params,
        remote_ip: peer.ip(),
        origin,
        transport: TransportKind::Websocket,
    };
    let admitted = match admit(&gateway, request).await {
        Ok(admitted) => admitted,
        Err(refusal) => return refusal.into_response(),
    };
    let mut upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    if offers_phoenix {
        upgrade.set_selected_protocol(HeaderValue::from_static("phoenix"));
    }
    let hard_cap = hard_frame_cap(gateway.limits.max_frame_bytes);
    let vsn = admitted.vsn;
    let (conn, receiver) = match open_connection(&gateway, admitted, TransportKind::Websocket) {
        Ok(opened) => opened,
        Err(refusal) => return refusal.into_response(),
    };
    upgrade
        .read_buffer_size(2048)
        .write_buffer_size(0)
        .max_message_size(hard_cap)
        .max_frame_size(hard_cap)
        .on_failed_upgrade({
            let gateway = gateway.clone();
            let conn = conn.clone();
            move |error| {
                tracing::info!(%error, "websocket upgrade failed");
                gateway.connections.unregister(&conn);
            }
        })
        .on_upgrade(move |socket| serve_socket(gateway, socket, conn, receiver, vsn))
}

/// Frames between `max_frame_bytes` and this cap are read and answered
/// `message_too_large`; larger ones close the connection with 1009 without
/// being buffered whole.
fn hard_frame_cap(max_frame_bytes: usize) -> usize {
    max_frame_bytes.saturating_mul(2).max(64 * 1024)
}

/// The token from a `base64url.bearer.phx.<b64>` subprotocol, and whether the
/// client offered `phoenix` (which must then be echoed).
fn token_from_protocols(headers: &HeaderMap) -> (Option<String>, bool) {
    let mut token = None;
    let mut offers_phoenix = false;
    for value in headers.get_all("sec-websocket-protocol") {
        let Ok(value) = value.to_str() else { continue };
        for protocol in value.split(',').map(str::trim) {
            if protocol == "phoenix" {
                offers_phoenix = true;
            } else if let Some(encoded) = protocol.strip_prefix(TOKEN_PROTOCOL_PREFIX) {
                let encoded = encoded.trim_end_matches('=');
                let decoded = base64::engine::general_purpose::STANDARD_NO_PAD
                    .decode(encoded)
                    .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(encoded));
                token = decoded.ok().and_then(|bytes| String::from_utf8(bytes).ok());
            }
        }
    }
    (token, offers_phoenix)
}

async fn serve_socket(
    gateway: Arc<Gateway>,
    mut socket: WebSocket,
    conn: Arc<Connection>,
    mut outbound: OutboundReceiver,
    vsn: Vsn,
) {
    let app_id = conn.app.id().to_owned();
    let mut session = Session::new(gateway.clone(), conn.clone());
    let idle_timeout = gateway.server.idle_timeout;
    let idle = tokio::time::sleep(idle_timeout);
    tokio::pin!(idle);

    let close = loop {
        tokio::select! {
            item = outbound.recv() => match item {
                Some(Outbound::Frame(frame)) => {
                    if let Some(reason) = write_batch(&mut socket, frame, &mut outbound).await {
                        break reason;
                    }
                }
                Some(Outbound::Close(reason)) => break Some(reason),
                None => break None,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(message)) => {
                    idle.as_mut().reset(tokio::time::Instant::now() + idle_timeout);
                    if !receive(&gateway, &mut session, message, vsn).await {
                        break None;
                    }
                }
                Some(Err(error)) => {
                    let too_big = is_capacity_error(&error);
                    tracing::debug!(app = %app_id, connection = conn.id, %error, "websocket read failed");
                    break too_big.then_some(CloseReason::MessageTooBig);
                }
                None => break None,
            },
            _ = &mut idle => break Some(CloseReason::IdleTimeout),
        }
    };
    if let Some(reason) = close {
        tracing::info!(
            app = %app_id,
            client_id = %conn.identity.client_id,
            connection = conn.id,
            reason = reason.as_str(),
            "closing connection"
        );
        let frame = CloseFrame {
            code: reason.code(),
            reason: Utf8Bytes::from_static(reason.as_str()),
        };
        let _ = tokio::time::timeout(
            Duration::from_secs(5),
            socket.send(WsMessage::Close(Some(frame))),
        )
        .await;
    }
    conn.close(CloseReason::Disconnected);
    session.terminate();
}

/// Writes `first` and whatever else is already queued, then flushes once.
async fn write_batch(
    socket: &mut WebSocket,
    first: Frame,
    outbound: &mut OutboundReceiver,
) -> Option<Option<CloseReason>> {
    if socket.feed(to_ws(first)).await.is_err() {
        return Some(None);
    }
    for _ in 1..WRITE_BATCH {
        match outbound.try_recv() {
            Some(Outbound::Frame(frame)) => {
                if socket.feed(to_ws(frame)).await.is_err() {
                    return Some(None);
                }
            }
            Some(Outbound::Close(reason)) => {
                let _ = socket.flush().await;
                return Some(Some(reason));
            }
            None => break,
        }
    }
    if socket.flush().await.is_err() {
        return Some(None);
    }
    None
}

fn to_ws(frame: Frame) -> WsMessage {
    match frame {
        Frame::Text(bytes) => match Utf8Bytes::try_from(bytes) {
            Ok(text) => WsMessage::Text(text),
            // Encoders only produce UTF-8; if one ever did not, send bytes
            // rather than lose the message.
            Err(_) => WsMessage::Binary(Default::default()),
        },
        Frame::Binary(bytes) => WsMessage::Binary(bytes),
    }
}

/// Hands one client frame to the session. False when the client closed.
async fn receive(gateway: &Gateway, session: &mut Session, message: WsMessage, vsn: Vsn) -> bool {
    let max = gateway.limits.max_frame_bytes;
    let decoded = match &message {
        WsMessage::Text(text) if text.len() > max => {
            oversized(session, FrameRef::Text(text.as_bytes()), vsn);
            return true;
        }
        WsMessage::Binary(bytes) if bytes.len() > max => {
            oversized(session, FrameRef::Binary(bytes), vsn);
            return true;
        }
        WsMessage::Text(text) => decode_text(vsn, text.as_bytes()),
        WsMessage::Binary(bytes) if vsn == Vsn::V2 => decode_binary_bytes(bytes.clone()),
        WsMessage::Binary(_) => {
            malformed(session, "binary frame on a V1 connection");
            return true;
        }
        WsMessage::Ping(_) | WsMessage::Pong(_) => return true,
        WsMessage::Close(_) => return false,
    };
    match decoded {
        Ok(message) => session.handle(message).await,
        Err(error) => malformed(session, &error.to_string()),
    }
    true
}

fn oversized(session: &mut Session, frame: FrameRef<'_>, vsn: Vsn) {
    match peek_header(frame, vsn) {
        Some(header) => session.refuse_oversized(header),
        None => malformed(session, "oversized frame without a readable header"),
    }
}

fn malformed(session: &Session, error: &str) {
    let conn = session.connection();
    tracing::warn!(
        app = conn.app.id(),
        client_id = %conn.identity.client_id,
        connection = conn.id,
        error,
        "dropped a client frame that could not be parsed"
    );
    session.count_malformed();
}

/// tungstenite reports an over-cap frame as a "Space limit exceeded"
/// capacity error; axum only exposes it as text.
fn is_capacity_error(error: &axum::Error) -> bool {
    let text = error.to_string();
    text.contains("Space limit exceeded") || text.contains("too long")
}
