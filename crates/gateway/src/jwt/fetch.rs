//! One fetch of an app's JWKS: an unsigned GET of `jwks_url` through the
//! shared HTTP client, the key set it holds, and how long the endpoint says
//! it may be cached (`Cache-Control: max-age`).

use std::time::Duration;

use reqwest::header::{HeaderMap, CACHE_CONTROL};

use super::key_set::KeySet;
use crate::apps::App;
use crate::upstream::{new_request_id, WebhookKind, Webhooks};

/// A successful fetch.
pub(super) struct Fetched {
    /// The usable keys.
    pub keys: KeySet,
    /// The answer's `max-age` (zero for `no-cache` / `no-store`), if any.
    pub max_age: Option<Duration>,
}

/// Fetches and parses the key set at `url`. Failures are counted in
/// `switchboard_webhook_failures_total{kind="jwks"}`.
pub(super) async fn fetch_key_set(
    webhooks: &Webhooks,
    app: &App,
    url: &str,
) -> Result<Fetched, String> {
    let request_id = new_request_id();
    let response = webhooks
        .get_public(app, WebhookKind::Jwks, url, &request_id)
        .await
        .map_err(|e| format!("jwks_url: {e}"))?;
    let kind = WebhookKind::Jwks.as_str();
    if response.status != 200 {
        webhooks.metrics().webhook_failure(app.id(), kind, "status");
        return Err(format!("jwks_url answered HTTP {}", response.status));
    }
    let keys = KeySet::parse(&response.body).map_err(|e| {
        webhooks
            .metrics()
            .webhook_failure(app.id(), kind, "bad_response");
        format!("jwks_url: {e}")
    })?;
    Ok(Fetched {
        keys,
        max_age: max_age(&response.headers),
    })
}

/// `max-age` of the `Cache-Control` header; `no-cache` and `no-store` mean
/// zero (the caller clamps it to its minimum refresh period).
fn max_age(headers: &HeaderMap) -> Option<Duration> {
    let mut found = None;
    for value in headers.get_all(CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for directive in value.split(',').map(str::trim) {
            let (name, argument) = directive.split_once('=').unwrap_or((directive, ""));
            let name = name.trim();
            if name.eq_ignore_ascii_case("no-cache") || name.eq_ignore_ascii_case("no-store") {
                return Some(Duration::ZERO);
            }
            if name.eq_ignore_ascii_case("max-age") {
                if let Ok(secs) = argument.trim().trim_matches('"').parse::<u64>() {
                    found = Some(Duration::from_secs(secs));
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(CACHE_CONTROL, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn reads_max_age_among_other_directives() {
        let secs = |v: &[&str]| max_age(&headers(v)).map(|d| d.as_secs());
        assert_eq!(secs(&["public, max-age=600, must-revalidate"]), Some(600));
        assert_eq!(secs(&["MAX-AGE = \"60\""]), Some(60));
        assert_eq!(secs(&["public", "max-age=5"]), Some(5));
        assert_eq!(secs(&["max-age=5, no-store"]), Some(0));
        assert_eq!(secs(&["no-cache"]), Some(0));
        assert_eq!(secs(&["public"]), None);
        assert_eq!(secs(&["max-age=soon"]), None);
        assert_eq!(secs(&[]), None);
    }
}
