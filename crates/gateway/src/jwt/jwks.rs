//! The cache of one app's JWKS: the last good key set, how it is replaced,
//! and the refresh a token with an unknown `kid` may trigger.
//!
//! An unknown `kid` usually means the identity provider rotated its keys,
//! but anyone can forge one, so such a refresh happens at most once per
//! `[limits] jwks_refresh_cooldown_secs`, and requests that arrive while it
//! runs wait for that same fetch instead of starting their own. The fetch
//! runs in its own task, so a client that gives up cannot cancel it for the
//! others. Locks here are plain mutexes held for a few instructions, never
//! across an `.await`.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use futures_util::future::{BoxFuture, FutureExt, Shared};

use super::fetch::{fetch_key_set, Fetched};
use super::key_set::KeySet;
use crate::apps::App;
use crate::upstream::Webhooks;

/// One app's JWKS, as last fetched successfully.
pub struct JwksCache {
    url: String,
    keys: RwLock<Option<Arc<KeySet>>>,
    unknown_kid: Mutex<UnknownKidRefresh>,
}

/// The state of unknown-`kid` refreshes.
#[derive(Default)]
struct UnknownKidRefresh {
    /// When the last one started.
    started: Option<Instant>,
    /// The one running (or finished: [`Shared::peek`] tells).
    running: Option<Shared<BoxFuture<'static, ()>>>,
}

impl JwksCache {
    /// An empty cache for the key set at `url`.
    pub fn new(url: String) -> JwksCache {
        JwksCache {
            url,
            keys: RwLock::new(None),
            unknown_kid: Mutex::new(UnknownKidRefresh::default()),
        }
    }

    /// True once a key set has loaded.
    pub fn is_loaded(&self) -> bool {
        self.current().is_some()
    }

    /// The last good key set.
    pub(super) fn current(&self) -> Option<Arc<KeySet>> {
        self.keys
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Fetches the key set now and installs it on success (the last good
    /// one stays otherwise). Returns the answer's `max-age`.
    pub(super) async fn refresh(
        &self,
        webhooks: &Webhooks,
        app: &App,
    ) -> Result<Option<Duration>, String> {
        let result = fetch_key_set(webhooks, app, &self.url).await;
        match result {
            Ok(Fetched { keys, max_age }) => {
                let changed = self.current().is_none_or(|old| old.kids() != keys.kids());
                if changed {
                    tracing::info!(
                        app = app.id(),
                        keys = keys.len(),
                        kids = ?keys.kids(),
                        "JWKS loaded"
                    );
                }
                *self
                    .keys
                    .write()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(Arc::new(keys));
                Ok(max_age)
            }
            Err(error) => {
                let kept = self.current().map_or(0, |keys| keys.len());
                tracing::warn!(
                    app = app.id(),
                    %error,
                    kept_keys = kept,
                    "JWKS fetch failed; keeping the last good keys"
                );
                Err(error)
            }
        }
    }

    /// The key set after a refresh for an unknown `kid`: a new fetch when
    /// none ran within `cooldown`, the running one when one is under way,
    /// else the current set unchanged.
    pub(super) async fn refresh_for_unknown_kid(
        &self,
        webhooks: &Arc<Webhooks>,
        app: &Arc<App>,
        cooldown: Duration,
    ) -> Option<Arc<KeySet>> {
        let running = {
            let mut state = self
                .unknown_kid
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            match &state.running {
                Some(running) if running.peek().is_none() => Some(running.clone()),
                _ if state.started.is_some_and(|at| at.elapsed() < cooldown) => None,
                _ => {
                    let (webhooks, app) = (webhooks.clone(), app.clone());
                    let task = tokio::spawn(async move {
                        if let Some(cache) = app.token_keys().and_then(|keys| keys.jwks()) {
                            tracing::info!(
                                app = app.id(),
                                "token with an unknown kid: refreshing the JWKS"
                            );
                            let _ = cache.refresh(&webhooks, &app).await;
                        }
                    });
                    let running = task.map(|_| ()).boxed().shared();
                    state.started = Some(Instant::now());
                    state.running = Some(running.clone());
                    Some(running)
                }
            }
        };
        if let Some(running) = running {
            running.await;
        }
        self.current()
    }
}
