//! Slow consumers (CONTRACT §2 `outbound_queue`): a client that does not
//! read is disconnected instead of growing memory, the drop is counted, and
//! everyone else keeps receiving.

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn a_client_that_never_reads_is_disconnected_and_others_keep_receiving() {
    let (_backend, server) = start(|s| s.limits("outbound_queue = 8")).await;
    let mut slow = WsClient::connect(server.addr, "slow").await;
    let mut fast = WsClient::connect(server.addr, "fast").await;
    slow.join_ok("room:firehose", "1").await;
    fast.join_ok("room:firehose", "1").await;

    // From here on `slow` reads nothing. Large messages fill the socket
    // buffers quickly; then its queue fills and it must be cut off.
    let filler = "x".repeat(64 * 1024);
    let mut sent = 0;
    let mut cut_off = false;
    for n in 0..2000 {
        let answer = broadcast(
            &server,
            "room:firehose",
            "data",
            json!({"n": n, "filler": filler}),
        )
        .await;
        sent += 1;
        // The fast client keeps up with every message.
        let frame = fast.next_frame().await;
        assert_eq!(
            frame.json().unwrap()[4]["n"],
            n,
            "fast client got message {n}"
        );
        if answer["delivered_locally"] == 1 {
            cut_off = true;
            break;
        }
    }
    assert!(
        cut_off,
        "the slow client was never cut off after {sent} broadcasts"
    );

    // Delivery to the fast client goes on.
    for n in 0..5 {
        broadcast(&server, "room:firehose", "after", json!({"n": n})).await;
        assert!(fast.next_frame().await.is_event("room:firehose", "after"));
    }
    let text = metrics(&server).await;
    assert!(
        metric_sum(
            &text,
            "switchboard_dropped_messages_total",
            &[&format!("app=\"{APP}\"")]
        ) >= 1.0,
        "{text}"
    );

    // The slow client, reading at last, finds fewer messages than were sent
    // and then a 1001 close (go away, come back).
    let (code, reason, received) = slow.closed().await;
    assert_eq!(code, Some(1001), "reason {reason}");
    assert_eq!(reason, "slow_consumer");
    assert!(received < sent, "got {received} of {sent}");

    // And it is no longer a connection of the app.
    let url = server.url(&format!("/api/v1/apps/{APP}/connections?client_id=slow"));
    eventually("the slow client's connection is gone", || {
        let url = url.clone();
        async move {
            let (_, body) = api(reqwest::Method::GET, &url, SECRET, None).await;
            body["connections"].as_array().is_some_and(|c| c.is_empty())
        }
    })
    .await;
}
