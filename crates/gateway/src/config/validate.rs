//! Stage two's checks: turns the raw structs of [`super::raw`] into the typed
//! settings of [`super::settings`], or a [`ConfigError`] saying what and
//! where. It also turns an [`AppConfig`] back into a [`RawApp`] for the state
//! file. It does no I/O: reading files and environment is [`super::Config`]'s.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use reqwest::Url;

use super::error::ConfigError;
use super::raw::{RawApp, RawCluster, RawConfig, RawLimits, RawServer};
use super::secret::Secret;
use super::settings::{
    AppConfig, AuthSource, ClusterSettings, Config, Limits, SchemaSource, ServerSettings, TlsFiles,
};

/// Longest app id.
const MAX_APP_ID_LEN: usize = 64;

/// Longest accepted duration setting (one year): far beyond any sensible
/// value, and small enough that `Instant::now() + d` cannot overflow.
const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// Validates a whole parsed file. `base_dir` is the config file's directory,
/// against which relative `schema_file` paths are resolved.
pub(super) fn config(raw: RawConfig, base_dir: Option<&Path>) -> Result<Config, ConfigError> {
    let mut server = server(raw.server)?;
    if let (Some(tls), Some(dir)) = (&mut server.tls, base_dir) {
        tls.cert_file = dir.join(&tls.cert_file);
        tls.key_file = dir.join(&tls.key_file);
    }
    let limits = limits(raw.limits)?;
    let cluster = raw.cluster.map(cluster).transpose()?;

    let mut first_index_of_id: HashMap<String, usize> = HashMap::new();
    let mut apps = Vec::with_capacity(raw.apps.len());
    for (index, raw_app) in raw.apps.into_iter().enumerate() {
        let at = match &raw_app.id {
            Some(id) => format!("apps[{index}] ({id:?})"),
            None => format!("apps[{index}]"),
        };
        let app = app(raw_app, &server, base_dir, &at)?;
        if let Some(first) = first_index_of_id.insert(app.id.clone(), index) {
            return Err(ConfigError::invalid(
                at,
                format!("duplicate app id (already used by apps[{first}])"),
            ));
        }
        apps.push(app);
    }

    Ok(Config {
        server,
        limits,
        cluster,
        apps,
    })
}

/// Validates `[server]`.
pub(super) fn server(raw: RawServer) -> Result<ServerSettings, ConfigError> {
    if raw.listen.parse::<SocketAddr>().is_err() {
        return Err(ConfigError::invalid(
            "server.listen",
            format!(
                "{:?} is not an IP address and port such as 0.0.0.0:4000",
                raw.listen
            ),
        ));
    }
    let admin_token = match raw.admin_token {
        Some(token) if token.is_empty() => {
            return Err(ConfigError::invalid(
                "server.admin_token",
                "must not be empty (omit it to turn the admin API off)",
            ))
        }
        token => token.map(Secret::new),
    };
    if raw.state_file.is_empty() {
        return Err(ConfigError::invalid(
            "server.state_file",
            "must not be empty",
        ));
    }
    Ok(ServerSettings {
        listen: raw.listen,
        admin_token,
        idle_timeout: seconds("server.idle_timeout_secs", raw.idle_timeout_secs, 1)?,
        webhook_timeout: millis("server.webhook_timeout_ms", raw.webhook_timeout_ms, 1)?,
        schema_refresh: seconds("server.schema_refresh_secs", raw.schema_refresh_secs, 1)?,
        state_file: PathBuf::from(raw.state_file),
        drain_timeout: seconds("server.drain_timeout_secs", raw.drain_timeout_secs, 0)?,
        trusted_proxies: raw
            .trusted_proxies
            .iter()
            .enumerate()
            .map(|(index, entry)| ip_range(index, entry))
            .collect::<Result<_, _>>()?,
        tls: tls_files(raw.tls_cert_file, raw.tls_key_file)?,
    })
}

/// `tls_cert_file` and `tls_key_file`: both or neither, neither empty.
/// Their contents are checked when the config is loaded ([`super::Config::load`]).
fn tls_files(cert: Option<String>, key: Option<String>) -> Result<Option<TlsFiles>, ConfigError> {
    match (cert, key) {
        (None, None) => Ok(None),
        (Some(cert), Some(key)) => {
            for (name, value) in [("tls_cert_file", &cert), ("tls_key_file", &key)] {
                if value.is_empty() {
                    return Err(ConfigError::invalid(
                        format!("server.{name}"),
                        "must not be empty",
                    ));
                }
            }
            Ok(Some(TlsFiles {
                cert_file: PathBuf::from(cert),
                key_file: PathBuf::from(key),
            }))
        }
        (Some(_), None) => Err(ConfigError::invalid(
            "server.tls_cert_file",
            "is set without tls_key_file; set both to serve TLS, or neither",
        )),
        (None, Some(_)) => Err(ConfigError::invalid(
            "server.tls_key_file",
            "is set without tls_cert_file; set both to serve TLS, or neither",
        )),
    }
}

/// One `server.trusted_proxies` entry: a CIDR range, or one address.
fn ip_range(index: usize, entry: &str) -> Result<IpNet, ConfigError> {
    entry
        .parse::<IpNet>()
        .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| {
            ConfigError::invalid(
                format!("server.trusted_proxies[{index}]"),
                format!("{entry:?} is not an IP address or a CIDR range such as 10.0.0.0/8"),
            )
        })
}

/// Validates `[limits]`: counts and sizes must be at least 1, except
/// `max_connections_per_client`, `joins_per_connection_per_second`,
/// `app_pushes_per_second` and `rate_limit_strikes`, where 0 means unlimited
/// (never).
pub(super) fn limits(raw: RawLimits) -> Result<Limits, ConfigError> {
    Ok(Limits {
        max_frame_bytes: at_least_one("limits.max_frame_bytes", raw.max_frame_bytes)?,
        max_channels_per_connection: at_least_one(
            "limits.max_channels_per_connection",
            raw.max_channels_per_connection,
        )?,
        max_connections_per_client: raw.max_connections_per_client,
        connects_per_ip_per_second: at_least_one(
            "limits.connects_per_ip_per_second",
            raw.connects_per_ip_per_second,
        )?,
        joins_per_connection_per_second: raw.joins_per_connection_per_second,
        joins_per_connection_burst: at_least_one(
            "limits.joins_per_connection_burst",
            raw.joins_per_connection_burst,
        )?,
        app_pushes_per_second: raw.app_pushes_per_second,
        rate_limit_strikes: raw.rate_limit_strikes,
        max_webhook_payload_bytes: at_least_one(
            "limits.max_webhook_payload_bytes",
            raw.max_webhook_payload_bytes,
        )?,
        max_longpoll_sessions: at_least_one(
            "limits.max_longpoll_sessions",
            raw.max_longpoll_sessions,
        )?,
        max_longpoll_sessions_per_ip: at_least_one(
            "limits.max_longpoll_sessions_per_ip",
            raw.max_longpoll_sessions_per_ip,
        )?,
        handshake_timeout: millis("limits.handshake_timeout_ms", raw.handshake_timeout_ms, 1)?,
        outbound_queue: at_least_one("limits.outbound_queue", raw.outbound_queue)?,
        jwt_leeway: seconds("limits.jwt_leeway_secs", raw.jwt_leeway_secs, 0)?,
        jwks_refresh_cooldown: seconds(
            "limits.jwks_refresh_cooldown_secs",
            raw.jwks_refresh_cooldown_secs,
            0,
        )?,
        webhooks_in_flight_per_app: at_least_one(
            "limits.webhooks_in_flight_per_app",
            raw.webhooks_in_flight_per_app,
        )?,
        max_body_bytes: at_least_one("limits.max_body_bytes", raw.max_body_bytes)?,
        jwks_refresh_min: seconds("limits.jwks_refresh_min_secs", raw.jwks_refresh_min_secs, 1)?,
        jwks_refresh_max: seconds(
            "limits.jwks_refresh_max_secs",
            raw.jwks_refresh_max_secs,
            raw.jwks_refresh_min_secs,
        )
        .map_err(|_| {
            ConfigError::invalid(
                "limits.jwks_refresh_max_secs",
                "must be at least limits.jwks_refresh_min_secs and at most one year",
            )
        })?,
        jwks_refresh_default: seconds(
            "limits.jwks_refresh_default_secs",
            raw.jwks_refresh_default_secs,
            1,
        )?,
    })
}

/// Validates `[cluster]`. The URL is never echoed: it may hold a password.
fn cluster(raw: RawCluster) -> Result<ClusterSettings, ConfigError> {
    let Some(redis_url) = raw.redis_url else {
        return Err(ConfigError::invalid(
            "cluster",
            "redis_url is required (remove [cluster] to run a single node)",
        ));
    };
    match Url::parse(&redis_url) {
        Ok(url)
            if matches!(
                url.scheme(),
                "redis" | "rediss" | "redis+unix" | "unix" | "redis-cluster" | "rediss-cluster"
            ) => {}
        Ok(url) => {
            return Err(ConfigError::invalid(
                "cluster.redis_url",
                format!(
                    "scheme {:?} is not redis, rediss, redis-cluster, rediss-cluster, redis+unix or unix",
                    url.scheme()
                ),
            ))
        }
        Err(error) => {
            return Err(ConfigError::invalid(
                "cluster.redis_url",
                format!("not a valid URL: {error}"),
            ))
        }
    }
    if raw.key_prefix.is_empty() || raw.key_prefix.contains(char::is_whitespace) {
        return Err(ConfigError::invalid(
            "cluster.key_prefix",
            "must be non-empty and without whitespace",
        ));
    }
    Ok(ClusterSettings {
        redis_url,
        node_ttl: seconds("cluster.node_ttl_secs", raw.node_ttl_secs, 1)?,
        key_prefix: raw.key_prefix,
    })
}

impl RawApp {
    /// Checks an app registered through the admin API (or read back from the
    /// state file) and fills its defaults from `server`. Errors read
    /// `app "ID": ...`. A relative `schema_file` stays relative (to the
    /// working directory).
    pub fn validate(self, server: &ServerSettings) -> Result<AppConfig, ConfigError> {
        let at = match &self.id {
            Some(id) => format!("app {id:?}"),
            None => "app".to_owned(),
        };
        app(self, server, None, &at)
    }
}

impl AppConfig {
    /// The app as a [`RawApp`], for the state file: the secrets included, and
    /// the timeouts written out even where they were the server's defaults.
    /// The demo-only sources ([`AuthSource::AcceptAnyToken`],
    /// [`SchemaSource::Inline`]) have no raw form and are left out.
    pub fn to_raw(&self) -> RawApp {
        let mut raw = RawApp {
            id: Some(self.id.clone()),
            secret: Some(self.secret.expose().to_owned()),
            jwt_issuer: self.jwt_issuer.clone(),
            jwt_audience: self.jwt_audience.clone(),
            close_on_token_expiry: matches!(
                self.auth,
                AuthSource::Jwks(_) | AuthSource::JwtSecret(_)
            )
            .then_some(self.close_on_token_expiry),
            message_endpoint: self.message_endpoint.clone(),
            join_endpoint: self.join_endpoint.clone(),
            events_endpoint: self.events_endpoint.clone(),
            allowed_origins: self.allowed_origins.clone(),
            webhook_timeout_ms: Some(
                u64::try_from(self.webhook_timeout.as_millis()).unwrap_or(u64::MAX),
            ),
            schema_refresh_secs: Some(self.schema_refresh.as_secs()),
            pushes_per_second: self.pushes_per_second,
            ..RawApp::default()
        };
        match &self.auth {
            AuthSource::Endpoint(url) => raw.auth_endpoint = Some(url.clone()),
            AuthSource::Jwks(url) => raw.jwks_url = Some(url.clone()),
            AuthSource::JwtSecret(key) => raw.jwt_secret = Some(key.expose().to_owned()),
            AuthSource::AcceptAnyToken => {}
        }
        match &self.schema {
            SchemaSource::Endpoint(url) => raw.schema_endpoint = Some(url.clone()),
            SchemaSource::File(path) => raw.schema_file = Some(path.to_string_lossy().into_owned()),
            SchemaSource::Inline(_) => {}
        }
        raw
    }
}

/// Validates one app; `at` names it in errors.
fn app(
    raw: RawApp,
    server: &ServerSettings,
    base_dir: Option<&Path>,
    at: &str,
) -> Result<AppConfig, ConfigError> {
    let invalid = |message: String| ConfigError::invalid(at, message);

    let id = raw.id.ok_or_else(|| invalid("id is required".to_owned()))?;
    check_app_id(&id).map_err(invalid)?;

    let secret = match raw.secret {
        None => return Err(invalid("secret is required".to_owned())),
        Some(secret) if secret.is_empty() => {
            return Err(invalid("secret must not be empty".to_owned()))
        }
        Some(secret) => Secret::new(secret),
    };

    let auth = match (raw.auth_endpoint, raw.jwks_url, raw.jwt_secret) {
        (Some(url), None, None) => {
            AuthSource::Endpoint(http_url("auth_endpoint", url).map_err(invalid)?)
        }
        (None, Some(url), None) => AuthSource::Jwks(http_url("jwks_url", url).map_err(invalid)?),
        (None, None, Some(key)) if key.is_empty() => {
            return Err(invalid("jwt_secret must not be empty".to_owned()))
        }
        (None, None, Some(key)) => AuthSource::JwtSecret(Secret::new(key)),
        (None, None, None) => {
            return Err(invalid(
                "exactly one of auth_endpoint, jwks_url, jwt_secret is required".to_owned(),
            ))
        }
        (endpoint, jwks, key) => {
            let found: Vec<&str> = [
                endpoint.map(|_| "auth_endpoint"),
                jwks.map(|_| "jwks_url"),
                key.map(|_| "jwt_secret"),
            ]
            .into_iter()
            .flatten()
            .collect();
            return Err(invalid(format!(
                "exactly one of auth_endpoint, jwks_url, jwt_secret is allowed, found {}",
                found.join(" and ")
            )));
        }
    };
    let verifies_jwts = matches!(auth, AuthSource::Jwks(_) | AuthSource::JwtSecret(_));
    if raw.close_on_token_expiry.is_some() && !verifies_jwts {
        return Err(invalid(
            "close_on_token_expiry applies only with jwks_url or jwt_secret".to_owned(),
        ));
    }
    for (key, value) in [
        ("jwt_issuer", &raw.jwt_issuer),
        ("jwt_audience", &raw.jwt_audience),
    ] {
        match value {
            Some(_) if !verifies_jwts => {
                return Err(invalid(format!(
                    "{key} applies only with jwks_url or jwt_secret"
                )))
            }
            Some(value) if value.is_empty() => {
                return Err(invalid(format!("{key} must not be empty")))
            }
            _ => {}
        }
    }

    let schema = match (raw.schema_endpoint, raw.schema_file) {
        (Some(url), None) => {
            SchemaSource::Endpoint(http_url("schema_endpoint", url).map_err(invalid)?)
        }
        (None, Some(file)) if file.is_empty() => {
            return Err(invalid("schema_file must not be empty".to_owned()))
        }
        (None, Some(file)) => SchemaSource::File(match base_dir {
            Some(dir) => dir.join(file),
            None => PathBuf::from(file),
        }),
        (None, None) => {
            return Err(invalid(
                "exactly one of schema_endpoint, schema_file is required".to_owned(),
            ))
        }
        (Some(_), Some(_)) => {
            return Err(invalid(
                "exactly one of schema_endpoint, schema_file is allowed, found both".to_owned(),
            ))
        }
    };

    let optional_url =
        |key: &str, url: Option<String>| url.map(|url| http_url(key, url)).transpose();
    let message_endpoint =
        optional_url("message_endpoint", raw.message_endpoint).map_err(invalid)?;
    let join_endpoint = optional_url("join_endpoint", raw.join_endpoint).map_err(invalid)?;
    let events_endpoint = optional_url("events_endpoint", raw.events_endpoint).map_err(invalid)?;

    if let Some(origins) = &raw.allowed_origins {
        for (index, origin) in origins.iter().enumerate() {
            check_origin(origin).map_err(|problem| {
                invalid(format!("allowed_origins[{index}] {origin:?} {problem}"))
            })?;
        }
    }

    let webhook_timeout = match raw.webhook_timeout_ms {
        Some(ms) => millis("webhook_timeout_ms", ms, 1).map_err(|e| within(at, e))?,
        None => server.webhook_timeout,
    };
    let schema_refresh = match raw.schema_refresh_secs {
        Some(secs) => seconds("schema_refresh_secs", secs, 1).map_err(|e| within(at, e))?,
        None => server.schema_refresh,
    };

    Ok(AppConfig {
        id,
        secret,
        auth,
        jwt_issuer: raw.jwt_issuer,
        jwt_audience: raw.jwt_audience,
        close_on_token_expiry: raw.close_on_token_expiry.unwrap_or(true),
        schema,
        message_endpoint,
        join_endpoint,
        events_endpoint,
        allowed_origins: raw.allowed_origins,
        webhook_timeout,
        schema_refresh,
        pushes_per_second: raw.pushes_per_second,
    })
}

/// An app id: 1 to 64 of `A-Z a-z 0-9 _ -` (it appears in URLs, metrics
/// labels and Redis keys).
fn check_app_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("id must not be empty".to_owned());
    }
    if id.len() > MAX_APP_ID_LEN {
        return Err(format!("id is longer than {MAX_APP_ID_LEN} characters"));
    }
    if let Some(bad) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(format!(
            "id {id:?} contains {bad:?}; use only letters, digits, `-` and `_`"
        ));
    }
    Ok(())
}

/// Checks that `url` is an absolute http or https URL with a host.
fn http_url(key: &str, url: String) -> Result<String, String> {
    match Url::parse(&url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.has_host() => Ok(url),
        Ok(parsed) => Err(format!(
            "{key} must be an http or https URL, not {:?}",
            parsed.scheme()
        )),
        Err(error) => Err(format!("{key} {url:?} is not a valid URL: {error}")),
    }
}

/// Checks that an http(s) origin is written exactly as browsers send it
/// (`https://example.com`: lower case host, no default port, no path, no
/// trailing slash), since it is compared as a string. Origins of other
/// schemes (`capacitor://localhost`, `null`) are taken verbatim.
fn check_origin(origin: &str) -> Result<(), String> {
    if origin.is_empty() || origin.contains(char::is_whitespace) {
        return Err("is not an origin".to_owned());
    }
    let Ok(url) = Url::parse(origin) else {
        return if origin.starts_with("http:") || origin.starts_with("https:") {
            Err("is not an origin".to_owned())
        } else {
            Ok(())
        };
    };
    if !matches!(url.scheme(), "http" | "https") {
        return Ok(());
    }
    let canonical = url.origin().ascii_serialization();
    if canonical == origin {
        Ok(())
    } else {
        Err(format!(
            "is not an origin as browsers send it; write {canonical:?}"
        ))
    }
}

fn at_least_one<T: PartialEq + From<u8>>(key: &str, value: T) -> Result<T, ConfigError> {
    if value == T::from(0) {
        Err(ConfigError::invalid(key, "must be at least 1"))
    } else {
        Ok(value)
    }
}

fn seconds(key: &str, secs: u64, min: u64) -> Result<Duration, ConfigError> {
    duration(key, Duration::from_secs(secs), secs, min)
}

fn millis(key: &str, ms: u64, min: u64) -> Result<Duration, ConfigError> {
    duration(key, Duration::from_millis(ms), ms, min)
}

fn duration(key: &str, duration: Duration, value: u64, min: u64) -> Result<Duration, ConfigError> {
    if value < min {
        return Err(ConfigError::invalid(key, format!("must be at least {min}")));
    }
    if duration > MAX_DURATION {
        return Err(ConfigError::invalid(key, "must be at most one year"));
    }
    Ok(duration)
}

/// Prefixes an app-level key error with the app's location:
/// `apps[0] ("x"): webhook_timeout_ms: must be at least 1`.
fn within(at: &str, error: ConfigError) -> ConfigError {
    ConfigError::invalid(at, error.to_string())
}
