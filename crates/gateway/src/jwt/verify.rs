//! Verifying one client token against its app's keys.
//!
//! The algorithm is fixed by how the app is configured, never by the token:
//! a `jwt_secret` app takes HS256 only, a `jwks_url` app RS256 and ES256
//! only, each key verifying the one algorithm it was published for. So an
//! HS256 token "signed" with a public key, `alg: none`, or a key embedded
//! in the token's header (`jwk`, `jku`: never read) cannot pass.

use std::sync::Arc;

use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey};

use super::claims::{validation, Claims};
use super::key_set::KeySet;
use super::{TokenError, TokenKeys};
use crate::apps::App;
use crate::config::Limits;
use crate::session::Identity;
use crate::upstream::Webhooks;

/// Verifies `token` for `app` (which must have [`TokenKeys`]) and returns
/// who the client is.
pub async fn verify_token(
    webhooks: &Arc<Webhooks>,
    app: &Arc<App>,
    limits: &Limits,
    token: &str,
    client_type: Option<&str>,
) -> Result<Identity, TokenError> {
    let header = decode_header(token).map_err(|_| TokenError::Malformed)?;
    let claims = match app.token_keys() {
        None => return Err(TokenError::NoKeys),
        Some(TokenKeys::Secret(key)) => {
            if header.alg != Algorithm::HS256 {
                return Err(TokenError::DisallowedAlgorithm);
            }
            check(token, key, header.alg, app, limits)?
        }
        Some(TokenKeys::Jwks(cache)) => {
            if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
                return Err(TokenError::DisallowedAlgorithm);
            }
            let kid = header.kid.as_deref();
            let keys = cache.current().ok_or(TokenError::NoKeys)?;
            let keys = if keys.knows(kid, header.alg) {
                keys
            } else {
                cache
                    .refresh_for_unknown_kid(webhooks, app, limits.jwks_refresh_cooldown)
                    .await
                    .filter(|keys| keys.knows(kid, header.alg))
                    .ok_or(TokenError::UnknownKid)?
            };
            check_with_any(token, &keys, kid, header.alg, app, limits)?
        }
    };
    claims.into_identity(app.config(), client_type, limits.jwt_leeway)
}

/// Tries each key the token may be signed with; the first that verifies
/// decides. A `kid` that names a key of another algorithm is a bad
/// signature.
fn check_with_any(
    token: &str,
    keys: &KeySet,
    kid: Option<&str>,
    alg: Algorithm,
    app: &App,
    limits: &Limits,
) -> Result<Claims, TokenError> {
    let mut result = Err(TokenError::BadSignature);
    for candidate in keys.candidates(kid, alg) {
        result = check(token, &candidate.key, alg, app, limits);
        if result.as_ref().err() != Some(&TokenError::BadSignature) {
            break;
        }
    }
    result
}

/// Signature first, then the claims.
fn check(
    token: &str,
    key: &DecodingKey,
    alg: Algorithm,
    app: &App,
    limits: &Limits,
) -> Result<Claims, TokenError> {
    let validation = validation(alg, app.config(), limits.jwt_leeway);
    decode::<Claims>(token, key, &validation)
        .map(|data| data.claims)
        .map_err(|error| TokenError::from(&error))
}
