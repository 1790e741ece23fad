//! What an app verifies tokens with: its HS256 secret, or the cache of its
//! identity provider's key set.

use jsonwebtoken::DecodingKey;

use super::JwksCache;
use crate::config::{AppConfig, AuthSource};

/// An app's token keys.
pub enum TokenKeys {
    /// `jwt_secret`: HS256 only.
    Secret(DecodingKey),
    /// `jwks_url`: RS256 / ES256 only.
    Jwks(JwksCache),
}

impl TokenKeys {
    /// The keys of an app that verifies JWTs itself; `None` for the others.
    pub fn for_app(config: &AppConfig) -> Option<TokenKeys> {
        match &config.auth {
            AuthSource::JwtSecret(secret) => Some(TokenKeys::Secret(DecodingKey::from_secret(
                secret.expose().as_bytes(),
            ))),
            AuthSource::Jwks(url) => Some(TokenKeys::Jwks(JwksCache::new(url.clone()))),
            AuthSource::Endpoint(_) | AuthSource::AcceptAnyToken => None,
        }
    }

    /// The JWKS cache, for JWKS apps.
    pub fn jwks(&self) -> Option<&JwksCache> {
        match self {
            TokenKeys::Jwks(cache) => Some(cache),
            TokenKeys::Secret(_) => None,
        }
    }
}
