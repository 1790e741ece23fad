//! One Phoenix Channels client over WebSocket (V2 JSON serializer), kept
//! lean so one generator process can hold thousands: a 2 KiB read buffer, no
//! write buffering, one task per connection and no reader/writer split.
//!
//! Frames are built and read with `switchboard-protocol`'s codecs. This
//! module opens, joins and classifies frames; what a connection does with
//! them (timing, pushing) is the worker's business.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use futures_util::{SinkExt, StreamExt};
use reqwest::Url;
use serde_json::Value;
use switchboard_protocol::{decode_text, encode_message, Frame, Payload, Vsn, WireFormat};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message as WsMessage, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

/// An open client socket.
pub type Ws = WebSocketStream<TcpStream>;

/// Where and as whom clients connect.
#[derive(Clone, Debug)]
pub struct Target {
    addr: SocketAddr,
    base: Url,
    app: String,
    token_prefix: String,
}

impl Target {
    /// Parses the WebSocket URL (query-less, e.g.
    /// `ws://127.0.0.1:4000/socket/websocket`) and resolves its host once.
    pub fn new(url: &str, app: &str, token_prefix: &str) -> Result<Target> {
        let base = Url::parse(url).with_context(|| format!("bad --url {url}"))?;
        if base.scheme() != "ws" {
            bail!("--url must be ws:// (the bench speaks plain WebSocket), got {url}");
        }
        let host = base.host_str().context("--url has no host")?;
        let port = base.port_or_known_default().unwrap_or(80);
        let addr = (host, port)
            .to_socket_addrs()
            .with_context(|| format!("cannot resolve {host}:{port}"))?
            .next()
            .with_context(|| format!("{host}:{port} resolves to nothing"))?;
        Ok(Target {
            addr,
            base,
            app: app.to_owned(),
            token_prefix: token_prefix.to_owned(),
        })
    }

    /// The server's socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The token (and so, with the bench backend or the demo app, the
    /// client id) of connection `index`.
    pub fn token(&self, index: usize) -> String {
        format!("{}{index}", self.token_prefix)
    }

    fn request_url(&self, index: usize) -> String {
        let mut url = self.base.clone();
        url.query_pairs_mut()
            .append_pair("app", &self.app)
            .append_pair("token", &self.token(index))
            .append_pair("vsn", "2.0.0");
        url.into()
    }
}

/// Small buffers: the generator must stay far leaner than the server.
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(2048)
        .write_buffer_size(0)
        .max_message_size(Some(4 << 20))
        .max_frame_size(Some(4 << 20))
}

/// Opens connection `index`: TCP (bound to `source` when given, to get past
/// one address's ephemeral ports), then the WebSocket upgrade with
/// `app`, `token` and `vsn=2.0.0`. A refusal reads `HTTP 403 {body}`.
pub async fn connect(target: &Target, index: usize, source: Option<IpAddr>) -> Result<Ws> {
    let socket = if target.addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .context("socket")?;
    if let Some(ip) = source {
        socket
            .bind(SocketAddr::new(ip, 0))
            .with_context(|| format!("bind {ip}"))?;
    }
    let stream = socket
        .connect(target.addr)
        .await
        .with_context(|| format!("connect {}", target.addr))?;
    stream.set_nodelay(true).context("nodelay")?;
    let request = target
        .request_url(index)
        .into_client_request()
        .context("request")?;
    match tokio_tungstenite::client_async_with_config(request, stream, Some(ws_config())).await {
        Ok((ws, _)) => Ok(ws),
        Err(WsError::Http(response)) => {
            let body = response
                .body()
                .as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default()
                .into_owned();
            bail!("HTTP {} {body}", response.status().as_u16())
        }
        Err(error) => bail!("handshake: {error}"),
    }
}

/// Joins `topics` (join_ref = ref = `1`, `2`, …, in order) and waits for
/// every reply. Any non-`ok` reply fails with its reason.
pub async fn join(ws: &mut Ws, topics: &[String], timeout: Duration) -> Result<()> {
    for (i, topic) in topics.iter().enumerate() {
        let r = (i + 1).to_string();
        ws.feed(frame(
            Some(&r),
            Some(&r),
            topic,
            "phx_join",
            Value::Object(Default::default()),
        ))
        .await
        .context("send join")?;
    }
    ws.flush().await.context("send join")?;
    let mut pending = topics.len();
    let wait = async {
        while pending > 0 {
            let Some(message) = ws.next().await else {
                bail!("closed while joining");
            };
            match message.context("read while joining")? {
                WsMessage::Text(text) => {
                    if let Incoming::Reply { ok, reason, .. } = classify(text.as_bytes()) {
                        if !ok {
                            bail!("join refused: {}", reason.unwrap_or_default());
                        }
                        pending -= 1;
                    }
                }
                WsMessage::Close(close) => bail!("closed while joining: {close:?}"),
                _ => {}
            }
        }
        Ok(())
    };
    tokio::time::timeout(timeout, wait)
        .await
        .context("join timed out")?
}

/// A V2 JSON text frame for any client message.
pub fn frame(
    join_ref: Option<&str>,
    msg_ref: Option<&str>,
    topic: &str,
    event: &str,
    payload: Value,
) -> WsMessage {
    let encoded = encode_message(
        WireFormat::V2,
        join_ref,
        msg_ref,
        topic,
        event,
        &Payload::Json(payload),
    );
    match encoded {
        Frame::Text(bytes) => {
            WsMessage::Text(Utf8Bytes::try_from(bytes).expect("the text encoder writes UTF-8"))
        }
        Frame::Binary(bytes) => WsMessage::Binary(bytes),
    }
}

/// A heartbeat (`[null, ref, "phoenix", "heartbeat", {}]`).
pub fn heartbeat(msg_ref: &str) -> WsMessage {
    frame(
        None,
        Some(msg_ref),
        "phoenix",
        "heartbeat",
        Value::Object(Default::default()),
    )
}

/// The payload of a timed message: the send time (`t`, ns since the Unix
/// epoch), a sequence number and `pad` bytes of body, which also satisfies
/// the demo app's `message` schema (`body` string ≤ 2000).
pub fn timed_payload(t_ns: u64, seq: u64, pad: usize) -> Value {
    serde_json::json!({"body": "x".repeat(pad), "t": t_ns, "seq": seq})
}

/// What a server frame is, as far as the bench cares.
#[derive(Debug, PartialEq)]
pub enum Incoming {
    /// `phx_reply` to `msg_ref`.
    Reply {
        /// The ref replied to.
        msg_ref: Option<String>,
        /// Status `ok`.
        ok: bool,
        /// `response.reason` (or the status) when not ok.
        reason: Option<String>,
    },
    /// Any other message (broadcast, push, presence, close).
    Event {
        /// Event name.
        event: String,
        /// The payload's `t` (send time), if any.
        t_ns: Option<u64>,
    },
    /// Not a V2 message.
    Unreadable,
}

/// The event and send time of a broadcast as the gateway encodes it
/// (`[null,null,"topic","event",{..."t":123...}]`), read without parsing the
/// frame. `None` for anything else; callers then fall back to [`classify`].
///
/// At 500k deliveries/s the generator shares the cores with the server, so
/// a full JSON decode per frame would measure the generator, not the server.
pub fn timed_broadcast(text: &[u8]) -> Option<(&[u8], u64)> {
    let rest = text.strip_prefix(b"[null,null,\"")?;
    let topic_end = memchr(b'"', rest)?;
    let rest = rest[topic_end + 1..].strip_prefix(b",\"")?;
    let event_end = memchr(b'"', rest)?;
    let (event, payload) = (&rest[..event_end], &rest[event_end + 1..]);
    if event.contains(&b'\\') {
        return None;
    }
    let payload = payload.strip_prefix(b",{")?;
    let at = payload
        .windows(5)
        .position(|w| (w[0] == b',' || w[0] == b'{') && &w[1..] == b"\"t\":")
        .map(|i| i + 5)
        .or_else(|| payload.starts_with(b"\"t\":").then_some(4))?;
    let digits = payload[at..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    let t = std::str::from_utf8(&payload[at..at + digits])
        .ok()?
        .parse()
        .ok()?;
    Some((event, t))
}

fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&b| b == needle)
}

/// Reads a server text frame.
pub fn classify(text: &[u8]) -> Incoming {
    let Ok(message) = decode_text(Vsn::V2, text) else {
        return Incoming::Unreadable;
    };
    let Payload::Json(payload) = message.payload else {
        return Incoming::Event {
            event: message.event,
            t_ns: None,
        };
    };
    if message.event == "phx_reply" {
        let status = payload.get("status").and_then(Value::as_str).unwrap_or("");
        let ok = status == "ok";
        let reason = (!ok).then(|| {
            payload
                .pointer("/response/reason")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| format!("status {status}"))
        });
        return Incoming::Reply {
            msg_ref: message.msg_ref,
            ok,
            reason,
        };
    }
    Incoming::Event {
        event: message.event,
        t_ns: payload.get("t").and_then(Value::as_u64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_replies_and_broadcasts() {
        let ok = br#"["1","1","room:1","phx_reply",{"status":"ok","response":{}}]"#;
        assert_eq!(
            classify(ok),
            Incoming::Reply {
                msg_ref: Some("1".into()),
                ok: true,
                reason: None
            }
        );
        let err = br#"[null,"7","x","phx_reply",{"status":"error","response":{"reason":"unmatched topic"}}]"#;
        assert_eq!(
            classify(err),
            Incoming::Reply {
                msg_ref: Some("7".into()),
                ok: false,
                reason: Some("unmatched topic".into())
            }
        );
        let b = br#"[null,null,"demo:f","message",{"body":"","seq":3,"t":12345}]"#;
        assert_eq!(
            classify(b),
            Incoming::Event {
                event: "message".into(),
                t_ns: Some(12345)
            }
        );
        assert_eq!(classify(b"nope"), Incoming::Unreadable);
        assert_eq!(timed_broadcast(b), Some((&b"message"[..], 12345)));
        let first = br#"[null,null,"demo:f","message",{"t":7,"seq":3}]"#;
        assert_eq!(timed_broadcast(first), Some((&b"message"[..], 7)));
        assert_eq!(timed_broadcast(ok), None);
        assert_eq!(timed_broadcast(br#"[null,null,"a","b",{"x":1}]"#), None);
    }

    #[test]
    fn frames_are_v2_arrays() {
        let WsMessage::Text(text) = heartbeat("5") else {
            panic!("text expected")
        };
        assert_eq!(text.as_str(), r#"[null,"5","phoenix","heartbeat",{}]"#);
    }

    #[test]
    fn request_url_carries_app_token_vsn() {
        let target = Target::new("ws://127.0.0.1:4000/socket/websocket", "demo", "u-").unwrap();
        assert_eq!(
            target.request_url(7),
            "ws://127.0.0.1:4000/socket/websocket?app=demo&token=u-7&vsn=2.0.0"
        );
    }
}
