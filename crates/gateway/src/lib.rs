//! The switchboard gateway: Phoenix Channels clients on one side, app
//! backends on the other.
//!
//! How a message flows, and where each part lives:
//!
//! ```text
//! client ─frame─▶ transport ─Message─▶ session ─▶ apps (schema rules) ─▶ upstream (webhook)
//!                 (websocket)          (one per                             │ actions
//! client ◀─bytes─ transport ◀─queue── connection) ◀── hub (topic fan-out) ◀─┘
//!                                                       ▲
//!                                   api (server API) ───┘
//! ```
//!
//! - [`transport`]: accepting connections and moving frames.
//! - [`session`]: one client's protocol state and its outbound queue.
//! - [`hub`]: subscriptions and encode-once fan-out.
//! - [`apps`]: tenants, their schemas and push rate limits.
//! - [`upstream`]: webhooks to app backends.
//! - [`jwt`]: local verification of client JWTs (HS256 secret, JWKS cache).
//! - [`cluster`]: the Redis engine that makes many nodes one gateway.
//! - [`api`]: server API, admin API, health, metrics.
//! - [`config`], [`telemetry`]: settings; logs and metrics.
//! - [`tls`]: built-in TLS (certificate loading, bounded handshake).
//!
//! The wire codecs live in the `switchboard-protocol` crate and the schema
//! compiler in `switchboard-schema`; both are pure.

#![deny(missing_docs)]

pub mod api;
pub mod apps;
pub mod cluster;
pub mod config;
pub mod gateway;
pub mod hub;
pub mod jwt;
pub mod server;
pub mod session;
pub mod telemetry;
pub mod tls;
pub mod transport;
pub mod upstream;

pub use gateway::Gateway;
pub use server::run;
