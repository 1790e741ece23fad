//! One task per WebSocket connection: it reads client frames into the
//! session, writes queued frames in batches (feed many, flush once), and
//! closes the socket on idle timeout or when the connection is asked to
//! close.
//!
//! Kept small on purpose, since every idle connection pays for it: one task
//! (no separate reader and writer), a 256-byte read buffer (tungstenite's
//! default of 128 KiB is zero-filled and would stay resident), frames written
//! straight to the socket (no write buffer), and the session's state behind
//! it allocated only when used.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use switchboard_protocol::{decode_binary_bytes, decode_text, Frame, FrameRef, Vsn};
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

use super::handshake::{Stream, Upgraded};
use crate::gateway::Gateway;
use crate::session::{CloseReason, Connection, Outbound, OutboundReceiver, Session};

/// Frames written before one flush, so a burst costs one syscall.
const WRITE_BATCH: usize = 64;
/// Bytes read from the socket at a time. Small, because the buffer stays
/// allocated (and zero-filled) for the connection's life; a larger frame
/// grows it as needed. Measured: 1 KiB → 256 B saved ~0.8 KB per idle
/// connection (BENCHMARKS.md).
const READ_BUFFER: usize = 256;

/// Serves an upgraded connection until it ends.
pub async fn serve(
    gateway: Arc<Gateway>,
    upgraded: Upgraded,
    conn: Arc<Connection>,
    outbound: OutboundReceiver,
    vsn: Vsn,
) {
    match upgraded {
        Upgraded::Tcp(stream) => run(gateway, stream, conn, outbound, vsn).await,
        Upgraded::Prefixed(stream) => run(gateway, stream, conn, outbound, vsn).await,
        Upgraded::Wrapped(stream) => run(gateway, stream, conn, outbound, vsn).await,
    }
}

/// Frames between `max_frame_bytes` and this cap are read and answered
/// `message_too_large`; larger ones close the connection with 1009 without
/// being buffered whole.
fn hard_frame_cap(max_frame_bytes: usize) -> usize {
    max_frame_bytes.saturating_mul(2).max(64 * 1024)
}

async fn run<S: Stream>(
    gateway: Arc<Gateway>,
    stream: S,
    conn: Arc<Connection>,
    mut outbound: OutboundReceiver,
    vsn: Vsn,
) {
    let hard_cap = hard_frame_cap(gateway.limits.max_frame_bytes);
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_write_buffer_size(hard_cap.saturating_mul(4))
        .max_message_size(Some(hard_cap))
        .max_frame_size(Some(hard_cap));
    let mut socket = WebSocketStream::from_raw_socket(stream, Role::Server, Some(config)).await;
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
            incoming = socket.next() => match incoming {
                Some(Ok(message)) => {
                    idle.as_mut().reset(tokio::time::Instant::now() + idle_timeout);
                    if !receive(&gateway, &mut session, message, vsn).await {
                        break None;
                    }
                }
                Some(Err(error)) => break read_failed(&gateway, &conn, error),
                None => break None,
            },
            _ = &mut idle => break Some(CloseReason::IdleTimeout),
        }
    };
    if let Some(reason) = close {
        tracing::info!(
            app = conn.app.id(),
            client_id = %conn.identity.client_id,
            connection = conn.id,
            reason = reason.as_str(),
            "closing connection"
        );
        let frame = CloseFrame {
            code: CloseCode::from(reason.code()),
            reason: Utf8Bytes::from_static(reason.as_str()),
        };
        let _ = tokio::time::timeout(
            Duration::from_secs(5),
            socket.send(Message::Close(Some(frame))),
        )
        .await;
    }
    conn.close(CloseReason::Disconnected);
    session.terminate();
}

/// Why a read error ends the connection: frames the client got wrong are
/// answered with their close code (and the frame counted as dropped); a
/// broken socket just ends.
fn read_failed(gateway: &Gateway, conn: &Connection, error: WsError) -> Option<CloseReason> {
    let reason = match &error {
        WsError::Capacity(_) => CloseReason::MessageTooBig,
        WsError::Utf8(_) => CloseReason::InvalidUtf8,
        // A client that vanished without a close frame broke nothing.
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
            tracing::debug!(
                app = conn.app.id(),
                connection = conn.id,
                "client went away without a close frame"
            );
            return None;
        }
        WsError::Protocol(_) => CloseReason::ProtocolError,
        _ => {
            tracing::debug!(app = conn.app.id(), connection = conn.id, %error, "websocket read failed");
            return None;
        }
    };
    tracing::warn!(
        app = conn.app.id(),
        client_id = %conn.identity.client_id,
        connection = conn.id,
        %error,
        "dropped a client frame that breaks the WebSocket protocol"
    );
    gateway.metrics.dropped(conn.app.id(), reason.as_str(), 1);
    Some(reason)
}

/// Writes `first` and whatever else is already queued, then flushes once.
/// `Some(reason)` ends the connection (`Some(None)`: the socket failed).
async fn write_batch<S: Stream>(
    socket: &mut WebSocketStream<S>,
    first: Frame,
    outbound: &mut OutboundReceiver,
) -> Option<Option<CloseReason>> {
    if socket.feed(to_message(first)).await.is_err() {
        return Some(None);
    }
    for _ in 1..WRITE_BATCH {
        match outbound.try_recv() {
            Some(Outbound::Frame(frame)) => {
                if socket.feed(to_message(frame)).await.is_err() {
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

fn to_message(frame: Frame) -> Message {
    match frame {
        Frame::Text(bytes) => match Utf8Bytes::try_from(bytes) {
            Ok(text) => Message::Text(text),
            // Encoders only produce UTF-8; if one ever did not, send bytes
            // rather than lose the message.
            Err(_) => Message::Binary(Default::default()),
        },
        Frame::Binary(bytes) => Message::Binary(bytes),
    }
}

/// Hands one client frame to the session. False when the client closed.
async fn receive(gateway: &Gateway, session: &mut Session, message: Message, vsn: Vsn) -> bool {
    let max = gateway.limits.max_frame_bytes;
    let decoded = match &message {
        Message::Text(text) if text.len() > max => {
            session.refuse_oversized(FrameRef::Text(text.as_bytes()), vsn);
            return true;
        }
        Message::Binary(bytes) if bytes.len() > max => {
            session.refuse_oversized(FrameRef::Binary(bytes), vsn);
            return true;
        }
        Message::Text(text) => decode_text(vsn, text.as_bytes()),
        Message::Binary(bytes) if vsn == Vsn::V2 => decode_binary_bytes(bytes.clone()),
        Message::Binary(_) => {
            session.drop_malformed("binary frame on a V1 connection");
            return true;
        }
        Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => return true,
        Message::Close(_) => return false,
    };
    match decoded {
        Ok(message) => session.handle(message).await,
        Err(error) => session.drop_malformed(&error.to_string()),
    }
    true
}
