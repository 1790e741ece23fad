//! One app at runtime: its config, its last good compiled schema, its token
//! keys when it verifies JWTs itself, and the semaphore that caps its
//! webhook calls in flight so one app's slow backend cannot take every
//! connection of the process with it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use switchboard_schema::Schema;
use tokio::sync::{Notify, Semaphore};

use crate::config::AppConfig;
use crate::jwt::TokenKeys;

/// A registered app.
pub struct App {
    config: AppConfig,
    schema: RwLock<Option<Arc<Schema>>>,
    token_keys: Option<TokenKeys>,
    webhook_permits: Arc<Semaphore>,
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
    /// Wraps a validated config; the schema loads later.
    pub fn new(config: AppConfig, webhooks_in_flight: usize, from_config: bool) -> Self {
        Self {
            token_keys: TokenKeys::for_app(&config),
            config,
            schema: RwLock::new(None),
            webhook_permits: Arc::new(Semaphore::new(webhooks_in_flight.max(1))),
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
