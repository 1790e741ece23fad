//! The task that keeps one app's JWKS fresh for as long as the app is
//! registered: it fetches at once, then again when the answer's `max-age`
//! runs out (clamped to `[limits] jwks_refresh_min_secs` ..
//! `jwks_refresh_max_secs`, `jwks_refresh_default_secs` without one). A
//! failed fetch keeps the last good keys and is retried after 1 s, doubling
//! up to `jwks_refresh_min_secs`.

use std::sync::Arc;
use std::time::Duration;

use crate::apps::App;
use crate::config::Limits;
use crate::upstream::Webhooks;

/// First retry delay after a failed fetch.
const FIRST_RETRY: Duration = Duration::from_secs(1);

/// Starts the refresher of `app`'s JWKS; does nothing for other apps.
pub fn spawn_jwks_refresher(webhooks: Arc<Webhooks>, app: Arc<App>, limits: &Limits) {
    if app.token_keys().and_then(|keys| keys.jwks()).is_none() {
        return;
    }
    let (min, max, default) = (
        limits.jwks_refresh_min,
        limits.jwks_refresh_max,
        limits.jwks_refresh_default,
    );
    tokio::spawn(async move {
        let mut retry = FIRST_RETRY;
        while !app.is_removed() {
            let Some(cache) = app.token_keys().and_then(|keys| keys.jwks()) else {
                return;
            };
            let wait = match cache.refresh(&webhooks, &app).await {
                Ok(max_age) => {
                    retry = FIRST_RETRY;
                    max_age.unwrap_or(default).clamp(min, max)
                }
                Err(_) => {
                    let wait = retry.min(min);
                    retry = (retry * 2).min(min);
                    wait
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = app.refresh_wake.notified() => {}
            }
        }
    });
}
