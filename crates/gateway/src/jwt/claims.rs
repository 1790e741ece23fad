//! The claims the gateway reads from a verified token, the checks it asks
//! of them, and the [`Identity`] they make.
//!
//! `exp` and `sub` are required; `nbf` is checked when present; `iss` and
//! `aud` are required and checked only when the app sets `jwt_issuer` /
//! `jwt_audience`. Time claims allow `[limits] jwt_leeway_secs` of skew.

use std::num::NonZeroU64;
use std::time::Duration;

use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::TokenError;
use crate::config::AppConfig;
use crate::session::Identity;

/// The claims of a token, as far as the gateway cares.
#[derive(Debug, Deserialize)]
pub(super) struct Claims {
    sub: String,
    exp: u64,
    #[serde(default)]
    permissions: Option<Vec<String>>,
    #[serde(default)]
    metadata: Option<Map<String, Value>>,
}

/// The checks for a token signed with `alg`, for `app`.
pub(super) fn validation(alg: Algorithm, app: &AppConfig, leeway: Duration) -> Validation {
    let mut validation = Validation::new(alg);
    validation.leeway = leeway.as_secs();
    validation.validate_nbf = true;
    let mut required = vec!["exp", "sub"];
    if let Some(issuer) = &app.jwt_issuer {
        validation.set_issuer(&[issuer]);
        required.push("iss");
    }
    match &app.jwt_audience {
        Some(audience) => {
            validation.set_audience(&[audience]);
            required.push("aud");
        }
        // Without a configured audience the gateway is not a party that
        // `aud` names, so the claim is not checked at all.
        None => validation.validate_aud = false,
    }
    validation.set_required_spec_claims(&required);
    validation
}

impl Claims {
    /// The client's identity. `expires_at` is set (to `exp` + leeway, when
    /// the token stops verifying) when the app closes connections on expiry.
    pub(super) fn into_identity(
        self,
        app: &AppConfig,
        client_type: Option<&str>,
        leeway: Duration,
    ) -> Result<Identity, TokenError> {
        if self.sub.is_empty() {
            return Err(TokenError::Malformed);
        }
        Ok(Identity {
            client_id: self.sub,
            client_type: client_type.map(Box::from),
            metadata: self.metadata.unwrap_or_default(),
            permissions: self.permissions.unwrap_or_default(),
            token_expires_at: app
                .close_on_token_expiry
                .then(|| self.exp.saturating_add(leeway.as_secs()))
                .and_then(NonZeroU64::new),
        })
    }
}
