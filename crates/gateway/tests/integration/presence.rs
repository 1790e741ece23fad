//! Presence (CONTRACT §4 `presence: true`, §6 presence API, §10 metas;
//! PHOENIX_PROTOCOL.md §9 wire format).

use reqwest::Method;
use serde_json::{json, Value};

use crate::support::*;

/// The `phx_ref` of `key`'s only meta in a state or diff side.
fn phx_ref(side: &Value, key: &str) -> String {
    let metas = side[key]["metas"].as_array().expect("metas");
    assert_eq!(metas.len(), 1, "{side}");
    metas[0]["phx_ref"].as_str().expect("phx_ref").to_owned()
}

/// The next frame, as the JSON of a V2 text frame.
async fn next(client: &mut WsClient) -> Value {
    client
        .next_frame()
        .await
        .json()
        .cloned()
        .expect("a text frame")
}

#[tokio::test]
async fn joining_a_presence_topic_sends_state_and_diff() {
    let (_backend, server) = start(|s| s).await;
    let mut alice = WsClient::connect(server.addr, "alice").await;
    alice
        .send_v2(
            Some("1"),
            Some("1"),
            "team:1",
            "phx_join",
            json!({"meta": {"device": "web", "name": "mallory"}}),
        )
        .await;
    assert_eq!(
        next(&mut alice).await,
        json!(["1", "1", "team:1", "phx_reply", {"status": "ok", "response": {}}])
    );
    // Then, in either order (phoenix.js queues diffs until the state comes,
    // and a join it already knows is harmless), the state, a push on the
    // channel (join_ref set, ref null), and the diff, a broadcast that
    // reaches the tracked client too.
    let state = alice
        .until(|f| f.is_event("team:1", "presence_state"))
        .await;
    let state = state.json().unwrap().clone();
    assert_eq!(
        state.as_array().unwrap()[..2],
        [json!("1"), Value::Null],
        "{state}"
    );
    let alice_ref = phx_ref(&state[4], "alice");
    // Auth metadata wins over the join's meta; the join's own keys stay.
    let alice_meta = json!({"metas": [{"device": "web", "name": "alice", "phx_ref": alice_ref}]});
    assert_eq!(state[4], json!({ "alice": alice_meta }));
    let diff = alice.until(|f| f.is_event("team:1", "presence_diff")).await;
    assert_eq!(
        diff,
        Frame::Text(json!([null, null, "team:1", "presence_diff", {
            "joins": {"alice": alice_meta},
            "leaves": {}
        }]))
    );
    assert_eq!(alice.sync().await, Vec::<Frame>::new());

    // A second client sees both in its state; the first hears the join.
    let mut bob = WsClient::connect(server.addr, "bob").await;
    bob.join_ok("team:1", "5").await;
    let state = bob.until(|f| f.is_event("team:1", "presence_state")).await;
    let state = state.json().unwrap();
    assert_eq!(phx_ref(&state[4], "alice"), alice_ref);
    let bob_ref = phx_ref(&state[4], "bob");
    assert_ne!(bob_ref, alice_ref);
    let diff = alice.until(|f| f.is_event("team:1", "presence_diff")).await;
    let diff = diff.json().unwrap();
    assert_eq!(
        diff[4]["joins"]["bob"]["metas"][0]["phx_ref"],
        bob_ref.as_str()
    );
    assert_eq!(diff[4]["leaves"], json!({}));

    // Bob leaves: exactly his meta goes.
    bob.send_v2(Some("5"), Some("6"), "team:1", "phx_leave", json!({}))
        .await;
    let diff = alice.until(|f| f.is_event("team:1", "presence_diff")).await;
    let diff = diff.json().unwrap();
    assert_eq!(diff[4]["joins"], json!({}));
    assert_eq!(
        diff[4]["leaves"],
        json!({"bob": {"metas": [{"name": "bob", "phx_ref": bob_ref}]}})
    );
}

#[tokio::test]
async fn a_disconnect_is_a_presence_leave() {
    let (_backend, server) = start(|s| s).await;
    let mut alice = WsClient::connect(server.addr, "alice").await;
    let mut bob = WsClient::connect(server.addr, "bob").await;
    alice.join_ok("team:1", "1").await;
    bob.join_ok("team:1", "1").await;
    let state = bob.until(|f| f.is_event("team:1", "presence_state")).await;
    let bob_ref = phx_ref(&state.json().unwrap()[4], "bob");
    bob.close().await;
    let leave = alice
        .until(|f| {
            f.is_event("team:1", "presence_diff")
                && f.json().unwrap()[4]["leaves"].get("bob").is_some()
        })
        .await;
    assert_eq!(
        leave.json().unwrap()[4]["leaves"]["bob"]["metas"][0]["phx_ref"],
        bob_ref.as_str()
    );
}

#[tokio::test]
async fn presence_api_lists_every_connection_of_every_client() {
    let (_backend, server) = start(|s| s).await;
    let mut web = WsClient::connect(server.addr, "alice").await;
    let mut phone = WsClient::connect(server.addr, "alice").await;
    let mut bob = WsClient::connect(server.addr, "bob").await;
    web.join_with("team:7", "1", json!({"meta": {"device": "web"}}))
        .await;
    phone
        .join_with("team:7", "1", json!({"meta": {"device": "phone"}}))
        .await;
    bob.join_ok("team:7", "1").await;
    bob.join_ok("room:a", "2").await; // not a presence channel

    for topic in ["team:7", "team%3A7"] {
        let (status, body) = api(
            Method::GET,
            &server.url(&format!("/api/v1/apps/{APP}/presence/{topic}")),
            SECRET,
            None,
        )
        .await;
        assert_eq!(status, 200, "{topic}: {body}");
        let presence = &body["presence"];
        let devices: Vec<&str> = presence["alice"]["metas"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["device"].as_str().unwrap())
            .collect();
        assert_eq!(devices, vec!["web", "phone"], "{topic}: {body}");
        assert_eq!(presence["bob"]["metas"].as_array().unwrap().len(), 1);
        assert_eq!(presence.as_object().unwrap().len(), 2);
    }
    let (status, body) = api(
        Method::GET,
        &server.url(&format!("/api/v1/apps/{APP}/presence/room:a")),
        SECRET,
        None,
    )
    .await;
    assert_eq!((status, body), (200, json!({"presence": {}})));
    let (status, _) = api(
        Method::GET,
        &server.url(&format!("/api/v1/apps/{APP}/presence/team:7")),
        "wrong",
        None,
    )
    .await;
    assert_eq!(status, 401);
}

/// A second join of a presence topic on the same connection updates the
/// client's meta as Phoenix's `Presence.update` does: one diff joining the
/// new meta (with `phx_ref_prev`) and leaving the old one.
#[tokio::test]
async fn rejoining_on_the_same_connection_updates_the_meta_with_phx_ref_prev() {
    let (_backend, server) = start(|s| s).await;
    let mut bob = WsClient::connect(server.addr, "bob").await;
    bob.join_ok("team:7", "1").await;
    let mut alice = WsClient::connect(server.addr, "alice").await;
    alice
        .join_with("team:7", "1", json!({"meta": {"status": "online"}}))
        .await;
    let state = alice
        .until(|f| f.is_event("team:7", "presence_state"))
        .await;
    let old_ref = phx_ref(&state.json().unwrap()[4], "alice");

    let reply = alice
        .join_with("team:7", "2", json!({"meta": {"status": "away"}}))
        .await;
    assert_eq!(reply["status"], "ok", "{reply}");
    // The first diff about alice after her rejoin (bob saw his own join and
    // alice's first join before).
    let diff = bob
        .until(|f| {
            f.is_event("team:7", "presence_diff")
                && f.json()
                    .is_some_and(|j| j[4]["leaves"].get("alice").is_some())
        })
        .await;
    let diff = diff.json().unwrap()[4].clone();
    let new_ref = phx_ref(&diff["joins"], "alice");
    assert_ne!(new_ref, old_ref);
    assert_eq!(
        diff,
        json!({
            "joins": {"alice": {"metas": [
                {"name": "alice", "status": "away", "phx_ref": new_ref, "phx_ref_prev": old_ref}
            ]}},
            "leaves": {"alice": {"metas": [{"name": "alice", "status": "online", "phx_ref": old_ref}]}}
        })
    );
    // One meta left, the new one.
    let url = server.url("/api/v1/apps/app1/presence/team:7");
    let (status, body) = api(Method::GET, &url, SECRET, None).await;
    assert_eq!(status, 200);
    assert_eq!(phx_ref(&body["presence"], "alice"), new_ref);
}
