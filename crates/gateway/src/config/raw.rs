//! Stage one of the config: the TOML file (and the admin API's app JSON) as
//! serde reads it, before any check.
//!
//! Every key is optional here; each field's doc names its default, and the
//! `Default` impls below are the single place those defaults are written.
//! Unknown keys are rejected (`deny_unknown_fields`) so a typo is an error
//! rather than a silently ignored setting. Nothing in this file checks values:
//! that is the `validate` stage's job ([`RawApp::validate`]).

use serde::{Deserialize, Serialize};

/// Default `server.listen`.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:4000";
/// Default `server.idle_timeout_secs`.
pub const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 60;
/// Default `server.webhook_timeout_ms` (and so of every app's).
pub const DEFAULT_WEBHOOK_TIMEOUT_MS: u64 = 5000;
/// Default `server.schema_refresh_secs` (and so of every app's).
pub const DEFAULT_SCHEMA_REFRESH_SECS: u64 = 300;
/// Default `server.state_file`.
pub const DEFAULT_STATE_FILE: &str = "switchboard-state.json";
/// Default `server.drain_timeout_secs`.
pub const DEFAULT_DRAIN_TIMEOUT_SECS: u64 = 30;
/// Default `cluster.node_ttl_secs`.
pub const DEFAULT_NODE_TTL_SECS: u64 = 10;

/// The whole config file, unchecked.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// `[server]`; absent = all defaults.
    #[serde(default)]
    pub server: RawServer,
    /// `[limits]`; absent = all defaults.
    #[serde(default)]
    pub limits: RawLimits,
    /// `[cluster]`; absent = single node, in memory.
    pub cluster: Option<RawCluster>,
    /// `[[apps]]`; absent = no apps (the admin API may still add some).
    #[serde(default)]
    pub apps: Vec<RawApp>,
}

/// `[server]`, unchecked. A missing key takes the default named on its field.
/// `Debug` hides `admin_token`.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawServer {
    /// `host:port` to listen on. Default `"127.0.0.1:4000"`.
    pub listen: String,
    /// Bearer token of `/admin/v1`. Default: absent, and the admin API is off.
    pub admin_token: Option<String>,
    /// A connection silent this long is closed. Default 60.
    pub idle_timeout_secs: u64,
    /// Webhook timeout for apps that set none. Default 5000.
    pub webhook_timeout_ms: u64,
    /// Schema refresh period for apps that set none. Default 300.
    pub schema_refresh_secs: u64,
    /// Where admin-registered apps are kept (single node), relative to the
    /// working directory. Default `"switchboard-state.json"`.
    pub state_file: String,
    /// On SIGTERM, the longest wait for in-flight webhook calls. Default 30.
    pub drain_timeout_secs: u64,
    /// Proxies (IP addresses or CIDR ranges) whose `X-Forwarded-For` names
    /// the client for the per-IP limit and the auth webhook's `remote_ip`.
    /// Default: none (the TCP peer is the client).
    pub trusted_proxies: Vec<String>,
    /// PEM certificate chain for built-in TLS, relative to the config file.
    /// Default: absent, and the gateway serves plain HTTP. Set with
    /// `tls_key_file`, both or neither.
    pub tls_cert_file: Option<String>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of `tls_cert_file`, relative
    /// to the config file. Default: absent.
    pub tls_key_file: Option<String>,
}

impl Default for RawServer {
    fn default() -> Self {
        RawServer {
            listen: DEFAULT_LISTEN.to_owned(),
            admin_token: None,
            idle_timeout_secs: DEFAULT_IDLE_TIMEOUT_SECS,
            webhook_timeout_ms: DEFAULT_WEBHOOK_TIMEOUT_MS,
            schema_refresh_secs: DEFAULT_SCHEMA_REFRESH_SECS,
            state_file: DEFAULT_STATE_FILE.to_owned(),
            drain_timeout_secs: DEFAULT_DRAIN_TIMEOUT_SECS,
            trusted_proxies: Vec::new(),
            tls_cert_file: None,
            tls_key_file: None,
        }
    }
}

/// `[limits]`, unchecked. A missing key takes the default named on its field
/// (CONTRACT §2, plus the two keys added after it).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLimits {
    /// Largest client frame accepted. Default 1048576.
    pub max_frame_bytes: usize,
    /// Channels one connection may have joined at once. Default 100.
    pub max_channels_per_connection: usize,
    /// Connections per client id and app; 0 = unlimited. Default 0.
    pub max_connections_per_client: usize,
    /// New connections per remote IP per second (and burst). Default 100.
    pub connects_per_ip_per_second: u32,
    /// Joins per connection per second; 0 = unlimited. Default 10.
    pub joins_per_connection_per_second: u32,
    /// Joins one connection may make at once before the rate applies (a
    /// reconnecting phoenix.js client rejoins all its channels together).
    /// Default 100.
    pub joins_per_connection_burst: u32,
    /// Client pushes per app per second across all its connections (and
    /// burst); 0 = unlimited. An app's `pushes_per_second` overrides it.
    /// Default 0.
    pub app_pushes_per_second: u32,
    /// Consecutive rate-limited pushes or joins after which a connection is
    /// closed (WebSocket 1008 `rate_limited`); 0 = never. Default 50.
    pub rate_limit_strikes: u32,
    /// Largest push payload forwarded to a message webhook. Default 1048576.
    pub max_webhook_payload_bytes: usize,
    /// Long-poll sessions open at once on this node. Default 10000.
    pub max_longpoll_sessions: usize,
    /// Long-poll sessions open at once on this node from one client IP.
    /// Default 1000.
    pub max_longpoll_sessions_per_ip: usize,
    /// The HTTP request / upgrade must complete within this. Default 10000.
    pub handshake_timeout_ms: u64,
    /// Queued outbound messages per connection before it is a slow consumer.
    /// Default 1024.
    pub outbound_queue: usize,
    /// Clock skew allowed on JWT `exp` / `nbf`. Default 30.
    pub jwt_leeway_secs: u64,
    /// At most one JWKS fetch per app per this period for unknown key ids.
    /// Default 30.
    pub jwks_refresh_cooldown_secs: u64,
    /// Concurrent webhook calls per app. Default 256.
    pub webhooks_in_flight_per_app: usize,
    /// Largest HTTP body accepted by the server and admin APIs. Default 1048576.
    pub max_body_bytes: usize,
    /// A JWKS is fetched again after its `Cache-Control: max-age`, but never
    /// sooner than this; also the longest wait between retries of a failed
    /// fetch. Default 30.
    pub jwks_refresh_min_secs: u64,
    /// ... and never later than this. Default 86400.
    pub jwks_refresh_max_secs: u64,
    /// Refresh period of a JWKS answered without `max-age`. Default 300.
    pub jwks_refresh_default_secs: u64,
}

impl Default for RawLimits {
    fn default() -> Self {
        RawLimits {
            max_frame_bytes: 1_048_576,
            max_channels_per_connection: 100,
            max_connections_per_client: 0,
            connects_per_ip_per_second: 100,
            joins_per_connection_per_second: 10,
            joins_per_connection_burst: 100,
            app_pushes_per_second: 0,
            rate_limit_strikes: 50,
            max_webhook_payload_bytes: 1_048_576,
            max_longpoll_sessions: 10_000,
            max_longpoll_sessions_per_ip: 1000,
            handshake_timeout_ms: 10_000,
            outbound_queue: 1024,
            jwt_leeway_secs: 30,
            jwks_refresh_cooldown_secs: 30,
            webhooks_in_flight_per_app: 256,
            max_body_bytes: 1_048_576,
            jwks_refresh_min_secs: 30,
            jwks_refresh_max_secs: 86_400,
            jwks_refresh_default_secs: 300,
        }
    }
}

/// `[cluster]`, unchecked. `Debug` hides a password in `redis_url`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCluster {
    /// `redis://` or `rediss://` URL of the shared Redis. Required.
    pub redis_url: Option<String>,
    /// A node that stops refreshing its liveness key is dead after this long.
    /// Default 10.
    #[serde(default = "default_node_ttl_secs")]
    pub node_ttl_secs: u64,
    /// Prefix of every Redis key and channel, so several deployments (or
    /// tests) can share one Redis. Default `switchboard`.
    #[serde(default = "default_key_prefix")]
    pub key_prefix: String,
}

fn default_key_prefix() -> String {
    "switchboard".to_owned()
}

fn default_node_ttl_secs() -> u64 {
    DEFAULT_NODE_TTL_SECS
}

/// One app as an `[[apps]]` TOML entry, as the admin API receives it in JSON
/// (same field names), and as the state file stores it.
///
/// Every field is optional at this stage; [`RawApp::validate`] says which are
/// required. `id` may be absent in an admin API body, whose path names the app.
#[derive(Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawApp {
    /// App id: required, 1 to 64 of `A-Z a-z 0-9 _ -`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Bearer token of the server API and HMAC key of webhooks. Required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Auth webhook URL. One of `auth_endpoint`, `jwks_url`, `jwt_secret`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_endpoint: Option<String>,
    /// JWKS URL for RS256/ES256 tokens. One of the three auth sources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<String>,
    /// HS256 key for tokens. One of the three auth sources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt_secret: Option<String>,
    /// Required `iss` claim; only with `jwks_url` or `jwt_secret`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt_issuer: Option<String>,
    /// Required `aud` claim; only with `jwks_url` or `jwt_secret`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt_audience: Option<String>,
    /// Close a JWT-authenticated connection when its token's `exp` passes
    /// (WebSocket close 4001 `token_expired`); only with `jwks_url` or
    /// `jwt_secret`. Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close_on_token_expiry: Option<bool>,
    /// Schema URL. One of `schema_endpoint`, `schema_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_endpoint: Option<String>,
    /// Schema file; relative to the config file's directory when loaded from
    /// a file, else to the working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_file: Option<String>,
    /// Message webhook URL. Optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_endpoint: Option<String>,
    /// Join webhook URL. Optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join_endpoint: Option<String>,
    /// Lifecycle events webhook URL. Optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events_endpoint: Option<String>,
    /// Origins allowed to connect, e.g. `"https://example.com"`. Absent = any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_origins: Option<Vec<String>>,
    /// Webhook timeout. Default: `server.webhook_timeout_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_timeout_ms: Option<u64>,
    /// Schema refresh period. Default: `server.schema_refresh_secs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_refresh_secs: Option<u64>,
    /// Client pushes per second across the app's connections (and burst);
    /// 0 = unlimited. Default: `limits.app_pushes_per_second`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pushes_per_second: Option<u32>,
}

impl RawApp {
    /// The same app with `secret` and `jwt_secret` removed, for answers that
    /// must never carry secrets (`GET /admin/v1/apps`).
    pub fn without_secrets(self) -> RawApp {
        RawApp {
            secret: None,
            jwt_secret: None,
            ..self
        }
    }
}

/// `Debug` as the JSON of the value with its secrets replaced, so that a
/// field added later is shown without being listed here.
fn debug_as_json(
    f: &mut std::fmt::Formatter<'_>,
    name: &str,
    value: &impl Serialize,
    secrets: &[&str],
) -> std::fmt::Result {
    let mut json = serde_json::to_value(value).unwrap_or_default();
    if let Some(object) = json.as_object_mut() {
        for key in secrets {
            if let Some(secret) = object.get_mut(*key).filter(|v| !v.is_null()) {
                *secret = "[redacted]".into();
            }
        }
    }
    write!(f, "{name}({json})")
}

impl std::fmt::Debug for RawServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        debug_as_json(f, "RawServer", self, &["admin_token"])
    }
}

impl std::fmt::Debug for RawApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        debug_as_json(f, "RawApp", self, &["secret", "jwt_secret"])
    }
}

impl std::fmt::Debug for RawCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawCluster")
            .field(
                "redis_url",
                &self
                    .redis_url
                    .as_deref()
                    .map(super::secret::url_without_password),
            )
            .field("node_ttl_secs", &self.node_ttl_secs)
            .field("key_prefix", &self.key_prefix)
            .finish()
    }
}
