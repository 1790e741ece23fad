//! Why a client's token was refused. The cause goes to the log and to
//! `switchboard_auth_failures_total{reason}`; the client only ever sees
//! `unauthorized` (or `auth_service_error` for [`TokenError::NoKeys`]).

use jsonwebtoken::errors::{Error, ErrorKind};

/// The precise cause of a refused token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// `exp` passed (beyond the leeway).
    Expired,
    /// `nbf` is still ahead (beyond the leeway).
    NotYetValid,
    /// `iss` missing or not the app's `jwt_issuer`.
    WrongIssuer,
    /// `aud` missing or not the app's `jwt_audience`.
    WrongAudience,
    /// The signature does not verify with the app's key.
    BadSignature,
    /// No key of the JWKS has the token's `kid` (after a refresh, when the
    /// cooldown allowed one).
    UnknownKid,
    /// An algorithm the app does not accept: anything but HS256 with
    /// `jwt_secret`, anything but RS256 / ES256 with `jwks_url`.
    DisallowedAlgorithm,
    /// Not a JWT, or its claims are not what the gateway needs (`exp`, a
    /// non-empty string `sub`, a list of strings `permissions`, an object
    /// `metadata`).
    Malformed,
    /// The app has no keys to check with: its JWKS never loaded. Not the
    /// client's fault (`auth_service_error`).
    NoKeys,
}

impl TokenError {
    /// The log field and metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenError::Expired => "expired",
            TokenError::NotYetValid => "not_yet_valid",
            TokenError::WrongIssuer => "wrong_issuer",
            TokenError::WrongAudience => "wrong_audience",
            TokenError::BadSignature => "bad_signature",
            TokenError::UnknownKid => "unknown_kid",
            TokenError::DisallowedAlgorithm => "disallowed_algorithm",
            TokenError::Malformed => "malformed",
            TokenError::NoKeys => "jwks_unavailable",
        }
    }
}

impl From<&Error> for TokenError {
    fn from(error: &Error) -> Self {
        match error.kind() {
            ErrorKind::ExpiredSignature => TokenError::Expired,
            ErrorKind::ImmatureSignature => TokenError::NotYetValid,
            ErrorKind::InvalidIssuer => TokenError::WrongIssuer,
            ErrorKind::InvalidAudience => TokenError::WrongAudience,
            ErrorKind::MissingRequiredClaim(claim) if claim == "iss" => TokenError::WrongIssuer,
            ErrorKind::MissingRequiredClaim(claim) if claim == "aud" => TokenError::WrongAudience,
            ErrorKind::InvalidAlgorithm => TokenError::DisallowedAlgorithm,
            // A key the identity provider published that does not parse can
            // verify nothing.
            ErrorKind::InvalidSignature
            | ErrorKind::InvalidRsaKey(_)
            | ErrorKind::InvalidEcdsaKey
            | ErrorKind::InvalidKeyFormat => TokenError::BadSignature,
            _ => TokenError::Malformed,
        }
    }
}
