//! Hostile input against the real binary over real sockets
//! (docs/fuzzing.md, "Hostile input"). Each test starts the binary, connects
//! a well-behaved bystander, runs one attack, checks the server's documented
//! reaction (close code, reply, dropped-message count), and then that the
//! process is up, the bystander still receives broadcasts and can push, and
//! resident memory stayed bounded and came back down.

#![cfg(target_os = "linux")]

mod bystander;
#[path = "../common/mod.rs"]
mod common;
mod raw;
mod server;

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::Message;

use bystander::Bystander;
use raw::Ending;
use server::{within, Options, Server, APP};

/// The default `max_frame_bytes`.
const MAX_FRAME_BYTES: usize = 1024 * 1024;

async fn setup(options: Options) -> (Server, Bystander) {
    let server = Server::start(options).await;
    let bystander = Bystander::connect(&server).await;
    (server, bystander)
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(server: &Server, token: &str) -> Ws {
    let (ws, _) = within(
        "a connection",
        tokio_tungstenite::connect_async(server.ws_url(token)),
    )
    .await
    .expect("the client connects");
    ws
}

/// The next text message, as JSON (heartbeat replies included).
async fn next_json(ws: &mut Ws) -> Value {
    loop {
        match within("a message", ws.next()).await {
            Some(Ok(Message::Text(text))) => return serde_json::from_str(&text).unwrap(),
            Some(Ok(_)) => continue,
            other => panic!("expected a message, got {other:?}"),
        }
    }
}

async fn join(ws: &mut Ws, topic: &str) {
    let frame = json!(["j", "j", topic, "phx_join", {}]).to_string();
    ws.send(Message::Text(frame.into())).await.unwrap();
    let reply = next_json(ws).await;
    assert_eq!(reply[4]["status"], "ok", "join of {topic}: {reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_in_a_text_frame_closes_with_1007() {
    let (mut server, mut bystander) = setup(Options::default()).await;
    for payload in [
        &b"\xff\xfe\xfd"[..],
        b"[\"1\",\"2\",\"room:a\",\"message\",\"\xc3\x28\"]",
    ] {
        let mut stream = raw::upgrade(&server, "mallory").await;
        stream
            .write_all(&raw::client_frame(0x1, payload))
            .await
            .unwrap();
        assert_eq!(
            raw::read_until_close(&mut stream).await,
            Ending::Close(1007, "invalid_utf8".into())
        );
    }
    server.wait_dropped("invalid_utf8", 2).await;
    bystander
        .assert_unharmed(&mut server, "invalid UTF-8")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deeply_nested_json_is_dropped_and_deep_payloads_are_validated() {
    let (mut server, mut bystander) = setup(Options::default()).await;
    let mut ws = connect(&server, "mallory").await;
    join(&mut ws, "room:a").await;
    let deep = "[".repeat(100_000);
    let deep_object = "{\"a\":".repeat(50_000);
    let frames = [
        deep.clone(),
        format!(r#"["j","1","room:a","nested",{deep}"#),
        format!(r#"["j","2","room:a","message",{deep_object}"#),
        format!(
            r#"["j","3","room:a","nested",{}{}]"#,
            deep,
            "]".repeat(100_000)
        ),
    ];
    let before = server.dropped("malformed_frame").await;
    for frame in &frames {
        ws.send(Message::Text(frame.clone().into())).await.unwrap();
    }
    server
        .wait_dropped("malformed_frame", before + frames.len() as u64)
        .await;
    // Nesting the parser accepts (127 levels, the frame's array included)
    // still goes through the recursive payload schema: the deepest payload
    // it takes is validated and broadcast.
    let nested = format!("{}{}", "[".repeat(126), "]".repeat(126));
    let frame = format!(r#"["j","ok","room:a","nested",{nested}]"#);
    ws.send(Message::Text(frame.into())).await.unwrap();
    let reply = loop {
        let message = next_json(&mut ws).await;
        if message[1] == "ok" {
            break message;
        }
    };
    assert_eq!(reply[4]["status"], "ok", "{reply}");
    // The connection keeps working.
    join(&mut ws, "room:b").await;
    bystander.assert_unharmed(&mut server, "deep nesting").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_numbers_in_refs_and_payloads_are_dropped_or_answered() {
    let (mut server, mut bystander) = setup(Options::default()).await;
    let mut ws = connect(&server, "mallory").await;
    join(&mut ws, "room:a").await;
    let digits = "9".repeat(500);
    let unparseable = [
        r#"["j",1e999999,"room:a","message",{"body":"x"}]"#.to_owned(),
        format!(r#"["j",{digits},"room:a","message",{{"body":"x"}}]"#),
        format!(r#"[{digits},"1","room:a","message",{{"body":"x"}}]"#),
        r#"["j","1","room:a","message",{"body":"x","n":1e999999}]"#.to_owned(),
        format!(r#"["j","1","room:a","message",{{"body":"x","n":-{digits}}}]"#),
    ];
    let before = server.dropped("malformed_frame").await;
    for frame in &unparseable {
        ws.send(Message::Text(frame.clone().into())).await.unwrap();
    }
    server
        .wait_dropped("malformed_frame", before + unparseable.len() as u64)
        .await;
    // Numbers JSON can hold are payload like any other.
    let big = "9".repeat(300);
    let frame = format!(r#"["j","big","room:a","message",{{"body":"x","n":{big},"f":1e-999999}}]"#);
    ws.send(Message::Text(frame.into())).await.unwrap();
    let reply = loop {
        let message = next_json(&mut ws).await;
        if message[1] == "big" {
            break message;
        }
    };
    assert_eq!(reply[4]["status"], "ok", "{reply}");
    bystander.assert_unharmed(&mut server, "huge numbers").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_frames_are_refused_and_a_10_mb_frame_closes_with_1009() {
    let (mut server, mut bystander) = setup(Options::default()).await;

    // Over max_frame_bytes but under the hard cap: a reply, and the
    // connection stays.
    let mut ws = connect(&server, "mallory").await;
    join(&mut ws, "room:a").await;
    let body = "x".repeat(MAX_FRAME_BYTES * 3 / 2);
    let frame = json!(["j", "big", "room:a", "message", {"body": body}]).to_string();
    ws.send(Message::Text(frame.into())).await.unwrap();
    let reply = next_json(&mut ws).await;
    assert_eq!(reply[1], "big");
    assert_eq!(
        reply[4],
        json!({"status": "error", "response": {"reason": "message_too_large"}})
    );
    join(&mut ws, "room:b").await;

    // 10 MB: the connection is closed with 1009 before the frame is read.
    let stream = raw::upgrade(&server, "mallory2").await;
    let (mut read, mut write) = stream.into_split();
    let writer = tokio::spawn(async move {
        let len = 10 * 1024 * 1024;
        let mut frame = raw::frame_header(0x1, len as u64);
        frame.extend_from_slice(&[0x12, 0x34, 0x56, 0x78]);
        let _ = write.write_all(&frame).await;
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..len / chunk.len() {
            if write.write_all(&chunk).await.is_err() {
                break;
            }
        }
    });
    assert_eq!(
        raw::read_until_close(&mut read).await,
        Ending::Close(1009, "message_too_large".into())
    );
    within("the writer to stop", writer).await.unwrap();
    server.wait_dropped("message_too_large", 2).await;
    bystander
        .assert_unharmed(&mut server, "oversized frames")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_joins_is_capped_per_connection_and_served_across_connections() {
    let (mut server, mut bystander) = setup(Options::default()).await;

    // Thousands on one connection: the first 100 (the join burst, and
    // max_channels_per_connection) are joined; the rest are refused by the
    // join rate (a rare one that earned a token back meets the channel cap),
    // and after `rate_limit_strikes` (50) refusals in a row the connection
    // is closed with 1008.
    const FLOOD: usize = 3000;
    let ws = connect(&server, "mallory").await;
    let (mut sink, mut stream) = ws.split();
    let reader = tokio::spawn(async move {
        let (mut ok, mut rate_limited, mut over_cap) = (0, 0, 0);
        loop {
            match stream.next().await {
                Some(Ok(Message::Text(text))) => {
                    let reply: Value = serde_json::from_str(&text).unwrap();
                    match (
                        reply[4]["status"].as_str(),
                        reply[4]["response"]["reason"].as_str(),
                    ) {
                        (Some("ok"), _) => ok += 1,
                        (_, Some("rate_limited")) => rate_limited += 1,
                        (_, Some("too many channels joined")) => over_cap += 1,
                        other => panic!("unexpected join reply {other:?}"),
                    }
                }
                Some(Ok(Message::Close(Some(close)))) => {
                    return (
                        ok,
                        rate_limited,
                        over_cap,
                        u16::from(close.code),
                        close.reason.to_string(),
                    );
                }
                Some(Ok(_)) => {}
                other => panic!("the flooding connection ended without a close frame: {other:?}"),
            }
        }
    });
    for i in 0..FLOOD {
        let frame = format!(r#"["{i}","{i}","room:flood-{i}","phx_join",{{}}]"#);
        if sink.send(Message::Text(frame.into())).await.is_err() {
            break; // closed by the server, as it should be
        }
    }
    let (ok, rate_limited, over_cap, code, reason) =
        within("the flood's end", reader).await.unwrap();
    assert_eq!(ok, 100, "joined");
    assert!(
        rate_limited >= 50,
        "{rate_limited} refused by the join rate"
    );
    assert!(over_cap <= 10, "{over_cap} refused by the channel cap");
    assert_eq!((code, reason.as_str()), (1008, "rate_limited"));
    drop(sink);

    // Thousands across connections: 40 connections × 100 joins.
    let mut clients = Vec::new();
    for c in 0..40 {
        clients.push(tokio::spawn({
            let url = server.ws_url(&format!("flood{c}"));
            async move {
                let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
                let (mut sink, mut stream) = ws.split();
                for i in 0..100 {
                    let frame = format!(r#"["{i}","{i}","room:shared-{i}","phx_join",{{}}]"#);
                    sink.send(Message::Text(frame.into())).await.unwrap();
                }
                let mut ok = 0;
                while ok < 100 {
                    match stream.next().await {
                        Some(Ok(Message::Text(text))) => {
                            let reply: Value = serde_json::from_str(&text).unwrap();
                            assert_eq!(reply[4]["status"], "ok", "{reply}");
                            ok += 1;
                        }
                        Some(Ok(_)) => {}
                        other => panic!("a flooding connection ended: {other:?}"),
                    }
                }
                (sink, stream)
            }
        }));
    }
    let mut connections = Vec::new();
    for client in clients {
        connections.push(within("a client's joins", client).await.unwrap());
    }
    // Everyone joined room:shared-0 also gets its broadcasts.
    server
        .broadcast("room:shared-0", json!({"body": "to all"}))
        .await;
    for (_, stream) in connections.iter_mut() {
        loop {
            match within("the shared broadcast", stream.next()).await {
                Some(Ok(Message::Text(text))) if text.contains("to all") => break,
                Some(Ok(_)) => continue,
                other => panic!("a flooding connection ended: {other:?}"),
            }
        }
    }
    drop(connections);
    bystander.assert_unharmed(&mut server, "join floods").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_after_the_upgrade_closes_with_1002() {
    let (mut server, mut bystander) = setup(Options::default()).await;
    let garbage: [&[u8]; 3] = [
        // Reserved bits set.
        b"\xde\xad\xbe\xef garbage \x00\x01\x02",
        // An unmasked client frame.
        b"\x81\x05hello",
        // An unknown opcode.
        b"\x83\x80\x00\x00\x00\x00",
    ];
    for bytes in garbage {
        let mut stream = raw::upgrade(&server, "mallory").await;
        stream.write_all(bytes).await.unwrap();
        assert_eq!(
            raw::read_until_close(&mut stream).await,
            Ending::Close(1002, "protocol_error".into()),
            "after {bytes:?}"
        );
    }
    server.wait_dropped("protocol_error", 3).await;
    bystander
        .assert_unharmed(&mut server, "garbage after the upgrade")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_instead_of_an_http_request_is_refused_and_a_half_request_times_out() {
    let options = Options {
        handshake_timeout_ms: 1000,
        ..Options::default()
    };
    let (mut server, mut bystander) = setup(options).await;
    for garbage in [
        &b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http\r\n\r\n"[..],
        b"GET / HTTP/9.9\r\n\xff\xff: x\r\n\r\n",
        b"\x00\x00\x00\x00\x00\x00\x00\x00\r\n\r\n",
    ] {
        let mut stream = tokio::net::TcpStream::connect(&server.addr).await.unwrap();
        stream.write_all(garbage).await.unwrap();
        let answer = raw::read_to_end(&mut stream).await;
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.starts_with("HTTP/1.1 400"),
            "garbage {garbage:?} answered {answer:?}"
        );
    }
    server
        .wait_counter(
            "switchboard_auth_failures_total",
            "unknown",
            "bad_request",
            3,
        )
        .await;
    // Half a request, then silence: closed without an answer after
    // handshake_timeout_ms.
    let started = Instant::now();
    let mut stream = tokio::net::TcpStream::connect(&server.addr).await.unwrap();
    stream
        .write_all(b"GET /socket/websocket?app=app1&tok")
        .await
        .unwrap();
    assert_eq!(raw::read_to_end(&mut stream).await, b"");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "closed after {:?}, before the handshake timeout",
        started.elapsed()
    );
    bystander
        .assert_unharmed(&mut server, "garbage instead of HTTP")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_sent_frame_then_silence_is_closed_by_the_idle_timeout() {
    let options = Options {
        idle_timeout_secs: 2,
        ..Options::default()
    };
    let (mut server, mut bystander) = setup(options).await;
    let started = Instant::now();
    let mut stream = raw::upgrade(&server, "mallory").await;
    let mut half = raw::frame_header(0x1, 1000);
    half.extend_from_slice(&[0x12, 0x34, 0x56, 0x78]);
    half.extend_from_slice(b"[\"j\",\"1\",");
    stream.write_all(&half).await.unwrap();
    assert_eq!(
        raw::read_until_close(&mut stream).await,
        Ending::Close(1000, "idle_timeout".into())
    );
    assert!(started.elapsed() >= Duration::from_millis(1900));
    bystander
        .assert_unharmed(&mut server, "a half-sent frame")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_long_poll_bodies_are_dropped_and_the_session_keeps_working() {
    let (mut server, mut bystander) = setup(Options::default()).await;
    let base = format!("http://{}/socket/longpoll?app={APP}&vsn=2.0.0", server.addr);
    let http = server.http().clone();
    let opened: Value = http
        .get(format!("{base}&token=lp"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(opened["status"], 410, "{opened}");
    let session = opened["token"].as_str().unwrap().to_owned();
    let url = format!("{base}&token={session}");
    let post = |body: Vec<u8>, content_type: &'static str| {
        let request = http
            .post(url.clone())
            .header("content-type", content_type)
            .body(body);
        async move { request.send().await.unwrap() }
    };

    let before = server.dropped("malformed_frame").await;
    let mut batch = Vec::new();
    for line in [
        &b"!!! not base64"[..],
        b"AAEC",
        b"[\"j\",1e999999,\"room:a\",\"message\",{}]",
        b"{\"topic\":1}",
        b"[\xff\xfe]",
    ] {
        batch.extend_from_slice(line);
        batch.push(b'\n');
    }
    batch.extend_from_slice("[".repeat(100_000).as_bytes());
    batch.push(b'\n');
    let response = post(batch, "application/x-ndjson").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"status": 200})
    );
    let response = post(b"\xff\xfe not utf-8".to_vec(), "application/json").await;
    assert_eq!(response.status(), 200);
    server.wait_dropped("malformed_frame", before + 7).await;

    // A body over max_body_bytes is refused whole, and counted. The server
    // answers 413 and closes as soon as the limit is passed, so the client
    // may see its upload cut off (broken pipe) before it reads the answer.
    let too_large = server.dropped("message_too_large").await;
    let upload = http
        .post(url.clone())
        .header("content-type", "application/json")
        .body(vec![b'['; 10 * 1024 * 1024])
        .send()
        .await;
    match upload {
        Ok(response) => assert_eq!(response.status(), 413),
        Err(error) => assert!(error.is_request(), "{error}"),
    }
    server
        .wait_dropped("message_too_large", too_large + 1)
        .await;

    // The session still works: a join is answered on the next poll.
    let join = br#"["1","1","room:lp","phx_join",{}]"#.to_vec();
    let response = post(join, "application/json").await;
    assert_eq!(response.status(), 200);
    let polled: Value = http
        .get(url.clone())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(polled["status"], 200, "{polled}");
    let reply: Value = serde_json::from_str(polled["messages"][0].as_str().unwrap()).unwrap();
    assert_eq!(reply[4]["status"], "ok", "{reply}");
    bystander
        .assert_unharmed(&mut server, "invalid long-poll bodies")
        .await;
}
