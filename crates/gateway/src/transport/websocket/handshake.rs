//! The WebSocket opening handshake (RFC 6455 §4.2) on top of hyper's
//! upgrade, ending in the bare `TcpStream` of the connection (or, with
//! built-in TLS, the boxed TLS stream over it).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// The upgraded connection: the bare TCP stream in practice; hyper's
/// wrapper only when the client sent bytes before the 101 answer.
pub enum Upgraded {
    /// The bare socket (no wrapper, no buffer).
    Tcp(TcpStream),
    /// The socket behind bytes read ahead of the upgrade.
    Prefixed(Prefixed),
    /// Built-in TLS over the socket. Boxed, so that the connection task's
    /// size (which is that of its largest variant) stays what plain TCP needs.
    Tls(Box<TlsStream<TcpStream>>),
    /// Built-in TLS behind bytes read ahead of the upgrade.
    TlsPrefixed(Prefixed<Box<TlsStream<TcpStream>>>),
    /// hyper's wrapper (an I/O type other than a plain TCP stream).
    Wrapped(TokioIo<hyper::upgrade::Upgraded>),
}

/// A valid upgrade request, ready to be accepted.
pub struct Upgrade {
    on_upgrade: OnUpgrade,
    accept_key: HeaderValue,
    echo_phoenix: bool,
}

/// Why a request is not a WebSocket upgrade (HTTP 400, as Phoenix answers).
#[derive(Debug)]
pub struct NotAnUpgrade(&'static str);

impl IntoResponse for NotAnUpgrade {
    fn into_response(self) -> Response {
        (StatusCode::BAD_REQUEST, self.0).into_response()
    }
}

fn header_has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

impl Upgrade {
    /// Checks the request's upgrade headers.
    pub fn from_request(
        mut request: Request<Body>,
        echo_phoenix: bool,
    ) -> Result<Upgrade, NotAnUpgrade> {
        if request.method() != Method::GET {
            return Err(NotAnUpgrade("a WebSocket upgrade must be a GET"));
        }
        let headers = request.headers();
        if !header_has_token(headers, header::CONNECTION, "upgrade")
            || !header_has_token(headers, header::UPGRADE, "websocket")
        {
            return Err(NotAnUpgrade(
                "expected Connection: upgrade and Upgrade: websocket",
            ));
        }
        if headers
            .get(header::SEC_WEBSOCKET_VERSION)
            .map(|v| v.as_bytes())
            != Some(b"13")
        {
            return Err(NotAnUpgrade("expected Sec-WebSocket-Version: 13"));
        }
        let key = headers
            .get(header::SEC_WEBSOCKET_KEY)
            .ok_or(NotAnUpgrade("missing Sec-WebSocket-Key"))?;
        let accept_key = HeaderValue::from_str(&derive_accept_key(key.as_bytes()))
            .map_err(|_| NotAnUpgrade("invalid Sec-WebSocket-Key"))?;
        let on_upgrade = request
            .extensions_mut()
            .remove::<OnUpgrade>()
            .ok_or(NotAnUpgrade("this connection cannot be upgraded"))?;
        Ok(Upgrade {
            on_upgrade,
            accept_key,
            echo_phoenix,
        })
    }

    /// The 101 answer, and the stream once hyper hands the connection over.
    pub fn accept(self) -> (Response, impl Future<Output = Option<Upgraded>> + Send) {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, self.accept_key);
        if self.echo_phoenix {
            headers.insert(
                header::SEC_WEBSOCKET_PROTOCOL,
                HeaderValue::from_static("phoenix"),
            );
        }
        let on_upgrade = self.on_upgrade;
        let upgraded = async move {
            let upgraded = on_upgrade.await.ok()?;
            Some(match upgraded.downcast::<TokioIo<TcpStream>>() {
                Ok(parts) if parts.read_buf.is_empty() => Upgraded::Tcp(parts.io.into_inner()),
                Ok(parts) => Upgraded::Prefixed(Prefixed {
                    pre: parts.read_buf,
                    io: parts.io.into_inner(),
                }),
                Err(upgraded) => match upgraded.downcast::<TokioIo<TlsStream<TcpStream>>>() {
                    Ok(parts) if parts.read_buf.is_empty() => {
                        Upgraded::Tls(Box::new(parts.io.into_inner()))
                    }
                    Ok(parts) => Upgraded::TlsPrefixed(Prefixed {
                        pre: parts.read_buf,
                        io: Box::new(parts.io.into_inner()),
                    }),
                    Err(upgraded) => Upgraded::Wrapped(TokioIo::new(upgraded)),
                },
            })
        };
        (response, upgraded)
    }
}

/// Both kinds of upgraded stream are byte streams.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Stream for T {}

/// A stream (TCP, or TLS over it) whose first bytes were already read (by hyper, before the
/// upgrade): reads return those first.
pub struct Prefixed<S = TcpStream> {
    pre: Bytes,
    io: S,
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if !self.pre.is_empty() {
            let n = self.pre.len().min(buf.remaining());
            buf.put_slice(&self.pre.split_to(n));
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
