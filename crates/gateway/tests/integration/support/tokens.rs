//! Signed JWTs and JWKS documents for the JWT tests. The private keys are
//! test-only fixtures (`tests/fixtures/jwt/*.pem`, made with `openssl
//! genpkey`): two RSA 2048 keys and one P-256 key. The JWKS the tests serve
//! is built from them here, so the public halves never drift from the
//! private ones.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

/// The HS256 secret of tests that use `jwt_secret`.
pub const HS_SECRET: &str = "test-hs256-secret-that-is-long-enough";
/// The `jwt_issuer` tests configure.
pub const ISSUER: &str = "https://issuer.test";
/// The `jwt_audience` tests configure.
pub const AUDIENCE: &str = "switchboard-tests";

/// The RSA fixture key "A".
pub fn rsa_a() -> EncodingKey {
    EncodingKey::from_rsa_pem(include_bytes!("../../fixtures/jwt/rsa_a.pem")).unwrap()
}

/// The RSA fixture key "B".
pub fn rsa_b() -> EncodingKey {
    EncodingKey::from_rsa_pem(include_bytes!("../../fixtures/jwt/rsa_b.pem")).unwrap()
}

/// The P-256 fixture key.
pub fn ec_a() -> EncodingKey {
    EncodingKey::from_ec_pem(include_bytes!("../../fixtures/jwt/ec_a.pem")).unwrap()
}

/// The HS256 key of [`HS_SECRET`].
pub fn hs() -> EncodingKey {
    EncodingKey::from_secret(HS_SECRET.as_bytes())
}

/// Unix seconds now.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Valid claims for `sub`: issuer, audience, ten minutes to live, and the
/// permissions to join and send on `project:1`.
pub fn claims(sub: &str) -> Value {
    json!({
        "sub": sub,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now(),
        "exp": now() + 600,
        "permissions": ["read:project:1", "write:project:1"],
        "metadata": {"name": sub},
    })
}

/// `claims(sub)` with some claims replaced (a `null` removes one).
pub fn claims_with(sub: &str, changes: Value) -> Value {
    let mut claims = claims(sub);
    for (name, value) in changes.as_object().unwrap() {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(name);
        } else {
            claims[name] = value.clone();
        }
    }
    claims
}

/// A token signed with `key` under `alg`, with `kid` in its header.
pub fn sign(alg: Algorithm, kid: Option<&str>, key: &EncodingKey, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    encode(&header, claims, key).unwrap()
}

/// The public JWK of `key` for `alg`, with `kid`.
pub fn jwk(key: &EncodingKey, alg: Algorithm, kid: &str) -> Value {
    let mut jwk = serde_json::to_value(Jwk::from_encoding_key(key, alg).unwrap()).unwrap();
    jwk["kid"] = json!(kid);
    jwk["use"] = json!("sig");
    jwk
}

/// A JWKS document of these JWKs.
pub fn jwks(keys: &[Value]) -> Value {
    json!({ "keys": keys })
}

/// An unsigned token (`alg: none`) with these claims.
pub fn unsigned(claims: &Value) -> String {
    use base64::Engine;
    let b64 = |v: &Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string().as_bytes())
    };
    format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(claims)
    )
}
