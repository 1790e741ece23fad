//! The signed, time-limited, concurrency-capped HTTP call that every webhook
//! kind goes through.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::Notify;

use super::signing::{sign, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use crate::apps::App;
use crate::session::unix_now;
use crate::telemetry::Metrics;

/// Which webhook a call is (a metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookKind {
    /// `auth_endpoint`
    Auth,
    /// `message_endpoint`
    Message,
    /// `join_endpoint`
    Join,
    /// `events_endpoint`
    Events,
    /// `schema_endpoint`
    Schema,
    /// `jwks_url` (the identity provider's public key set; not signed)
    Jwks,
}

impl WebhookKind {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookKind::Auth => "auth",
            WebhookKind::Message => "message",
            WebhookKind::Join => "join",
            WebhookKind::Events => "events",
            WebhookKind::Schema => "schema",
            WebhookKind::Jwks => "jwks",
        }
    }
}

/// Why a webhook call failed.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// No answer within the app's webhook timeout (waiting for a free slot
    /// under the app's in-flight cap included).
    #[error("timed out")]
    Timeout,
    /// The backend could not be reached or the exchange broke.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// The backend answered with a status the call does not accept.
    #[error("answered HTTP {0}")]
    Status(u16),
    /// The backend's answer could not be understood.
    #[error("bad response: {0}")]
    BadResponse(String),
    /// The app's cap on calls in flight is reached (fire-and-forget calls).
    #[error("too many webhook calls in flight")]
    Overloaded,
}

impl WebhookError {
    /// The metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            WebhookError::Timeout => "timeout",
            WebhookError::Unreachable(_) => "unreachable",
            WebhookError::Status(_) => "status",
            WebhookError::BadResponse(_) => "bad_response",
            WebhookError::Overloaded => "overloaded",
        }
    }
}

/// A backend's answer.
#[derive(Debug)]
pub struct WebhookResponse {
    /// HTTP status.
    pub status: u16,
    /// Body bytes.
    pub body: Bytes,
}

/// A public document's answer (see [`Webhooks::get_public`]).
#[derive(Debug)]
pub struct PublicResponse {
    /// HTTP status.
    pub status: u16,
    /// Response headers (`Cache-Control` is what callers look at).
    pub headers: reqwest::header::HeaderMap,
    /// Body bytes.
    pub body: Bytes,
}

/// The webhook client shared by the whole process.
pub struct Webhooks {
    http: reqwest::Client,
    metrics: Arc<Metrics>,
    in_flight: AtomicUsize,
    idle: Notify,
    max_response_bytes: usize,
}

/// Counts a call in flight for the drain on shutdown.
struct InFlightGuard<'a>(&'a Webhooks);

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl Webhooks {
    /// Builds the client. `max_response_bytes` caps what a backend may answer.
    pub fn new(metrics: Arc<Metrics>, max_response_bytes: usize) -> Self {
        let http = reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(64)
            .tcp_nodelay(true)
            .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the HTTP client's TLS backend initialises");
        Self {
            http,
            metrics,
            in_flight: AtomicUsize::new(0),
            idle: Notify::new(),
            max_response_bytes,
        }
    }

    /// Metrics, for the call builders.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Number of calls in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Waits until no call is in flight, or `limit` passes.
    pub async fn wait_idle(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.idle.notified();
            if self.in_flight() == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.in_flight() == 0;
            }
        }
    }

    /// POSTs a JSON body (GET with an empty body for the schema), signed,
    /// within the app's timeout and in-flight cap. `wait_for_slot` false makes
    /// a full cap fail at once (fire-and-forget calls must never queue up).
    pub async fn call(
        &self,
        app: &App,
        kind: WebhookKind,
        url: &str,
        body: Vec<u8>,
        request_id: &str,
        wait_for_slot: bool,
    ) -> Result<WebhookResponse, WebhookError> {
        let started = Instant::now();
        let timeout = app.config().webhook_timeout;
        let result = tokio::time::timeout(timeout, async {
            // A full cap is counted once per call that meets it; a call
            // that then times out waiting is logged below as any timeout.
            let permits = app.webhook_permits();
            let _permit = match permits.try_acquire() {
                Ok(permit) => Some(permit),
                Err(_) => {
                    self.metrics
                        .limit_exceeded(app.id(), "webhooks_in_flight_per_app");
                    if !wait_for_slot {
                        return Err(WebhookError::Overloaded);
                    }
                    permits.acquire().await.ok()
                }
            };
            self.in_flight.fetch_add(1, Ordering::AcqRel);
            let _in_flight = InFlightGuard(self);
            self.send(app, kind, url, body, request_id).await
        })
        .await
        .unwrap_or(Err(WebhookError::Timeout));
        self.metrics
            .webhook_duration(app.id(), kind.as_str(), started.elapsed().as_secs_f64());
        if let Ok(response) = &result {
            tracing::debug!(
                app = app.id(),
                request_id,
                webhook = kind.as_str(),
                status = response.status,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "webhook call answered"
            );
        }
        if let Err(error) = &result {
            self.metrics
                .webhook_failure(app.id(), kind.as_str(), error.reason());
            tracing::warn!(
                app = app.id(),
                request_id,
                webhook = kind.as_str(),
                %error,
                "webhook call failed"
            );
        }
        result
    }

    /// GETs a public document (a JWKS) for `app`: unsigned, since it is not
    /// the app's endpoint but its identity provider's, within the app's
    /// webhook timeout, outside its in-flight cap (the key set is fetched
    /// rarely and must not wait behind slow webhooks). Timed and counted
    /// like a webhook call under `kind`.
    pub async fn get_public(
        &self,
        app: &App,
        kind: WebhookKind,
        url: &str,
        request_id: &str,
    ) -> Result<PublicResponse, WebhookError> {
        let started = Instant::now();
        let result = tokio::time::timeout(app.config().webhook_timeout, async {
            let response = self
                .http
                .get(url)
                .header("x-request-id", request_id)
                .send()
                .await
                .map_err(|e| WebhookError::Unreachable(error_chain(&e)))?;
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let body = self.read_body(response).await?;
            Ok(PublicResponse {
                status,
                headers,
                body,
            })
        })
        .await
        .unwrap_or(Err(WebhookError::Timeout));
        self.metrics
            .webhook_duration(app.id(), kind.as_str(), started.elapsed().as_secs_f64());
        if let Err(error) = &result {
            self.metrics
                .webhook_failure(app.id(), kind.as_str(), error.reason());
            tracing::warn!(
                app = app.id(),
                request_id,
                webhook = kind.as_str(),
                %error,
                "webhook call failed"
            );
        }
        result
    }

    async fn send(
        &self,
        app: &App,
        kind: WebhookKind,
        url: &str,
        body: Vec<u8>,
        request_id: &str,
    ) -> Result<WebhookResponse, WebhookError> {
        let timestamp = unix_now();
        let signature = sign(app.config().secret.expose(), timestamp, &body);
        let request = if kind == WebhookKind::Schema {
            self.http.get(url)
        } else {
            self.http
                .post(url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body)
        };
        let response = request
            .header("x-switchboard-app", app.id())
            .header("x-request-id", request_id)
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, signature)
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    WebhookError::Timeout
                } else {
                    WebhookError::Unreachable(error_chain(&e))
                }
            })?;
        let status = response.status().as_u16();
        let body = self.read_body(response).await?;
        Ok(WebhookResponse { status, body })
    }

    /// Reads a whole answer, refusing one larger than `max_response_bytes`.
    async fn read_body(&self, mut response: reqwest::Response) -> Result<Bytes, WebhookError> {
        let mut collected = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| WebhookError::Unreachable(error_chain(&e)))?
        {
            if collected.len() + chunk.len() > self.max_response_bytes {
                return Err(WebhookError::BadResponse(format!(
                    "answer larger than {} bytes",
                    self.max_response_bytes
                )));
            }
            collected.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(collected))
    }
}

/// reqwest's top-level error hides the cause ("error sending request");
/// the chain says what actually went wrong (connection refused, ...).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A fresh request id for a webhook call and the log lines about it.
pub fn new_request_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
