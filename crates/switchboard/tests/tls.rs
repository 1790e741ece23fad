//! Built-in TLS on the real binary: `check-config` reads and checks the
//! certificate and key (one line, non-zero exit on a bad file), and `serve`
//! announces `https://` and answers over TLS.

#![cfg(unix)]

mod common;

use common::TempDir;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const WAIT: Duration = Duration::from_secs(15);

/// Writes `cert.pem`, `key.pem` (self-signed for localhost) and a config
/// naming `cert_file` and `key_file` relative to it; returns the config
/// path and the certificate PEM.
fn write_files(dir: &TempDir, cert_file: &str, key_file: &str) -> (PathBuf, String) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    std::fs::write(dir.0.join("cert.pem"), made.cert.pem()).unwrap();
    std::fs::write(dir.0.join("key.pem"), made.signing_key.serialize_pem()).unwrap();
    let config = dir.0.join("switchboard.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nstate_file = \"{}\"\ntls_cert_file = \"{cert_file}\"\ntls_key_file = \"{key_file}\"\n",
            dir.0.join("state.json").display()
        ),
    )
    .unwrap();
    (config, made.cert.pem())
}

#[test]
fn check_config_reads_the_tls_files() {
    let dir = TempDir::new("tls-check");
    let (config, _) = write_files(&dir, "cert.pem", "key.pem");
    let ok = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("check-config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    let (config, _) = write_files(&dir, "cert.pem", "missing-key.pem");
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("check-config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.starts_with(&format!(
            "switchboard: {}: server.tls_key_file: cannot read ",
            config.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("missing-key.pem"), "{stderr}");
}

#[tokio::test]
async fn serve_announces_https_and_answers_over_tls() {
    let dir = TempDir::new("tls-serve");
    let (config, cert_pem) = write_files(&dir, "cert.pem", "key.pem");
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["serve", "--config"])
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut banner = String::new();
    tokio::time::timeout(WAIT, stdout.read_line(&mut banner))
        .await
        .expect("the banner in time")
        .unwrap();
    let addr: std::net::SocketAddr = banner
        .trim()
        .strip_prefix("switchboard listening on https://")
        .unwrap_or_else(|| panic!("unexpected first line {banner:?}"))
        .parse()
        .unwrap();
    let client = reqwest::Client::builder()
        .timeout(WAIT)
        .tls_certs_only([reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap()])
        .resolve("localhost", addr)
        .build()
        .unwrap();
    let response = client
        .get(format!("https://localhost:{}/health/ready", addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    child.start_kill().unwrap();
}
