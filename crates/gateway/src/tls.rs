//! Built-in TLS (`[server] tls_cert_file`, `tls_key_file`): loading the PEM
//! certificate chain and key into a rustls acceptor, with one-line errors
//! that name the file, and the TLS handshake of an accepted connection
//! bounded by `handshake_timeout_ms`.
//!
//! It does not decide whether TLS is on (the config does), nor serve HTTP
//! on the encrypted stream (`server.rs` does, through the same code as
//! plain TCP).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{crypto, ServerConfig};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::config::TlsFiles;

/// Why the TLS files cannot serve.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {}: {error}", .path.display())]
    Read {
        /// `server.tls_cert_file` or `server.tls_key_file`.
        key: &'static str,
        /// The path as resolved.
        path: std::path::PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The certificate file holds no usable PEM certificate.
    #[error("{} holds no PEM certificate (expected a \"-----BEGIN CERTIFICATE-----\" block)", .0.display())]
    NoCertificate(std::path::PathBuf),
    /// The key file holds no usable PEM private key.
    #[error("{} holds no PEM private key (expected a PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block)", .0.display())]
    NoKey(std::path::PathBuf),
    /// rustls refused the pair (unsupported key type, key not matching the
    /// certificate, ...).
    #[error("the certificate and key cannot be used together: {0}")]
    Unusable(String),
}

impl TlsError {
    /// The config key the error is about, for the config error's "where".
    pub fn key(&self) -> &'static str {
        match self {
            TlsError::Read { key, .. } => key,
            TlsError::NoCertificate(_) => "server.tls_cert_file",
            TlsError::NoKey(_) => "server.tls_key_file",
            TlsError::Unusable(_) => "server.tls_key_file",
        }
    }
}

/// Reads and checks the certificate chain and key; the acceptor of every
/// TLS connection. HTTP/1.1 is the only protocol offered (ALPN), as the
/// server speaks nothing else.
pub fn load(files: &TlsFiles) -> Result<TlsAcceptor, TlsError> {
    let cert_pem = read(&files.cert_file, "server.tls_cert_file")?;
    let key_pem = read(&files.key_file, "server.tls_key_file")?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|_| TlsError::NoCertificate(files.cert_file.clone()))?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate(files.cert_file.clone()));
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|_| TlsError::NoKey(files.key_file.clone()))?;
    // The provider is named rather than taken from the process default, so
    // another crate enabling a second provider cannot make this fail.
    let provider = Arc::new(crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| TlsError::Unusable(error.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|error| TlsError::Unusable(error.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn read(path: &Path, key: &'static str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|error| TlsError::Read {
        key,
        path: path.to_path_buf(),
        error,
    })
}

/// Why a TLS handshake did not complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeFailure {
    /// The client did not finish within `handshake_timeout_ms`.
    Timeout,
    /// Not TLS (plain HTTP on the TLS port, say), or a TLS alert.
    Error,
}

impl HandshakeFailure {
    /// The metrics label.
    pub fn as_str(self) -> &'static str {
        match self {
            HandshakeFailure::Timeout => "timeout",
            HandshakeFailure::Error => "error",
        }
    }
}

/// The server side of the TLS handshake on `stream`, given at most
/// `timeout` (slow-loris defence, as for the HTTP request head).
pub async fn accept(
    acceptor: &TlsAcceptor,
    stream: TcpStream,
    timeout: Duration,
) -> Result<TlsStream<TcpStream>, (HandshakeFailure, Option<std::io::Error>)> {
    match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(error)) => Err((HandshakeFailure::Error, Some(error))),
        Err(_) => Err((HandshakeFailure::Timeout, None)),
    }
}
