//! Local JWT verification with `jwks_url` (RS256, ES256): the key cache,
//! its refreshes (`Cache-Control: max-age`, unknown `kid`, cooldown,
//! failures) and algorithm confusion. The JWKS is served by the test's
//! mock backend at `/jwks`, which counts every fetch.

use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{json, Value};

use crate::support::tokens::*;
use crate::support::*;

/// The JWKS answer: these keys, cacheable for `max_age` seconds.
fn jwks_reply(keys: &[Value], max_age: u64) -> Reply {
    Reply::ok(jwks(keys)).with_header("cache-control", &format!("public, max-age={max_age}"))
}

/// A backend whose `/jwks` answers `reply`, and a gateway whose `app1`
/// verifies tokens against it (issuer and audience checked).
async fn jwks_server(
    reply: Reply,
    extra: impl FnOnce(Setup) -> Setup,
) -> (MockBackend, TestServer) {
    let backend = MockBackend::start(schema("1.0.0")).await;
    backend.set("/jwks", reply);
    let setup = Setup::new(&backend)
        .auth(&format!("jwks_url = \"{}\"", backend.url("/jwks")))
        .app(&format!("jwt_issuer = \"{ISSUER}\""))
        .app(&format!("jwt_audience = \"{AUDIENCE}\""))
        .limits("connects_per_ip_per_second = 10000");
    let server = extra(setup).start().await;
    (backend, server)
}

/// Waits until `app1`'s JWKS has loaded.
async fn keys_loaded(server: &TestServer) {
    let gateway = server.gateway.clone();
    eventually("the JWKS loads", || {
        let gateway = gateway.clone();
        async move {
            gateway
                .apps
                .get(APP)
                .and_then(|app| {
                    app.token_keys()
                        .and_then(|k| k.jwks())
                        .map(|c| c.is_loaded())
                })
                .unwrap_or(false)
        }
    })
    .await;
}

fn query(token: &str) -> String {
    format!("app={APP}&token={token}&vsn=2.0.0")
}

/// An RS256 token for `sub` signed with `key` under `kid`.
fn rs256(key: &EncodingKey, kid: &str, sub: &str) -> String {
    sign(Algorithm::RS256, Some(kid), key, &claims(sub))
}

async fn connects(server: &TestServer, token: &str) -> bool {
    WsClient::try_connect(server.addr, &query(token), &[])
        .await
        .is_ok()
}

async fn auth_failures(server: &TestServer, cause: &str) -> f64 {
    metric_sum(
        &metrics(server).await,
        "switchboard_auth_failures_total",
        &[&format!("app=\"{APP}\""), &format!("reason=\"{cause}\"")],
    )
}

#[tokio::test]
async fn rs256_and_es256_tokens_connect_with_their_claims() {
    let keys = [
        jwk(&rsa_a(), Algorithm::RS256, "rsa-a"),
        jwk(&ec_a(), Algorithm::ES256, "ec-a"),
    ];
    let (backend, server) = jwks_server(jwks_reply(&keys, 3600), |s| s).await;
    keys_loaded(&server).await;

    let mut rsa_client = WsClient::connect(server.addr, &rs256(&rsa_a(), "rsa-a", "ann")).await;
    rsa_client.join_ok("project:1", "1").await;
    assert_eq!(
        rsa_client.join("project:2", "2").await["response"]["reason"],
        "unauthorized"
    );

    let es256 = sign(Algorithm::ES256, Some("ec-a"), &ec_a(), &claims("ben"));
    let mut ec_client = WsClient::connect(server.addr, &es256).await;
    ec_client.join_ok("team:red", "1").await;

    // A token without a kid is checked against every key of its algorithm.
    let no_kid = sign(Algorithm::ES256, None, &ec_a(), &claims("cy"));
    assert!(connects(&server, &no_kid).await);

    // `sub` became the client ids.
    let (_, body) = api(
        reqwest::Method::GET,
        &server.url(&format!("/api/v1/apps/{APP}/connections")),
        SECRET,
        None,
    )
    .await;
    let mut ids: Vec<&str> = body["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["client_id"].as_str().unwrap())
        .collect();
    ids.sort();
    assert!(ids.starts_with(&["ann", "ben"]), "{body}");
    // Fetched once at startup, unsigned, and not again (max-age 3600).
    let fetches = backend.requests("/jwks");
    assert_eq!(fetches.len(), 1, "{fetches:#?}");
    assert_eq!(fetches[0].header("x-switchboard-signature"), None);
}

#[tokio::test]
async fn algorithm_confusion_bad_signatures_and_unknown_kids_are_refused() {
    let keys = [jwk(&rsa_a(), Algorithm::RS256, "rsa-a")];
    let (_backend, server) = jwks_server(jwks_reply(&keys, 3600), |s| s).await;
    keys_loaded(&server).await;

    // HS256 "signed" with the RSA public key, the classic confusion attack.
    let public_n = keys[0]["n"].as_str().unwrap().to_owned();
    let confused = sign(
        Algorithm::HS256,
        Some("rsa-a"),
        &EncodingKey::from_secret(public_n.as_bytes()),
        &claims("mallory"),
    );
    // Right kid, wrong private key.
    let forged = rs256(&rsa_b(), "rsa-a", "mallory");
    // A kid naming an RSA key on an ES256 token.
    let mixed = sign(Algorithm::ES256, Some("rsa-a"), &ec_a(), &claims("mallory"));
    let unknown = rs256(&rsa_a(), "nobody-knows", "mallory");
    let expired = sign(
        Algorithm::RS256,
        Some("rsa-a"),
        &rsa_a(),
        &claims_with("old", json!({"exp": now() - 3600})),
    );
    for token in [
        &confused,
        &forged,
        &mixed,
        &unknown,
        &unsigned(&claims("x")),
        &expired,
    ] {
        assert_refused(server.addr, &query(token), &[], "unauthorized").await;
    }
    assert_eq!(auth_failures(&server, "disallowed_algorithm").await, 1.0);
    assert_eq!(auth_failures(&server, "bad_signature").await, 2.0);
    assert_eq!(auth_failures(&server, "unknown_kid").await, 1.0);
    assert_eq!(auth_failures(&server, "malformed").await, 1.0);
    assert_eq!(auth_failures(&server, "expired").await, 1.0);
    assert!(connects(&server, &rs256(&rsa_a(), "rsa-a", "ok")).await);
}

#[tokio::test]
async fn rotated_keys_are_picked_up_and_retired_keys_refused() {
    let (backend, server) = jwks_server(
        jwks_reply(&[jwk(&rsa_a(), Algorithm::RS256, "a")], 3600),
        |s| s.limits("jwks_refresh_cooldown_secs = 0"),
    )
    .await;
    keys_loaded(&server).await;
    assert!(connects(&server, &rs256(&rsa_a(), "a", "u1")).await);

    // The provider adds key "b": a token signed with it has an unknown kid,
    // which makes the gateway fetch the set again, and is then accepted.
    backend.set(
        "/jwks",
        jwks_reply(
            &[
                jwk(&rsa_a(), Algorithm::RS256, "a"),
                jwk(&rsa_b(), Algorithm::RS256, "b"),
            ],
            3600,
        ),
    );
    assert!(connects(&server, &rs256(&rsa_b(), "b", "u2")).await);
    assert_eq!(backend.requests("/jwks").len(), 2);

    // The provider retires "a": after the next fetch its tokens are refused.
    backend.set(
        "/jwks",
        jwks_reply(&[jwk(&rsa_b(), Algorithm::RS256, "b")], 3600),
    );
    let old = rs256(&rsa_a(), "a", "u3");
    // Still cached: no fetch has seen the retirement yet.
    assert!(connects(&server, &old).await);
    // An unknown kid refreshes the set (cooldown 0 here).
    assert_refused(
        server.addr,
        &query(&rs256(&rsa_a(), "c", "u4")),
        &[],
        "unauthorized",
    )
    .await;
    assert_refused(server.addr, &query(&old), &[], "unauthorized").await;
    assert!(connects(&server, &rs256(&rsa_b(), "b", "u5")).await);
}

#[tokio::test]
async fn jwks_down_at_startup_refuses_with_auth_service_error_until_it_loads() {
    let (backend, server) = jwks_server(Reply::json(503, json!({"error": "down"})), |s| {
        s.limits("jwks_refresh_min_secs = 1")
    })
    .await;
    backend.wait_requests("/jwks", 1).await;
    let token = rs256(&rsa_a(), "a", "patient");
    assert_refused(server.addr, &query(&token), &[], "auth_service_error").await;
    assert!(auth_failures(&server, "auth_service_error").await >= 1.0);

    // The provider comes back: a retry (1 s backoff, capped at
    // jwks_refresh_min_secs) loads the keys without a restart.
    backend.set(
        "/jwks",
        jwks_reply(&[jwk(&rsa_a(), Algorithm::RS256, "a")], 3600),
    );
    keys_loaded(&server).await;
    assert!(connects(&server, &token).await);
    let text = metrics(&server).await;
    assert!(
        metric_sum(
            &text,
            "switchboard_webhook_failures_total",
            &[
                &format!("app=\"{APP}\""),
                "kind=\"jwks\"",
                "reason=\"status\""
            ]
        ) >= 1.0,
        "{text}"
    );
}

#[tokio::test]
async fn cached_keys_keep_working_while_the_jwks_endpoint_is_down() {
    // The key set is served by a backend of its own, which then goes away.
    let mut provider = MockBackend::start(schema("1.0.0")).await;
    provider.set(
        "/jwks",
        jwks_reply(&[jwk(&rsa_a(), Algorithm::RS256, "a")], 1),
    );
    let backend = MockBackend::start(schema("1.0.0")).await;
    let server = Setup::new(&backend)
        .auth(&format!("jwks_url = \"{}\"", provider.url("/jwks")))
        .app(&format!("jwt_issuer = \"{ISSUER}\""))
        .app(&format!("jwt_audience = \"{AUDIENCE}\""))
        .limits("jwks_refresh_min_secs = 1")
        .start()
        .await;
    keys_loaded(&server).await;
    provider.stop().await;

    // Wait for a refresh (max-age 1 s) to fail against the stopped provider.
    let server_ref = &server;
    eventually("a JWKS refresh fails", || async move {
        metric_sum(
            &metrics(server_ref).await,
            "switchboard_webhook_failures_total",
            &[&format!("app=\"{APP}\""), "kind=\"jwks\""],
        ) >= 1.0
    })
    .await;
    let mut client = WsClient::connect(server.addr, &rs256(&rsa_a(), "a", "stale-ok")).await;
    client.join_ok("project:1", "1").await;
}

#[tokio::test]
async fn unknown_kids_share_one_fetch_and_a_forged_kid_flood_costs_one_fetch_per_cooldown() {
    let (backend, server) = jwks_server(
        jwks_reply(&[jwk(&rsa_a(), Algorithm::RS256, "a")], 3600),
        |s| s.limits("jwks_refresh_cooldown_secs = 300"),
    )
    .await;
    keys_loaded(&server).await;
    assert_eq!(backend.requests("/jwks").len(), 1);

    // The provider rotates in "b" and answers slowly: 20 clients with the
    // new kid arrive together; one fetch serves them all.
    backend.set(
        "/jwks",
        jwks_reply(
            &[
                jwk(&rsa_a(), Algorithm::RS256, "a"),
                jwk(&rsa_b(), Algorithm::RS256, "b"),
            ],
            3600,
        )
        .delayed(std::time::Duration::from_millis(500)),
    );
    let together = (0..20).map(|i| {
        let token = rs256(&rsa_b(), "b", &format!("new-{i}"));
        let server = &server;
        async move { connects(server, &token).await }
    });
    let accepted = futures_util::future::join_all(together).await;
    assert!(accepted.iter().all(|ok| *ok), "{accepted:?}");
    assert_eq!(backend.requests("/jwks").len(), 2);

    // 50 forged kids, concurrently then one by one: all refused, and no
    // further fetch within the cooldown.
    let forged = (0..50).map(|i| {
        let token = rs256(&rsa_b(), &format!("forged-{i}-{}", uuid_like(i)), "mallory");
        let server = &server;
        async move { refused(server.addr, &query(&token), &[]).await }
    });
    for (status, body) in futures_util::future::join_all(forged).await {
        assert_eq!(
            (status, body["reason"].as_str()),
            (403, Some("unauthorized"))
        );
    }
    for i in 0..10 {
        let token = rs256(&rsa_b(), &format!("late-{i}"), "mallory");
        assert_refused(server.addr, &query(&token), &[], "unauthorized").await;
    }
    assert_eq!(auth_failures(&server, "unknown_kid").await, 60.0);
    assert_eq!(backend.requests("/jwks").len(), 2);
}

/// A distinct pseudo-random suffix per `i`.
fn uuid_like(i: u64) -> String {
    format!("{:016x}", (i + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

#[tokio::test]
async fn a_short_max_age_causes_refetches() {
    let (backend, server) = jwks_server(
        jwks_reply(&[jwk(&rsa_a(), Algorithm::RS256, "a")], 1),
        |s| s.limits("jwks_refresh_min_secs = 1"),
    )
    .await;
    // max-age=1 (and a 1 s minimum): fetched again about every second. The
    // tests above with max-age=3600 see exactly one fetch.
    let fetches = backend.wait_requests("/jwks", 3).await;
    assert!(fetches.iter().all(|f| f.method == reqwest::Method::GET));
    assert!(connects(&server, &rs256(&rsa_a(), "a", "fresh")).await);
}

#[tokio::test]
async fn a_jwks_app_registered_through_the_admin_api_loads_its_keys() {
    let backend = MockBackend::start(schema("1.0.0")).await;
    backend.set(
        "/jwks",
        jwks_reply(&[jwk(&ec_a(), Algorithm::ES256, "e")], 3600),
    );
    let server = Setup::new(&backend).admin().start().await;
    let (status, body) = api(
        reqwest::Method::PUT,
        &server.url("/admin/v1/apps/jwks-app"),
        ADMIN_TOKEN,
        Some(json!({
            "secret": "jwks-app-secret",
            "jwks_url": backend.url("/jwks"),
            "schema_endpoint": backend.url("/schema"),
            "close_on_token_expiry": false,
        })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    // Fetched on registration, before any client.
    backend.wait_requests("/jwks", 1).await;
    let token = sign(Algorithm::ES256, Some("e"), &ec_a(), &claims("zed"));
    let gateway = server.gateway.clone();
    eventually("the registered app's schema and keys load", || {
        let gateway = gateway.clone();
        async move {
            gateway.apps.get("jwks-app").is_some_and(|app| {
                app.schema().is_some()
                    && app
                        .token_keys()
                        .and_then(|k| k.jwks())
                        .is_some_and(|c| c.is_loaded())
            })
        }
    })
    .await;
    WsClient::connect_query(
        server.addr,
        &format!("app=jwks-app&token={token}&vsn=2.0.0"),
    )
    .await;

    // The new key is part of the admin API's JSON shape.
    let (_, listed) = api(
        reqwest::Method::GET,
        &server.url("/admin/v1/apps"),
        ADMIN_TOKEN,
        None,
    )
    .await;
    let app = listed["apps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == "jwks-app")
        .cloned()
        .unwrap();
    assert_eq!(app["close_on_token_expiry"], false, "{app}");
}
