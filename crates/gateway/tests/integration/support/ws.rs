//! `WsClient`: a tokio-tungstenite client speaking Phoenix frames, whose
//! every wait has a deadline.

use std::collections::VecDeque;
use std::net::SocketAddr;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderMap, HeaderValue};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::{APP, WAIT};

/// A frame the server sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// A text frame, parsed as JSON (`Value::String` of the raw text if it
    /// is not JSON).
    Text(Value),
    /// A binary frame.
    Binary(Vec<u8>),
    /// A close frame: code and reason.
    Close(Option<u16>, String),
}

impl Frame {
    /// The JSON of a text frame.
    pub fn json(&self) -> Option<&Value> {
        match self {
            Frame::Text(value) => Some(value),
            _ => None,
        }
    }

    /// True for a V2 `phx_reply` with this ref.
    pub fn is_reply_to(&self, msg_ref: &str) -> bool {
        self.json()
            .is_some_and(|v| v[3] == "phx_reply" && v[1] == msg_ref)
    }

    /// True for a V2 text frame with this topic and event.
    pub fn is_event(&self, topic: &str, event: &str) -> bool {
        self.json().is_some_and(|v| v[2] == topic && v[3] == event)
    }
}

/// A connected WebSocket client.
pub struct WsClient {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Headers of the 101 answer.
    pub headers: HeaderMap,
    next_ref: u64,
    pending: VecDeque<Frame>,
}

/// `ws://ADDR/socket/websocket?QUERY`
pub fn ws_url(addr: SocketAddr, query: &str) -> String {
    format!("ws://{addr}/socket/websocket?{query}")
}

impl WsClient {
    /// Connects to `app1` as `token` with the V2 serializer.
    pub async fn connect(addr: SocketAddr, token: &str) -> WsClient {
        Self::connect_query(addr, &format!("app={APP}&token={token}&vsn=2.0.0")).await
    }

    /// Connects with this query string; panics when refused.
    pub async fn connect_query(addr: SocketAddr, query: &str) -> WsClient {
        Self::try_connect(addr, query, &[])
            .await
            .unwrap_or_else(|e| panic!("connect ?{query}: {}", describe(&e)))
    }

    /// Connects with this query string and extra request headers.
    pub async fn try_connect(
        addr: SocketAddr,
        query: &str,
        headers: &[(&str, &str)],
    ) -> Result<WsClient, tungstenite::Error> {
        let mut request = ws_url(addr, query).into_client_request()?;
        for (name, value) in headers {
            request.headers_mut().append(
                tungstenite::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        let connecting = tokio_tungstenite::connect_async(request);
        let (stream, response) = tokio::time::timeout(WAIT, connecting)
            .await
            .expect("the handshake finishes in time")?;
        Ok(WsClient {
            stream,
            headers: response.headers().clone(),
            next_ref: 1000,
            pending: VecDeque::new(),
        })
    }

    /// Connects over TLS (`wss://localhost:PORT`, the TCP connection going
    /// to `addr`), trusting what `tls` trusts; panics when refused.
    pub async fn connect_tls(
        addr: SocketAddr,
        query: &str,
        tls: std::sync::Arc<tokio_rustls::rustls::ClientConfig>,
    ) -> WsClient {
        let url = format!("wss://localhost:{}/socket/websocket?{query}", addr.port());
        let tcp = TcpStream::connect(addr).await.expect("TCP connect");
        let connecting = tokio_tungstenite::client_async_tls_with_config(
            url,
            tcp,
            None,
            Some(tokio_tungstenite::Connector::Rustls(tls)),
        );
        let (stream, response) = tokio::time::timeout(WAIT, connecting)
            .await
            .expect("the handshake finishes in time")
            .unwrap_or_else(|e| panic!("connect over TLS ?{query}: {}", describe(&e)));
        WsClient {
            stream,
            headers: response.headers().clone(),
            next_ref: 1000,
            pending: VecDeque::new(),
        }
    }

    /// A fresh ref (distinct from the small refs tests write by hand).
    pub fn fresh_ref(&mut self) -> String {
        self.next_ref += 1;
        self.next_ref.to_string()
    }

    /// Sends a text frame.
    pub async fn send_text(&mut self, text: &str) {
        self.stream
            .send(Message::Text(text.into()))
            .await
            .expect("send a text frame");
    }

    /// Sends a binary frame.
    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        self.stream
            .send(Message::Binary(bytes.into()))
            .await
            .expect("send a binary frame");
    }

    /// Sends one data frame with any opcode and payload, as a client that
    /// breaks the rules would (no UTF-8 check, reserved opcodes allowed).
    pub async fn send_raw_frame(
        &mut self,
        opcode: tungstenite::protocol::frame::coding::Data,
        payload: &[u8],
    ) {
        use tungstenite::protocol::frame::{coding::OpCode, Frame as WireFrame};
        let frame = WireFrame::message(payload.to_vec(), OpCode::Data(opcode), true);
        self.stream
            .send(Message::Frame(frame))
            .await
            .expect("send a raw frame");
    }

    /// Sends a WebSocket ping.
    pub async fn send_ping(&mut self) {
        self.stream
            .send(Message::Ping(Vec::new().into()))
            .await
            .expect("send a ping");
    }

    /// Sends `[join_ref, ref, topic, event, payload]`.
    pub async fn send_v2(
        &mut self,
        join_ref: Option<&str>,
        msg_ref: Option<&str>,
        topic: &str,
        event: &str,
        payload: Value,
    ) {
        let frame = json!([join_ref, msg_ref, topic, event, payload]);
        self.send_text(&frame.to_string()).await;
    }

    /// The next frame (frames skipped by [`WsClient::until`] first);
    /// panics after [`WAIT`] or when the stream ends.
    pub async fn next_frame(&mut self) -> Frame {
        if let Some(frame) = self.pending.pop_front() {
            return frame;
        }
        match tokio::time::timeout(WAIT, self.read()).await {
            Ok(Some(frame)) => frame,
            Ok(None) => panic!("the connection ended without a close frame"),
            Err(_) => panic!("no frame within {WAIT:?}"),
        }
    }

    async fn read(&mut self) -> Option<Frame> {
        loop {
            match self.stream.next().await? {
                Ok(Message::Text(text)) => {
                    let value = serde_json::from_str(text.as_str())
                        .unwrap_or_else(|_| Value::String(text.to_string()));
                    return Some(Frame::Text(value));
                }
                Ok(Message::Binary(bytes)) => return Some(Frame::Binary(bytes.to_vec())),
                Ok(Message::Close(frame)) => {
                    return Some(match frame {
                        Some(f) => Frame::Close(Some(u16::from(f.code)), f.reason.to_string()),
                        None => Frame::Close(None, String::new()),
                    })
                }
                Ok(_) => continue, // ping / pong
                Err(error) => panic!("websocket read failed: {error}"),
            }
        }
    }

    /// The first frame (already skipped or new) that satisfies `wanted`.
    /// Frames read past on the way are kept, in order, for later reads.
    /// Panics after [`WAIT`].
    pub async fn until(&mut self, mut wanted: impl FnMut(&Frame) -> bool) -> Frame {
        if let Some(at) = self.pending.iter().position(&mut wanted) {
            return self.pending.remove(at).unwrap();
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let frame = match tokio::time::timeout_at(deadline, self.read()).await {
                Ok(Some(frame)) => frame,
                Ok(None) => panic!("connection ended; unread frames: {:#?}", self.pending),
                Err(_) => panic!(
                    "no matching frame within {WAIT:?}; unread frames: {:#?}",
                    self.pending
                ),
            };
            if wanted(&frame) {
                return frame;
            }
            if matches!(frame, Frame::Close(..)) {
                panic!(
                    "closed before the expected frame: {frame:?}; unread frames: {:#?}",
                    self.pending
                );
            }
            self.pending.push_back(frame);
        }
    }

    /// Every frame received and not yet read, up to now: sends a heartbeat
    /// and returns the unread frames that arrived before its reply. A
    /// condition-based "nothing else was sent before this point".
    pub async fn sync(&mut self) -> Vec<Frame> {
        let msg_ref = self.fresh_ref();
        self.send_v2(None, Some(&msg_ref), "phoenix", "heartbeat", json!({}))
            .await;
        let reply = self.until(|f| f.is_reply_to(&msg_ref)).await;
        assert_eq!(
            reply,
            Frame::Text(
                json!([null, msg_ref, "phoenix", "phx_reply", {"status": "ok", "response": {}}])
            )
        );
        self.pending.drain(..).collect()
    }

    /// Reads until the close frame; returns its code and reason, and the
    /// number of unread data frames before it.
    pub async fn closed(&mut self) -> (Option<u16>, String, usize) {
        let frame = self.until(|f| matches!(f, Frame::Close(..))).await;
        let before = self.pending.drain(..).count();
        match frame {
            Frame::Close(code, reason) => (code, reason, before),
            _ => unreachable!(),
        }
    }

    /// The V2 `phx_reply` to `msg_ref` (other frames are skipped).
    pub async fn reply(&mut self, msg_ref: &str) -> Value {
        let frame = self.until(|f| f.is_reply_to(msg_ref)).await;
        frame.json().cloned().unwrap()
    }

    /// Sends a V2 push and returns its reply's payload
    /// (`{"status", "response"}`).
    pub async fn push(
        &mut self,
        join_ref: &str,
        topic: &str,
        event: &str,
        payload: Value,
    ) -> Value {
        let msg_ref = self.fresh_ref();
        self.send_v2(Some(join_ref), Some(&msg_ref), topic, event, payload)
            .await;
        let reply = self.reply(&msg_ref).await;
        assert_eq!(reply[0], join_ref, "reply carries the join_ref: {reply}");
        reply[4].clone()
    }

    /// Joins `topic` with `join_ref` (also used as the ref); returns the
    /// reply payload.
    pub async fn join(&mut self, topic: &str, join_ref: &str) -> Value {
        self.join_with(topic, join_ref, json!({})).await
    }

    /// Joins with params.
    pub async fn join_with(&mut self, topic: &str, join_ref: &str, params: Value) -> Value {
        self.send_v2(Some(join_ref), Some(join_ref), topic, "phx_join", params)
            .await;
        self.reply(join_ref).await[4].clone()
    }

    /// Joins and asserts the join succeeded.
    pub async fn join_ok(&mut self, topic: &str, join_ref: &str) {
        let payload = self.join(topic, join_ref).await;
        assert_eq!(payload["status"], "ok", "join {topic}: {payload}");
    }

    /// Closes from the client side.
    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }
}

/// A connect error in one line (status and body of a refused handshake).
pub fn describe(error: &tungstenite::Error) -> String {
    match error {
        tungstenite::Error::Http(response) => format!(
            "HTTP {} {}",
            response.status(),
            response
                .body()
                .as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default()
        ),
        other => other.to_string(),
    }
}
