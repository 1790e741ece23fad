//! [`Secret`]: a string that must never reach a log line, compared in
//! constant time. It owns redaction and comparison only; where secrets come
//! from (config, admin API, state file) is the rest of the config module's.

use std::fmt;

use sha2::{Digest, Sha256};

/// A secret string (app secret, admin token, JWT key).
///
/// `Debug` and `Display` print `[redacted]`, so a secret inside a logged or
/// debug-printed struct stays hidden. Read the value with [`Secret::expose`];
/// check a presented credential with [`Secret::matches`].
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret value itself, e.g. as an HMAC key. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `candidate` equals the secret, in time that depends on neither
    /// where they differ nor their lengths: both are hashed to SHA-256
    /// digests, and the two fixed-size digests are compared without early exit.
    pub fn matches(&self, candidate: &str) -> bool {
        let expected = Sha256::digest(self.0.as_bytes());
        let presented = Sha256::digest(candidate.as_bytes());
        let difference = expected
            .iter()
            .zip(presented.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        std::hint::black_box(difference) == 0
    }
}

/// Equality is [`Secret::matches`], so it is constant time too.
impl PartialEq for Secret {
    fn eq(&self, other: &Secret) -> bool {
        self.matches(&other.0)
    }
}

impl Eq for Secret {}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// `url` with its password (if any) replaced, for `Debug` output of
/// settings holding URLs such as `redis_url`.
pub(super) fn url_without_password(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("redacted"));
            parsed.to_string()
        }
        Ok(_) => url.to_owned(),
        Err(_) => "[unparsable, redacted]".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::Secret;

    #[test]
    fn debug_and_display_are_redacted() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?}"), "[redacted]");
        assert_eq!(format!("{secret}"), "[redacted]");
        assert_eq!(format!("{:?}", Some(secret.clone())), "Some([redacted])");
        assert_eq!(secret.expose(), "hunter2");
    }

    #[test]
    fn matches_only_the_exact_value() {
        let secret = Secret::new("hunter2");
        assert!(secret.matches("hunter2"));
        assert!(!secret.matches("hunter3"));
        assert!(!secret.matches("hunter"));
        assert!(!secret.matches("hunter22"));
        assert!(!secret.matches(""));
        assert!(Secret::new("").matches(""));
        assert_eq!(secret, Secret::new("hunter2"));
        assert_ne!(secret, Secret::new("other"));
    }
}
