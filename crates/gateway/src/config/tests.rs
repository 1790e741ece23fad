//! Tests of the config loader on the fixture files under
//! `crates/gateway/tests/fixtures/config/`, good and broken, plus the admin
//! API's [`RawApp`] form and the demo default.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/config")
        .join(name)
}

fn fixture_text(name: &str) -> String {
    std::fs::read_to_string(fixture_path(name)).expect("fixture exists")
}

fn no_env(_: &str) -> Option<String> {
    None
}

fn full_env(name: &str) -> Option<String> {
    match name {
        "ADMIN_TOKEN" => Some("admin-t0ken".to_owned()),
        "SOLO_UNICORN_SECRET" => Some("unicorn-s3cret".to_owned()),
        "JWT_KEY" => Some("hs256-key".to_owned()),
        _ => None,
    }
}

/// Parses a fixture with no environment and returns its error's message.
fn error_of(name: &str) -> String {
    let error =
        Config::from_toml_str(&fixture_text(name), &no_env).expect_err("fixture should be refused");
    let message = error.to_string();
    assert!(!message.contains('\n'), "not one line: {message}");
    message
}

fn minimal_app_json() -> serde_json::Value {
    serde_json::json!({
        "id": "admin-app",
        "secret": "s",
        "auth_endpoint": "https://api.example/auth",
        "schema_endpoint": "https://api.example/schema",
    })
}

#[test]
fn full_file_sets_every_key() {
    let base_dir = Path::new("/etc/switchboard");
    let config = parse(&fixture_text("full.toml"), &full_env, Some(base_dir)).unwrap();

    assert_eq!(
        config.server,
        ServerSettings {
            listen: "0.0.0.0:4100".to_owned(),
            admin_token: Some(Secret::new("admin-t0ken")),
            idle_timeout: Duration::from_secs(90),
            webhook_timeout: Duration::from_millis(2500),
            schema_refresh: Duration::from_secs(120),
            state_file: PathBuf::from("/var/lib/switchboard/state.json"),
            drain_timeout: Duration::from_secs(15),
            trusted_proxies: vec![
                "10.0.0.0/8".parse().unwrap(),
                "192.0.2.7/32".parse().unwrap(),
            ],
            tls: Some(TlsFiles {
                cert_file: PathBuf::from("/etc/switchboard/tls/cert.pem"),
                key_file: PathBuf::from("/etc/ssl/private/switchboard.key"),
            }),
        }
    );
    assert_eq!(
        config.limits,
        Limits {
            max_frame_bytes: 65536,
            max_channels_per_connection: 20,
            max_connections_per_client: 3,
            connects_per_ip_per_second: 50,
            joins_per_connection_per_second: 4,
            joins_per_connection_burst: 8,
            app_pushes_per_second: 1000,
            rate_limit_strikes: 7,
            max_webhook_payload_bytes: 4096,
            max_longpoll_sessions: 300,
            max_longpoll_sessions_per_ip: 30,
            handshake_timeout: Duration::from_millis(4000),
            outbound_queue: 512,
            jwt_leeway: Duration::from_secs(5),
            jwks_refresh_cooldown: Duration::from_secs(60),
            webhooks_in_flight_per_app: 64,
            max_body_bytes: 262144,
            jwks_refresh_min: Duration::from_secs(10),
            jwks_refresh_max: Duration::from_secs(3600),
            jwks_refresh_default: Duration::from_secs(120),
        }
    );
    assert_eq!(
        config.cluster,
        Some(ClusterSettings {
            redis_url: "redis://127.0.0.1:6379/2".to_owned(),
            node_ttl: Duration::from_secs(7),
            key_prefix: "sb-test".to_owned(),
        })
    );

    let [solo, jwt, jwks] = &config.apps[..] else {
        panic!("three apps expected, got {:?}", config.apps);
    };
    assert_eq!(
        *solo,
        AppConfig {
            id: "solo-unicorn".to_owned(),
            secret: Secret::new("unicorn-s3cret"),
            auth: AuthSource::Endpoint("https://api.example/auth/websocket".to_owned()),
            jwt_issuer: None,
            jwt_audience: None,
            close_on_token_expiry: true,
            schema: SchemaSource::Endpoint("https://api.example/messages-schema".to_owned()),
            message_endpoint: Some("https://api.example/messages".to_owned()),
            join_endpoint: Some("https://api.example/join".to_owned()),
            events_endpoint: Some("https://api.example/events".to_owned()),
            allowed_origins: Some(vec![
                "https://solounicorn.lol".to_owned(),
                "http://localhost:3000".to_owned(),
            ]),
            webhook_timeout: Duration::from_millis(1500),
            schema_refresh: Duration::from_secs(30),
            pushes_per_second: Some(250),
        }
    );
    assert_eq!(solo.secret.expose(), "unicorn-s3cret");

    assert_eq!(jwt.id, "jwt_app");
    assert!(matches!(&jwt.auth, AuthSource::JwtSecret(key) if key.expose() == "hs256-key"));
    assert_eq!(jwt.jwt_issuer.as_deref(), Some("https://issuer.example"));
    assert_eq!(jwt.jwt_audience.as_deref(), Some("switchboard"));
    assert!(!jwt.close_on_token_expiry);
    assert_eq!(
        jwt.schema,
        SchemaSource::File(base_dir.join("schemas/jwt_app.json"))
    );
    // An app without its own timeouts takes the server's.
    assert_eq!(jwt.webhook_timeout, Duration::from_millis(2500));
    assert_eq!(jwt.schema_refresh, Duration::from_secs(120));
    assert_eq!(jwt.message_endpoint, None);
    assert_eq!(jwt.allowed_origins, None);

    assert_eq!(
        jwks.auth,
        AuthSource::Jwks("https://issuer.example/.well-known/jwks.json".to_owned())
    );
    // An absolute schema_file is kept as is.
    assert_eq!(
        jwks.schema,
        SchemaSource::File(PathBuf::from("/etc/switchboard/jwks_app.json"))
    );
}

#[test]
fn full_file_without_base_dir_keeps_relative_schema_file() {
    let config = Config::from_toml_str(&fixture_text("full.toml"), &full_env).unwrap();
    assert_eq!(
        config.apps[1].schema,
        SchemaSource::File(PathBuf::from("schemas/jwt_app.json"))
    );
}

#[test]
fn minimal_file_takes_every_default() {
    let config = Config::load(&fixture_path("minimal.toml")).unwrap();
    assert_eq!(config.server, ServerSettings::default());
    assert_eq!(config.limits, Limits::default());
    assert_eq!(config.cluster, None);
    assert_eq!(
        config.apps,
        vec![AppConfig {
            id: "minimal".to_owned(),
            secret: Secret::new("s3cret"),
            auth: AuthSource::Endpoint("http://localhost:8080/auth".to_owned()),
            jwt_issuer: None,
            jwt_audience: None,
            close_on_token_expiry: true,
            schema: SchemaSource::Endpoint("http://localhost:8080/schema".to_owned()),
            message_endpoint: None,
            join_endpoint: None,
            events_endpoint: None,
            allowed_origins: None,
            webhook_timeout: Duration::from_millis(5000),
            schema_refresh: Duration::from_secs(300),
            pushes_per_second: None,
        }]
    );
}

#[test]
fn empty_file_is_all_defaults_and_no_apps() {
    let config = Config::load(&fixture_path("empty.toml")).unwrap();
    assert_eq!(config.server, ServerSettings::default());
    assert_eq!(config.limits, Limits::default());
    assert_eq!(config.cluster, None);
    assert!(config.apps.is_empty());
    assert_eq!(Config::from_toml_str("", &no_env).unwrap(), config);
}

#[test]
fn defaults_are_the_contracts() {
    let server = ServerSettings::default();
    assert_eq!(server.listen, "127.0.0.1:4000");
    assert_eq!(server.admin_token, None);
    assert_eq!(server.idle_timeout, Duration::from_secs(60));
    assert_eq!(server.webhook_timeout, Duration::from_millis(5000));
    assert_eq!(server.schema_refresh, Duration::from_secs(300));
    assert_eq!(server.state_file, PathBuf::from("switchboard-state.json"));
    assert_eq!(server.drain_timeout, Duration::from_secs(30));

    let limits = Limits::default();
    assert_eq!(limits.max_frame_bytes, 1_048_576);
    assert_eq!(limits.max_channels_per_connection, 100);
    assert_eq!(limits.max_connections_per_client, 0);
    assert_eq!(limits.connects_per_ip_per_second, 100);
    assert_eq!(limits.handshake_timeout, Duration::from_millis(10_000));
    assert_eq!(limits.outbound_queue, 1024);
    assert_eq!(limits.jwt_leeway, Duration::from_secs(30));
    assert_eq!(limits.jwks_refresh_cooldown, Duration::from_secs(30));
    assert_eq!(limits.webhooks_in_flight_per_app, 256);
    assert_eq!(limits.max_body_bytes, 1_048_576);
    assert_eq!(limits.jwks_refresh_min, Duration::from_secs(30));
    assert_eq!(limits.jwks_refresh_max, Duration::from_secs(86_400));
    assert_eq!(limits.jwks_refresh_default, Duration::from_secs(300));
    assert_eq!(limits.joins_per_connection_per_second, 10);
    assert_eq!(limits.joins_per_connection_burst, 100);
    assert_eq!(limits.app_pushes_per_second, 0);
    assert_eq!(limits.rate_limit_strikes, 50);
    assert_eq!(limits.max_webhook_payload_bytes, 1_048_576);
    assert_eq!(limits.max_longpoll_sessions, 10_000);
    assert_eq!(limits.max_longpoll_sessions_per_ip, 1000);

    let config =
        Config::from_toml_str("[cluster]\nredis_url = \"redis://127.0.0.1:6379\"", &no_env)
            .unwrap();
    assert_eq!(config.cluster.unwrap().node_ttl, Duration::from_secs(10));
}

#[test]
fn schema_file_is_resolved_against_the_config_files_directory() {
    let config = Config::load(&fixture_path("schema_file.toml")).unwrap();
    let SchemaSource::File(path) = &config.apps[0].schema else {
        panic!("file schema expected");
    };
    assert_eq!(*path, fixture_path("schemas/jwt_app.json"));
    assert!(path.is_file());
}

#[test]
fn env_variables_are_substituted() {
    let config = Config::from_toml_str(&fixture_text("full.toml"), &full_env).unwrap();
    assert!(config.server.admin_token.unwrap().matches("admin-t0ken"));
    assert!(config.apps[0].secret.matches("unicorn-s3cret"));

    let text = "[server]\nlisten = \"0.0.0.0:${PORT}\"\nidle_timeout_secs = ${IDLE}\n";
    let env = |name: &str| match name {
        "PORT" => Some("4242".to_owned()),
        "IDLE" => Some("5".to_owned()),
        _ => None,
    };
    let config = Config::from_toml_str(text, &env).unwrap();
    assert_eq!(config.server.listen, "0.0.0.0:4242");
    assert_eq!(config.server.idle_timeout, Duration::from_secs(5));
}

#[test]
fn missing_env_variable_is_named_with_its_line() {
    assert_eq!(
        error_of("missing_env.toml"),
        "environment variable SOLO_SECRET is not set (used at line 7)"
    );
    let error = Config::from_toml_str("a = \"${BAD NAME}\"", &no_env).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("line 1, column 6: `${` must be followed"),
        "{error}"
    );
}

#[test]
fn unknown_keys_are_errors_naming_the_key() {
    let message = error_of("unknown_key.toml");
    assert!(
        message.starts_with("line 3, column 1: unknown field `idle_timeout`"),
        "{message}"
    );
    let message = error_of("unknown_app_key.toml");
    assert!(
        message.starts_with("line 6, column 1: unknown field `mesage_endpoint`"),
        "{message}"
    );
    let message = Config::from_toml_str("[server]\n[limit]\n", &no_env)
        .unwrap_err()
        .to_string();
    assert!(message.contains("unknown field `limit`"), "{message}");
}

#[test]
fn type_and_syntax_errors_carry_line_and_column() {
    let message = error_of("wrong_type.toml");
    assert!(
        message.starts_with("line 2, column 19: invalid type: string \"big\""),
        "{message}"
    );
    let message = error_of("syntax_error.toml");
    assert!(message.starts_with("line 2, column "), "{message}");
}

#[test]
fn two_auth_sources_are_refused_naming_the_app() {
    assert_eq!(
        error_of("two_auth_sources.toml"),
        "apps[1] (\"solo\"): exactly one of auth_endpoint, jwks_url, jwt_secret is allowed, \
         found auth_endpoint and jwt_secret"
    );
}

#[test]
fn no_auth_source_is_refused_naming_the_app() {
    assert_eq!(
        error_of("no_auth_source.toml"),
        "apps[0] (\"solo\"): exactly one of auth_endpoint, jwks_url, jwt_secret is required"
    );
}

#[test]
fn duplicate_app_ids_are_refused() {
    assert_eq!(
        error_of("duplicate_ids.toml"),
        "apps[1] (\"twin\"): duplicate app id (already used by apps[0])"
    );
}

#[test]
fn bad_listen_is_refused() {
    assert_eq!(
        error_of("bad_listen.toml"),
        "server.listen: \"localhost\" is not an IP address and port such as 0.0.0.0:4000"
    );
}

#[test]
fn bad_urls_are_refused() {
    assert_eq!(
        error_of("bad_url.toml"),
        "apps[0] (\"ftp\"): message_endpoint must be an http or https URL, not \"ftp\""
    );
    let app = |extra: &str| {
        format!(
            "[[apps]]\nid = \"a\"\nsecret = \"s\"\nschema_endpoint = \"https://x.example/s\"\n{extra}\n"
        )
    };
    let message = Config::from_toml_str(&app("auth_endpoint = \"not a url\""), &no_env)
        .unwrap_err()
        .to_string();
    assert_eq!(
        message,
        "apps[0] (\"a\"): auth_endpoint \"not a url\" is not a valid URL: relative URL without a base"
    );
    for bad in [
        "auth_endpoint = \"https://x.example/a\"\njoin_endpoint = \"\"",
        "jwks_url = \"mailto:keys@x.example\"",
        "auth_endpoint = \"https://x.example/a\"\nevents_endpoint = \"file:///tmp/events\"",
    ] {
        assert!(Config::from_toml_str(&app(bad), &no_env).is_err(), "{bad}");
    }
}

#[test]
fn other_invalid_values_are_refused_with_their_place() {
    let app = |body: &str| format!("[[apps]]\n{body}\n");
    let base = "id = \"a\"\nsecret = \"s\"\nauth_endpoint = \"https://x.example/a\"\nschema_endpoint = \"https://x.example/s\"";
    let cases: Vec<(String, &str)> = vec![
        ("[server]\nadmin_token = \"\"".to_owned(), "server.admin_token: must not be empty"),
        ("[server]\ntls_cert_file = \"c.pem\"".to_owned(), "server.tls_cert_file: is set without tls_key_file; set both to serve TLS, or neither"),
        ("[server]\ntls_key_file = \"k.pem\"".to_owned(), "server.tls_key_file: is set without tls_cert_file"),
        ("[server]\ntls_cert_file = \"\"\ntls_key_file = \"k.pem\"".to_owned(), "server.tls_cert_file: must not be empty"),
        ("[server]\nidle_timeout_secs = 0".to_owned(), "server.idle_timeout_secs: must be at least 1"),
        ("[server]\nschema_refresh_secs = 99999999999".to_owned(), "server.schema_refresh_secs: must be at most one year"),
        ("[limits]\nmax_frame_bytes = 0".to_owned(), "limits.max_frame_bytes: must be at least 1"),
        ("[limits]\nwebhooks_in_flight_per_app = 0".to_owned(), "limits.webhooks_in_flight_per_app: must be at least 1"),
        ("[limits]\njoins_per_connection_burst = 0".to_owned(), "limits.joins_per_connection_burst: must be at least 1"),
        ("[limits]\nmax_webhook_payload_bytes = 0".to_owned(), "limits.max_webhook_payload_bytes: must be at least 1"),
        ("[limits]\nmax_longpoll_sessions = 0".to_owned(), "limits.max_longpoll_sessions: must be at least 1"),
        ("[server]\ntrusted_proxies = [\"10.0.0.0/8\", \"proxy.local\"]".to_owned(), "server.trusted_proxies[1]: \"proxy.local\" is not an IP address or a CIDR range such as 10.0.0.0/8"),
        ("[cluster]\nnode_ttl_secs = 5".to_owned(), "cluster: redis_url is required"),
        ("[cluster]\nredis_url = \"http://x.example\"".to_owned(), "cluster.redis_url: scheme \"http\""),
        (app("secret = \"s\"\nauth_endpoint = \"https://x.example/a\"\nschema_endpoint = \"https://x.example/s\""), "apps[0]: id is required"),
        (app("id = \"a b\"\nsecret = \"s\"\nauth_endpoint = \"https://x.example/a\"\nschema_endpoint = \"https://x.example/s\""), "apps[0] (\"a b\"): id \"a b\" contains ' '"),
        (app(&format!("id = \"{}\"\nsecret = \"s\"", "x".repeat(65))), "id is longer than 64 characters"),
        (app("id = \"a\"\nauth_endpoint = \"https://x.example/a\"\nschema_endpoint = \"https://x.example/s\""), "apps[0] (\"a\"): secret is required"),
        (app("id = \"a\"\nsecret = \"\"\nauth_endpoint = \"https://x.example/a\"\nschema_endpoint = \"https://x.example/s\""), "apps[0] (\"a\"): secret must not be empty"),
        (app("id = \"a\"\nsecret = \"s\"\nauth_endpoint = \"https://x.example/a\""), "apps[0] (\"a\"): exactly one of schema_endpoint, schema_file is required"),
        (app(&format!("{base}\nschema_file = \"s.json\"")), "apps[0] (\"a\"): exactly one of schema_endpoint, schema_file is allowed, found both"),
        (app(&format!("{base}\njwt_issuer = \"me\"")), "apps[0] (\"a\"): jwt_issuer applies only with jwks_url or jwt_secret"),
        (app(&format!("{base}\nclose_on_token_expiry = false")), "apps[0] (\"a\"): close_on_token_expiry applies only with jwks_url or jwt_secret"),
        ("[limits]\njwks_refresh_min_secs = 0".to_owned(), "limits.jwks_refresh_min_secs: must be at least 1"),
        ("[limits]\njwks_refresh_min_secs = 60\njwks_refresh_max_secs = 59".to_owned(), "limits.jwks_refresh_max_secs: must be at least limits.jwks_refresh_min_secs"),
        (app(&format!("{base}\nallowed_origins = [\"https://ok.example\", \"https://x.example/\"]")), "apps[0] (\"a\"): allowed_origins[1] \"https://x.example/\" is not an origin as browsers send it; write \"https://x.example\""),
        (app(&format!("{base}\nallowed_origins = [\"https://x.example:443\"]")), "write \"https://x.example\""),
        (app(&format!("{base}\nwebhook_timeout_ms = 0")), "apps[0] (\"a\"): webhook_timeout_ms: must be at least 1"),
    ];
    for (text, expected) in cases {
        let message = Config::from_toml_str(&text, &no_env)
            .expect_err(&text)
            .to_string();
        assert!(message.contains(expected), "{text}\n=> {message}");
        assert!(!message.contains('\n'), "{message}");
    }
}

#[test]
fn other_origin_schemes_are_taken_verbatim() {
    let text = "[[apps]]\nid = \"a\"\nsecret = \"s\"\nauth_endpoint = \"https://x.example/a\"\n\
                schema_endpoint = \"https://x.example/s\"\n\
                allowed_origins = [\"capacitor://localhost\", \"http://localhost:3000\"]\n";
    let config = Config::from_toml_str(text, &no_env).unwrap();
    assert_eq!(
        config.apps[0].allowed_origins.as_deref(),
        Some(
            &[
                "capacitor://localhost".to_owned(),
                "http://localhost:3000".to_owned()
            ][..]
        )
    );
}

#[test]
fn load_errors_name_the_file() {
    let path = fixture_path("bad_listen.toml");
    let error = Config::load(&path).unwrap_err();
    assert_eq!(error.file(), Some(path.as_path()));
    assert_eq!(
        error.to_string(),
        format!(
            "{}: server.listen: \"localhost\" is not an IP address and port such as 0.0.0.0:4000",
            path.display()
        )
    );

    let missing = fixture_path("does-not-exist.toml");
    let error = Config::load(&missing).unwrap_err();
    assert!(matches!(error.kind(), ConfigErrorKind::Read(_)));
    assert!(
        error
            .to_string()
            .starts_with(&format!("{}: cannot read the file: ", missing.display())),
        "{error}"
    );
}

#[test]
fn secrets_are_redacted_in_debug_output() {
    let config = Config::from_toml_str(&fixture_text("full.toml"), &full_env).unwrap();
    let debug = format!("{config:?}");
    for secret in [
        "admin-t0ken",
        "unicorn-s3cret",
        "hs256-key",
        "jwt-app-secret",
    ] {
        assert!(!debug.contains(secret), "{secret} leaked");
    }
    assert!(debug.contains("[redacted]"));

    let raw: raw::RawConfig =
        toml::from_str(&env::substitute(&fixture_text("full.toml"), &full_env).unwrap()).unwrap();
    let debug = format!("{raw:?}");
    for secret in [
        "admin-t0ken",
        "unicorn-s3cret",
        "hs256-key",
        "jwt-app-secret",
    ] {
        assert!(
            !debug.contains(secret),
            "{secret} leaked from the raw config"
        );
    }
    assert!(debug.contains("solo-unicorn"), "{debug}");

    let text = "[cluster]\nredis_url = \"redis://user:redis-pa55@127.0.0.1:6379\"\n";
    let debug = format!("{:?}", Config::from_toml_str(text, &no_env).unwrap());
    assert!(!debug.contains("redis-pa55"), "{debug}");
    let raw: raw::RawConfig = toml::from_str(text).unwrap();
    assert!(!format!("{raw:?}").contains("redis-pa55"), "{raw:?}");
    assert!(
        debug.contains("redis://user:redacted@127.0.0.1:6379"),
        "{debug}"
    );
}

#[test]
fn raw_app_json_roundtrips_through_to_raw() {
    let config = Config::from_toml_str(&fixture_text("full.toml"), &full_env).unwrap();
    for app in &config.apps {
        let json = serde_json::to_string(&app.to_raw()).unwrap();
        let raw: RawApp = serde_json::from_str(&json).unwrap();
        assert_eq!(raw, app.to_raw());
        // Validated against a server with other defaults: the app keeps its own.
        let other_server = ServerSettings {
            webhook_timeout: Duration::from_secs(1),
            schema_refresh: Duration::from_secs(1),
            ..ServerSettings::default()
        };
        assert_eq!(raw.validate(&other_server).unwrap(), *app);
    }
    let json = serde_json::to_value(config.apps[0].to_raw()).unwrap();
    assert_eq!(json["secret"], "unicorn-s3cret");
    assert_eq!(json["webhook_timeout_ms"], 1500);
    assert!(
        json.get("jwt_secret").is_none(),
        "absent fields are omitted"
    );
}

#[test]
fn raw_app_from_admin_json_takes_server_defaults() {
    let server = ServerSettings {
        webhook_timeout: Duration::from_millis(700),
        ..ServerSettings::default()
    };
    let raw: RawApp = serde_json::from_value(minimal_app_json()).unwrap();
    let app = raw.validate(&server).unwrap();
    assert_eq!(app.id, "admin-app");
    assert_eq!(app.webhook_timeout, Duration::from_millis(700));
    assert_eq!(app.schema_refresh, Duration::from_secs(300));

    let mut no_auth = minimal_app_json();
    no_auth.as_object_mut().unwrap().remove("auth_endpoint");
    let raw: RawApp = serde_json::from_value(no_auth).unwrap();
    assert_eq!(
        raw.validate(&server).unwrap_err().to_string(),
        "app \"admin-app\": exactly one of auth_endpoint, jwks_url, jwt_secret is required"
    );

    let mut typo = minimal_app_json();
    typo["secrett"] = "x".into();
    let error = serde_json::from_value::<RawApp>(typo).unwrap_err();
    assert!(
        error.to_string().contains("unknown field `secrett`"),
        "{error}"
    );
}

#[test]
fn without_secrets_drops_both_secrets() {
    let raw = RawApp {
        jwt_secret: Some("k".to_owned()),
        auth_endpoint: None,
        ..serde_json::from_value(minimal_app_json()).unwrap()
    };
    let public = raw.clone().without_secrets();
    assert_eq!(public.secret, None);
    assert_eq!(public.jwt_secret, None);
    assert_eq!(public.id, raw.id);
    assert_eq!(public.schema_endpoint, raw.schema_endpoint);
}

#[test]
fn demo_config_is_the_contracts_default() {
    let demo = Config::demo();
    assert_eq!(demo.server, ServerSettings::default());
    assert_eq!(demo.server.listen, "127.0.0.1:4000");
    assert_eq!(demo.limits, Limits::default());
    assert_eq!(demo.cluster, None);
    let [app] = &demo.apps[..] else {
        panic!("one demo app expected");
    };
    assert_eq!(app.id, "demo");
    assert!(app.secret.matches("demo-secret"));
    assert_eq!(app.auth, AuthSource::AcceptAnyToken);
    assert_eq!(app.message_endpoint, None);
    assert_eq!(app.join_endpoint, None);
    assert_eq!(app.events_endpoint, None);
    assert_eq!(app.allowed_origins, None);

    // Its id and secret pass the checks a configured app goes through.
    let mut raw = app.to_raw();
    raw.auth_endpoint = Some("https://x.example/auth".to_owned());
    raw.schema_endpoint = Some("https://x.example/schema".to_owned());
    raw.validate(&demo.server).unwrap();
}

#[test]
fn demo_schema_is_the_documented_json() {
    let SchemaSource::Inline(text) = &Config::demo().apps[0].schema else {
        panic!("inline schema expected");
    };
    let schema: serde_json::Value = serde_json::from_str(text).unwrap();
    assert_eq!(schema["version"], "demo-1");

    let patterns: Vec<&str> = schema["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|channel| channel["pattern"].as_str().unwrap())
        .collect();
    assert_eq!(patterns, ["room:{name}", "user:{id}", "demo:*"]);
    let room = &schema["channels"][0];
    assert_eq!(room["presence"], true);
    assert_eq!(room["variables"]["name"]["format"], "slug");
    assert_eq!(room["variables"]["name"]["maxLength"], 64);
    let user = &schema["channels"][1];
    assert_eq!(user["variables"]["id"]["format"], "slug");
    assert_eq!(
        user["permissions"]["join"],
        serde_json::json!(["user:{id}"])
    );

    let events = schema["events"].as_array().unwrap();
    let names: Vec<&str> = events.iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["message", "typing", "shout"]);
    assert!(events.iter().all(|e| e["delivery"] == "broadcast"));
    assert_eq!(
        events[0]["allowedChannels"],
        serde_json::json!(["room:*", "demo:*"])
    );
    assert_eq!(
        events[0]["payload"]["required"],
        serde_json::json!(["body"])
    );
    assert_eq!(
        events[0]["payload"]["properties"]["body"]["maxLength"],
        2000
    );
    assert_eq!(events[1]["allowedChannels"], serde_json::json!(["room:*"]));
    assert_eq!(events[2]["allowedChannels"], serde_json::json!(["*"]));
    assert_eq!(events[2]["payload"]["type"], "object");
}

#[test]
fn errors_never_quote_values_from_the_environment() {
    let env = |name: &str| match name {
        "SECRET" => Some("12345678".to_owned()),
        "HOOK" => Some("not a url s3cr3t".to_owned()),
        _ => None,
    };
    // An unquoted numeric secret: a TOML type error that would quote it.
    let text = "[[apps]]\nid = \"a\"\nsecret = ${SECRET}\n";
    let message = Config::from_toml_str(text, &env).unwrap_err().to_string();
    assert!(!message.contains("12345678"), "{message}");
    assert!(message.contains("${SECRET}"), "{message}");
    // A bad URL whose text came from the environment.
    let text = "[[apps]]\nid = \"a\"\nsecret = \"s\"\nauth_endpoint = \"${HOOK}\"\nschema_endpoint = \"https://x.example/s\"\n";
    let message = Config::from_toml_str(text, &env).unwrap_err().to_string();
    assert!(!message.contains("s3cr3t"), "{message}");
    assert!(message.contains("${HOOK}"), "{message}");
}
