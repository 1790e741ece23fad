//! The admin API (CONTRACT §6, §10): register, replace, list, delete apps;
//! config apps are immutable; registrations survive a restart.

use reqwest::Method;
use serde_json::{json, Value};

use crate::support::*;

async fn admin(
    server: &TestServer,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    api(method, &server.url(path), ADMIN_TOKEN, body).await
}

fn dynamic_app(backend: &MockBackend, secret: &str) -> Value {
    json!({
        "secret": secret,
        "auth_endpoint": backend.url("/auth"),
        "schema_endpoint": backend.url("/schema"),
        "message_endpoint": backend.url("/messages"),
    })
}

async fn listed(server: &TestServer) -> Vec<Value> {
    let (status, body) = admin(server, Method::GET, "/admin/v1/apps", None).await;
    assert_eq!(status, 200, "{body}");
    body["apps"].as_array().expect("{\"apps\": [...]}").clone()
}

#[tokio::test]
async fn apps_are_registered_replaced_listed_and_deleted() {
    let (backend, server) = start(|s| s.admin()).await;
    let (status, _) = admin(
        &server,
        Method::PUT,
        "/admin/v1/apps/dyn",
        Some(dynamic_app(&backend, "dyn-secret-1")),
    )
    .await;
    assert_eq!(status, 201);

    // The new app serves clients once its schema loads.
    let addr = server.addr;
    eventually("app dyn accepts connections", || async move {
        WsClient::try_connect(addr, "app=dyn&token=alice&vsn=2.0.0", &[])
            .await
            .is_ok()
    })
    .await;
    let (status, _) = api(
        Method::GET,
        &server.url("/api/v1/apps/dyn/connections"),
        "dyn-secret-1",
        None,
    )
    .await;
    assert_eq!(status, 200);

    // Listed, without secrets.
    let (status, raw) = {
        let response = http()
            .get(server.url("/admin/v1/apps"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    };
    assert_eq!(status, 200);
    for secret in ["dyn-secret-1", SECRET, SECRET2] {
        assert!(!raw.contains(secret), "a secret leaked: {raw}");
    }
    let apps = listed(&server).await;
    let ids: Vec<&str> = apps.iter().map(|a| a["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![APP, APP2, "dyn"]);
    let dyn_app = apps.iter().find(|a| a["id"] == "dyn").unwrap();
    assert!(dyn_app.get("secret").is_none(), "{dyn_app}");
    assert_eq!(dyn_app["auth_endpoint"], backend.url("/auth"));

    // Replaced: 200, and the new secret is the one that counts.
    let (status, _) = admin(
        &server,
        Method::PUT,
        "/admin/v1/apps/dyn",
        Some(dynamic_app(&backend, "dyn-secret-2")),
    )
    .await;
    assert_eq!(status, 200);
    let url = server.url("/api/v1/apps/dyn/connections");
    assert_eq!(api(Method::GET, &url, "dyn-secret-1", None).await.0, 401);
    assert_eq!(api(Method::GET, &url, "dyn-secret-2", None).await.0, 200);

    // Deleted: 204, gone from the list, and its clients are unknown.
    let (status, _) = admin(&server, Method::DELETE, "/admin/v1/apps/dyn", None).await;
    assert_eq!(status, 204);
    assert_eq!(listed(&server).await.len(), 2);
    assert_refused(
        server.addr,
        "app=dyn&token=alice&vsn=2.0.0",
        &[],
        "unknown_app",
    )
    .await;
    let (status, _) = admin(&server, Method::DELETE, "/admin/v1/apps/dyn", None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn config_apps_cannot_be_replaced_or_deleted() {
    let (backend, server) = start(|s| s.admin()).await;
    let (status, body) = admin(
        &server,
        Method::PUT,
        &format!("/admin/v1/apps/{APP}"),
        Some(dynamic_app(&backend, "x")),
    )
    .await;
    assert_eq!(
        (status, body),
        (409, json!({"reason": "defined_in_config"}))
    );
    let (status, body) = admin(
        &server,
        Method::DELETE,
        &format!("/admin/v1/apps/{APP}"),
        None,
    )
    .await;
    assert_eq!(
        (status, body),
        (409, json!({"reason": "defined_in_config"}))
    );
    // Still served with its original secret.
    let (status, _) = api(
        Method::GET,
        &server.url(&format!("/api/v1/apps/{APP}/connections")),
        SECRET,
        None,
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn admin_api_needs_the_admin_token() {
    let (backend, server) = start(|s| s.admin()).await;
    for token in ["wrong", SECRET, ""] {
        let (status, _) = api(Method::GET, &server.url("/admin/v1/apps"), token, None).await;
        assert_eq!(status, 401, "token {token:?}");
        let (status, _) = api(
            Method::PUT,
            &server.url("/admin/v1/apps/dyn"),
            token,
            Some(dynamic_app(&backend, "s")),
        )
        .await;
        assert_eq!(status, 401, "token {token:?}");
        let (status, _) = api(
            Method::DELETE,
            &server.url("/admin/v1/apps/dyn"),
            token,
            None,
        )
        .await;
        assert_eq!(status, 401, "token {token:?}");
    }
    let response = http()
        .get(server.url("/admin/v1/apps"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    // Nothing was registered by the refused calls.
    assert_eq!(listed(&server).await.len(), 2);
}

#[tokio::test]
async fn invalid_app_bodies_are_refused() {
    let (_backend, server) = start(|s| s.admin()).await;
    for body in [
        json!({}),
        json!({"secret": "s"}),
        json!({"secret": "s", "auth_endpoint": "not a url", "schema_file": "x.json"}),
        json!({"secret": "s", "auth_endpoint": "http://a/auth", "schema_file": "x.json", "bogus": 1}),
        json!({"id": "other", "secret": "s", "auth_endpoint": "http://a/auth", "schema_file": "x.json"}),
    ] {
        let (status, answer) = admin(
            &server,
            Method::PUT,
            "/admin/v1/apps/dyn",
            Some(body.clone()),
        )
        .await;
        assert!((400..500).contains(&status), "{body} → {status} {answer}");
    }
    assert_eq!(listed(&server).await.len(), 2);
}

#[tokio::test]
async fn registered_apps_survive_a_restart() {
    let backend = MockBackend::start(schema("1.0.0")).await;
    let dir = TempDir::new();
    let state_file = dir.path().join("state.json");

    let server = Setup::new(&backend)
        .admin()
        .state_file(&state_file)
        .start()
        .await;
    let (status, _) = admin(
        &server,
        Method::PUT,
        "/admin/v1/apps/dyn",
        Some(dynamic_app(&backend, "dyn-secret")),
    )
    .await;
    assert_eq!(status, 201);
    server.shutdown().await;
    let saved = std::fs::read_to_string(&state_file).expect("state file written");
    assert!(saved.contains("\"dyn\""), "{saved}");

    let server = Setup::new(&backend)
        .admin()
        .state_file(&state_file)
        .start()
        .await;
    let apps = listed(&server).await;
    let dyn_app = apps
        .iter()
        .find(|a| a["id"] == "dyn")
        .unwrap_or_else(|| panic!("dyn not restored: {apps:#?}"));
    assert_eq!(dyn_app["defined_in_config"], false);
    // It works, with its secret, and still cannot be mistaken for a config
    // app: it can be deleted.
    let addr = server.addr;
    eventually("restored app accepts connections", || async move {
        WsClient::try_connect(addr, "app=dyn&token=alice&vsn=2.0.0", &[])
            .await
            .is_ok()
    })
    .await;
    let (status, _) = api(
        Method::GET,
        &server.url("/api/v1/apps/dyn/connections"),
        "dyn-secret",
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = admin(&server, Method::DELETE, "/admin/v1/apps/dyn", None).await;
    assert_eq!(status, 204);
}
