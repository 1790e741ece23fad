//! Built-in TLS (`[server] tls_cert_file`, `tls_key_file`): WebSocket,
//! long-poll and the HTTP APIs over TLS with a certificate made at test
//! time; plain HTTP and stalled handshakes on the TLS port; clear config
//! errors for bad files.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use switchboard_gateway::config::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

use crate::support::*;

/// A self-signed certificate for `localhost` and `127.0.0.1`, written as
/// PEM files.
struct TestCert {
    cert_file: PathBuf,
    key_file: PathBuf,
    cert_pem: String,
}

fn self_signed(dir: &Path, name: &str) -> TestCert {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
        .expect("rcgen makes a certificate");
    let cert_pem = made.cert.pem();
    let cert_file = dir.join(format!("{name}-cert.pem"));
    let key_file = dir.join(format!("{name}-key.pem"));
    std::fs::write(&cert_file, &cert_pem).unwrap();
    std::fs::write(&key_file, made.signing_key.serialize_pem()).unwrap();
    TestCert {
        cert_file,
        key_file,
        cert_pem,
    }
}

/// A gateway serving TLS with a fresh certificate (kept in `dir`).
async fn start_tls(
    dir: &TempDir,
    setup: impl FnOnce(Setup) -> Setup,
) -> (MockBackend, TestServer, TestCert) {
    let cert = self_signed(dir.path(), "server");
    let (cert_file, key_file) = (cert.cert_file.display(), cert.key_file.display());
    let (backend, server) = start(|s| {
        setup(
            s.server(&format!("tls_cert_file = \"{cert_file}\""))
                .server(&format!("tls_key_file = \"{key_file}\"")),
        )
    })
    .await;
    (backend, server, cert)
}

/// A rustls client trusting only `cert`.
fn client_tls(cert: &TestCert) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(cert.cert_pem.as_bytes()).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Arc::new(
        ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// An HTTPS client trusting only `cert`, resolving `localhost` to the server.
fn https(server: &TestServer, cert: &TestCert) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(WAIT)
        .tls_certs_only([reqwest::Certificate::from_pem(cert.cert_pem.as_bytes()).unwrap()])
        .resolve("localhost", server.addr)
        .build()
        .unwrap()
}

fn https_url(server: &TestServer, path: &str) -> String {
    format!("https://localhost:{}{path}", server.addr.port())
}

#[tokio::test]
async fn websocket_join_push_and_api_broadcast_over_wss() {
    let dir = TempDir::new();
    let (_backend, server, cert) = start_tls(&dir, |s| s).await;
    let tls = client_tls(&cert);
    let query = format!("app={APP}&token=alice&vsn=2.0.0");
    let mut alice = WsClient::connect_tls(server.addr, &query, tls.clone()).await;
    let mut bob = WsClient::connect_tls(server.addr, &query.replace("alice", "bob"), tls).await;
    alice.join_ok("room:lobby", "1").await;
    bob.join_ok("room:lobby", "1").await;

    let reply = alice
        .push("1", "room:lobby", "chat:msg", json!({"body": "hi"}))
        .await;
    assert_eq!(reply["status"], "ok", "{reply}");
    let heard = bob.until(|f| f.is_event("room:lobby", "chat:msg")).await;
    assert_eq!(heard.json().unwrap()[4], json!({"body": "hi"}));

    let response = https(&server, &cert)
        .post(https_url(&server, &format!("/api/v1/apps/{APP}/broadcast")))
        .bearer_auth(SECRET)
        .json(&json!({"topic": "room:lobby", "event": "news", "payload": {"n": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 202);
    for client in [&mut alice, &mut bob] {
        let news = client.until(|f| f.is_event("room:lobby", "news")).await;
        assert_eq!(news.json().unwrap()[4], json!({"n": 1}));
    }
}

#[tokio::test]
async fn health_and_long_poll_over_https() {
    let dir = TempDir::new();
    let (_backend, server, cert) = start_tls(&dir, |s| s).await;
    let client = https(&server, &cert);
    let (status, body) = status_json(
        client
            .get(https_url(&server, "/health"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body), (200, json!({"status": "ok"})));

    // phoenix.js's LongPoll: open (410 with a session token), POST a join,
    // GET its reply.
    let base = https_url(
        &server,
        &format!("/socket/longpoll?app={APP}&token=carol&vsn=2.0.0"),
    );
    let open: Value = client
        .get(&base)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(open["status"], 410, "{open}");
    let session = open["token"].as_str().expect("session token").to_owned();
    let with_session = format!("{base}&token={session}");
    let join = json!(["1", "1", "room:lobby", "phx_join", {}]).to_string();
    let posted: Value = client
        .post(&with_session)
        .header("content-type", "application/x-ndjson")
        .body(join)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(posted["status"], 200, "{posted}");
    let polled: Value = client
        .get(&with_session)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(polled["status"], 200, "{polled}");
    let reply: Value = serde_json::from_str(polled["messages"][0].as_str().unwrap()).unwrap();
    assert_eq!(reply[3], "phx_reply");
    assert_eq!(reply[4]["status"], "ok", "{reply}");
}

/// A client speaking plain HTTP to the TLS port gets its connection closed;
/// the failure is counted and TLS clients are unaffected.
#[tokio::test]
async fn plain_http_to_the_tls_port_fails_cleanly() {
    let dir = TempDir::new();
    let (_backend, server, cert) = start_tls(&dir, |s| s).await;
    let query = format!("app={APP}&token=alice&vsn=2.0.0");
    let mut connected = WsClient::connect_tls(server.addr, &query, client_tls(&cert)).await;
    connected.join_ok("room:lobby", "1").await;

    let plain = http().get(server.url("/health")).send().await;
    assert!(plain.is_err(), "plain HTTP was answered: {plain:?}");

    // The connected client carries on.
    connected.sync().await;

    let client = https(&server, &cert);
    let metrics = client
        .get(https_url(&server, "/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status().as_u16(), 200);
    let text = metrics.text().await.unwrap();
    assert!(
        metric_sum(
            &text,
            "switchboard_tls_handshake_failures_total",
            &["reason=\"error\""]
        ) >= 1.0,
        "{text}"
    );
}

/// A client that opens a TCP connection and stalls in the TLS handshake is
/// disconnected after `handshake_timeout_ms` (slow-loris on TLS).
#[tokio::test]
async fn a_stalled_tls_handshake_is_cut_at_the_handshake_timeout() {
    let dir = TempDir::new();
    let (_backend, server, cert) =
        start_tls(&dir, |s| s.limits("handshake_timeout_ms = 300")).await;
    let started = Instant::now();
    let mut socket = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    // The first bytes of a TLS record header, then nothing.
    socket.write_all(&[0x16, 0x03, 0x01]).await.unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), socket.read_to_end(&mut buf)).await;
    assert!(
        read.is_ok(),
        "the server still holds the stalled TLS handshake"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "cut before the timeout: {:?}",
        started.elapsed()
    );

    let text = https(&server, &cert)
        .get(https_url(&server, "/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        metric_sum(
            &text,
            "switchboard_tls_handshake_failures_total",
            &["reason=\"timeout\""]
        ),
        1.0,
        "{text}"
    );
}

/// `Config::load` (behind `serve` and `check-config`) reads the certificate
/// and key, relative to the config file, and refuses bad ones in one line
/// naming the key and the file.
#[test]
fn bad_or_missing_tls_files_are_clear_config_errors() {
    let dir = TempDir::new();
    let good = self_signed(dir.path(), "good");
    let other = self_signed(dir.path(), "other");
    std::fs::write(dir.path().join("garbage.pem"), "not a certificate\n").unwrap();
    let load = |cert: &str, key: &str| {
        let file = dir.path().join("switchboard.toml");
        std::fs::write(
            &file,
            format!("[server]\ntls_cert_file = \"{cert}\"\ntls_key_file = \"{key}\"\n"),
        )
        .unwrap();
        Config::load(&file).map_err(|e| e.to_string())
    };

    // Relative paths are resolved against the config file's directory.
    let config = load("good-cert.pem", "good-key.pem").expect("good files load");
    assert_eq!(config.server.tls.unwrap().cert_file, good.cert_file);

    let cases = [
        (
            "missing.pem",
            "good-key.pem",
            "server.tls_cert_file: cannot read ",
        ),
        (
            "good-cert.pem",
            "missing.pem",
            "server.tls_key_file: cannot read ",
        ),
        ("garbage.pem", "good-key.pem", "server.tls_cert_file: "),
        ("good-cert.pem", "good-cert.pem", "server.tls_key_file: "),
        (
            "good-cert.pem",
            "other-key.pem",
            "server.tls_key_file: the certificate and key cannot be used together",
        ),
    ];
    for (cert, key, expected) in cases {
        let error = load(cert, key).expect_err(&format!("{cert} + {key} should be refused"));
        assert!(error.contains(expected), "{cert} + {key}: {error}");
        assert!(
            error.contains("switchboard.toml: "),
            "names the config file: {error}"
        );
        assert!(!error.contains('\n'), "not one line: {error}");
    }
    assert!(load("garbage.pem", "good-key.pem")
        .unwrap_err()
        .contains("holds no PEM certificate"));
    assert!(load("good-cert.pem", "good-cert.pem")
        .unwrap_err()
        .contains("holds no PEM private key"));
    drop(other);
}
