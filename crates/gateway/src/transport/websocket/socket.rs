//! One task per WebSocket connection: it reads client frames into the
//! session, writes queued frames in batches (one vectored write each, see
//! [`super::writer`]), and closes the socket on idle timeout, when the JWT
//! it was admitted with expires, or when the connection is asked to close.
//!
//! Kept small on purpose, since every idle connection pays for it: one task
//! (no separate reader and writer), a 256-byte read buffer (tungstenite's
//! default of 128 KiB is zero-filled and would stay resident), frames written
//! straight to the socket (no write buffer), and the session's state behind
//! it allocated only when used.
//!
//! The task's future is kept under ~900 bytes: tokio rounds a task to 128
//! bytes and the allocator to its size classes, so a future just over that
//! costs a 1,280- or 1,792-byte allocation instead of 1,024 per connection.
//! What a frame, a close or the idle timer needs is boxed for that reason.

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
use super::writer;
use crate::gateway::Gateway;
use crate::session::{CloseReason, Connection, Outbound, OutboundReceiver, Session};

/// Frames written before one flush, so a burst costs one syscall.
const WRITE_BATCH: usize = 64;
/// Bytes read from the socket at a time. Small, because the buffer stays
/// allocated (and zero-filled) for the connection's life; a larger frame
/// grows it as needed. Measured: 1 KiB → 256 B saved ~0.8 KB per idle
/// connection (BENCHMARKS.md).
const READ_BUFFER: usize = 256;

/// Serves an upgraded connection until it ends, in a task of its own.
///
/// One task per stream type, spawned directly: an `async` wrapper matching
/// on the variants would make every connection's task as large as the
/// largest variant's, and keep its arguments a second time for life.
pub fn spawn(
    gateway: Arc<Gateway>,
    upgraded: Upgraded,
    conn: Arc<Connection>,
    outbound: OutboundReceiver,
    vsn: Vsn,
) {
    match upgraded {
        Upgraded::Tcp(stream) => tokio::spawn(run(gateway, stream, conn, outbound, vsn)),
        Upgraded::Prefixed(stream) => tokio::spawn(run(gateway, stream, conn, outbound, vsn)),
        Upgraded::Tls(stream) => tokio::spawn(run(gateway, stream, conn, outbound, vsn)),
        Upgraded::TlsPrefixed(stream) => tokio::spawn(run(gateway, stream, conn, outbound, vsn)),
        Upgraded::Wrapped(stream) => tokio::spawn(run(gateway, stream, conn, outbound, vsn)),
    };
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
    // Boxed: inline, the timer's 112 bytes would push the task past the
    // 1 KiB allocation class (see the module doc). One timer serves both
    // deadlines, the idle timeout and the token's expiry, whichever comes
    // first, so a JWT connection costs no extra timer.
    let mut idle = Box::pin(tokio::time::sleep_until(next_deadline(&gateway, &conn)));

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
                    idle.as_mut().reset(next_deadline(&gateway, &conn));
                    // Boxed: handling a frame (a join above all) needs far
                    // more state than waiting does, and an inline future
                    // would make every idle connection carry it.
                    if !Box::pin(receive(&gateway, &mut session, message, vsn)).await {
                        break None;
                    }
                }
                Some(Err(error)) => break read_failed(&gateway, &conn, error),
                None => break None,
            },
            _ = idle.as_mut() => break Some(if token_expired(&conn) {
                CloseReason::TokenExpired
            } else {
                CloseReason::IdleTimeout
            }),
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
        Box::pin(send_close(&mut socket, reason)).await;
    }
    conn.close(CloseReason::Disconnected);
    session.terminate();
}

/// Sends the close frame, giving up after a few seconds. Boxed by the
/// caller: its timer would otherwise sit in every connection's task.
async fn send_close<S: Stream>(socket: &mut WebSocketStream<S>, reason: CloseReason) {
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

/// When the connection must next be looked at: the idle deadline, or the
/// token's expiry if that comes first. Recomputed from the connection rather
/// than kept in the task, which every idle connection pays for.
fn next_deadline(gateway: &Gateway, conn: &Connection) -> tokio::time::Instant {
    let idle_at = tokio::time::Instant::now() + gateway.server.idle_timeout;
    match conn.identity.token_expires_at {
        Some(expiry) => idle_at.min(instant_of_unix_secs(expiry.get())),
        None => idle_at,
    }
}

/// True once the token the connection was admitted with has expired.
fn token_expired(conn: &Connection) -> bool {
    conn.identity
        .token_expires_at
        .is_some_and(|expiry| crate::session::unix_now() >= expiry.get())
}

/// The monotonic instant of a Unix time in seconds: now if it has passed,
/// at most a year ahead (a token may say it expires in a billion years, and
/// `Instant` arithmetic must not overflow).
fn instant_of_unix_secs(unix_secs: u64) -> tokio::time::Instant {
    const FAR_AHEAD: Duration = Duration::from_secs(365 * 24 * 3600);
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    let remaining = Duration::from_secs(unix_secs)
        .saturating_sub(since_epoch)
        .min(FAR_AHEAD);
    tokio::time::Instant::now() + remaining
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

/// Writes `first` and whatever else is already queued (up to
/// [`WRITE_BATCH`] frames) in one vectored write. `Some(reason)` ends the
/// connection (`Some(None)`: the socket failed).
async fn write_batch<S: Stream>(
    socket: &mut WebSocketStream<S>,
    first: Frame,
    outbound: &mut OutboundReceiver,
) -> Option<Option<CloseReason>> {
    let mut frames = Vec::with_capacity(4);
    frames.push(first);
    let mut close = None;
    while frames.len() < WRITE_BATCH {
        match outbound.try_recv() {
            Some(Outbound::Frame(frame)) => frames.push(frame),
            Some(Outbound::Close(reason)) => {
                close = Some(reason);
                break;
            }
            None => break,
        }
    }
    // tungstenite may hold a control frame of its own (a pong): it goes
    // out first, so frames never interleave on the wire.
    if socket.flush().await.is_err() {
        return Some(None);
    }
    if writer::write_frames(socket.get_mut(), &frames)
        .await
        .is_err()
    {
        return Some(None);
    }
    close.map(Some)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::websocket::handshake::Prefixed;
    use hyper_util::rt::TokioIo;
    use tokio::net::TcpStream;
    use tokio_rustls::server::TlsStream;

    /// Size of the future `f` returns, without calling it.
    /// The debug build's plain-TCP future when the release one was 848.
    const DEBUG_BOUND: usize = 900;

    fn future_size<A, B, C, D, E, Fut>(_: &impl Fn(A, B, C, D, E) -> Fut) -> usize {
        std::mem::size_of::<Fut>()
    }

    /// Every idle WebSocket pays for its task, whose size is `run`'s
    /// future rounded up by tokio (to 128 bytes) and then by the allocator.
    /// In a release build the plain-TCP future is 848 bytes, which keeps the
    /// task in the 1,024-byte class (see the module doc); the debug build's
    /// futures are larger, so the bound checked here is the debug figure.
    #[test]
    fn the_connection_task_stays_small() {
        let bound = if cfg!(debug_assertions) {
            DEBUG_BOUND
        } else {
            880
        };
        let sizes = [
            future_size(&run::<TcpStream>),
            future_size(&run::<Prefixed>),
            future_size(&run::<TokioIo<hyper::upgrade::Upgraded>>),
            future_size(&run::<Box<TlsStream<TcpStream>>>),
            future_size(&run::<Prefixed<Box<TlsStream<TcpStream>>>>),
        ];
        eprintln!("run future sizes: {sizes:?}");
        assert!(
            sizes[0] <= bound,
            "plain TCP task future: {} > {bound}",
            sizes[0]
        );
        // TLS streams are boxed, so TLS costs its own buffers, not a larger
        // task.
        assert!(sizes[3] <= sizes[0], "task future sizes {sizes:?}");
    }
}
