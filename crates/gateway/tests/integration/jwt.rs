//! Local JWT verification with `jwt_secret` (HS256): the claims that become
//! the client's identity, every cause of a refused token, and the close of
//! a connection whose token expires (CONTRACT §2).

use jsonwebtoken::{Algorithm, EncodingKey};
use reqwest::Method;
use serde_json::{json, Value};

use crate::support::tokens::*;
use crate::support::*;

/// A gateway whose `app1` verifies HS256 tokens with issuer and audience,
/// allowing `leeway` seconds of clock skew.
async fn hs256_server(
    leeway: u64,
    extra: impl FnOnce(Setup) -> Setup,
) -> (MockBackend, TestServer) {
    start(|s| {
        extra(
            s.auth(&format!("jwt_secret = \"{HS_SECRET}\""))
                .app(&format!("jwt_issuer = \"{ISSUER}\""))
                .app(&format!("jwt_audience = \"{AUDIENCE}\""))
                .limits(&format!("jwt_leeway_secs = {leeway}")),
        )
    })
    .await
}

fn query(token: &str) -> String {
    format!("app={APP}&token={token}&vsn=2.0.0")
}

#[tokio::test]
async fn hs256_token_connects_as_its_sub_with_its_permissions_and_metadata() {
    let (backend, server) = hs256_server(5, |s| s).await;
    let token = sign(Algorithm::HS256, None, &hs(), &claims("alice"));
    let mut client = WsClient::connect(server.addr, &token).await;

    // `permissions` grants project 1, not project 2.
    client.join_ok("project:1", "1").await;
    let refused = client.join("project:2", "2").await;
    assert_eq!(
        refused,
        json!({"status": "error", "response": {"reason": "unauthorized"}})
    );

    // `sub` is the client id, `metadata` its metadata.
    let (status, body) = api(
        Method::GET,
        &server.url(&format!("/api/v1/apps/{APP}/connections?client_id=alice")),
        SECRET,
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let connections = body["connections"].as_array().unwrap();
    assert_eq!(connections.len(), 1, "{body}");
    assert_eq!(connections[0]["metadata"], json!({"name": "alice"}));
    assert_eq!(connections[0]["topics"], json!(["project:1"]));
    // The auth webhook is not called for a JWT app.
    assert!(backend.requests("/auth").is_empty());
}

#[tokio::test]
async fn a_token_without_permissions_or_metadata_still_connects() {
    let (_backend, server) = hs256_server(5, |s| s).await;
    let token = sign(
        Algorithm::HS256,
        None,
        &hs(),
        &claims_with("bob", json!({"permissions": null, "metadata": null})),
    );
    let mut client = WsClient::connect(server.addr, &token).await;
    client.join_ok("room:lobby", "1").await;
    let refused = client.join("project:1", "2").await;
    assert_eq!(refused["response"]["reason"], "unauthorized");
}

#[tokio::test]
async fn refused_tokens_answer_unauthorized_and_count_their_precise_cause() {
    let (_backend, server) = hs256_server(5, |s| s).await;
    let other_secret = EncodingKey::from_secret(b"not-the-app-secret-at-all-nope");
    let hs256 = |claims: &Value| sign(Algorithm::HS256, None, &hs(), claims);
    let cases: Vec<(&str, String)> = vec![
        (
            "expired",
            hs256(&claims_with("c", json!({"exp": now() - 60}))),
        ),
        (
            "not_yet_valid",
            hs256(&claims_with("c", json!({"nbf": now() + 60}))),
        ),
        (
            "wrong_issuer",
            hs256(&claims_with("c", json!({"iss": "https://evil.test"}))),
        ),
        (
            "wrong_issuer",
            hs256(&claims_with("c", json!({"iss": null}))),
        ),
        (
            "wrong_audience",
            hs256(&claims_with("c", json!({"aud": "someone-else"}))),
        ),
        (
            "wrong_audience",
            hs256(&claims_with("c", json!({"aud": null}))),
        ),
        (
            "bad_signature",
            sign(Algorithm::HS256, None, &other_secret, &claims("c")),
        ),
        (
            "disallowed_algorithm",
            sign(Algorithm::RS256, None, &rsa_a(), &claims("c")),
        ),
        ("malformed", unsigned(&claims("c"))),
        ("malformed", "not-a-jwt".to_owned()),
        ("malformed", hs256(&claims_with("c", json!({"exp": null})))),
        ("malformed", hs256(&claims_with("c", json!({"sub": null})))),
        ("malformed", hs256(&claims_with("", json!({})))),
        (
            "malformed",
            hs256(&claims_with("c", json!({"permissions": "read:project:1"}))),
        ),
        (
            "malformed",
            hs256(&claims_with(
                "c",
                json!({"metadata": ["not", "an", "object"]}),
            )),
        ),
    ];
    for (cause, token) in &cases {
        let (status, body) = refused(server.addr, &query(token), &[]).await;
        assert_eq!(
            (status, body.clone()),
            (403, json!({"status": 403, "reason": "unauthorized"})),
            "{cause}: {body}"
        );
    }
    let text = metrics(&server).await;
    for cause in [
        "expired",
        "not_yet_valid",
        "wrong_issuer",
        "wrong_audience",
        "bad_signature",
        "disallowed_algorithm",
        "malformed",
    ] {
        let expected = cases.iter().filter(|(c, _)| *c == cause).count() as f64;
        let counted = metric_sum(
            &text,
            "switchboard_auth_failures_total",
            &[&format!("app=\"{APP}\""), &format!("reason=\"{cause}\"")],
        );
        assert_eq!(counted, expected, "{cause}: {text}");
    }
}

#[tokio::test]
async fn tokens_within_the_leeway_are_accepted() {
    let (_backend, server) = hs256_server(5, |s| s).await;
    // Leeway 5 s: just expired and just-about-valid tokens still pass.
    let token = sign(
        Algorithm::HS256,
        None,
        &hs(),
        &claims_with("dora", json!({"exp": now() - 2, "nbf": now() + 2})),
    );
    let mut client = WsClient::connect(server.addr, &token).await;
    client.join_ok("project:1", "1").await;
}

#[tokio::test]
async fn a_token_that_expires_in_the_far_future_connects_and_stays() {
    let (_backend, server) = hs256_server(5, |s| s).await;
    let token = sign(
        Algorithm::HS256,
        None,
        &hs(),
        &claims_with("methuselah", json!({"exp": u64::MAX})),
    );
    let mut client = WsClient::connect(server.addr, &token).await;
    client.join_ok("project:1", "1").await;
    assert!(client.sync().await.is_empty());
}

#[tokio::test]
async fn websocket_is_closed_with_4001_when_its_token_expires() {
    let (_backend, server) = hs256_server(0, |s| s).await;
    let exp = now() + 2;
    let token = sign(
        Algorithm::HS256,
        None,
        &hs(),
        &claims_with("eve", json!({"exp": exp})),
    );
    let mut client = WsClient::connect(server.addr, &token).await;
    client.join_ok("project:1", "1").await;
    let (code, reason, _) = client.closed().await;
    assert_eq!((code, reason.as_str()), (Some(4001), "token_expired"));
    assert!(now() >= exp, "closed at {} before exp {exp}", now());
}

#[tokio::test]
async fn close_on_token_expiry_false_keeps_the_connection() {
    let (_backend, server) = hs256_server(0, |s| s.app("close_on_token_expiry = false")).await;
    let exp = now() + 1;
    let token = sign(
        Algorithm::HS256,
        None,
        &hs(),
        &claims_with("fay", json!({"exp": exp})),
    );
    let mut client = WsClient::connect(server.addr, &token).await;
    // Wait until the token is well past its expiry, then check that the
    // connection still answers and nothing (no close) came before that.
    eventually("the token has expired", || async { now() > exp + 1 }).await;
    let unread = client.sync().await;
    assert!(unread.is_empty(), "{unread:?}");
    client.join_ok("project:1", "1").await;
}

#[tokio::test]
async fn longpoll_session_ends_when_its_token_expires() {
    let (_backend, server) = hs256_server(0, |s| s).await;
    let exp = now() + 2;
    let token = sign(
        Algorithm::HS256,
        None,
        &hs(),
        &claims_with("gus", json!({"exp": exp})),
    );
    let base = server.url("/socket/longpoll");
    let get = |session: Option<&str>| {
        let url = match session {
            Some(session) => format!("{base}?{}&token={session}", query(&token)),
            None => format!("{base}?{}", query(&token)),
        };
        async move {
            let response = http().get(url).send().await.unwrap();
            response.json::<Value>().await.unwrap()
        }
    };
    let opened = get(None).await;
    assert_eq!(opened["status"], 410, "{opened}");
    let mut session = opened["token"].as_str().unwrap().to_owned();
    // Polls go on (204 after the poll window, or 410 once the token expired)
    // until the session ends: the first poll already outlives the token.
    let mut polls = 0;
    let ended = loop {
        polls += 1;
        assert!(polls <= 3, "the session outlived its token");
        let body = get(Some(&session)).await;
        match body["status"].as_u64() {
            Some(204) | Some(200) => session = body["token"].as_str().unwrap().to_owned(),
            _ => break body,
        }
    };
    assert_eq!(ended, json!({"status": 410, "messages": []}));
    assert!(now() >= exp);
    assert_eq!(server.gateway.longpoll.len(), 0);
}
