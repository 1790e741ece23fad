//! Stage two of the config: typed, validated settings, what the server runs
//! on. Values here are already checked (durations converted, URLs parsed,
//! exactly one auth and one schema source per app); nothing here parses or
//! checks anything. See [`super::raw`] for the keys and defaults.

use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;

use super::raw::{RawLimits, RawServer};
use super::secret::{url_without_password, Secret};
use super::validate;

/// Settings after validation; what the server runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `[server]`.
    pub server: ServerSettings,
    /// `[limits]`.
    pub limits: Limits,
    /// `[cluster]`; `None` = single node, in memory.
    pub cluster: Option<ClusterSettings>,
    /// `[[apps]]`, in file order, ids unique.
    pub apps: Vec<AppConfig>,
}

/// `[server]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSettings {
    /// `host:port`, checked to parse as a `SocketAddr`.
    pub listen: String,
    /// Bearer token of `/admin/v1`; `None` = admin API off.
    pub admin_token: Option<Secret>,
    /// A connection silent this long is closed (code 1000).
    pub idle_timeout: Duration,
    /// Webhook timeout of apps that set none.
    pub webhook_timeout: Duration,
    /// Schema refresh period of apps that set none.
    pub schema_refresh: Duration,
    /// Where admin-registered apps are persisted (single node).
    pub state_file: PathBuf,
    /// On SIGTERM, the longest wait for in-flight webhook calls.
    pub drain_timeout: Duration,
    /// Peers whose `X-Forwarded-For` is believed; empty = none.
    pub trusted_proxies: Vec<IpNet>,
    /// Built-in TLS; `None` = plain HTTP (TLS terminated in front, if at all).
    pub tls: Option<TlsFiles>,
}

/// `[server] tls_cert_file` and `tls_key_file`: the PEM files of built-in
/// TLS (relative paths already resolved against the config file's directory
/// by [`Config::load`]). Their contents are checked by [`crate::tls`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// Certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// The leaf certificate's private key.
    pub key_file: PathBuf,
}

/// `[limits]`; [`Limits::default`] is CONTRACT §2's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest client frame; larger gets `message_too_large` (or close 1009).
    pub max_frame_bytes: usize,
    /// Channels one connection may have joined at once.
    pub max_channels_per_connection: usize,
    /// Connections per client id and app; 0 = unlimited.
    pub max_connections_per_client: usize,
    /// New connections per remote IP per second, and the burst size.
    pub connects_per_ip_per_second: u32,
    /// Joins per connection per second; 0 = unlimited.
    pub joins_per_connection_per_second: u32,
    /// Joins a connection may make at once before that rate applies.
    pub joins_per_connection_burst: u32,
    /// Client pushes per app per second (and burst), for apps that set no
    /// `pushes_per_second`; 0 = unlimited.
    pub app_pushes_per_second: u32,
    /// Consecutive rate-limited pushes/joins that close a connection; 0 = never.
    pub rate_limit_strikes: u32,
    /// Largest push payload forwarded to a message webhook.
    pub max_webhook_payload_bytes: usize,
    /// Long-poll sessions open at once on this node.
    pub max_longpoll_sessions: usize,
    /// Long-poll sessions open at once on this node from one client IP.
    pub max_longpoll_sessions_per_ip: usize,
    /// The HTTP request / upgrade must complete within this.
    pub handshake_timeout: Duration,
    /// Queued outbound messages per connection before it is a slow consumer.
    pub outbound_queue: usize,
    /// Clock skew allowed on JWT time claims.
    pub jwt_leeway: Duration,
    /// At most one JWKS fetch per app per this period for unknown key ids.
    pub jwks_refresh_cooldown: Duration,
    /// Concurrent webhook calls per app.
    pub webhooks_in_flight_per_app: usize,
    /// Largest HTTP body accepted by the server and admin APIs.
    pub max_body_bytes: usize,
    /// Shortest JWKS refresh period (a smaller `max-age` is raised to it);
    /// also the longest wait between retries of a failed JWKS fetch.
    pub jwks_refresh_min: Duration,
    /// Longest JWKS refresh period (a larger `max-age` is lowered to it).
    pub jwks_refresh_max: Duration,
    /// JWKS refresh period when the answer has no `max-age`.
    pub jwks_refresh_default: Duration,
}

/// `[cluster]`. Its `Debug` hides a password in `redis_url`.
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterSettings {
    /// `redis://` or `rediss://` URL, checked to parse.
    pub redis_url: String,
    /// A node silent this long is dead; its presence and connections go.
    pub node_ttl: Duration,
    /// Prefix of every Redis key and channel.
    pub key_prefix: String,
}

impl std::fmt::Debug for ClusterSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterSettings")
            .field("redis_url", &url_without_password(&self.redis_url))
            .field("node_ttl", &self.node_ttl)
            .field("key_prefix", &self.key_prefix)
            .finish()
    }
}

/// One app, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppConfig {
    /// 1 to 64 of `A-Z a-z 0-9 _ -`.
    pub id: String,
    /// Bearer token of the server API, HMAC key of webhooks. Never empty.
    pub secret: Secret,
    /// How client tokens are verified.
    pub auth: AuthSource,
    /// Required JWT `iss`; only set with [`AuthSource::Jwks`] or [`AuthSource::JwtSecret`].
    pub jwt_issuer: Option<String>,
    /// Required JWT `aud`; only set with [`AuthSource::Jwks`] or [`AuthSource::JwtSecret`].
    pub jwt_audience: Option<String>,
    /// Whether a JWT-authenticated connection is closed when its token
    /// expires (always true, and unused, for other auth sources).
    pub close_on_token_expiry: bool,
    /// Where the schema document comes from.
    pub schema: SchemaSource,
    /// Message webhook (http/https URL).
    pub message_endpoint: Option<String>,
    /// Join webhook (http/https URL).
    pub join_endpoint: Option<String>,
    /// Lifecycle events webhook (http/https URL).
    pub events_endpoint: Option<String>,
    /// Allowed `Origin` values, each in the form browsers send
    /// (`scheme://host[:port]`, no path); `None` = any origin.
    pub allowed_origins: Option<Vec<String>>,
    /// Timeout of each webhook call to this app.
    pub webhook_timeout: Duration,
    /// How often this app's schema is fetched again.
    pub schema_refresh: Duration,
    /// Client pushes per second across the app's connections; `None` =
    /// `limits.app_pushes_per_second`, `Some(0)` = unlimited.
    pub pushes_per_second: Option<u32>,
}

/// How an app's client tokens are verified: exactly one per app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthSource {
    /// `auth_endpoint`: POST the token to this http/https URL.
    Endpoint(String),
    /// `jwks_url`: RS256/ES256 JWTs checked against this key set URL.
    Jwks(String),
    /// `jwt_secret`: HS256 JWTs checked with this key.
    JwtSecret(Secret),
    /// Built-in demo only, not expressible in a config file: any non-empty
    /// token is accepted and the client id is the token. (The demo schema's
    /// `user:{id}` channel requires the permission `user:<id>`, so whoever
    /// implements this source should grant `user:<token>`.)
    AcceptAnyToken,
}

/// Where an app's schema document comes from: exactly one per app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaSource {
    /// `schema_endpoint`: GET this http/https URL (signed, see CONTRACT §5).
    Endpoint(String),
    /// `schema_file`: read this file (relative paths already resolved
    /// against the config file's directory by [`Config::load`]).
    File(PathBuf),
    /// Built-in demo only: the schema JSON itself, embedded in the binary.
    Inline(String),
}

impl Default for ServerSettings {
    /// `[server]` with every key at its default.
    fn default() -> Self {
        validate::server(RawServer::default()).expect("default [server] is valid")
    }
}

impl Default for Limits {
    /// `[limits]` with every key at its default (CONTRACT §2).
    fn default() -> Self {
        validate::limits(RawLimits::default()).expect("default [limits] are valid")
    }
}
