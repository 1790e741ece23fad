//! One app at runtime: its config, its last good compiled schema, its token
//! keys when it verifies JWTs itself, the semaphore that caps its webhook
//! calls in flight so one app's slow backend cannot take every connection of
//! the process with it, and its ceiling on client pushes so one app's
//! clients cannot take every CPU.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use switchboard_schema::Schema;
use tokio::sync::{Notify, Semaphore};

use super::AppPushCeiling;
use crate::config::{AppConfig, Limits};
use crate::jwt::TokenKeys;

/// A registered app.
pub struct App {
    config: AppConfig,
    schema: RwLock<Option<Arc<Schema>>>,
    token_keys: Option<TokenKeys>,
    webhook_permits: Arc<Semaphore>,
    push_ceiling: AppPushCeiling,
    /// True for apps from the config file (immutable through the admin API).
    from_config: bool,
    /// Wakes the schema refresher early (removal).
    pub(crate) refresh_wake: Notify,
    removed: AtomicBool,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("id", &self.config.id)
            .finish_non_exhaustive()
    }
}

impl App {
    /// Wraps a validated config, with the process's `limits` where the app
    /// sets none; the schema loads later.
    pub fn new(config: AppConfig, limits: &Limits, from_config: bool) -> Self {
        let pushes_per_second = config
            .pushes_per_second
            .unwrap_or(limits.app_pushes_per_second);
        Self {
            token_keys: TokenKeys::for_app(&config),
            config,
            schema: RwLock::new(None),
            webhook_permits: Arc::new(Semaphore::new(limits.webhooks_in_flight_per_app.max(1))),
            push_ceiling: AppPushCeiling::new(pushes_per_second),
            from_config,
            refresh_wake: Notify::new(),
            removed: AtomicBool::new(false),
        }
    }

    /// The app id.
    pub fn id(&self) -> &str {
        &self.config.id
    }

    /// The app's validated config.
    pub fn config(&self) -> &AppConfig {
        &self.config
    }

    /// Whether the app came from the config file.
    pub fn from_config(&self) -> bool {
        self.from_config
    }

    /// The current schema; `None` until one has loaded.
    pub fn schema(&self) -> Option<Arc<Schema>> {
        self.schema
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Replaces the schema with a newly compiled one.
    pub fn set_schema(&self, schema: Arc<Schema>) {
        *self
            .schema
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(schema);
    }

    /// The keys client tokens are verified with, for apps configured with
    /// `jwt_secret` or `jwks_url`.
    pub fn token_keys(&self) -> Option<&TokenKeys> {
        self.token_keys.as_ref()
    }

    /// The cap on this app's webhook calls in flight.
    pub fn webhook_permits(&self) -> &Arc<Semaphore> {
        &self.webhook_permits
    }

    /// Counts one client push against the app's ceiling; false when over it.
    pub fn allow_push(&self) -> bool {
        self.push_ceiling.allow()
    }

    /// Marks the app removed (admin API): its refresher stops.
    pub fn mark_removed(&self) {
        self.removed.store(true, Ordering::Release);
        self.refresh_wake.notify_waiters();
    }

    /// True once removed.
    pub fn is_removed(&self) -> bool {
        self.removed.load(Ordering::Acquire)
    }
}
