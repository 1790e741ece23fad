//! The embedded default config (CONTRACT §1): what `switchboard serve` runs
//! with no config file. Its schema lives in `demo_schema.json` beside this
//! file and is compiled into the binary.

use super::raw::{RawLimits, RawServer};
use super::secret::Secret;
use super::settings::{AppConfig, AuthSource, Config, SchemaSource};
use super::validate;

/// The demo app's id.
pub const DEMO_APP_ID: &str = "demo";
/// The demo app's secret (server API bearer token). Public by design.
pub const DEMO_APP_SECRET: &str = "demo-secret";
/// The demo app's schema document, as embedded.
pub const DEMO_SCHEMA_JSON: &str = include_str!("demo_schema.json");

impl Config {
    /// The embedded default: listen on `127.0.0.1:4000` with default limits,
    /// no admin API, no cluster, and one app `demo` (secret `demo-secret`)
    /// that accepts any non-empty token as the client id and whose schema is
    /// built in: channels `room:{name}` (with presence), `user:{id}` (join
    /// needs permission `user:{id}`) and `demo:*`; events `message`
    /// (`{"body": string ≤ 2000}`), `typing` and `shout`, all broadcast
    /// directly with no backend.
    pub fn demo() -> Config {
        let server = validate::server(RawServer::default()).expect("default [server] is valid");
        let limits = validate::limits(RawLimits::default()).expect("default [limits] are valid");
        let app = AppConfig {
            id: DEMO_APP_ID.to_owned(),
            secret: Secret::new(DEMO_APP_SECRET),
            auth: AuthSource::AcceptAnyToken,
            jwt_issuer: None,
            jwt_audience: None,
            close_on_token_expiry: true,
            schema: SchemaSource::Inline(DEMO_SCHEMA_JSON.to_owned()),
            message_endpoint: None,
            join_endpoint: None,
            events_endpoint: None,
            allowed_origins: None,
            webhook_timeout: server.webhook_timeout,
            schema_refresh: server.schema_refresh,
            pushes_per_second: None,
        };
        Config {
            server,
            limits,
            cluster: None,
            apps: vec![app],
        }
    }
}
