//! A JWKS document turned into the keys that can verify tokens: RSA keys
//! for RS256 and P-256 keys for ES256. Every other key (symmetric keys
//! above all: a published `oct` key would let anyone sign HS256 tokens,
//! encryption keys, other curves and algorithms) is left out.

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use serde_json::Value;

/// One usable key.
pub(super) struct VerifyingKey {
    /// The key's `kid`, if it has one.
    pub kid: Option<String>,
    /// The one algorithm this key verifies.
    pub alg: Algorithm,
    /// The key.
    pub key: DecodingKey,
}

/// The usable keys of one JWKS document.
pub(super) struct KeySet {
    keys: Vec<VerifyingKey>,
}

/// The document's outer shape: keys are read one by one, so that one key
/// of a kind this crate cannot parse does not hide the others.
#[derive(Deserialize)]
struct Document {
    keys: Vec<Value>,
}

impl KeySet {
    /// Parses a JWKS document; an error when it has no usable key.
    pub fn parse(body: &[u8]) -> Result<KeySet, String> {
        let document: Document =
            serde_json::from_slice(body).map_err(|e| format!("not a JWKS document: {e}"))?;
        let keys: Vec<VerifyingKey> = document
            .keys
            .into_iter()
            .filter_map(|value| serde_json::from_value::<Jwk>(value).ok())
            .filter_map(|jwk| usable(&jwk))
            .collect();
        if keys.is_empty() {
            return Err("the JWKS has no RS256 or ES256 signing key".to_owned());
        }
        Ok(KeySet { keys })
    }

    /// Number of usable keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when the set can say something about a token with this `kid`
    /// (a key with that id) or, without a `kid`, signed with `alg`.
    pub fn knows(&self, kid: Option<&str>, alg: Algorithm) -> bool {
        match kid {
            Some(kid) => self.keys.iter().any(|k| k.kid.as_deref() == Some(kid)),
            None => self.keys.iter().any(|k| k.alg == alg),
        }
    }

    /// The keys a token with this `kid` and `alg` may be verified with: the
    /// key with that id if its algorithm is `alg`; without a `kid`, every
    /// key of `alg`.
    pub fn candidates<'a>(
        &'a self,
        kid: Option<&'a str>,
        alg: Algorithm,
    ) -> impl Iterator<Item = &'a VerifyingKey> + 'a {
        self.keys
            .iter()
            .filter(move |k| k.alg == alg && (kid.is_none() || k.kid.as_deref() == kid))
    }

    /// The key ids, for the log.
    pub fn kids(&self) -> Vec<&str> {
        self.keys.iter().filter_map(|k| k.kid.as_deref()).collect()
    }
}

/// The key as an RS256 or ES256 verifier, or `None`.
fn usable(jwk: &Jwk) -> Option<VerifyingKey> {
    if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
        return None;
    }
    let declared = jwk.common.key_algorithm;
    let alg = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => match declared {
            None | Some(KeyAlgorithm::RS256) => Algorithm::RS256,
            Some(_) => return None,
        },
        AlgorithmParameters::EllipticCurve(params) if params.curve == EllipticCurve::P256 => {
            match declared {
                None | Some(KeyAlgorithm::ES256) => Algorithm::ES256,
                Some(_) => return None,
            }
        }
        _ => return None,
    };
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some(VerifyingKey {
        kid: jwk.common.key_id.clone(),
        alg,
        key,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const N: &str = "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw";
    const X: &str = "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4";
    const Y: &str = "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM";

    #[test]
    fn keeps_rsa_and_p256_signing_keys_and_drops_the_rest() {
        let body = json!({"keys": [
            {"kty": "RSA", "kid": "r", "n": N, "e": "AQAB"},
            {"kty": "EC", "kid": "e", "crv": "P-256", "x": X, "y": Y, "alg": "ES256"},
            {"kty": "oct", "kid": "h", "k": "c2VjcmV0"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": N, "e": "AQAB"},
            {"kty": "RSA", "kid": "ps", "alg": "PS256", "n": N, "e": "AQAB"},
            {"kty": "weird", "kid": "w"}
        ]});
        let set = KeySet::parse(body.to_string().as_bytes()).unwrap();
        assert_eq!(set.kids(), ["r", "e"]);
        assert!(set.knows(Some("r"), Algorithm::RS256));
        assert!(!set.knows(Some("h"), Algorithm::HS256));
        assert_eq!(set.candidates(Some("r"), Algorithm::ES256).count(), 0);
        assert_eq!(set.candidates(None, Algorithm::ES256).count(), 1);
    }

    #[test]
    fn a_set_without_usable_keys_is_an_error() {
        let body = json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]});
        assert!(KeySet::parse(body.to_string().as_bytes()).is_err());
        assert!(KeySet::parse(b"not json").is_err());
    }
}
