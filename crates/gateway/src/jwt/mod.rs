//! Local verification of client JWTs, for apps configured with `jwt_secret`
//! (HS256) or `jwks_url` (RS256, ES256) instead of an auth webhook
//! (CONTRACT §2).
//!
//! [`TokenKeys`] is what an app verifies with: its HS256 secret, or the
//! [`JwksCache`] of its identity provider's public keys, which
//! [`spawn_jwks_refresher`] keeps fresh and an unknown `kid` refreshes at
//! most once per cooldown. [`verify_token`] turns a token into the client's
//! [`crate::session::Identity`] or the precise [`TokenError`].
//!
//! This module decides nothing about connections: admission
//! (`transport/connect.rs`) maps errors to refusals, and the transports close
//! a connection when its token expires.

mod claims;
mod error;
mod fetch;
mod jwks;
mod key_set;
mod keys;
mod refresher;
mod verify;

pub use error::TokenError;
pub use jwks::JwksCache;
pub use keys::TokenKeys;
pub use refresher::spawn_jwks_refresher;
pub use verify::verify_token;
