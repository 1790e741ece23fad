//! Admission of a new connection, shared by every transport (CONTRACT §3):
//! rate limit per IP, app, serializer version, origin, schema loaded, token,
//! then the app's auth. A refusal becomes HTTP 403 with
//! `{"status": 403, "reason": ...}` before any upgrade.

use std::net::IpAddr;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};
use switchboard_protocol::Vsn;

use crate::apps::App;
use crate::config::AuthSource;
use crate::gateway::Gateway;
use crate::jwt::{verify_token, TokenError};
use crate::session::{Connection, Identity, NewConnection, OutboundReceiver};
use crate::telemetry::TransportKind;
use crate::upstream::{authenticate, new_request_id, AuthRefusal, AuthRequest};

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Missing or unknown `app`.
    UnknownApp,
    /// Missing token, or the app refused it.
    Unauthorized,
    /// The app's auth failed, or its schema has not loaded yet.
    AuthServiceError,
    /// `Origin` not in the app's `allowed_origins`.
    OriginNotAllowed,
    /// Over `connects_per_ip_per_second`.
    RateLimited,
    /// Over `max_connections_per_client`.
    TooManyConnections,
    /// `vsn` is neither 1.0.x nor 2.0.x.
    UnsupportedVsn,
    /// The app's JWT verification refused the token (`unauthorized`; the
    /// precise cause is logged and is the metric label).
    InvalidToken(TokenError),
    /// The server is draining (`server_draining`, an addition to the
    /// contract's reasons: phoenix.js's long-poll client handles a 403 but
    /// throws on other statuses, so draining is refused like the rest).
    Draining,
}

impl Refusal {
    /// The `reason` of the refusal body.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::UnknownApp => "unknown_app",
            Refusal::Unauthorized | Refusal::InvalidToken(_) => "unauthorized",
            Refusal::AuthServiceError => "auth_service_error",
            Refusal::OriginNotAllowed => "origin_not_allowed",
            Refusal::RateLimited => "rate_limited",
            Refusal::TooManyConnections => "too_many_connections",
            Refusal::UnsupportedVsn => "unsupported_vsn",
            Refusal::Draining => "server_draining",
        }
    }

    /// The `reason` label of `switchboard_auth_failures_total` and the
    /// `cause` of the log line: the reason, or a refused token's precise
    /// cause.
    pub fn cause(self) -> &'static str {
        match self {
            Refusal::InvalidToken(error) => error.as_str(),
            other => other.reason(),
        }
    }

    /// HTTP status of the refusal.
    pub fn status(self) -> StatusCode {
        StatusCode::FORBIDDEN
    }

    /// The JSON body.
    pub fn body(self) -> Value {
        json!({ "status": self.status().as_u16(), "reason": self.reason() })
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.status(), Json(self.body())).into_response()
    }
}

/// Everything admission looks at.
#[derive(Debug)]
pub struct ConnectRequest<'a> {
    /// `app` parameter.
    pub app: Option<&'a str>,
    /// The auth token, from the query or the transport's header.
    pub token: Option<&'a str>,
    /// `vsn` parameter.
    pub vsn: Option<&'a str>,
    /// `client_type` parameter.
    pub client_type: Option<&'a str>,
    /// Other query parameters.
    pub params: &'a Map<String, Value>,
    /// The peer address.
    pub remote_ip: IpAddr,
    /// `Origin` header.
    pub origin: Option<&'a str>,
    /// Which transport asks.
    pub transport: TransportKind,
}

/// An admitted connection, ready to be opened.
#[derive(Debug)]
pub struct Admitted {
    /// The app.
    pub app: Arc<App>,
    /// The serializer.
    pub vsn: Vsn,
    /// Who the client is.
    pub identity: Identity,
}

/// Runs every admission check, cheapest first.
pub async fn admit(gateway: &Gateway, request: ConnectRequest<'_>) -> Result<Admitted, Refusal> {
    let app_label = request.app.unwrap_or("");
    let result = admission(gateway, &request).await;
    if let Err(refusal) = &result {
        let app = gateway.apps.get(app_label).map_or("unknown", |_| app_label);
        gateway.metrics.auth_failure(app, refusal.cause());
        tracing::info!(app, remote_ip = %request.remote_ip, reason = refusal.reason(), cause = refusal.cause(), "connection refused");
    }
    result
}

async fn admission(gateway: &Gateway, request: &ConnectRequest<'_>) -> Result<Admitted, Refusal> {
    if gateway.lifecycle.is_draining() {
        return Err(Refusal::Draining);
    }
    if !gateway.allow_connect_from(request.remote_ip) {
        // Only known app ids become label values: anyone can make one up.
        if let Some(app) = request.app.filter(|id| gateway.apps.get(id).is_some()) {
            gateway.metrics.rate_limited(app, "connect");
        }
        return Err(Refusal::RateLimited);
    }
    let app = request
        .app
        .and_then(|id| gateway.apps.get(id))
        .ok_or(Refusal::UnknownApp)?;
    let vsn = Vsn::negotiate(request.vsn).map_err(|_| Refusal::UnsupportedVsn)?;
    if let (Some(allowed), Some(origin)) = (&app.config().allowed_origins, request.origin) {
        if !allowed.iter().any(|o| o.eq_ignore_ascii_case(origin)) {
            return Err(Refusal::OriginNotAllowed);
        }
    }
    if app.schema().is_none() {
        return Err(Refusal::AuthServiceError);
    }
    let token = request
        .token
        .filter(|t| !t.is_empty())
        .ok_or(Refusal::Unauthorized)?;
    let identity = match &app.config().auth {
        AuthSource::AcceptAnyToken => Identity {
            client_id: token.to_owned(),
            client_type: request.client_type.map(Box::from),
            // The demo's `user:{id}` channel is joinable by its own user.
            permissions: vec![format!("user:{token}")],
            ..Identity::default()
        },
        AuthSource::Endpoint(url) => {
            let request_id = new_request_id();
            let auth_request = AuthRequest {
                token,
                connection_type: match request.transport {
                    TransportKind::Websocket => "websocket",
                    TransportKind::Longpoll => "longpoll",
                },
                app: app.id(),
                client_type: request.client_type,
                params: request.params,
                remote_ip: request.remote_ip.to_string(),
                origin: request.origin,
            };
            authenticate(&gateway.webhooks, &app, url, &auth_request, &request_id)
                .await
                .map_err(|refusal| match refusal {
                    AuthRefusal::Unauthorized => Refusal::Unauthorized,
                    AuthRefusal::ServiceError => Refusal::AuthServiceError,
                })?
        }
        AuthSource::Jwks(_) | AuthSource::JwtSecret(_) => verify_token(
            &gateway.webhooks,
            &app,
            &gateway.limits,
            token,
            request.client_type,
        )
        .await
        .map_err(|error| match error {
            TokenError::NoKeys => Refusal::AuthServiceError,
            error => Refusal::InvalidToken(error),
        })?,
    };
    Ok(Admitted { app, vsn, identity })
}

/// Creates and registers the connection of an admitted client; refuses it
/// when its client is at `max_connections_per_client`.
pub fn open_connection(
    gateway: &Gateway,
    admitted: Admitted,
    transport: TransportKind,
) -> Result<(Arc<Connection>, OutboundReceiver), Refusal> {
    let (conn, receiver) = Connection::open(NewConnection {
        id: gateway.next_connection_id(),
        app: admitted.app,
        identity: admitted.identity,
        format: admitted
            .vsn
            .wire_format(transport == TransportKind::Websocket),
        transport,
        queue_limit: gateway.limits.outbound_queue,
    });
    if gateway
        .connections
        .register(&conn, gateway.limits.max_connections_per_client)
        .is_err()
    {
        let refusal = Refusal::TooManyConnections;
        gateway
            .metrics
            .auth_failure(conn.app.id(), refusal.reason());
        tracing::info!(app = conn.app.id(), client_id = %conn.identity.client_id, reason = refusal.reason(), "connection refused");
        return Err(refusal);
    }
    Ok((conn, receiver))
}
