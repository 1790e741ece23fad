//! The WebSocket transport at `/socket/websocket`.
//!
//! Admission runs before the upgrade, so a refused client gets its 403 body.
//! The upgrade itself ([`handshake`]) is done here rather than by axum so
//! that the upgraded connection is the bare `TcpStream`: hyper's upgrade
//! wrapper and read buffer, and axum's socket wrapper, would otherwise stay
//! alive for every idle connection. After it, one task per connection
//! ([`socket`]) moves frames both ways.

mod handshake;
mod socket;
mod writer;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, Request};
use axum::response::{IntoResponse, Response};
use base64::Engine;

use super::client_ip::client_ip;
use super::connect::{admit, open_connection, ConnectRequest};
use super::query::ConnectQuery;
use crate::gateway::Gateway;
use crate::telemetry::TransportKind;

/// phoenix.js 1.8 `authToken`: a subprotocol carrying the token.
const TOKEN_PROTOCOL_PREFIX: &str = "base64url.bearer.phx.";

/// `GET /socket/websocket`
pub async fn websocket_handler(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(raw_query): RawQuery,
    request: Request<Body>,
) -> Response {
    let headers = request.headers();
    let query = ConnectQuery::parse(raw_query.as_deref());
    let (protocol_token, offers_phoenix) = token_from_protocols(headers);
    let token = query.auth_token().map(str::to_owned).or(protocol_token);
    let origin = headers.get("origin").and_then(|v| v.to_str().ok());
    let connect = ConnectRequest {
        app: query.app.as_deref(),
        token: token.as_deref(),
        vsn: query.vsn.as_deref(),
        client_type: query.client_type.as_deref(),
        params: &query.params,
        remote_ip: client_ip(&gateway.server.trusted_proxies, peer.ip(), headers),
        origin,
        transport: TransportKind::Websocket,
    };
    let admitted = match admit(&gateway, connect).await {
        Ok(admitted) => admitted,
        Err(refusal) => return refusal.into_response(),
    };
    let upgrade = match handshake::Upgrade::from_request(request, offers_phoenix) {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    let vsn = admitted.vsn;
    let (conn, outbound) = match open_connection(&gateway, admitted, TransportKind::Websocket) {
        Ok(opened) => opened,
        Err(refusal) => return refusal.into_response(),
    };
    let (response, upgraded) = upgrade.accept();
    tokio::spawn(async move {
        match upgraded.await {
            Some(stream) => socket::spawn(gateway, stream, conn, outbound, vsn),
            None => {
                tracing::info!(connection = conn.id, "websocket upgrade did not complete");
                gateway.connections.unregister(&conn);
            }
        }
    });
    response
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
